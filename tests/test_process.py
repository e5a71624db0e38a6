"""Nothing process-wide happens on import or backend choice; tune_process makes it, when asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from minires import process

_TUNED_VARIABLES = ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                    "MKL_NUM_THREADS")

_UNTOUCHED = textwrap.dedent("""
    import json, os, sys
    before = dict(os.environ)
    import numpy as np
    import minires
    from minires import memory, ops
    minires.set_backend("numba")
    x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal((3, 3, 3, 4)).astype(np.float32)
    y, cache = ops.conv2d_forward(x, w, np.zeros(4, np.float32))
    ops.conv2d_backward(np.ones_like(y), cache)
    model = minires.build_resnet(input_shape=(16, 16, 3), num_classes=3, seed=0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.train_on_batch(np.random.default_rng(2).random((4, 16, 16, 3), np.float32), np.array([0, 1, 2, 0]))
    after = dict(os.environ)
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    print(json.dumps({"changed": changed, "malloc_tuned": memory._applied is not None,
                      "tuned": minires.process.is_tuned()}))
""")


def test_import_backend_op_and_train_step_leave_the_process_alone():
    pytest.importorskip("numba")
    env = {k: v for k, v in os.environ.items()
           if k not in _TUNED_VARIABLES}
    env["MINIRES_NUM_THREADS"] = "2"
    done = subprocess.run([sys.executable, "-c", _UNTOUCHED], capture_output=True, text=True,
                          check=False, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"changed": [], "malloc_tuned": False, "tuned": False}


_CLI = textwrap.dedent("""
    import json, os
    from minires import cli, memory, process
    code = cli.main(["predict", "no-such-model.npz", "no-such-image.png"])
    print(json.dumps({"code": code, "omp": os.environ.get("OMP_WAIT_POLICY"),
                      "blas": os.environ.get("OPENBLAS_NUM_THREADS"),
                      "malloc_tried": memory._applied is not None, "made": process.made_settings()}))
""")


def test_the_command_line_tunes_its_own_process():
    env = {k: v for k, v in os.environ.items()
           if k not in _TUNED_VARIABLES}
    env["MINIRES_NUM_THREADS"] = "2"
    done = subprocess.run([sys.executable, "-c", _CLI], capture_output=True, text=True, check=False, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["code"] == 1                       # the missing model: one line, exit 1
    assert result["omp"] == "PASSIVE" and result["blas"] == "2" and result["malloc_tried"]
    assert result["made"] == {"OMP_WAIT_POLICY": "PASSIVE", "OPENBLAS_NUM_THREADS": "2",
                              "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}


def test_tune_process_keeps_what_the_user_set(monkeypatch):
    monkeypatch.setattr(process, "_made", {})
    monkeypatch.setattr(process, "_tuned", None)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    monkeypatch.setenv("NUMBA_THREADING_LAYER", "omp")
    monkeypatch.delenv("MINIRES_NUM_THREADS", raising=False)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    tuned = process.tune_process()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE" and tuned["environment"] == {}
    assert os.environ["NUMBA_THREADING_LAYER"] == "omp"
    assert "OPENBLAS_NUM_THREADS" not in os.environ          # no thread count asked for
    tuned = process.tune_process(threads=3)
    assert tuned["environment"] == {"OPENBLAS_NUM_THREADS": "3", "OMP_NUM_THREADS": "3",
                                    "MKL_NUM_THREADS": "3"}
    assert process.made_settings() == tuned["environment"] and process.is_tuned()


def test_tune_process_gives_numba_its_own_pool_only_beside_another_openmp_runtime(monkeypatch):
    for name in ("OMP_WAIT_POLICY", "NUMBA_THREADING_LAYER", "MINIRES_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    # No OpenMP runtime loaded yet: Numba keeps OpenMP, its workers told to sleep.
    monkeypatch.setattr(process, "openmp_loaded", lambda: False)
    monkeypatch.setattr(process, "_made", {})
    monkeypatch.setattr(process, "_tuned", None)
    assert process.tune_process()["environment"] == {"OMP_WAIT_POLICY": "PASSIVE"}
    assert "NUMBA_THREADING_LAYER" not in os.environ
    # Another library's runtime already loaded (torch imported first): Numba's own pool, and
    # that runtime's settings left alone.
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setattr(process, "openmp_loaded", lambda: True)
    monkeypatch.setattr(process, "_made", {})
    assert process.tune_process()["environment"] == {"NUMBA_THREADING_LAYER": "workqueue"}
    assert "OMP_WAIT_POLICY" not in os.environ


def test_openmp_loaded_sees_this_process_libraries():
    """In a fresh interpreter no OpenMP runtime is loaded; after Numba's OpenMP pool starts
    one is."""
    pytest.importorskip("numba")
    script = textwrap.dedent("""
        import numpy as np
        from minires import process
        before = process.openmp_loaded()
        import minires
        minires.set_backend("numba")
        from minires import ops
        ops.relu_forward(np.ones(1 << 16, np.float32))
        import numba
        print(before, process.openmp_loaded(), numba.threading_layer())
    """)
    env = {k: v for k, v in os.environ.items() if k not in _TUNED_VARIABLES}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=False, env=env)
    assert done.returncode == 0, done.stderr
    before, after, layer = done.stdout.split()
    assert before == "False"
    assert after == ("True" if layer == "omp" else "False")


_TORCH_FIRST = textwrap.dedent("""
    import torch
    import numpy as np
    import minires
    minires.tune_process()
    minires.set_backend("numba")
    from minires import ops
    ops.relu_forward(np.ones(1 << 16, np.float32))
    import numba
    print(numba.threading_layer())
""")


@pytest.mark.torch
def test_numba_runs_on_its_own_pool_even_with_torch_imported_first():
    """PyTorch's libgomp, loaded first, does not become the runtime of minires' kernels."""
    pytest.importorskip("numba")
    env = {k: v for k, v in os.environ.items() if k not in _TUNED_VARIABLES}
    done = subprocess.run([sys.executable, "-c", _TORCH_FIRST], capture_output=True, text=True,
                          check=False, env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "workqueue"


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2"])
def test_tune_process_refuses_a_bad_thread_count(bad):
    with pytest.raises(ValueError, match="tune_process: threads must be a positive int"):
        process.tune_process(threads=bad)


def test_import_minires_loads_no_framework_and_no_optional_package():
    code = ("import sys, minires; print(sorted(m for m in ('torch', 'jax', 'keras', 'cupy', 'numba', "
            "'PIL', 'matplotlib', 'minires.frameworks', 'minires.bench') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"

"""The backend switch: names, the environment variable, the context manager, the kernel
dispatch, the thread setting, and what happens when Numba or CuPy is missing."""

import importlib.util
import os
import sys

import numpy as np
import pytest

import minires
from minires import backend, threads


@pytest.fixture(autouse=True)
def _restore_backend():
    previous = backend._current
    requested = threads._requested
    yield
    backend._current = previous
    backend.set_num_threads(requested)


def test_numpy_is_the_default():
    backend._current = None
    assert minires.get_backend() == "numpy"
    assert minires.xp() is np


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'numpy', 'numba', 'cupy'"):
        minires.set_backend("tensorflow")


def test_environment_variable_chooses_the_first_backend(monkeypatch):
    backend._current = None
    monkeypatch.setenv("MINIRES_BACKEND", "bogus")
    with pytest.raises(ValueError, match="MINIRES_BACKEND"):
        minires.get_backend()
    backend._current = None
    monkeypatch.setenv("MINIRES_BACKEND", "numpy")
    assert minires.get_backend() == "numpy"


def test_use_backend_restores_the_previous_one():
    minires.set_backend("numpy")
    with minires.use_backend("numpy") as name:
        assert name == "numpy"
    assert minires.get_backend() == "numpy"


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_cupy_without_cupy_says_so():
    with pytest.raises(RuntimeError, match="needs CuPy"):
        minires.set_backend("cupy")
    assert minires.get_backend() == "numpy"


def test_array_module_of_numpy_arrays_is_numpy():
    assert minires.array_module(np.zeros(2), [1.0]) is np
    np.testing.assert_array_equal(minires.to_numpy([1.0, 2.0]), [1.0, 2.0])


def test_numba_backend_computes_with_numpy_arrays_and_numba_kernels():
    minires.set_backend("numba")
    assert minires.xp() is np
    from minires.kernels import cpu_numba
    assert backend.kernels_for(np.zeros(2)) is cpu_numba


def test_kernels_are_used_only_on_the_numba_backend():
    minires.set_backend("numpy")
    assert backend.kernels_for(np.zeros(2)) is None
    with minires.use_backend("numba"):
        assert backend.kernels_for(np.zeros(2), np.ones(3)) is not None
    assert backend.kernels_for(np.zeros(2)) is None


def test_numba_without_numba_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)          # import numba now raises ImportError
    monkeypatch.setattr(backend, "_numba_kernels", None)
    with pytest.raises(RuntimeError, match="backend 'numba' needs Numba"):
        minires.set_backend("numba")
    assert minires.get_backend() != "numba"


def test_num_threads_default_environment_and_setter(monkeypatch):
    monkeypatch.delenv("MINIRES_NUM_THREADS", raising=False)
    backend.set_num_threads(None)
    assert backend.get_num_threads() >= 1
    monkeypatch.setenv("MINIRES_NUM_THREADS", "1")
    assert backend.get_num_threads() == 1
    assert minires.set_num_threads(1) == 1
    numba = pytest.importorskip("numba")
    minires.set_backend("numba")
    backend.kernels_for(np.zeros(1))
    assert numba.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4"])
def test_num_threads_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="positive int"):
        minires.set_num_threads(bad)


def test_num_threads_environment_variable_is_checked(monkeypatch):
    backend.set_num_threads(None)
    monkeypatch.setenv("MINIRES_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="MINIRES_NUM_THREADS"):
        backend.get_num_threads()


def test_numba_backend_runs_blas_on_one_thread_and_numpy_on_all(monkeypatch):
    """BLAS threads spinning after a product would steal the cores from Numba's kernels."""
    pytest.importorskip("numba")
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"}

    monkeypatch.setenv("MINIRES_NUM_THREADS", "2")
    backend.set_num_threads(None)
    minires.set_backend("numpy")
    backend._apply_num_threads()
    assert blas_threads() == {2}
    with minires.use_backend("numba"):
        assert blas_threads() == {1}
    assert blas_threads() == {2}
    assert backend.blas_threads_for("numba", 8) == 1 and backend.blas_threads_for("numpy", 8) == 8


def test_freed_memory_is_kept_once_and_can_be_turned_off(monkeypatch):
    from minires import memory

    monkeypatch.setattr(memory, "_applied", None)
    monkeypatch.setenv("MINIRES_REUSE_MEMORY", "0")
    assert memory.reuse_freed_memory() is False
    monkeypatch.setattr(memory, "_applied", True)    # decided once per process
    assert memory.reuse_freed_memory() is True


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_freed_memory_is_kept_on_glibc(monkeypatch):
    import platform

    from minires import memory

    monkeypatch.delenv("MINIRES_REUSE_MEMORY", raising=False)
    assert memory._apply() is (platform.libc_ver()[0] == "glibc")


def _public_names(module_path):
    """Top-level public functions and assigned names of a module, read from its source."""
    import ast

    tree = ast.parse(open(module_path, encoding="utf-8").read())
    names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    names |= {target.id for node in tree.body if isinstance(node, ast.Assign)
              for target in node.targets if isinstance(target, ast.Name)}
    return {name for name in names if not name.startswith("_")}


def test_cuda_kernels_offer_every_numba_kernel():
    """Both kernel modules answer the same calls (kernels_for hands either to the ops);
    checked from the source, so it runs without CuPy."""
    from pathlib import Path

    import minires.kernels

    folder = Path(minires.kernels.__file__).parent
    numba_names = _public_names(folder / "cpu_numba.py")
    cuda_names = _public_names(folder / "gpu_cupy.py")
    assert "col2im" in numba_names and "bias_relu" in numba_names
    assert numba_names <= cuda_names, f"missing from gpu_cupy: {sorted(numba_names - cuda_names)}"

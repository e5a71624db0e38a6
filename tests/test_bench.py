"""``minires bench``, briefly: the train benchmark writes its files, PyTorch is timed in a
process of its own, and the ratio is computed from the two."""

import json
import subprocess
import sys

import pytest

from minires.bench import report, torch_process


@pytest.mark.torch
def test_train_benchmark_writes_results_with_ratios(tmp_path):
    (tmp_path / "README.md").write_text("# results\n<!-- results:start -->\nold\n<!-- results:end -->\n")
    out = tmp_path / "results"
    report.run_benchmarks("train", out_dir=out, repeats=1, rounds=2, log=lambda *a: None,
                          with_torch_loaded=True)
    results = json.loads((out / "cpu.json").read_text())
    rows = {r["framework"]: r for r in results["train"]["rows"]}
    assert {"numpy", "torch"} <= set(rows)
    for row in rows.values():
        assert row["train_images_per_second"] > 0 and row["inference_images_per_second"] > 0
        assert len(row["train_images_per_second_by_round"]) == 2 and row["rounds"] == 2
        assert row["train_ratio_to_torch"] > 0
        assert row["peak_rss_mib"] >= row["rss_before_steps_mib"] > 0
        assert len(row["train_images_per_second_torch_loaded_by_round"]) == 2
        assert row["train_torch_loaded_to_own_process"] > 0 and row["inference_torch_loaded_to_own_process"] > 0
    assert rows["torch"]["train_ratio_to_torch"] == 1.0
    assert "| torch |" in (out / "cpu.md").read_text()
    assert "in one process with PyTorch imported first" in (out / "cpu.md").read_text()
    assert "load average" in (out / "cpu.md").read_text() and "load_average_at_start" in results["machine"]
    assert "old" not in (tmp_path / "README.md").read_text()


@pytest.mark.skipif(not __import__("os").path.exists("/proc/self/status"), reason="reads /proc (Linux)")
def test_peak_memory_is_read_in_a_fresh_process_per_framework():
    from minires.bench import peak_memory

    result = peak_memory.measure("numpy", batch_size=8, steps=1)
    assert result["peak_rss_mib"] >= result["rss_before_steps_mib"] > 10
    assert result["steps_added_mib"] == result["peak_rss_mib"] - result["rss_before_steps_mib"]
    with pytest.raises(RuntimeError, match="peak-memory process failed \\(tensorflow\\)"):
        peak_memory.measure("tensorflow", batch_size=8, steps=1)


def test_benchmark_process_never_imports_torch():
    """PyTorch's OpenMP runtime must stay out of minires' process (torch_process says why)."""
    code = ("import sys; from minires.bench import report, timing; timing.machine_description(); "
            "print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_a_failing_torch_process_is_reported(monkeypatch):
    monkeypatch.setattr(torch_process, "_CHILD", "raise SystemExit('no GPU, no torch, nothing')")
    with pytest.raises(RuntimeError, match="the PyTorch process failed \\(train\\): no GPU, no torch"):
        torch_process.measure("train", 1)


def test_a_failing_shared_process_is_reported(monkeypatch):
    from minires.bench import shared_process

    monkeypatch.setattr(shared_process, "_CHILD", "raise SystemExit('libgomp went away')")
    with pytest.raises(RuntimeError, match="with PyTorch and minires failed: libgomp went away"):
        shared_process.measure(["numpy"], 1)


def test_pytorch_process_does_not_inherit_the_numba_wait_policy(monkeypatch):
    """PyTorch reads OMP_WAIT_POLICY too; tune_process' PASSIVE would slow it down."""
    from minires import process

    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    monkeypatch.setattr(process, "_made", {"OMP_WAIT_POLICY": "PASSIVE"})
    assert "OMP_WAIT_POLICY" not in torch_process._child_environment()
    monkeypatch.setattr(process, "_made", {})      # the user's own setting stays
    assert torch_process._child_environment()["OMP_WAIT_POLICY"] == "PASSIVE"


@pytest.mark.torch
def test_algorithms_benchmark_times_every_algorithm_where_it_applies(monkeypatch):
    from minires.bench import algorithms

    rows = algorithms.run(["numpy"], repeats=1, batch=1, log=lambda *a: None)
    assert [r["layer"] for r in rows] == [layer.name for layer in algorithms.SEED_LAYERS]
    for row, layer in zip(rows, algorithms.SEED_LAYERS):
        assert row["numpy im2col"] > 0 and row["numpy auto"] > 0 and row["torch"] > 0
        winograd = (row["numpy winograd"], row["numpy winograd4x4"])
        assert (all(t > 0 for t in winograd) if layer.k == 3 else winograd == (None, None))
    table = report.algorithms_table(rows)
    assert table.count("\n") == len(rows) + 1 and "| conv 1x1 4x4 64->64 |" in table


def test_inference_cases_time_the_fused_layers_as_the_model_runs_them():
    """The per-op table's inference rows: one call each, the fused conv + max-pool among them."""
    from minires import backend
    from minires.bench import kernels

    cases = [case for case in kernels.seed_cases() if case.directions == ("inference",)]
    assert any("+maxpool" in case.name for case in cases) and len(cases) == 10
    with backend.use_backend("numpy"):
        (infer,) = cases[0].make_minires()
        y, cache = infer()
    assert y.shape == (64, 16, 16, 64) and cache is None

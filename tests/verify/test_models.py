"""Whole models against each framework: the seed's targets (Keras 3 on JAX and PyTorch agree
to 1e-10 in float64), the mechanics on a model that is not the seed's, the verdicts, and a
weight transfer broken on purpose."""

from __future__ import annotations

import numpy as np
import pytest

import minires
from minires.verify import model_worker, models
from tests.interop.toys import odd_model, tiny_resnet

SEED_FRAMEWORKS = ["torch", "keras-jax"]
ALL = ["torch", "jax", "keras-jax", "keras-torch", "onnxruntime"]


def _need(framework):
    if not models.installed(framework):
        pytest.skip(f"{framework} is not installed ({models.install_hint(framework)})")


def _cells(report, framework):
    return {c["output"]: c for c in report["cells"] if c["framework"] == framework}


# --- the targets: the seed's model, fresh weights, float64 --------------------------------------

@pytest.fixture(scope="module")
def seed_report():
    """One process per framework, shared by the target tests."""
    return models.run(None, [f for f in SEED_FRAMEWORKS if models.installed(f)], log=lambda line: None)


@pytest.mark.parametrize("framework", SEED_FRAMEWORKS)
def test_the_seed_model_agrees_to_1e_10_in_float64(seed_report, framework):
    _need(framework)
    cells = _cells(seed_report, framework)
    names = minires.build_resnet().weight_names()
    expected = {"predictions", "loss", *(f"grad:{n}" for n in names),
                *(f"{o}:step{k}" for o in ("adam", "sgd") for k in range(1, 6))}
    assert set(cells) == expected
    for cell in cells.values():
        assert cell["max_rel_err"] <= 1e-10 and cell["tol"] == 1e-10, cell
        assert cell["verdict"] in ("agree", "convention"), cell
    # Keras' Adam is minires' default; PyTorch's adds epsilon after the bias correction.
    adam = cells["adam:step5"]
    if framework == "torch":
        assert adam["verdict"] == "convention" and adam["convention"] == models.ADAM_EPSILON
    else:
        assert adam["verdict"] == "agree"
    assert seed_report["versions"]["minires"] == minires.__version__


# --- the mechanics: a model that is not the seed's, every framework ------------------------------

@pytest.fixture(scope="module")
def odd_report(tmp_path_factory):
    path = tmp_path_factory.mktemp("odd") / "odd.npz"
    odd_model().save(path)
    return models.run(str(path), [f for f in ALL if models.installed(f)], steps=2, log=lambda line: None)


@pytest.mark.parametrize("framework", ["torch", "jax", "keras-jax"])
def test_a_model_built_from_its_spec_agrees(odd_report, framework):
    _need(framework)
    cells = _cells(odd_report, framework)
    assert len(cells) == 2 + 8 + 2 * 2
    assert all(c["verdict"] in ("agree", "convention") and c["max_rel_err"] <= 1e-10 for c in cells.values())


def test_onnx_runtime_predicts_the_float32_export(odd_report):
    _need("onnxruntime")
    (cell,) = _cells(odd_report, "onnxruntime").values()
    assert cell["output"] == "predictions" and cell["dtype"] == "float32" and cell["verdict"] == "agree"


def test_keras_on_torch_is_float32_accurate_at_most_and_flagged_when_not_float64(odd_report):
    """Keras 3.15 on PyTorch multiplies float64 matrices in float32 (docs/verify-models.md):
    any disagreement names keras-torch, never minires, and stays at float32's level."""
    _need("keras-torch")
    for cell in _cells(odd_report, "keras-torch").values():
        assert cell["max_rel_err"] <= 1e-5
        assert cell["verdict"] == "agree" or cell["outlier"] == "keras-torch", cell


# --- verdicts ---------------------------------------------------------------------------------

def test_relative_error_is_relative_to_the_arrays_scale():
    assert models.relative_error([1.0, 1e-9], [1.0, 2e-9]) == pytest.approx(1e-9)
    assert models.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert models.relative_error(np.zeros(3), np.zeros(4)) == float("inf")
    assert models.relative_error([np.nan], [1.0]) == float("inf")


def _results(ours_grad, theirs_grad, adam_theirs, adam_ours, adam_torch_ours):
    ours = {"predictions": np.ones(2), "loss": np.array(1.0), "grad/0": ours_grad,
            "adam/1/0": adam_ours, "adam_torch/1/0": adam_torch_ours, "sgd/1/0": np.ones(2)}
    theirs = {"predictions": np.ones(2), "loss": np.array(1.0), "grad/0": theirs_grad,
              "adam/1/0": adam_theirs, "sgd/1/0": np.ones(2)}
    return ours, theirs


def test_verdicts_agree_convention_disagree_and_the_outlier():
    one, off = np.ones(2), np.array([1.0, 1.0 + 1e-6])
    ours, theirs = _results(one, off, adam_theirs=off, adam_ours=one, adam_torch_ours=off)
    cells = {c["output"]: c for c in models.compare("model:m", "fw", "float64", ours, theirs, {}, ["w"], 1,
                                                   gradient_gaps=lambda: [0.0])}
    assert cells["predictions"]["verdict"] == "agree" and cells["predictions"]["outlier"] is None
    assert cells["grad:w"]["verdict"] == "disagree" and cells["grad:w"]["outlier"] == "fw"
    assert cells["adam:step1"]["verdict"] == "convention"
    assert cells["adam:step1"]["convention"] == models.ADAM_EPSILON
    # minires' own gradient fails central differences: minires is the outlier
    cells = {c["output"]: c for c in models.compare("model:m", "fw", "float64", ours, theirs, {}, ["w"], 1,
                                                   gradient_gaps=lambda: [1.0])}
    assert cells["grad:w"]["outlier"] == "minires"
    # a framework's failure is a result, per part
    cells = models.compare("model:m", "fw", "float64", ours, theirs, {"sgd": "RuntimeError: boom"}, ["w"], 1)
    (sgd,) = [c for c in cells if c["output"] == "sgd:step1"]
    assert sgd["verdict"] == "error" and sgd["error"] == "RuntimeError: boom"


def test_central_differences_confirm_minires_gradients():
    model = tiny_resnet()
    loss = models.loss_name(model)
    x, targets = models.make_batch(model, loss)
    assert max(models.central_difference_agreement(model, x, targets, loss)) <= models.CENTRAL_DIFFERENCE_TOL


def test_missing_frameworks_are_skipped_and_failed_processes_give_error_cells(monkeypatch, tmp_path):
    tiny_resnet().save(tmp_path / "tiny.npz")
    lines = []
    monkeypatch.setattr(models, "installed", lambda framework: framework == "jax")

    def failing(framework, directory):
        raise RuntimeError(f"the {framework} process failed: ImportError: no")

    monkeypatch.setattr(models, "spawn", failing)
    report = models.run(str(tmp_path / "tiny.npz"), ["torch", "jax"], steps=1, log=lines.append)
    assert any("torch: skipped" in line for line in lines)
    assert {c["framework"] for c in report["cells"]} == {"jax"}
    assert {c["verdict"] for c in report["cells"]} == {"error"}
    with pytest.raises(ValueError, match="unknown framework 'tensorflow'"):
        models.run(None, ["tensorflow"])


# --- a transfer broken on purpose ---------------------------------------------------------------

def _in_process(monkeypatch):
    """The worker in this process, so that a test can break a framework module."""
    monkeypatch.setattr(models, "spawn", lambda framework, directory: model_worker.run(framework, directory))


@pytest.mark.torch
def test_a_flatten_order_mistake_in_the_transfer_is_flagged(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    from minires.frameworks import torch_models

    odd_model().save(tmp_path / "odd.npz")
    _in_process(monkeypatch)
    report = models.run(str(tmp_path / "odd.npz"), ["torch"], steps=1, log=lambda line: None)
    assert all(c["verdict"] in ("agree", "convention") for c in report["cells"])
    # Move the dense kernel after the flatten without reordering its rows: PyTorch flattens
    # (c, h, w), Keras and minires (h, w, c).
    monkeypatch.setattr(torch_models, "dense_to_torch", lambda kernel, flattened=None: kernel.T)
    monkeypatch.setattr(torch_models, "dense_from_torch", lambda weight, flattened=None: weight.T)
    cells = _cells(models.run(str(tmp_path / "odd.npz"), ["torch"], steps=1, log=lambda line: None), "torch")
    for output in ("predictions", "loss", "grad:hidden/kernel", "grad:even_same/kernel", "sgd:step1"):
        assert cells[output]["verdict"] == "disagree" and cells[output]["outlier"] == "torch", output
    assert cells["grad:logits/kernel"]["verdict"] == "disagree"


@pytest.mark.torch
def test_float32_runs_use_float32_tolerances_and_leave_adam_to_float64(monkeypatch, tmp_path):
    pytest.importorskip("torch")
    tiny_resnet("float32").save(tmp_path / "tiny.npz")
    _in_process(monkeypatch)
    report = models.run(str(tmp_path / "tiny.npz"), ["torch"], dtype="float32", steps=2, log=lambda line: None)
    cells = _cells(report, "torch")
    assert not any(output.startswith("adam") for output in cells)
    assert all(c["verdict"] == "agree" and c["tol"] >= 1e-5 for c in cells.values())

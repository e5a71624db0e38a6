"""The engine against PyTorch, and against PyTorch with faults put in: verify flags exactly
the op and output of each fault, on the faulty framework alone, and names a flipped tie rule
as a convention."""

import numpy as np
import pytest

from minires import frameworks
from minires.verify import verify
from minires.verify.cases import build_cases
from minires.verify.engine import judge_all
from minires.verify.opinions import Opinions
from tests.verify.conftest import FAULTY

# One fault per op, so each op's cells show one fault (two workers start, not one per fault).
FAULTS = "gradient:dense:dw,ties:last,downcast:conv2d,raise:relu,unsupported:add"


@pytest.fixture(scope="module")
def faulty_report():
    """One run of five ops in float64: PyTorch itself, and PyTorch with the faults."""
    pytest.importorskip("torch")
    saved = dict(frameworks.FRAMEWORKS)
    frameworks.FRAMEWORKS["faulty"] = (FAULTY, {"VERIFY_FAULT": FAULTS})
    try:
        yield verify(["torch", "faulty"], ops=["conv2d", "maxpool2d", "relu", "add", "dense"],
                     dtypes=["float64"], random_cases=1, seed=3)
    finally:
        frameworks.FRAMEWORKS.clear()
        frameworks.FRAMEWORKS.update(saved)


def _cells(report, framework, verdict=None):
    return [c for c in report.cells
            if c["framework"] == framework and (verdict is None or c["verdict"] == verdict)]


@pytest.mark.torch
def test_pytorch_agrees_on_every_cell(faulty_report):
    cells = _cells(faulty_report, "torch")
    assert {c["op"] for c in cells} == {"conv2d", "maxpool2d", "relu", "add", "dense"}
    assert all(c["verdict"] == "agree" and c["max_rel_err"] <= 1e-10 for c in cells), cells
    assert faulty_report.versions["torch"]


def _op(report, op, verdict=None):
    return [c for c in _cells(report, "faulty", verdict) if c["op"] == op]


@pytest.mark.torch
def test_faults_are_flagged_on_exactly_their_ops_and_outputs(faulty_report):
    flagged = {(c["op"], c["output"]) for c in _cells(faulty_report, "faulty", "disagree")}
    assert flagged == {("dense", "dw"), ("relu", "y"), ("relu", "dx"),
                       *(("conv2d", o) for o in ("y", "dx", "dw", "db"))}
    assert all(c["outlier"] == "faulty" for c in _cells(faulty_report, "faulty", "disagree"))


@pytest.mark.torch
def test_a_wrong_gradient_is_measured(faulty_report):
    (dw,) = _op(faulty_report, "dense", "disagree")
    assert dw["output"] == "dw" and 1e-7 < dw["max_rel_err"] < 1e-5
    assert all(c["verdict"] == "agree" for c in _op(faulty_report, "dense") if c["output"] != "dw")


@pytest.mark.torch
def test_a_flipped_tie_rule_is_a_convention_not_a_disagreement(faulty_report):
    (y, dx) = _op(faulty_report, "maxpool2d")
    assert y["verdict"] == "agree"
    assert dx["verdict"] == "convention" and dx["convention"] == "max-pool ties: last maximum"
    assert dx["outlier"] is None
    assert faulty_report.sides["faulty"]["max-pool ties"]["last maximum"] > 0
    assert set(faulty_report.sides["torch"]["max-pool ties"]) == {"first maximum"}


@pytest.mark.torch
def test_a_float32_computation_in_a_float64_run_is_flagged(faulty_report):
    notes = {n for f in faulty_report.failures if f.framework == "faulty" and f.case.op == "conv2d"
             for j in f.judgements.values() for n in j.notes}
    assert notes == {"returned float32 for float64"}
    assert all(1e-9 < c["max_rel_err"] < 1e-5 for c in _op(faulty_report, "conv2d"))


@pytest.mark.torch
def test_an_exception_is_an_error_result_and_a_refusal_is_skipped(faulty_report):
    assert all(c["max_rel_err"] is None for c in _op(faulty_report, "relu"))
    errors = {f.error for f in faulty_report.failures if f.framework == "faulty" and f.case.op == "relu"}
    assert errors == {"RuntimeError: relu failed on purpose"}
    assert not _op(faulty_report, "add")


@pytest.mark.torch
def test_json_has_the_documented_shape(faulty_report):
    data = faulty_report.to_json()
    assert set(data) == {"versions", "cells"} and data["versions"]["minires"]
    keys = ["op", "output", "framework", "dtype", "cases", "max_rel_err", "tol", "verdict", "convention",
            "outlier"]
    assert all(list(c) == keys for c in data["cells"])
    assert {c["tol"] for c in data["cells"]} == {1e-10}


def test_a_case_a_framework_raised_on_fails_the_outputs_it_gives():
    """A framework without gradients (ONNX Runtime) that raises on a case fails its y alone;
    one with gradients fails every output of the case."""
    cases = build_cases(["relu"], ["float64"], random_cases=0)
    opinions = {c.id: Opinions(c) for c in cases}
    first, rest = cases[0], cases[1:]
    forward_only = {c.id: {"status": "ok", "outputs": {"y": np.maximum(c.inputs["x"], 0)}} for c in rest}
    with_grads = {c.id: {"status": "ok", "outputs": dict(opinions[c.id].exact)} for c in rest}
    for results in (forward_only, with_grads):
        results[first.id] = {"status": "error", "message": "ValueError: no"}
    cells, failures, _ = judge_all(cases, opinions, {"fwd": forward_only, "both": with_grads}, ["fwd", "both"])
    flagged = {(c["framework"], c["output"]) for c in cells if c["verdict"] == "disagree"}
    assert flagged == {("fwd", "y"), ("both", "y"), ("both", "dx")}
    assert [f.error for f in failures] == ["ValueError: no"] * 2


@pytest.mark.parametrize("name", ["jax", "keras-jax", "keras-torch", "onnxruntime"])
def test_faults_put_into_each_adapter_are_flagged_there(name):
    """The same faults, wrapped around every other framework's adapter: each is flagged on
    exactly its op and output (ONNX Runtime gives no gradients, so only its downcast shows)."""
    if not frameworks.installed(name):
        pytest.skip(f"{name} is not installed")
    module, env = frameworks.FRAMEWORKS[name]
    faults = "downcast:relu" if name == "onnxruntime" else "gradient:dense:dw,ties:last,downcast:relu"
    saved = dict(frameworks.FRAMEWORKS)
    frameworks.FRAMEWORKS["faulty"] = (FAULTY, {**env, "VERIFY_FAULT": faults, "VERIFY_BASE": module})
    try:
        report = verify(["faulty"], ops=["relu", "dense", "maxpool2d"], dtypes=["float64"],
                        random_cases=0, seed=3)
    finally:
        frameworks.FRAMEWORKS.clear()
        frameworks.FRAMEWORKS.update(saved)
    flagged = {(c["op"], c["output"]) for c in report.cells if c["verdict"] == "disagree"}
    expected = {("relu", "y")} if name == "onnxruntime" else {("relu", "y"), ("relu", "dx"), ("dense", "dw")}
    if name == "keras-torch":      # its own float64 Dense finding (docs/frameworks.md) shows too
        expected |= {("dense", "y"), ("dense", "dx")}
    assert flagged == expected, report.cells
    if name != "onnxruntime":
        (dx,) = [c for c in report.cells if (c["op"], c["output"]) == ("maxpool2d", "dx")]
        assert dx["verdict"] == "convention" and dx["convention"] == "max-pool ties: last maximum"

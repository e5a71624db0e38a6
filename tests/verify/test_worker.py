"""The worker: every case runs, an exception is a result, and a framework that cannot start
is reported without stopping the run."""

import sys
import types

import numpy as np

from minires import frameworks
from minires.verify import verify
from minires.verify.cases import build_cases
from minires.verify.casefile import read_batch, read_results, write_batch, write_results
from minires.verify.worker import run_batch


def test_an_exception_becomes_an_error_result_and_not_implemented_a_refusal(capsys):
    def run_op(op, inputs, options, dy, dtype):
        if op == "relu":
            raise ValueError("no relu today")
        if op == "add":
            raise NotImplementedError("no add")
        return {"y": inputs["x"].reshape(len(inputs["x"]), -1)}

    cases = build_cases(["relu", "add", "flatten"], ["float32"], random_cases=0)
    results = run_batch(types.SimpleNamespace(run_op=run_op), cases)
    status = {c.op: results[c.id]["status"] for c in cases}
    assert status == {"relu": "error", "add": "unsupported", "flatten": "ok"}
    relu = next(c for c in cases if c.op == "relu")
    assert results[relu.id]["message"] == "ValueError: no relu today"
    assert capsys.readouterr().out.count("PROGRESS") == len(cases)


def test_batches_and_results_round_trip_without_pickle(tmp_path):
    cases = build_cases(["softmax_cross_entropy", "maxpool2d"], random_cases=1)
    write_batch(tmp_path, "x", "some.module", cases)
    name, module, back = read_batch(tmp_path)
    assert (name, module, [c.id for c in back]) == ("x", "some.module", [c.id for c in cases])
    for a, b in zip(cases, back):
        assert a.options == b.options and a.exposes == b.exposes and a.smooth == b.smooth
        assert all(np.array_equal(a.inputs[k], b.inputs[k]) and a.inputs[k].dtype == b.inputs[k].dtype
                   for k in a.inputs)
        assert np.array_equal(a.dy, b.dy)
    write_results(tmp_path, {"v": "1"}, {cases[0].id: {"status": "ok", "outputs": {"y": np.ones(2, np.float32)}},
                                         cases[1].id: {"status": "error", "message": "boom"}})
    versions, results = read_results(tmp_path)
    assert versions == {"v": "1"} and results[cases[1].id]["message"] == "boom"
    assert results[cases[0].id]["outputs"]["y"].dtype == np.float32


def test_a_framework_that_cannot_start_is_reported(tmp_path, monkeypatch):
    broken = tmp_path / "broken_adapter.py"
    broken.write_text("raise ImportError('this framework is not here')\n")
    monkeypatch.setitem(frameworks.FRAMEWORKS, "broken", (str(broken), {}))
    report = verify(["broken"], ops=["relu"], dtypes=["float64"], random_cases=0, stream=sys.stderr)
    assert report.cells == [] and report.disagrees
    assert len(report.problems) == 1 and "this framework is not here" in report.problems[0]

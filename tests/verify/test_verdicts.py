"""Verdicts from hand-made opinions: who agrees, who is the outlier, what is a convention."""

import numpy as np
import pytest

from minires.verify.cases import build_cases
from minires.verify.conventions import alternatives
from minires.verify.opinions import Opinions
from minires.verify.verdicts import CENTRAL, REFERENCE, judge


def _case(op, note=None, tag=None, dtype="float64"):
    cases = build_cases([op], [dtype], random_cases=1, seed=0)
    return next(c for c in cases if (note is None or c.note == note) and (tag is None or c.id.endswith(tag)))


def _judge(opinions, output, value):
    return judge(opinions, output, "fw", value, lambda: alternatives(opinions.case))


@pytest.fixture(scope="module")
def tied():
    return Opinions(_case("maxpool2d", "ties in 2x2 windows"))


@pytest.fixture
def smooth():
    return Opinions(_case("dense", tag="r00"))


def test_the_right_answer_agrees(tied):
    j = _judge(tied, "dx", tied.exact["dx"].copy())
    assert (j.verdict, j.err, j.outliers) == ("agree", 0.0, ())


def test_a_small_error_makes_the_framework_the_outlier(smooth):
    j = _judge(smooth, "dw", smooth.exact["dw"] * (1 + 1e-8))
    assert j.verdict == "disagree" and j.outliers == ("fw",)
    assert 5e-9 < j.err < 2e-8


def test_float32_rounding_passes_in_a_float32_run():
    mine = Opinions(_case("dense", tag="r00", dtype="float32"))
    j = _judge(mine, "dw", mine.exact["dw"].astype(np.float32))
    assert j.verdict == "agree" and 0 < j.err < 1e-6


def test_the_other_tie_rule_is_a_named_convention(tied):
    (last,) = [out for name, side, out in alternatives(tied.case) if side == "last maximum"]
    j = _judge(tied, "dx", last["dx"])
    assert (j.verdict, j.convention, j.err) == ("convention", "max-pool ties: last maximum", 0.0)


def test_an_unexplained_difference_on_a_tied_case_is_no_convention(tied):
    j = _judge(tied, "dx", tied.exact["dx"] * 2)
    assert j.verdict == "disagree" and j.convention is None and j.outliers == ("fw",)


def test_a_float32_result_in_a_float64_run_is_flagged_even_when_close(tied):
    j = _judge(tied, "y", tied.exact["y"].astype(np.float32))     # small integers: exact in float32
    assert j.verdict == "disagree" and j.err == 0.0
    assert j.notes == ("returned float32 for float64",)


def test_minires_is_the_outlier_when_one_backend_is_wrong(smooth):
    smooth.arrays["numba"] = {**smooth.arrays["numba"], "dx": smooth.arrays["numba"]["dx"] + 1.0}
    j = _judge(smooth, "dx", smooth.exact["dx"].copy())
    assert j.verdict == "disagree" and j.outliers == ("minires:numba",)


def test_a_crashing_opinion_is_an_outlier(smooth):
    smooth.arrays["numpy"] = RuntimeError("boom")
    j = _judge(smooth, "y", smooth.exact["y"].copy())
    assert j.verdict == "disagree" and j.outliers == ("minires:numpy",)


def test_central_differences_side_with_the_framework_against_all_of_minires(smooth):
    """minires' array code and reference all wrong the same way: central differences, from
    the forward pass, back the framework, which is then found right."""
    right = smooth.exact["dw"].copy()
    wrong = {**smooth.exact, "dw": right * 1.5}
    smooth.reference = smooth.exact = wrong
    smooth.arrays = {name: {**out, "dw": right * 1.5} for name, out in smooth.arrays.items()}
    j = _judge(smooth, "dw", right)
    assert j.verdict == "disagree" and "fw" not in j.outliers
    assert set(j.outliers) == {REFERENCE, "minires:numpy", "minires:numba"}


def test_central_differences_that_disagree_with_everyone_are_named(smooth):
    numeric, noise = smooth.central["dx"]
    smooth.central["dx"] = (numeric + 1.0, noise)
    j = _judge(smooth, "dx", smooth.exact["dx"].copy())
    assert j.verdict == "disagree" and j.outliers == (CENTRAL,)


def test_the_side_taken_is_told_at_float32_precision_and_only_from_outputs_given(tied):
    from minires.verify.conventions import CONVENTIONS
    from minires.verify.verdicts import side_taken

    ties = CONVENTIONS["max-pool ties"]
    others = lambda: alternatives(tied.case)                                  # noqa: E731
    (last,) = [out for _, side, out in others() if side == "last maximum"]
    assert side_taken(tied, ties, {"dx": tied.exact["dx"] * (1 + 1e-8)}, others) == "first maximum"
    assert side_taken(tied, ties, {"dx": last["dx"]}, others) == "last maximum"
    assert side_taken(tied, ties, {"dx": tied.exact["dx"] * 3}, others) == "neither"
    assert side_taken(tied, ties, {"y": tied.exact["y"]}, others) is None     # no gradient given

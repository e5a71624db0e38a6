"""The relative error and its floors."""

import math

import numpy as np

from minires.verify.cases import build_cases
from minires.verify.compare import floors, relative_error


def test_relative_error_is_the_largest_difference_over_the_largest_value():
    assert relative_error([1.0, 2.0], [1.0, 4.0]) == 0.5
    assert relative_error([0.0, 0.0], [0.0, 0.0]) == 0.0
    assert relative_error([1e-20], [0.0], floor=1.0) == 1e-20


def test_shape_mismatches_and_nans_are_infinitely_wrong():
    assert relative_error(np.zeros(3), np.zeros(4)) == math.inf
    assert relative_error([np.nan], [1.0]) == math.inf
    assert relative_error([1.0], [0.0]) == math.inf
    assert relative_error([-np.inf, 1.0], [-np.inf, 1.0]) == 0.0


def test_the_floor_keeps_cancelling_sums_from_alarming():
    """A conv whose terms cancel to 0: rounding of 1e-16 relative to terms of size 1 is
    rounding, not a thousandfold error relative to an output of 1e-13."""
    case = next(c for c in build_cases(["conv2d"], ["float64"], 0) if "cancel" in c.note)
    floor = floors(case.op, case.inputs, case.options, case.dy)["y"]
    assert floor > 1.0
    assert relative_error([1e-13 + 1e-16], [1e-13], floor) < 1e-15
    assert relative_error([1e-13 + 1e-16], [1e-13]) > 1e-4


def test_a_loss_from_large_logits_is_measured_against_the_logits():
    case = next(c for c in build_cases(["softmax_cross_entropy"], ["float64"], 0) if "1e4" in c.note)
    assert floors(case.op, case.inputs, case.options, case.dy)["y"] > 1e3

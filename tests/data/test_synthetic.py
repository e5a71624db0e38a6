"""The synthetic dataset: deterministic, balanced, and of the promised shapes and types."""

from __future__ import annotations

import numpy
import pytest

from minires.data.synthetic import SYNTHETIC_CLASSES, make_synthetic


def test_shapes_types_and_balance():
    x, y = make_synthetic(205, seed=3)
    assert x.dtype == numpy.uint8 and x.shape == (205, 32, 32, 3)
    assert y.dtype == numpy.int64 and y.shape == (205,)
    counts = numpy.bincount(y, minlength=10)
    assert len(SYNTHETIC_CLASSES) == 10 and counts.min() == 20 and counts.max() == 21
    assert x.min() < 40 and x.max() > 215                     # uses the range


def test_same_seed_same_data_other_seed_other_data():
    x1, y1 = make_synthetic(50, seed=7)
    x2, y2 = make_synthetic(50, seed=7)
    x3, _ = make_synthetic(50, seed=8)
    numpy.testing.assert_array_equal(x1, x2)
    numpy.testing.assert_array_equal(y1, y2)
    assert not numpy.array_equal(x1, x3)


def test_other_image_sizes():
    x, y = make_synthetic(20, seed=0, image_size=48)
    assert x.shape == (20, 48, 48, 3) and len(y) == 20


def test_zero_images():
    x, y = make_synthetic(0)
    assert x.shape == (0, 32, 32, 3) and y.shape == (0,)


def test_stripes_run_the_way_their_class_says():
    # A crude check that the labels mean something: horizontal stripes change more down the
    # image than across it, vertical stripes the other way (the noise counts the same both ways).
    x, y = make_synthetic(500, seed=1)
    grey = x.astype(numpy.float64).mean(axis=3)
    down = numpy.abs(numpy.diff(grey, axis=1)).mean(axis=(1, 2))
    across = numpy.abs(numpy.diff(grey, axis=2)).mean(axis=(1, 2))
    h = y == SYNTHETIC_CLASSES.index("h_stripes")
    v = y == SYNTHETIC_CLASSES.index("v_stripes")
    assert (down[h] > across[h]).mean() > 0.9
    assert (across[v] > down[v]).mean() > 0.9


@pytest.mark.parametrize("n, size", [(-1, 32), (2.5, 32), (True, 32), (4, 8)])
def test_bad_arguments(n, size):
    with pytest.raises(ValueError, match="make_synthetic"):
        make_synthetic(n, image_size=size)

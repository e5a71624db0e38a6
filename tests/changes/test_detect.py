"""change_map on sizes the net's pooling does not divide, regions, describe."""

import numpy as np
import pytest

from minires.changes.detect import change_map, describe, regions
from minires.models import build_change_net


def test_change_map_pads_and_crops_any_size():
    model = build_change_net((None, None, 3), filters=3, blocks=2)
    rng = np.random.default_rng(0)
    before = rng.integers(0, 256, (7, 10, 3), dtype=np.uint8)
    probs = change_map(model, before, before)
    assert probs.shape == (7, 10)
    with pytest.raises(ValueError, match=r"one size, got 10x7 and 10x6"):
        change_map(model, before, before[:6])


def test_regions_are_8_connected_boxes():
    mask = np.zeros((6, 7), dtype=bool)
    mask[0, 0] = mask[1, 1] = True          # diagonal neighbours: one region
    mask[3:5, 4:7] = True
    mask[5, 0] = True
    assert regions(mask) == [[0, 0, 1, 1], [3, 4, 4, 6], [5, 0, 5, 0]]
    assert regions(np.zeros((3, 3), dtype=bool)) == []


def test_describe():
    probs = np.zeros((4, 4))
    probs[1:3, 2] = 0.9
    assert describe(probs) == {"changed_fraction": 2 / 16, "score": 0.9, "regions": [[1, 2, 2, 2]]}

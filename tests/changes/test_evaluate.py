"""evaluate_pairs and example_grid: a change net's scores beside the pixel-difference
baselines on the same pairs, and the picture of examples."""

import numpy as np
import pytest

from minires.changes.evaluate import GRID_COLUMNS, evaluate_pairs, example_grid
from minires.data.change_baselines import difference_baseline
from minires.data.changes import make_change_pairs
from minires.data.synthetic import make_synthetic


class _Oracle:
    """A stand-in for a change net that answers with a fixed map for each pair."""

    def __init__(self, maps):
        self.maps = maps

    def predict(self, x, batch_size=None):
        before, after = x
        assert before.dtype == np.float32 and before.max() <= 1.0
        return self.maps[:len(before), ..., None].astype(np.float32)


@pytest.fixture(scope="module")
def pairs():
    images, _ = make_synthetic(12, seed=0, image_size=16)
    return make_change_pairs(images, seed=3, no_change_fraction=0.4)


def test_a_perfect_map_scores_one_and_the_baselines_are_the_baselines(pairs):
    assert pairs.changed.any() and not pairs.changed.all()
    report, probs = evaluate_pairs(_Oracle(pairs.mask.astype(np.float32)), pairs)
    np.testing.assert_array_equal(probs, pairs.mask.astype(np.float32))
    assert report["model"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": 1.0, "auc": 1.0,
                               "threshold": 0.5}
    expected = difference_baseline(pairs.before, pairs.after, pairs.mask)
    for method in ("otsu", "best"):
        for key in ("precision", "recall", "f1", "iou", "threshold"):
            assert report[method][key] == pytest.approx(expected[method][key])
        assert report[method]["auc"] == pytest.approx(expected["auc"])
    assert report["pairs"] == len(pairs) and report["changed_pairs"] == int(pairs.changed.sum())
    assert report["changed_pixels"] == pytest.approx(pairs.mask.mean())


def test_an_inverted_map_scores_zero(pairs):
    report, _ = evaluate_pairs(_Oracle(1.0 - pairs.mask), pairs)
    assert report["model"]["f1"] == 0.0 and report["model"]["recall"] == 0.0
    assert report["model"]["auc"] <= 0.5


def test_the_threshold_is_the_models(pairs):
    maps = np.where(pairs.mask, 0.7, 0.2).astype(np.float32)
    assert evaluate_pairs(_Oracle(maps), pairs, threshold=0.6)[0]["model"]["f1"] == 1.0
    assert evaluate_pairs(_Oracle(maps), pairs, threshold=0.8)[0]["model"]["f1"] == 0.0


def test_the_grid_shows_each_pair_in_a_row(pairs):
    report, probs = evaluate_pairs(_Oracle(pairs.mask.astype(np.float32)), pairs)
    grid = example_grid(pairs, probs, report, rows=3, scale=2)
    cell = 16 * 2 + 2
    assert grid.dtype == np.uint8 and grid.shape == (3 * cell + 2, len(GRID_COLUMNS) * cell + 2, 3)
    for row in range(3):
        top = 2 + row * cell
        before = grid[top:top + 32:2, 2:2 + 32:2]
        truth = grid[top:top + 32:2, 2 + 2 * cell:2 + 2 * cell + 32:2, 0]
        np.testing.assert_array_equal(before, pairs.before[row])
        np.testing.assert_array_equal(truth == 255, pairs.mask[row])
    assert example_grid(pairs, probs, report, rows=100).shape[0] == len(pairs) * (16 * 4 + 2) + 2

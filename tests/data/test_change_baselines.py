"""The pixel-difference baseline and the change scores, against hand-computed cases."""

from __future__ import annotations

import itertools

import numpy
import pytest

from minires.data.change_baselines import (best_threshold, difference_baseline, difference_map,
                                           otsu_threshold, pair_scores, pixel_scores, roc_auc)


def test_difference_map_max_and_l2():
    before = numpy.zeros((1, 1, 2, 3), numpy.uint8)
    after = numpy.array([[[[3, 4, 0], [0, 0, 255]]]], numpy.uint8)
    assert difference_map(before, after).tolist() == [[[4.0, 255.0]]]
    assert difference_map(before, after, "l2").tolist() == [[[5.0, 255.0]]]
    assert difference_map(after, before).tolist() == [[[4.0, 255.0]]]      # no uint8 wrap
    with pytest.raises(ValueError, match="difference_map: norm"):
        difference_map(before, after, "l1")
    with pytest.raises(ValueError, match="difference_map: before and after"):
        difference_map(before, after[:, :, :1])


def test_otsu_splits_a_bimodal_histogram():
    rng = numpy.random.default_rng(0)
    low, high = rng.normal(20, 5, 5000), rng.normal(200, 10, 500)
    t = otsu_threshold(numpy.r_[low, high])
    assert low.max() < t < high.min()
    assert otsu_threshold(numpy.full(10, 7.0)) == 7.0
    with pytest.raises(ValueError, match="otsu_threshold: values"):
        otsu_threshold([])


def _between_class_variance(values, t):
    low, high = values[values <= t], values[values > t]
    return len(low) * len(high) * (low.mean() - high.mean()) ** 2 / len(values) ** 2


def test_otsu_maximises_the_between_class_variance_of_overlapping_modes():
    rng = numpy.random.default_rng(3)
    values = numpy.r_[rng.normal(80, 20, 3000), rng.normal(150, 20, 1000)]
    t = otsu_threshold(values)
    best = max(_between_class_variance(values, c) for c in numpy.linspace(60, 170, 221))
    assert _between_class_variance(values, t) >= best * (1 - 1e-3)
    assert 90 < t < 140


def test_otsu_on_two_values_lies_between_them():
    values = numpy.array([0.0] * 90 + [10.0] * 10)
    t = otsu_threshold(values)
    assert numpy.array_equal(values > t, values == 10.0)


def test_pixel_scores_by_hand():
    predicted = numpy.array([[1, 1, 0], [0, 0, 0]], bool)
    truth = numpy.array([[1, 0, 0], [1, 0, 0]], bool)
    scores = pixel_scores(predicted, truth)          # tp 1, fp 1, fn 1
    assert scores == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "iou": 1 / 3})
    perfect = pixel_scores(truth, truth)
    assert perfect == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "iou": 1.0}
    empty = numpy.zeros((2, 3), bool)
    assert pixel_scores(empty, empty)["f1"] == 1.0                 # nothing to find, none claimed
    assert pixel_scores(empty, truth) == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "iou": 0.0}
    with pytest.raises(ValueError, match="pixel_scores: predicted and truth"):
        pixel_scores(empty, empty[:1])


def test_best_threshold_is_the_best_of_all_thresholds():
    rng = numpy.random.default_rng(1)
    for _ in range(20):
        scores = rng.integers(0, 6, 40).astype(float)          # many ties
        truth = rng.random(40) < 0.3
        if not truth.any():
            continue
        t, f1 = best_threshold(scores, truth)
        assert pixel_scores(scores > t, truth)["f1"] == pytest.approx(f1)
        brute = max(pixel_scores(scores > c, truth)["f1"] for c in numpy.r_[-1.0, scores])
        assert f1 == pytest.approx(brute)


def test_best_threshold_separates_separable_scores():
    scores = numpy.array([0.1, 0.2, 0.9, 0.3, 0.8])
    truth = scores > 0.5
    t, f1 = best_threshold(scores, truth)
    assert f1 == 1.0 and numpy.array_equal(scores > t, truth)
    t, f1 = best_threshold(numpy.ones(4), numpy.ones(4, bool))       # everything changed
    assert f1 == 1.0 and (numpy.ones(4) > t).all()


def test_roc_auc_by_hand():
    assert roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == 0.75
    # Ties count one half: (0.5 + 0 + 1 + 1) / 4.
    assert roc_auc([1, 1, 2, 3], [0, 1, 0, 1]) == 0.625
    assert roc_auc([5, 5, 5], [1, 0, 1]) == 0.5
    with pytest.raises(ValueError, match="roc_auc: labels must contain both"):
        roc_auc([1, 2], [1, 1])


def test_roc_auc_counts_every_pair():
    rng = numpy.random.default_rng(2)
    scores, labels = rng.integers(0, 5, 30), rng.random(30) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = [1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg)]
    assert roc_auc(scores, labels) == pytest.approx(numpy.mean(pairs))


def test_difference_baseline_on_a_clean_change():
    before = numpy.zeros((4, 8, 8, 3), numpy.uint8)
    after = before.copy()
    mask = numpy.zeros((4, 8, 8), bool)
    mask[:2, 2:4, 3:6] = True
    after[mask] = 200
    result = difference_baseline(before, after, mask)
    assert result["best"]["f1"] == 1.0 and result["otsu"]["f1"] == 1.0
    assert result["auc"] == 1.0
    assert difference_baseline(before, after, numpy.zeros_like(mask) | True)["auc"] is None
    assert pair_scores(difference_map(before, after), 1.0).tolist() == [200, 200, 0, 0]

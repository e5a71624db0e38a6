"""Classical change detection and its scores, in NumPy alone: what a learned detector must beat.

    diff = difference_map(before, after)               # (n, H, W) float32, per pixel
    t = otsu_threshold(diff)                           # a threshold from the histogram alone
    t, f1 = best_threshold(diff, mask)                 # the best one, chosen on the truth
    pixel_scores(diff > t, mask)                       # precision, recall, F1, IoU
    roc_auc(pair_scores(diff), mask.any(axis=(1, 2)))  # image level: changed pair or not
    difference_baseline(before, after, mask)           # all of the above, for one norm

- ``difference_map``: the absolute pixel difference, per pixel either the largest over the
  channels (``"max"``) or the Euclidean norm of the difference vector (``"l2"``: change
  vector analysis' magnitude).
- ``otsu_threshold``: Otsu's method, the threshold that maximises the between-class variance
  of a 256-bin histogram.
- ``best_threshold``: the threshold with the highest pixel F1 against the true mask, an upper
  bound for any single global threshold (it looks at the answers).
- ``pixel_scores``: pooled over every pixel of every pair. A score whose denominator is zero
  (nothing predicted, or nothing to find) is 1.0 when prediction and truth are both empty and
  0.0 otherwise.
- ``roc_auc``: the Mann-Whitney statistic, ties counted as half (average ranks).
"""

from __future__ import annotations

import numpy

NORMS = ("max", "l2")


def _check_pair(op: str, before, after):
    before, after = numpy.asarray(before), numpy.asarray(after)
    if before.shape != after.shape or before.ndim != 4:
        raise ValueError(f"{op}: before and after must be arrays (N, H, W, C) of one shape, got "
                         f"{before.shape} and {after.shape}")
    return before, after


def difference_map(before, after, norm: str = "max") -> numpy.ndarray:
    """float32 (N, H, W): |after - before| per pixel, the channels' max or Euclidean norm."""
    before, after = _check_pair("difference_map", before, after)
    diff = numpy.abs(after.astype(numpy.float32) - before.astype(numpy.float32))
    if norm == "max":
        return diff.max(axis=-1)
    if norm == "l2":
        return numpy.sqrt((diff * diff).sum(axis=-1))
    raise ValueError(f"difference_map: norm must be one of {NORMS}, got {norm!r}")


def otsu_threshold(values, bins: int = 256) -> float:
    """Otsu's threshold of ``values``: the bin edge that maximises the between-class variance.

    Pixels above the returned value are the "changed" class. Constant input returns its value.
    """
    v = numpy.asarray(values, dtype=numpy.float64).ravel()
    if v.size == 0:
        raise ValueError("otsu_threshold: values must not be empty")
    low, high = float(v.min()), float(v.max())
    if low == high:
        return low
    counts, edges = numpy.histogram(v, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    weight0 = numpy.cumsum(counts)[:-1].astype(numpy.float64)           # split after bin k
    weight1 = v.size - weight0
    sum0 = numpy.cumsum(counts * centres)[:-1]
    mean0 = sum0 / numpy.maximum(weight0, 1)
    mean1 = (float((counts * centres).sum()) - sum0) / numpy.maximum(weight1, 1)
    between = weight0 * weight1 * (mean0 - mean1) ** 2
    return float(edges[1 + int(numpy.argmax(between))])


def pixel_scores(predicted, truth) -> dict[str, float]:
    """Pixel precision, recall, F1 and IoU of bool masks of one shape, pooled over all pixels."""
    predicted, truth = numpy.asarray(predicted, dtype=bool), numpy.asarray(truth, dtype=bool)
    if predicted.shape != truth.shape:
        raise ValueError(f"pixel_scores: predicted and truth must have one shape, got "
                         f"{predicted.shape} and {truth.shape}")
    tp = int((predicted & truth).sum())
    fp = int((predicted & ~truth).sum())
    fn = int((~predicted & truth).sum())
    empty = 1.0 if tp + fp + fn == 0 else 0.0

    def ratio(num, den):
        return num / den if den else empty

    return {"precision": ratio(tp, tp + fp), "recall": ratio(tp, tp + fn),
            "f1": ratio(2 * tp, 2 * tp + fp + fn), "iou": ratio(tp, tp + fp + fn)}


def best_threshold(scores, truth) -> tuple[float, float]:
    """``(t, f1)``: the threshold t for ``scores > t`` with the highest F1 against ``truth``.

    Every distinct score is tried (plus one below all, which predicts everything changed).
    """
    s = numpy.asarray(scores, dtype=numpy.float64).ravel()
    y = numpy.asarray(truth, dtype=bool).ravel()
    if s.shape != y.shape or s.size == 0:
        raise ValueError(f"best_threshold: scores and truth must be non-empty and of one size, "
                         f"got {s.size} and {y.size}")
    positives = int(y.sum())
    if positives == 0:        # nothing to find: predicting nothing is perfect
        return float(s.max()), 1.0
    order = numpy.argsort(-s, kind="stable")
    s, y = s[order], y[order]
    tp = numpy.cumsum(y)
    predicted = numpy.arange(1, s.size + 1)
    # Only the last of a run of equal scores is a threshold: "> t" takes all of them or none.
    last = numpy.r_[s[1:] != s[:-1], True]
    f1 = 2 * tp[last] / (predicted[last] + positives)
    k = int(numpy.argmax(f1))
    cut = numpy.flatnonzero(last)[k]
    threshold = float(s[cut + 1]) if cut + 1 < s.size else float(numpy.nextafter(s[-1], -numpy.inf))
    return threshold, float(f1[k])


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for bool ``labels``: the probability that a
    positive scores above a negative, ties counting one half."""
    s = numpy.asarray(scores, dtype=numpy.float64).ravel()
    y = numpy.asarray(labels, dtype=bool).ravel()
    if s.shape != y.shape:
        raise ValueError(f"roc_auc: scores and labels must have one size, got {s.size} and "
                         f"{y.size}")
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        raise ValueError(f"roc_auc: labels must contain both classes, got {positives} positive "
                         f"and {negatives} negative")
    order = numpy.argsort(s, kind="stable")
    sorted_s = s[order]
    ranks = numpy.empty(s.size, dtype=numpy.float64)
    # Average ranks (1-based) over each run of tied scores.
    starts = numpy.flatnonzero(numpy.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = numpy.r_[starts[1:], s.size]
    average = (starts + ends + 1) / 2.0
    ranks[order] = numpy.repeat(average, ends - starts)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def pair_scores(diff, quantile: float = 1.0) -> numpy.ndarray:
    """float64 (N,): one change score per pair, the ``quantile`` of its difference map (by
    default its largest value: the smallest change, a few pixels, still counts)."""
    diff = numpy.asarray(diff)
    if diff.ndim != 3:
        raise ValueError(f"pair_scores: diff must be (N, H, W), got shape {diff.shape}")
    return numpy.quantile(diff.reshape(len(diff), -1).astype(numpy.float64), quantile, axis=1)


def difference_baseline(before, after, mask, norm: str = "max") -> dict:
    """The pixel-difference baseline on pairs with true ``mask`` (N, H, W).

    Returns ``{"otsu": scores, "best": scores}`` (each ``pixel_scores`` plus its
    ``threshold``) and ``"auc"``: the image-level ROC AUC of ``pair_scores``, or None unless
    the pairs hold both changed and unchanged ones.
    """
    diff = difference_map(before, after, norm)
    mask = numpy.asarray(mask, dtype=bool)
    if mask.shape != diff.shape:
        raise ValueError(f"difference_baseline: mask must be {diff.shape}, got {mask.shape}")
    otsu = otsu_threshold(diff)
    best, _ = best_threshold(diff, mask)
    result = {"otsu": {**pixel_scores(diff > otsu, mask), "threshold": otsu},
              "best": {**pixel_scores(diff > best, mask), "threshold": best}}
    changed = mask.reshape(len(mask), -1).any(axis=1)
    both = changed.any() and not changed.all()
    result["auc"] = roc_auc(pair_scores(diff), changed) if both else None
    return result

"""A change net against the pixel-difference baselines, on the same generated pairs.

    pairs = make_change_pairs(held_out_images, seed=2)
    report, probs = evaluate_pairs(model, pairs)
    report["model"]["f1"], report["best"]["f1"], report["model"]["auc"]
    grid = example_grid(pairs, probs, report)      # uint8 RGB, one row per pair

The baselines (``minires.data.change_baselines``) threshold |after - before| (the channels'
maximum): at Otsu's threshold of all the pairs' differences, and at the threshold with the
best pixel F1 *on these very pairs*, an upper bound no threshold chosen in advance can beat.
Their image-level score is each difference map's maximum, as the model's is its map's.
"""

from __future__ import annotations

import numpy

from ..data.change_baselines import difference_baseline, difference_map
from .train import map_scores, predict_scaled

SCORES = ("precision", "recall", "f1", "iou", "auc")
GRID_COLUMNS = ("before", "after", "truth", "model probability", "model mask",
                "difference, best threshold")


def evaluate_pairs(model, pairs, threshold: float = 0.5, batch_size: int = 256):
    """``(report, probs)`` of a change net on ``ChangePairs``.

    ``report``: ``{"pairs", "changed_pairs", "changed_pixels", "model", "otsu", "best"}``,
    each method's entry the pooled pixel ``precision``, ``recall``, ``f1``, ``iou``, its
    ``threshold`` and the image-level ROC ``auc`` (None unless both changed and unchanged pairs
    are there). ``probs``: the model's change probabilities (N, H, W).
    """
    probs = predict_scaled(model, [pairs.before, pairs.after], batch_size=batch_size)
    mask = numpy.asarray(pairs.mask, dtype=bool)
    mine = map_scores(probs, mask, threshold)
    baseline = difference_baseline(pairs.before, pairs.after, mask)
    report = {
        "pairs": int(len(mask)),
        "changed_pairs": int(pairs.changed.sum()),
        "changed_pixels": float(mask.mean()),
        "model": {**{k: mine[k] for k in SCORES}, "threshold": float(threshold)},
    }
    for method in ("otsu", "best"):
        report[method] = {**{k: baseline[method][k] for k in SCORES if k != "auc"},
                          "auc": baseline["auc"], "threshold": float(baseline[method]["threshold"])}
    return report, probs


def example_grid(pairs, probs, report, rows: int = 8, scale: int = 4) -> numpy.ndarray:
    """uint8 RGB image: one row per pair (the first ``rows``, unchanged pairs included), the
    columns before, after, the true mask, the model's probability map, the model's mask at its
    threshold, and the best-threshold difference baseline's mask; each cell enlarged
    ``scale`` times (nearest neighbour) and framed by a 2-pixel gap."""
    rows = max(1, min(int(rows), len(pairs)))
    best = report["best"]["threshold"]
    diff = difference_map(pairs.before[:rows], pairs.after[:rows])

    def grey(plane):
        return numpy.repeat(numpy.clip(plane * 255.0, 0, 255).astype(numpy.uint8)[..., None], 3, -1)

    cells = []
    for i in range(rows):
        cells.append([pairs.before[i], pairs.after[i], grey(pairs.mask[i]), grey(probs[i]),
                      grey(probs[i] > report["model"]["threshold"]), grey(diff[i] > best)])
    h, w = pairs.before.shape[1:3]
    gap = 2
    cell_h, cell_w = h * scale + gap, w * scale + gap
    grid = numpy.full((rows * cell_h + gap, len(cells[0]) * cell_w + gap, 3), 255, numpy.uint8)
    for r, row in enumerate(cells):
        for c, cell in enumerate(row):
            big = numpy.repeat(numpy.repeat(cell, scale, axis=0), scale, axis=1)
            top, left = gap + r * cell_h, gap + c * cell_w
            grid[top:top + h * scale, left:left + w * scale] = big
    return grid

"""Holding out a validation set: the same images for every framework that is compared.

``stratified_split`` takes ``round(fraction * count)`` images of each class, chosen by a
seeded permutation, so the validation set has the training set's class balance and two runs
(minires and PyTorch, say) with the same seed see exactly the same split.
"""

from __future__ import annotations

import numpy


def stratified_split(y, fraction: float, seed: int = 0):
    """(train_index, val_index): int64 index arrays, each sorted, partitioning ``range(len(y))``."""
    if not isinstance(fraction, (int, float)) or not 0.0 <= fraction < 1.0:
        raise ValueError(f"stratified_split: fraction must be in [0, 1), got {fraction!r}")
    y = numpy.asarray(y).reshape(-1)
    rng = numpy.random.default_rng(seed)
    val = []
    for label in numpy.unique(y):
        members = numpy.flatnonzero(y == label)
        take = int(round(fraction * len(members)))
        val.append(rng.permutation(members)[:take])
    val_index = numpy.sort(numpy.concatenate(val)) if val else numpy.zeros(0, numpy.int64)
    mask = numpy.ones(len(y), dtype=bool)
    mask[val_index] = False
    return numpy.flatnonzero(mask).astype(numpy.int64), val_index.astype(numpy.int64)

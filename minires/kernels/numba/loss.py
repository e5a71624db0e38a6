"""Numba kernels of ``minires.ops.loss``: the softmax cross-entropy, forward and backward.

Each row's sum of exponentials and the loss are summed in float64 whatever the logits'
dtype; the loss comes back as a Python float.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from ._launch import SUMS, contiguous

# (N, C) is tiny in the seed's model (64 x 10): one thread, no prange, whose start-up would
# cost more than the work.


@njit(cache=True, fastmath=SUMS)
def _log_softmax_rows(z, out):
    n, c = z.shape
    for row in range(n):
        top = z[row, 0]
        for k in range(1, c):
            top = max(top, z[row, k])
        total = 0.0
        for k in range(c):
            total += math.exp(z[row, k] - top)
        shift = top + math.log(total)
        for k in range(c):
            out[row, k] = z[row, k] - shift


@njit(cache=True, fastmath=SUMS)
def _softmax_xent_ids(z, ids, probs):
    n, c = z.shape
    _log_softmax_rows(z, probs)
    loss = 0.0
    for row in range(n):
        loss -= probs[row, ids[row]]
    for row in range(n):
        for k in range(c):
            probs[row, k] = math.exp(probs[row, k])
    return loss / n


@njit(cache=True, fastmath=SUMS)
def _softmax_xent_rows(z, t, probs):
    n, c = z.shape
    _log_softmax_rows(z, probs)
    loss = 0.0
    for row in range(n):
        for k in range(c):
            loss -= t[row, k] * probs[row, k]
            probs[row, k] = math.exp(probs[row, k])
    return loss / n


def softmax_cross_entropy_forward(logits, targets, sparse):
    """(mean loss as a Python float, probs): class ids if ``sparse``, else target rows."""
    probs = np.empty(logits.shape, dtype=logits.dtype)
    if sparse:
        loss = _softmax_xent_ids(contiguous(logits), contiguous(targets).astype(np.intp, copy=False), probs)
    else:
        loss = _softmax_xent_rows(contiguous(logits), contiguous(targets), probs)
    return loss, probs


@njit(cache=True)
def _softmax_xent_ids_backward(probs, ids, scale, dz):
    n, c = probs.shape
    for row in range(n):
        for k in range(c):
            dz[row, k] = probs[row, k] * scale
        dz[row, ids[row]] -= scale


@njit(cache=True, fastmath=SUMS)
def _softmax_xent_rows_backward(probs, t, scale, dz):
    n, c = probs.shape
    for row in range(n):
        total = t[row, 0]
        for k in range(1, c):
            total += t[row, k]
        for k in range(c):
            dz[row, k] = (probs[row, k] * total - t[row, k]) * scale


def softmax_cross_entropy_backward(dloss, probs, targets, sparse):
    """dlogits = dloss * (p * sum(t) - t) / N."""
    scale = probs.dtype.type(dloss) / probs.dtype.type(probs.shape[0])
    dz = np.empty(probs.shape, dtype=probs.dtype)
    if sparse:
        ids = contiguous(targets).astype(np.intp, copy=False)
        _softmax_xent_ids_backward(contiguous(probs), ids, scale, dz)
    else:
        _softmax_xent_rows_backward(contiguous(probs), contiguous(targets), scale, dz)
    return dz

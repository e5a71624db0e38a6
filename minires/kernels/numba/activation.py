"""Numba kernels of ``minires.ops.activation``: ReLU, and ReLU fused with the bias add.

``relu_forward`` / ``relu_backward`` and ``bias_relu`` / ``bias_relu_backward``, each one
pass over memory; the row loops of the fused pair (``_bias_activation_rows``,
``_mask_and_sum_rows``) also finish the blocks of the blocked convolutions.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ._launch import SUMS, contiguous, launch

# --- ReLU -----------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _relu_forward(x, y, positive):
    for k in prange(x.size):
        v = x[k]
        positive[k] = v > 0
        y[k] = v if (v > 0 or v != v) else 0      # max(v, 0), NaN kept


def relu_forward(x):
    """(y, positive): y = max(x, 0) with NaN propagated, and the mask x > 0, in one pass."""
    y = np.empty(x.shape, dtype=x.dtype)
    positive = np.empty(x.shape, dtype=np.bool_)
    launch(_relu_forward, y.size, contiguous(x).reshape(-1), y.reshape(-1), positive.reshape(-1))
    return y, positive


@njit(parallel=True, cache=True)
def _relu_backward(dy, positive, dx):
    for k in prange(dy.size):
        dx[k] = dy[k] if positive[k] else 0


def relu_backward(dy, positive):
    """dx = dy where positive, else 0."""
    dx = np.empty(dy.shape, dtype=dy.dtype)
    launch(_relu_backward, dx.size, contiguous(dy).reshape(-1), contiguous(positive).reshape(-1),
           dx.reshape(-1))
    return dx


# --- bias + ReLU, fused ---------------------------------------------------------------------
# A conv layer's output gets its bias and its ReLU in one pass over memory instead of three
# (add, compare, max), and its backward pass masks the gradient and sums the bias gradient
# in one pass instead of two. The row loops below serve the blocked convolutions too
# (``minires.kernels.numba.conv``), which call them from Python, on their own blocks of rows.

_BIAS_CHUNKS = 64    # fixed, so the bias gradient's summation order does not depend on threads


@njit(nogil=True, cache=True)
def _bias_activation_rows(y, bias, positive, relu, keep_mask):
    """y += bias, then (relu) y = max(y, 0) with NaN kept and (keep_mask) positive = y > 0;
    in place."""
    rows, c = y.shape
    for row in range(rows):
        for ch in range(c):
            v = y[row, ch] + bias[ch]
            if relu:
                if keep_mask:
                    positive[row, ch] = v > 0
                v = v if (v > 0 or v != v) else 0
            y[row, ch] = v


@njit(parallel=True, cache=True)
def _bias_relu(z, b, positive):
    rows = z.shape[0]
    for chunk in prange(_BIAS_CHUNKS):
        lo, hi = rows * chunk // _BIAS_CHUNKS, rows * (chunk + 1) // _BIAS_CHUNKS
        _bias_activation_rows(z[lo:hi], b, positive[lo:hi], True, True)


def bias_relu(z, b):
    """(y, positive): y = max(z + b, 0) over the last axis with NaN propagated, and the mask
    z + b > 0. ``z`` must be a C-contiguous array the caller owns: y is written over it.
    ``b`` (C,) or None."""
    c = z.shape[-1]
    b = np.zeros(c, dtype=z.dtype) if b is None else contiguous(b)
    positive = np.empty(z.shape, dtype=np.bool_)
    launch(_bias_relu, z.size, z.reshape(-1, c), b, positive.reshape(-1, c))
    return z, positive


@njit(nogil=True, cache=True, fastmath=SUMS)
def _mask_and_sum_rows(dy, positive, dz, db, relu):
    """dz = dy, masked by positive with ``relu``, and db += the column sums of dz."""
    rows, c = dy.shape
    for row in range(rows):
        for ch in range(c):
            v = dy[row, ch]
            if relu and not positive[row, ch]:
                v = 0
            dz[row, ch] = v
            db[ch] += v


@njit(parallel=True, cache=True)
def _bias_relu_backward(dy, positive, dz, partial):
    rows, chunks = dy.shape[0], partial.shape[0]
    for chunk in prange(chunks):
        partial[chunk, :] = 0
        lo, hi = rows * chunk // chunks, rows * (chunk + 1) // chunks
        _mask_and_sum_rows(dy[lo:hi], positive[lo:hi], dz[lo:hi], partial[chunk], True)


def bias_relu_backward(dy, positive):
    """(dz, db): dz = dy where positive, else 0; db = dz summed over every axis but the last.

    Each of ``_BIAS_CHUNKS`` blocks of rows sums into its own row of partial sums (no two
    threads write one element), which are then added up.
    """
    c = dy.shape[-1]
    dz = np.empty(dy.shape, dtype=dy.dtype)
    partial = np.empty((_BIAS_CHUNKS, c), dtype=dy.dtype)
    launch(_bias_relu_backward, dz.size, contiguous(dy).reshape(-1, c), contiguous(positive).reshape(-1, c),
           dz.reshape(-1, c), partial)
    return dz, partial.sum(axis=0)

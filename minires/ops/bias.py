"""The gradient of a bias added along the last axis: db = dy summed over every other axis.

    y[..., c] = x[..., c] + b[c]      =>      db[c] = sum over all leading indices of dy[..., c]

Computed as one matrix-vector product, ones(R) @ dy viewed as (R, C), rather than
``dy.sum(axis=(0, 1, 2))``: BLAS streams the rows once, where NumPy's reduction over leading
axes is slower at a conv layer's shapes, and on CuPy it is one cuBLAS call.
"""

from __future__ import annotations

from ..backend import array_module


def bias_gradient(dy):
    """dy (..., C) summed over every axis but the last: (C,), dy's dtype."""
    xp = array_module(dy)
    rows = dy.reshape(-1, dy.shape[-1])
    return xp.ones(rows.shape[0], dtype=dy.dtype) @ rows

"""Dense (fully connected) layer: an affine map of row vectors.

Shapes
    x (N, D_in),  w (D_in, D_out) (Keras' layout),  b (D_out,) or None,  y (N, D_out)

    y = x @ w + b                       forward
    dx = dy @ w^T                       (N, D_in)
    dw = x^T @ dy                       (D_in, D_out)
    db = sum_n dy[n]                    (D_out,)
"""

from __future__ import annotations

from typing import NamedTuple

from ._checks import as_float_array, check_dtype, check_same_dtype, check_shape

_OP = "dense"


class DenseCache(NamedTuple):
    x: object
    w: object
    has_bias: bool


def dense_forward(x, w, b=None):
    """y = x @ w + b. Returns (y, cache)."""
    x = as_float_array(_OP, "x", x, ndim=2)
    w = as_float_array(_OP, "w", w, ndim=2)
    if b is not None:
        b = as_float_array(_OP, "b", b, ndim=1)
    check_same_dtype(_OP, x=x, w=w, b=b)
    if x.shape[1] != w.shape[0]:
        raise ValueError(
            f"{_OP}: x has {x.shape[1]} features but w expects D_in={w.shape[0]} "
            f"(x shape {tuple(x.shape)}, w shape {tuple(w.shape)}, w is (in, out))"
        )
    if b is not None:
        check_shape(_OP, "b", b, (w.shape[1],))
    y = x @ w
    if b is not None:
        y += b
    return y, DenseCache(x, w, b is not None)


def dense_backward(dy, cache: DenseCache):
    """Gradients (dx, dw, db); db is None when the forward had no bias."""
    x, w, has_bias = cache
    dy = as_float_array(f"{_OP}_backward", "dy", dy, ndim=2)
    check_shape(f"{_OP}_backward", "dy", dy, (x.shape[0], w.shape[1]))
    check_dtype(f"{_OP}_backward", "dy", dy, w.dtype)
    dx = dy @ w.T
    dw = x.T @ dy
    db = dy.sum(axis=0) if has_bias else None
    return dx, dw, db

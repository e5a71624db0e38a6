"""Softmax along one axis: forward and backward.

Shapes: x of any shape with at least one dim; y = softmax(x) of the same shape, each slice
along ``axis`` a probability vector.

Forward, shifted by the slice's maximum so that no exp overflows (the shift cancels):

    y[..., i] = exp(x[..., i] - m) / sum_k exp(x[..., k] - m),      m = max_k x[..., k]

Backward. The Jacobian of one slice is dy_i/dx_j = y_i (delta_ij - y_j), i.e. diag(y) - y y^T,
which is symmetric; applied to an upstream gradient dy it needs no matrix:

    dx[..., j] = y[..., j] * (dy[..., j] - sum_i dy[..., i] * y[..., i])

A model trained with cross-entropy never runs this backward: its output layer stops at the
logits and the fused ``softmax_cross_entropy`` op gives the stable gradient (p - t) / N. This
backward serves a softmax whose output feeds anything else.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import array_module
from ._checks import as_float_array, check_dtype, check_shape

_OP = "softmax"


class SoftmaxCache(NamedTuple):
    y: object        # the forward's output: the backward needs nothing else
    axis: int


def softmax(x, axis: int = -1):
    """exp(x) / sum(exp(x)) along ``axis``, shifted by the maximum so nothing overflows."""
    x = as_float_array(_OP, "x", x, min_ndim=1)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"softmax: axis must be in [{-x.ndim}, {x.ndim}) for x of shape {tuple(x.shape)}, got {axis}")
    xp = array_module(x)
    e = xp.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def softmax_forward(x, axis: int = -1):
    """y = softmax(x) along ``axis``. Returns (y, cache)."""
    y = softmax(x, axis)
    return y, SoftmaxCache(y, axis)


def softmax_backward(dy, cache: SoftmaxCache):
    """dx = y * (dy - sum(dy * y)) along the softmax's axis, shape of y."""
    y, axis = cache
    op = f"{_OP}_backward"
    dy = as_float_array(op, "dy", dy)
    check_shape(op, "dy", dy, y.shape)
    check_dtype(op, "dy", dy, y.dtype)
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))

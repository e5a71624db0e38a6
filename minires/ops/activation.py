"""Element-wise activations: ReLU, ReLU fused with the bias add before it, and the sigmoid.

    y = max(x, 0)                    relu forward, any shape
    dx = dy * [x > 0]                relu backward

    y = max(x + b, 0)                bias_relu forward, b (C,) added along the last axis
    dx = dy * [x + b > 0]            bias_relu backward
    db = sum of dx over every axis but the last

    y = 1 / (1 + exp(-x))            sigmoid forward, any shape
    dx = dy * y * (1 - y)            sigmoid backward (dy/dx = e^-x / (1 + e^-x)^2 = y (1 - y))

ReLU is not differentiable at 0; like PyTorch and TensorFlow, minires takes the gradient
there to be 0 (the left derivative), so an input sitting exactly at 0 passes no gradient.

``bias_relu`` is what a layer with a bias and a ReLU computes after its matrix product
(``conv2d_forward(..., activation="relu")`` uses it): the same values as adding the bias and
then applying ``relu``, in one pass over memory instead of three on the ``numba`` backend,
and one pass instead of two backward.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import array_module, kernel
from ._checks import as_float_array, check_dtype, check_same_dtype, check_shape
from .bias import bias_gradient

_OP = "relu"
_BIAS_OP = "bias_relu"


class BiasReluCache(NamedTuple):
    positive: object             # the mask x + b > 0
    dtype: object
    has_bias: bool


def relu_forward(x):
    """y = max(x, 0). Returns (y, cache); the cache is the mask x > 0."""
    x = as_float_array(_OP, "x", x)
    k = kernel("relu_forward", x)
    if k:
        y, positive = k(x)
        return y, (positive, x.dtype)
    xp = array_module(x)
    # maximum() propagates NaN, as PyTorch's relu does: a NaN must not vanish into a 0.
    y = xp.maximum(x, xp.zeros((), dtype=x.dtype))
    return y, (x > 0, x.dtype)


def relu_backward(dy, cache):
    """dx = dy where x > 0, else 0."""
    positive, dtype = cache
    dy = as_float_array(f"{_OP}_backward", "dy", dy)
    check_shape(f"{_OP}_backward", "dy", dy, positive.shape)
    check_dtype(f"{_OP}_backward", "dy", dy, dtype)
    k = kernel("relu_backward", dy, positive)
    if k:
        return k(dy, positive)
    # dy * mask rather than where(mask, dy, 0): the same values (a masked gradient may be -0.0,
    # which equals 0), and much faster on NumPy, whose where() branches on every element.
    return dy * positive


def bias_relu_forward(x, b=None, *, overwrite_x: bool = False):
    """y = max(x + b, 0), b (C,) or None added along the last axis. Returns (y, cache).

    overwrite_x: x is a temporary of the caller (a matrix product's result) and y may be
    written over it, saving an array of x's size.
    """
    x = as_float_array(_BIAS_OP, "x", x, min_ndim=1)
    if b is not None:
        b = as_float_array(_BIAS_OP, "b", b, ndim=1)
        check_same_dtype(_BIAS_OP, x=x, b=b)
        check_shape(_BIAS_OP, "b", b, (x.shape[-1],))
    writable = overwrite_x and x.flags.c_contiguous and getattr(x.flags, "writeable", True)  # CuPy: no flag
    z = x if writable else x.copy()
    k = kernel("bias_relu", z, b)
    if k:
        y, positive = k(z, b)
    else:
        xp = array_module(z)
        if b is not None:
            z += b
        positive = z > 0
        y = xp.maximum(z, xp.zeros((), dtype=z.dtype), out=z)     # NaN kept, as relu's
    return y, BiasReluCache(positive, x.dtype, b is not None)


def bias_relu_backward(dy, cache):
    """(dx, db): dx = dy where x + b > 0, else 0; db = dx summed over all but the last axis
    (None when the forward had no bias)."""
    positive, dtype, has_bias = cache
    op = f"{_BIAS_OP}_backward"
    dy = as_float_array(op, "dy", dy)
    check_shape(op, "dy", dy, positive.shape)
    check_dtype(op, "dy", dy, dtype)
    k = kernel("bias_relu_backward", dy, positive)
    if k:
        dx, db = k(dy, positive)
        return dx, (db if has_bias else None)
    dx = dy * positive
    db = bias_gradient(dx) if has_bias else None
    return dx, db


# --- sigmoid ---------------------------------------------------------------------------------

_SIGMOID_OP = "sigmoid"


def sigmoid_forward(x):
    """y = 1 / (1 + exp(-x)), from exp(-|x|) so that no exp overflows. Returns (y, cache);
    the cache is y."""
    x = as_float_array(_SIGMOID_OP, "x", x)
    xp = array_module(x)
    e = xp.exp(-xp.abs(x))
    y = xp.where(x >= 0, 1 / (1 + e), e / (1 + e))
    return y, y


def sigmoid_backward(dy, cache):
    """dx = dy * y * (1 - y), y the forward's output."""
    y = cache
    op = f"{_SIGMOID_OP}_backward"
    dy = as_float_array(op, "dy", dy)
    check_shape(op, "dy", dy, y.shape)
    check_dtype(op, "dy", dy, y.dtype)
    return dy * y * (1 - y)

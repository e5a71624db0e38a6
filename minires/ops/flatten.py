"""Flatten: (N, d1, d2, ...) -> (N, d1*d2*...), in row-major order.

On NHWC activations this lists each image's values as (h, w, c) with c fastest, the order of
Keras' Flatten, so a Dense kernel trained by Keras lines up with minires' unchanged.

    y = reshape(x, (N, -1))      forward
    dx = reshape(dy, x.shape)    backward: a reshape moves no value, so neither does its gradient
"""

from __future__ import annotations

import math

from ._checks import as_float_array, check_dtype, check_shape

_OP = "flatten"


def flatten_forward(x):
    """y = x reshaped to (N, prod(rest)). Returns (y, cache)."""
    x = as_float_array(_OP, "x", x, min_ndim=2)
    return x.reshape(x.shape[0], math.prod(x.shape[1:])), (tuple(x.shape), x.dtype)


def flatten_backward(dy, cache):
    """dx = dy reshaped back to the input's shape."""
    shape, dtype = cache
    dy = as_float_array(f"{_OP}_backward", "dy", dy, ndim=2)
    check_shape(f"{_OP}_backward", "dy", dy, (shape[0], math.prod(shape[1:])))
    check_dtype(f"{_OP}_backward", "dy", dy, dtype)
    return dy.reshape(shape)

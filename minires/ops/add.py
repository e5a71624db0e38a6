"""Element-wise addition of two tensors of one shape (the residual connection), and
subtraction (Keras' Subtract layer).

    y = a + b          forward
    da = dy, db = dy   backward (addition passes the gradient unchanged to both inputs)

    y = a - b          forward
    da = dy, db = -dy  backward (dy/db = -1)

No broadcasting: the skip path of a residual block must match its main path exactly, and a
silent broadcast would hide a wrong shape.
"""

from __future__ import annotations

from ._checks import as_float_array, check_dtype, check_shape, same_shape_pair

_OP = "add"


def add_forward(a, b):
    """y = a + b for a and b of the same shape and dtype. Returns (y, cache)."""
    a, b = same_shape_pair(_OP, a, b)
    return a + b, (tuple(a.shape), a.dtype)


def add_backward(dy, cache):
    """(da, db) = (dy, dy). Both are the same array: copy one before writing into it."""
    shape, dtype = cache
    dy = as_float_array(f"{_OP}_backward", "dy", dy)
    check_shape(f"{_OP}_backward", "dy", dy, shape)
    check_dtype(f"{_OP}_backward", "dy", dy, dtype)
    return dy, dy


_SUB_OP = "subtract"


def subtract_forward(a, b):
    """y = a - b for a and b of the same shape and dtype. Returns (y, cache)."""
    a, b = same_shape_pair(_SUB_OP, a, b)
    return a - b, (tuple(a.shape), a.dtype)


def subtract_backward(dy, cache):
    """(da, db) = (dy, -dy)."""
    shape, dtype = cache
    dy = as_float_array(f"{_SUB_OP}_backward", "dy", dy)
    check_shape(f"{_SUB_OP}_backward", "dy", dy, shape)
    check_dtype(f"{_SUB_OP}_backward", "dy", dy, dtype)
    return dy, -dy

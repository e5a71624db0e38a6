"""Element-wise addition of two tensors of one shape: the residual connection.

    y = a + b          forward
    da = dy, db = dy   backward (addition passes the gradient unchanged to both inputs)

No broadcasting: the skip path of a residual block must match its main path exactly, and a
silent broadcast would hide a wrong shape.
"""

from __future__ import annotations

from ._checks import as_float_array, check_dtype, check_same_dtype, check_shape

_OP = "add"


def add_forward(a, b):
    """y = a + b for a and b of the same shape and dtype. Returns (y, cache)."""
    a = as_float_array(_OP, "a", a)
    b = as_float_array(_OP, "b", b)
    if a.shape != b.shape:
        raise ValueError(
            f"{_OP}: a and b must have the same shape, got a {tuple(a.shape)} and b {tuple(b.shape)}"
        )
    check_same_dtype(_OP, a=a, b=b)
    return a + b, (tuple(a.shape), a.dtype)


def add_backward(dy, cache):
    """(da, db) = (dy, dy). Both are the same array: copy one before writing into it."""
    shape, dtype = cache
    dy = as_float_array(f"{_OP}_backward", "dy", dy)
    check_shape(f"{_OP}_backward", "dy", dy, shape)
    check_dtype(f"{_OP}_backward", "dy", dy, dtype)
    return dy, dy

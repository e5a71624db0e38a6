"""The absolute difference of two tensors: how a Siamese change detector compares the
features of the "before" and "after" branches.

    y = |a - b|                          forward, a and b of one shape
    da = dy * sign(a - b),  db = -da     backward

|u| has no derivative at u = 0; any value in [-1, 1] is a subgradient there. minires takes
sign(0) = 0, as it takes ReLU'(0) = 0 and as PyTorch's abs does: where the two branches agree
exactly, no gradient flows into either. A NaN difference gives a NaN gradient.
"""

from __future__ import annotations

from ..backend import array_module
from ._checks import as_float_array, check_dtype, check_shape, same_shape_pair

_OP = "abs_diff"


def abs_diff_forward(a, b):
    """y = |a - b| for a and b of the same shape and dtype. Returns (y, cache); the cache is
    sign(a - b), 0 where a == b."""
    a, b = same_shape_pair(_OP, a, b)
    xp = array_module(a)
    diff = a - b
    return xp.abs(diff), xp.sign(diff)


def abs_diff_backward(dy, cache):
    """(da, db) = (dy * sign(a - b), -dy * sign(a - b))."""
    sign = cache
    op = f"{_OP}_backward"
    dy = as_float_array(op, "dy", dy)
    check_shape(op, "dy", dy, sign.shape)
    check_dtype(op, "dy", dy, sign.dtype)
    da = dy * sign
    return da, -da

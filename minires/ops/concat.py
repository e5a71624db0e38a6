"""Concatenation of several arrays along one axis: the decoder's skip connections join
feature maps along the channel axis (the last, in NHWC).

    x_k  (..., C_k, ...)  k = 1..K, equal except along ``axis``    y  (..., sum_k C_k, ...)

    y = [x_1 | x_2 | ... | x_K] along axis                forward
    dx_k = the slice of dy where x_k was placed           backward

Concatenation only moves values: each output element is one input element, so each input's
gradient is its own slice of dy, unchanged.
"""

from __future__ import annotations

from ..backend import array_module
from ._checks import as_float_array, check_dtype, check_same_dtype, check_shape

_OP = "concat"


def concat_forward(arrays, axis: int = -1):
    """y = the arrays joined along ``axis`` (all other dims equal, one dtype). Returns (y, cache)."""
    if isinstance(arrays, (str, bytes)) or not hasattr(arrays, "__len__") or len(arrays) < 1:
        raise ValueError(f"{_OP}: arrays must be a non-empty list of arrays, got {arrays!r:.80}")
    arrays = [as_float_array(_OP, f"arrays[{k}]", a, min_ndim=1) for k, a in enumerate(arrays)]
    check_same_dtype(_OP, **{f"arrays[{k}]": a for k, a in enumerate(arrays)})
    ndim = arrays[0].ndim
    if not isinstance(axis, int) or isinstance(axis, bool) or not -ndim <= axis < ndim:
        raise ValueError(f"{_OP}: axis must be an int in [{-ndim}, {ndim}), got {axis!r}")
    axis %= ndim
    first = arrays[0].shape
    for k, a in enumerate(arrays[1:], start=1):
        if a.ndim != ndim or a.shape[:axis] != first[:axis] or a.shape[axis + 1:] != first[axis + 1:]:
            raise ValueError(
                f"{_OP}: arrays[{k}] must match arrays[0] {tuple(first)} on every axis but {axis}, "
                f"got shape {tuple(a.shape)}"
            )
    y = array_module(arrays[0]).concatenate(arrays, axis=axis)
    return y, (axis, tuple(a.shape[axis] for a in arrays), tuple(y.shape), y.dtype)


def concat_backward(dy, cache):
    """(dx_1, ..., dx_K): dy split back along the axis, one view per input."""
    axis, sizes, shape, dtype = cache
    op = f"{_OP}_backward"
    dy = as_float_array(op, "dy", dy)
    check_shape(op, "dy", dy, shape)
    check_dtype(op, "dy", dy, dtype)
    grads, start = [], 0
    index = [slice(None)] * len(shape)
    for size in sizes:
        index[axis] = slice(start, start + size)
        grads.append(dy[tuple(index)])
        start += size
    return tuple(grads)

"""2-D max pooling over NHWC tensors, each channel on its own.

Shapes
    x  (N, H, W, C)
    y  (N, h_out, w_out, C),  h_out = (H + top + bottom - ph) // sh + 1

Forward, with xpad the input padded by -inf (padding never wins a window):

    y[n, oh, ow, c] = max_{i < ph, j < pw} xpad[n, oh*sh + i, ow*sw + j, c]

Backward: max is piecewise linear, so the gradient of a window flows to the element that
was selected, and to no other:

    dx[n, oh*sh + i*, ow*sw + j*, c] += dy[n, oh, ow, c]

where (i*, j*) is the window's *first* maximum in row-major window order (the tie rule of
PyTorch's CPU kernel and of TensorFlow). ``+=`` because overlapping windows (stride < pool
size) may select the same element more than once.

``strides`` defaults to ``pool_size`` (Keras). ``padding`` is "valid" or "same" (Keras rule,
odd pixel bottom/right); with "same" every window still holds at least one real element.
"""

from __future__ import annotations

from typing import NamedTuple

from ..backend import array_module, kernel
from ..windows import Window, argmax_dtype, plan_windows, positive_pair
from ._checks import as_float_array, check_dtype, check_shape
from .im2col import offset_slice, pad_nhwc, unpad_nhwc

_OP = "maxpool2d"


class MaxPool2dCache(NamedTuple):
    argmax: object               # (N, h_out, w_out, C) argmax_dtype: i*pw + j of the first maximum
    x_shape: tuple[int, ...]
    dtype: object
    window: Window


def maxpool2d_forward(x, pool_size=2, strides=None, padding="valid", keep_cache=True):
    """y = max over each pool_size window of x. Returns (y, cache).

    keep_cache: False when no backward pass follows (inference): the cache is None and the
    first-maximum index, which only the backward pass reads, is not computed.
    """
    x = as_float_array(_OP, "x", x, ndim=4)
    size = positive_pair(_OP, "pool_size", pool_size)
    step = size if strides is None else positive_pair(_OP, "strides", strides)
    window = plan_windows(_OP, x.shape[1:3], size, step, padding, allowed=("valid", "same"))
    if not keep_cache:
        k = kernel("maxpool2d_forward_value", x)
        if k:
            return k(x, window), None
    else:
        k = kernel("maxpool2d_forward", x)
        if k:
            y, argmax = k(x, window)
            return y, MaxPool2dCache(argmax, tuple(x.shape), x.dtype, window)
    xp = array_module(x)

    xpad = pad_nhwc(x, window.padding, value=-xp.inf)
    ph, pw = size
    views = [xpad[offset_slice(i, j, window)] for i in range(ph) for j in range(pw)]
    y, argmax = first_maximum(views, argmax_dtype(window) if keep_cache else None)
    if not keep_cache:
        return y, None
    return y, MaxPool2dCache(argmax, tuple(x.shape), x.dtype, window)


def first_maximum(views, index_dtype=None):
    """(y, index): the element-wise maximum of arrays of one shape (a window's offsets, in
    order; NaN propagates) and, with ``index_dtype``, the position in ``views`` of the first
    that holds it (a NaN's first, where y is NaN); index None without."""
    xp = array_module(views[0])
    # The maximum as a chain of element-wise maxima (fast, contiguous passes; NaN propagates).
    y = views[0].copy()
    for view in views[1:]:
        xp.maximum(y, view, out=y)
    if index_dtype is None:
        return y, None
    # The first maximum in order: the first view k whose value equals y, in Horner form,
    # innermost first:  index = [v0 != y] * (1 + [v1 != y] * (1 + ...))
    # which is 0 where v0 matches, 1 where v0 does not and v1 does, and so on; the last view
    # needs no comparison (if no other matched, it did). Where y is NaN, the first NaN wins,
    # as with NumPy's argmax and the numba kernel.
    has_nan = bool(xp.isnan(y).any())
    index = xp.zeros(y.shape, dtype=index_dtype)
    for view in reversed(views[:-1]):
        differs = view != y
        if has_nan:
            differs &= view == view               # a NaN offset counts as a match
        index += 1
        index *= differs
    return y, index


def maxpool2d_backward(dy, cache: MaxPool2dCache):
    """Gradient dx of maxpool2d_forward: each dy goes to its window's first maximum."""
    argmax, x_shape, dtype, window = cache
    dy = as_float_array(f"{_OP}_backward", "dy", dy, ndim=4)
    check_shape(f"{_OP}_backward", "dy", dy, argmax.shape)
    check_dtype(f"{_OP}_backward", "dy", dy, dtype)
    k = kernel("maxpool2d_backward", dy, argmax)
    if k:
        return k(dy, argmax, x_shape, window)
    xp = array_module(dy)
    n, h, w, c = x_shape
    (top, bottom), (left, right) = window.padding
    padded_hw = (h + top + bottom, w + left + right)
    ph, pw = window.kernel
    # Windows that do not overlap (stride >= pool size) write disjoint pixels: assign, don't
    # add; when they also tile the input exactly, every pixel is written and none needs a zero.
    disjoint = window.strides[0] >= ph and window.strides[1] >= pw
    tiling = window.strides == window.kernel and padded_hw == (window.out_hw[0] * ph, window.out_hw[1] * pw)
    dxpad = (xp.empty if tiling else xp.zeros)((n, *padded_hw, c), dtype=dtype)
    for i in range(ph):
        for j in range(pw):
            # dy * mask rather than where(mask, dy, 0): the same values, several times faster;
            # written straight into its pixels when nothing else writes them.
            mask = argmax == i * pw + j
            if disjoint:
                xp.multiply(dy, mask, out=dxpad[offset_slice(i, j, window)])
            else:
                dxpad[offset_slice(i, j, window)] += dy * mask
    return unpad_nhwc(dxpad, window.padding, (h, w))

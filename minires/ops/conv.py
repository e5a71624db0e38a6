"""2-D convolution (cross-correlation, as in every deep-learning framework), NHWC x HWIO.

Shapes
    x  (N, H, W, C_in)            input
    w  (kh, kw, C_in, C_out)      kernel
    b  (C_out,) or None           bias
    y  (N, h_out, w_out, C_out)   output, h_out = (H + top + bottom - kh) // sh + 1

Forward, with xpad the padded input:

    y[n, oh, ow, o] = b[o] + sum_{i, j, c} xpad[n, oh*sh + i, ow*sw + j, c] * w[i, j, c, o]

As a matrix product: cols = im2col(xpad) has one row per output pixel (N*h_out*w_out rows of
kh*kw*C_in values) and ``y = cols @ W + b`` with W = w reshaped to (kh*kw*C_in, C_out).

Backward, from dy = dL/dy (same shape as y) and the matrix form above:

    db = sum over n, oh, ow of dy                        (C_out,)
    dW = cols^T @ dy                                     (kh*kw*C_in, C_out) -> HWIO
    dcols = dy @ W^T;  dx = crop(col2im(dcols))          (N, H, W, C_in)

col2im adds each window's gradient back onto every pixel it read; cropping drops the padding,
whose gradient belongs to no input.
"""

from __future__ import annotations

from typing import NamedTuple

from ._checks import as_float_array, check_dtype, check_same_dtype, check_shape, positive_pair
from .im2col import col2im, im2col, pad_nhwc, unpad_nhwc
from .windows import Window, plan_windows

_OP = "conv2d"


class Conv2dCache(NamedTuple):
    cols: object                 # (N, h_out, w_out, kh, kw, C_in)
    w: object                    # (kh, kw, C_in, C_out)
    has_bias: bool
    x_shape: tuple[int, ...]
    window: Window


def conv2d_forward(x, w, b=None, stride=1, padding="same"):
    """y = conv2d(x, w) + b. See the module docstring for shapes and padding forms.

    stride: int or (sh, sw), each >= 1.
    padding: "same" (Keras: odd pixel bottom/right), "valid", an int, (ph, pw), or
        ((top, bottom), (left, right)).
    Returns (y, cache).
    """
    x = as_float_array(_OP, "x", x, ndim=4)
    w = as_float_array(_OP, "w", w, ndim=4)
    if b is not None:
        b = as_float_array(_OP, "b", b, ndim=1)
    check_same_dtype(_OP, x=x, w=w, b=b)
    kh, kw, c_in, c_out = w.shape
    if x.shape[3] != c_in:
        raise ValueError(
            f"{_OP}: x has {x.shape[3]} channels but w expects C_in={c_in} "
            f"(x shape {tuple(x.shape)}, w shape {tuple(w.shape)}, w is HWIO)"
        )
    if b is not None:
        check_shape(_OP, "b", b, (c_out,))
    strides = positive_pair(_OP, "stride", stride)
    if kh < 1 or kw < 1:
        raise ValueError(f"{_OP}: w must have a kernel of at least 1x1, got shape {tuple(w.shape)}")
    window = plan_windows(_OP, x.shape[1:3], (kh, kw), strides, padding,
                          allowed=("same", "valid", "explicit"))

    cols = im2col(pad_nhwc(x, window.padding), window)
    n, (h_out, w_out) = x.shape[0], window.out_hw
    y = cols.reshape(-1, kh * kw * c_in) @ w.reshape(-1, c_out)
    if b is not None:
        y += b
    y = y.reshape(n, h_out, w_out, c_out)
    return y, Conv2dCache(cols, w, b is not None, tuple(x.shape), window)


def conv2d_backward(dy, cache: Conv2dCache):
    """Gradients (dx, dw, db) of conv2d_forward; db is None when the forward had no bias."""
    cols, w, has_bias, x_shape, window = cache
    kh, kw, c_in, c_out = w.shape
    n, h, wd, _ = x_shape
    dy = as_float_array(f"{_OP}_backward", "dy", dy, ndim=4)
    check_shape(f"{_OP}_backward", "dy", dy, (n, *window.out_hw, c_out))
    check_dtype(f"{_OP}_backward", "dy", dy, w.dtype)

    dy2d = dy.reshape(-1, c_out)
    cols2d = cols.reshape(-1, kh * kw * c_in)
    dw = (cols2d.T @ dy2d).reshape(w.shape)
    db = dy2d.sum(axis=0) if has_bias else None
    dcols = (dy2d @ w.reshape(-1, c_out).T).reshape(cols.shape)
    (top, bottom), (left, right) = window.padding
    padded_shape = (n, h + top + bottom, wd + left + right, c_in)
    dx = unpad_nhwc(col2im(dcols, padded_shape, window), window.padding, (h, wd))
    return dx, dw, db

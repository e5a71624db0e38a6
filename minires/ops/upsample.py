"""Nearest-neighbour upsampling of NHWC activations by integer factors: the decoder's way
back to the input's resolution in a change-detection network.

    x  (N, H, W, C)    factors (fh, fw)    y  (N, H*fh, W*fw, C)

    y[n, i, j, c] = x[n, i // fh, j // fw, c]                         forward
    dx[n, h, w, c] = sum_{a < fh, b < fw} dy[n, h*fh + a, w*fw + b, c]  backward

Each input pixel is copied into one fh x fw block of the output, so its gradient is the sum
of that block. Viewing y as (N, H, fh, W, fw, C) makes both a broadcast and a sum over axes.
"""

from __future__ import annotations

from ..backend import array_module
from ._checks import as_float_array, check_dtype, check_shape

_OP = "upsample2d"


def _factors(size) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1, as (fh, fw)."""
    pair = (size, size) if isinstance(size, int) and not isinstance(size, bool) else size
    try:
        fh, fw = pair
    except (TypeError, ValueError):
        fh = fw = None
    if not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1 for f in (fh, fw)):
        raise ValueError(f"{_OP}: size must be an int or a pair of ints >= 1, got {size!r}")
    return fh, fw


def upsample2d_forward(x, size=2):
    """y = x with every pixel repeated into a size[0] x size[1] block. Returns (y, cache)."""
    x = as_float_array(_OP, "x", x, ndim=4)
    fh, fw = _factors(size)
    n, h, w, c = x.shape
    xp = array_module(x)
    # broadcast_to is a view; the reshape copies it once into the output's memory.
    blocks = xp.broadcast_to(x[:, :, None, :, None, :], (n, h, fh, w, fw, c))
    y = blocks.reshape(n, h * fh, w * fw, c)
    return y, (tuple(x.shape), (fh, fw), x.dtype)


def upsample2d_backward(dy, cache):
    """dx = dy summed over each size[0] x size[1] block, shape of x."""
    shape, (fh, fw), dtype = cache
    n, h, w, c = shape
    op = f"{_OP}_backward"
    dy = as_float_array(op, "dy", dy, ndim=4)
    check_shape(op, "dy", dy, (n, h * fh, w * fw, c))
    check_dtype(op, "dy", dy, dtype)
    return dy.reshape(n, h, fh, w, fw, c).sum(axis=(2, 4))

"""im2col and col2im for NHWC tensors: windows gathered into rows, and scattered back.

``im2col`` copies every (kh x kw x C) window of a padded input into one row of a matrix, so
that a convolution becomes a single matrix product. It loops over the kh x kw offsets of the
window, not over pixels: for offset (i, j) the values that every output pixel reads there
form one strided slice of the padded input,

    xpad[:, i : i + sh*(h_out-1) + 1 : sh,  j : j + sw*(w_out-1) + 1 : sw, :]

of shape (N, h_out, w_out, C). kh*kw slice copies move all the data, so the Python loop is
short whatever the image size, and the same code runs on NumPy and CuPy.

``col2im`` is its adjoint: it adds each window's row back onto the pixels it was read from.
Windows overlap when the stride is smaller than the kernel, hence ``+=``, never ``=``.
"""

from __future__ import annotations

from ..backend import array_module
from ..windows import Padding, Window


def pad_nhwc(x, padding: Padding, value: float = 0.0):
    """x padded on H and W by ((top, bottom), (left, right)) with ``value``."""
    (top, bottom), (left, right) = padding
    if top == bottom == left == right == 0:
        return x
    xp = array_module(x)
    return xp.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=value)


def unpad_nhwc(xpad, padding: Padding, in_hw: tuple[int, int]):
    """The part of a padded tensor that lies over the original input."""
    (top, _), (left, _) = padding
    return xpad[:, top:top + in_hw[0], left:left + in_hw[1], :]


def offset_slice(i: int, j: int, window: Window) -> tuple[slice, slice, slice, slice]:
    """Index of the pixels that window offset (i, j) reads, one per output pixel."""
    (sh, sw), (h_out, w_out) = window.strides, window.out_hw
    return (slice(None), slice(i, i + sh * (h_out - 1) + 1, sh),
            slice(j, j + sw * (w_out - 1) + 1, sw), slice(None))


def im2col(xpad, window: Window):
    """Windows of a padded NHWC input: (N, h_out, w_out, kh, kw, C).

    Reshaped to (N*h_out*w_out, kh*kw*C), its rows line up with an HWIO kernel reshaped to
    (kh*kw*C, C_out), since both list a window in (kh, kw, C) row-major order.
    """
    if window.kernel == (1, 1) and window.strides == (1, 1):
        return xpad[:, :, :, None, None, :]      # each window is one pixel: a view, no copy
    xp = array_module(xpad)
    (kh, kw), (sh, sw), _, (h_out, w_out) = window
    n, hp, wp, c = xpad.shape
    cols = xp.empty((n, h_out, w_out, kh, kw, c), dtype=xpad.dtype)
    if xpad.flags.c_contiguous:
        # A window's row i is one run of kw*C numbers of the padded image's row: kh copies
        # of runs that long, not kh*kw copies of runs of C (three numbers at the seed's first
        # layer, where the copies cost more than the product).
        for i in range(kh):
            cols[:, :, :, i] = _window_rows(xpad, i, 0, 0, (sh, sw), (h_out, w_out), kw)
        return cols
    for i in range(kh):
        for j in range(kw):
            cols[:, :, :, i, j, :] = xpad[offset_slice(i, j, window)]
    return cols


def _window_rows(xpad, i, top, left, strides, out_hw, kw):
    """Row i of every window of a C-contiguous padded input as a strided view (N, h_out,
    w_out, kw, C), the windows' grid starting at pixel (top, left), at ``strides``."""
    xp = array_module(xpad)
    n, hp, wp, c = xpad.shape
    rows = xpad.reshape(n, hp, wp * c)
    item = xpad.itemsize
    runs = xp.lib.stride_tricks.as_strided(
        rows[:, top + i:, left * c:], shape=(n, *out_hw, kw * c),
        strides=(rows.strides[0], rows.strides[1] * strides[0], strides[1] * c * item, item))
    return runs.reshape(n, *out_hw, kw, c)


def im2col_by_pool_offset(xpad, window: Window):
    """im2col's windows grouped by where their output pixel lies in a 2x2, stride-2 pool
    window: (4, N, h_out / 2, w_out / 2, kh, kw, C), group 2 * a + b holding the windows of
    output pixels (2 * i + a, 2 * j + b); h_out and w_out even. A product
    with the kernel then gives each pool window's four pixels as four separate arrays of
    rows, whose maximum takes contiguous passes."""
    xp = array_module(xpad)
    (kh, kw), (sh, sw), _, (h_out, w_out) = window
    xpad = xp.ascontiguousarray(xpad)
    n, c = xpad.shape[0], xpad.shape[3]
    half = (h_out // 2, w_out // 2)
    cols = xp.empty((4, n, *half, kh, kw, c), dtype=xpad.dtype)
    for group in range(4):
        a, b = divmod(group, 2)
        for i in range(kh):
            cols[group, :, :, :, i] = _window_rows(xpad, i, a * sh, b * sw, (2 * sh, 2 * sw), half, kw)
    return cols


def col2im(cols, padded_shape: tuple[int, ...], window: Window):
    """Adjoint of ``im2col``: sum each window row back onto the padded input it came from."""
    if window.kernel == (1, 1) and window.strides == (1, 1):
        return cols[:, :, :, 0, 0, :]            # each window is one pixel: nothing overlaps
    xp = array_module(cols)
    kh, kw = window.kernel
    xpad = xp.zeros(padded_shape, dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            xpad[offset_slice(i, j, window)] += cols[:, :, :, i, j, :]
    return xpad

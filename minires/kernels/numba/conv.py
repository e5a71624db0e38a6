"""Numba kernels of ``minires.ops.conv``'s im2col convolution: the whole forward and
backward pass in blocks of output pixels, and col2im as a gather.

Each thread of ``minires.kernels.cpu_threads.run_ranges`` takes a range of output pixels and
runs every stage on one block of them at a time, BLAS products included, so that cols and
the masked gradient never leave the cache. The bias and the ReLU are the row loops of
``minires.kernels.numba.activation``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .. import cpu_threads
from . import _gemm as gemm
from ._inline import flat, relu_kept_nan, unsigned, wins
from ._launch import contiguous, launch
from .activation import _bias_activation_rows, _mask_and_sum_rows

INLINE_DIGEST = "8c8324cc122a6f0b"     # of _inline.py, whose helpers are compiled in here (its docstring says why)

# --- col2im ---------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _col2im(cols, dx, sh, sw, top, left):
    n, h_out, w_out, kh, kw, c = cols.shape
    _, h, w, _ = dx.shape
    for row in prange(n * h):
        b, r = row // h, row % h
        for s in range(w):
            dx[b, r, s, :] = 0
            # Every window (oh, ow) that read padded pixel (r + top, s + left) at offset (i, j).
            for i in range(kh):
                t = r + top - i
                if t < 0 or t % sh != 0 or t // sh >= h_out:
                    continue
                oh = t // sh
                for j in range(kw):
                    u = s + left - j
                    if u < 0 or u % sw != 0 or u // sw >= w_out:
                        continue
                    ow = u // sw
                    for ch in range(c):
                        dx[b, r, s, ch] += cols[b, oh, ow, i, j, ch]


def col2im(cols, x_shape, window):
    """Adjoint of im2col, cropped to the input: dx (N, H, W, C), the padding's share dropped.

    The same as ``unpad_nhwc(col2im(cols, padded_shape, window), ...)`` of the array code, as a
    gather: each input pixel sums the window rows that read it, in the same (i, j) order.
    """
    if window.pointwise:
        return cols[:, :, :, 0, 0, :]
    _, (sh, sw), ((top, _), (left, _)), _ = window
    dx = np.empty(x_shape, dtype=cols.dtype)
    launch(_col2im, cols.size, contiguous(cols), dx, sh, sw, top, left)
    return dx


# --- im2col convolution in blocks of output pixels -------------------------------------------
# The array code writes all of cols (7 MB for the seed's first layer), multiplies, then adds
# the bias and applies the ReLU in more passes over the 16 MB output. Here each thread takes
# a range of output pixels and, one block of them at a time, builds that block's cols,
# multiplies it (BLAS, one thread) and finishes its rows of the output while they are in the
# cache.

_BLOCK_VALUES = 1 << 17    # cols values per block (512 KB in float32): block rows = this / K


@njit(nogil=True, cache=True)
def _im2col_rows(x, cols, c, h_out, w_out, sh, sw, top, left, p0, p1):
    """cols[p - p0] = the window of output pixel p (flat over n, oh, ow), p0 <= p < p1.

    x is (N, H, W*C) and cols (rows, kh, kw*C), both C-contiguous: a window row that lies inside the image is
    one contiguous run of kw*C values in both (at stride 1 along W), copied in one go; the
    seed's first layer has C = 3, where a loop per channel would copy 3 values at a time.
    """
    _, h, wc = x.shape
    w = wc // c
    _, kh, kwc = cols.shape
    kw = kwc // c
    # The runs are copied through flat buffers with unsigned indices (``_inline``): with
    # three indices each, a run of 9 numbers (C = 3) paid for its index checks several times
    # over.
    x_flat, cols_flat = flat(x)[0], flat(cols)[0]
    for p in range(p0, p1):
        b, rest = p // (h_out * w_out), p % (h_out * w_out)
        oh, ow = rest // w_out, rest % w_out
        s0 = ow * sw - left
        slot = p - p0
        for i in range(kh):
            r = oh * sh + i - top
            to = (slot * kh + i) * kwc
            if r < 0 or r >= h:
                for t in range(kwc):
                    cols_flat[unsigned(to, t)] = 0
            elif s0 >= 0 and s0 + kw <= w:
                at = (b * h + r) * wc + s0 * c
                for t in range(kwc):
                    cols_flat[unsigned(to, t)] = x_flat[unsigned(at, t)]
            else:
                for j in range(kw):
                    s = s0 + j
                    inside = 0 <= s < w
                    for ch in range(c):
                        cols[slot, i, j * c + ch] = x[b, r, s * c + ch] if inside else 0


def _block_rows(k_values):
    return max(16, _BLOCK_VALUES // max(k_values, 1))


# --- inference at stride 1: the windows read in place from the zero-padded image --------------
# Padded to hp x wp and flattened, an image holds every window of a stride-1 convolution at a
# fixed pattern of offsets: the window of grid position m = r * wp + s starts at m * C, and
# kernel row i of it is the run of kw * C numbers at m * C + i * wp * C. So the convolution
# over the whole padded grid is one matrix product whose left operand is a strided view of
# the image (rows m at stride C, kh parts at stride wp * C, kw * C numbers each), with no
# cols copied at all (_gemm.window_product). Grid columns s >= w_out are windows that run
# off the right edge into the next row: computed (wp / w_out more work) and dropped. Only
# without keep_cols: the backward pass reads cols.

def _runs_direct(window, c_out, dtype) -> bool:
    """Whether this convolution runs as one product over the padded image (inference)."""
    return window.strides == (1, 1) and not window.pointwise and gemm.takes(dtype, c_out)


def _padded_images(x, window):
    """(flat, wp): x zero-padded as ``window`` says, each image one row of ``flat`` (N,
    (hp * wp + kw - 1) * C), the last kw - 1 pixels slack for the dropped windows of the
    last grid row to read."""
    (_, kw), _, ((top, bottom), (left, right)), _ = window
    n, h, w, c = x.shape
    hp, wp = h + top + bottom, w + left + right
    flat = np.zeros((n, (hp * wp + kw - 1) * c), dtype=x.dtype)
    flat[:, :hp * wp * c].reshape(n, hp, wp, c)[:, top:top + h, left:left + w] = x
    return flat, wp


_IMAGES_PER_PRODUCT = 2     # images convolved by one product call (their grids stay in L2)


def _convolve_images(flat, b0, b1, w_parts, z, window, wp):
    """z[:b1 - b0] ((h_out * wp, C_out) each) = the convolution of images b0 .. b1 - 1 of
    ``flat`` at every grid position of their output rows; w_parts is w2d as (kh, kw * C,
    C_out)."""
    kh, kw = window.kernel
    c = w_parts.shape[1] // kw
    item = flat.itemsize
    windows = np.lib.stride_tricks.as_strided(
        flat[b0:], shape=(b1 - b0, z.shape[1], kh, kw * c),
        strides=(flat.strides[0], c * item, wp * c * item, item))
    gemm.window_product(windows, w_parts, z[:b1 - b0])


def _convolve_in_place(x, w2d, window, finish):
    """Stride 1 (``_runs_direct``): each image's convolution over its whole padded grid, each
    thread taking whole images, ``_IMAGES_PER_PRODUCT`` to a product call, handed to
    ``finish(z, b0, b1, wp)`` with z[:b1 - b0] ((h_out * wp, C_out) each) the grids of images
    b0 .. b1 - 1 (no bias), while they are in the cache."""
    (kh, kw), _, _, (h_out, w_out) = window
    n, c = x.shape[0], x.shape[3]
    k_values, c_out = w2d.shape
    flat_x, wp = _padded_images(x, window)
    w_parts = w2d.reshape(kh, kw * c, c_out)

    def images_from(lo, hi):
        z = np.empty((_IMAGES_PER_PRODUCT, h_out * wp, c_out), dtype=x.dtype)
        for b0 in range(lo, hi, _IMAGES_PER_PRODUCT):
            b1 = min(b0 + _IMAGES_PER_PRODUCT, hi)
            _convolve_images(flat_x, b0, b1, w_parts, z, window, wp)
            finish(z[:b1 - b0], b0, b1, wp)

    cpu_threads.run_ranges(images_from, n, n * h_out * wp * k_values * c_out)


def _finish_in_place(x, w2d, bias, window, relu, pool, y):
    """Inference at stride 1: y, (N * P, C_out), gets each image's P output pixels + bias
    (ReLU'd with ``relu``, ``_finish_images``), or with ``pool`` their 2x2 max-pool
    (``_pool_images``)."""
    w_out, c_out = window.out_hw[1], w2d.shape[1]
    per_image = y.shape[0] // x.shape[0]

    nothing = np.empty((1, 0, c_out), dtype=np.uint8)

    def finish(z, b0, b1, wp):
        out = y[b0 * per_image:b1 * per_image].reshape(b1 - b0, per_image, c_out)
        if pool:
            _pool_images(z, wp, w_out, bias, relu, out, nothing, nothing.view(np.bool_), False)
        else:
            _finish_images(z, wp, w_out, bias, relu, out)

    _convolve_in_place(x, w2d, window, finish)


@njit(inline="always")
def _finished(z, b, relu):
    """z + b, ReLU'd with ``relu`` (NaN kept)."""
    return relu_kept_nan(z + b) if relu else z + b


@njit(nogil=True, cache=True)
def _finish_images(z, wp, w_out, bias, relu, out):
    """From each image's grid z[t] (h_out * wp, C_out): its output pixels (the dropped
    columns left out) + bias, ReLU'd with ``relu`` (NaN kept), into out[t] (h_out * w_out,
    C_out). z and out are read through flat buffers (``_inline``), so that the channel loops
    are vector code."""
    images, grid, c = z.shape
    per_image = out.shape[1]
    h_out = grid // wp
    z_flat, out_flat = flat(z)[0], flat(out)[0]
    for t in range(images):
        for oh in range(h_out):
            for ow in range(w_out):
                at, to = (t * grid + oh * wp + ow) * c, (t * per_image + oh * w_out + ow) * c
                for ch in range(c):
                    out_flat[unsigned(to, ch)] = _finished(z_flat[unsigned(at, ch)], bias[ch], relu)


@njit(inline="always")
def _first_max(v0, v1, v2, v3):
    """(value, place) of the first maximum of a 2x2 window in row-major order, a NaN winning
    (``wins``): each row's winner, then theirs, in two chains that run side by side."""
    upper, at_upper = (v1, 1) if (v0 == v0 and (v1 > v0 or v1 != v1)) else (v0, 0)
    lower, at_lower = (v3, 3) if (v2 == v2 and (v3 > v2 or v3 != v3)) else (v2, 2)
    if upper == upper and (lower > upper or lower != lower):
        return lower, at_lower
    return upper, at_upper


@njit(nogil=True, cache=True)
def _pool_images(z, wp, w_out, bias, relu, out, argmax, positive, keep_places):
    """From each image's grid z[t] (h_out * wp, C_out): the 2x2 max-pool of z + bias into
    out[t] (h_out * w_out / 4, C_out), ReLU'd with ``relu`` (NaN kept); with ``keep_places``
    (training) also the winner's place in its window (0 .. 3, row-major) into argmax[t],
    and with ``relu`` whether it is positive into positive[t]. The bias is added before the
    comparisons, so the places are those of the max-pool of conv + bias (and of its ReLU
    where the winner is positive); the ReLU after them, as it does not decrease."""
    images, grid, c = z.shape
    per_image = out.shape[1]
    h_out = grid // wp
    half = w_out // 2
    z_flat, out_flat = flat(z)[0], flat(out)[0]
    places, kept = flat(argmax)[0], flat(positive)[0]
    for t in range(images):
        for ph in range(h_out // 2):
            for pw in range(half):
                at = (t * grid + 2 * ph * wp + 2 * pw) * c          # the window's first pixel
                to = (t * per_image + ph * half + pw) * c
                below = at + wp * c
                for ch in range(c):
                    b = bias[ch]
                    value, place = _first_max(z_flat[unsigned(at, ch)] + b, z_flat[unsigned(at + c, ch)] + b,
                                              z_flat[unsigned(below, ch)] + b,
                                              z_flat[unsigned(below + c, ch)] + b)
                    out_flat[unsigned(to, ch)] = relu_kept_nan(value) if relu else value
                    if keep_places:
                        places[unsigned(to, ch)] = place
                        if relu:
                            kept[unsigned(to, ch)] = value > 0


def im2col_conv_forward(x, w2d, bias, window, relu, keep_cols):
    """(y, positive, cols) of an im2col convolution: y = cols(x) @ w2d + bias, and with
    ``relu`` y = max(that, 0). y is (N, h_out, w_out, C_out). With ``keep_cols`` (training),
    positive is the ReLU's mask (None without relu) and cols (N, h_out, w_out, kh, kw, C) as
    ``im2col`` gives it, for the backward pass; without (inference) both are None, and each
    thread reuses one block-sized buffer. A 1x1 window at stride 1 without padding needs no
    cols: its blocks are rows of x (and its cols a view of x)."""
    (kh, kw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    n, c = x.shape[0], x.shape[3]
    k_values, c_out = w2d.shape
    pixels = n * h_out * w_out
    pointwise = window.pointwise
    x, w2d = contiguous(x), contiguous(w2d)
    x_rows = x.reshape(n, x.shape[1], x.shape[2] * c)       # (N, H, W*C): window rows are runs
    bias = np.zeros(c_out, dtype=x.dtype) if bias is None else contiguous(bias)
    y = np.empty((pixels, c_out), dtype=x.dtype)
    keep_mask = relu and keep_cols
    positive = np.empty((pixels if keep_mask else 0, c_out), dtype=np.bool_)
    if not keep_cols and _runs_direct(window, c_out, x.dtype):
        _finish_in_place(x, w2d, bias, window, relu, False, y)
        return y.reshape(n, h_out, w_out, c_out), None, None
    rows = _block_rows(k_values)
    kept = np.empty((pixels, kh, kw * c), dtype=x.dtype) if keep_cols and not pointwise else None

    def pixels_from(lo, hi):
        cols = np.empty((rows, kh, kw * c), dtype=x.dtype) if kept is None and not pointwise else None
        for p0 in range(lo, hi, rows):
            p1 = min(p0 + rows, hi)
            if pointwise:
                block = x.reshape(pixels, c)[p0:p1]
            else:
                block = kept[p0:p1] if kept is not None else cols[:p1 - p0]
                _im2col_rows(x_rows, block, c, h_out, w_out, sh, sw, top, left, p0, p1)
            gemm.product(block.reshape(p1 - p0, k_values), w2d, y[p0:p1])
            _bias_activation_rows(y[p0:p1], bias, positive[p0:p1] if keep_mask else positive, relu,
                                  keep_mask)

    cpu_threads.run_ranges(pixels_from, pixels, pixels * k_values * c_out)
    shape = (n, h_out, w_out, c_out)
    if not keep_cols:
        return y.reshape(shape), None, None
    cols = x[:, :, :, None, None, :] if pointwise else kept.reshape(n, h_out, w_out, kh, kw, c)
    return y.reshape(shape), (positive.reshape(shape) if relu else None), cols


# --- inference: the convolution and a 2x2 max-pool after it, in one pass ----------------------
# In an inference graph a conv layer whose only reader is a 2x2 max-pool needs its output only
# pooled: each block of whole pairs of output rows is convolved into a thread's buffer and
# pooled from there, so the full-size output is never written and read back.

@njit(nogil=True, cache=True)
def _maxpool_row_pairs(z, y, w_out):
    """y[q] = the 2x2 max-pool of z, whose rows are the pixels of whole pairs of output rows
    (2 * w_out each), windows in row-major order: (0, 0), (0, 1), (1, 0), (1, 1); each
    row's winner, then theirs (as ``_finish_images``), through flat buffers."""
    rows, c = z.shape
    half = w_out // 2
    z_flat, y_flat = flat(z)[0], flat(y)[0]
    for u in range(rows // (2 * w_out)):
        for o in range(half):
            at = (u * 2 * w_out + 2 * o) * c
            below = at + w_out * c
            to = (u * half + o) * c
            for ch in range(c):
                upper = wins(z_flat[unsigned(at, ch)], z_flat[unsigned(at + c, ch)])
                lower = wins(z_flat[unsigned(below, ch)], z_flat[unsigned(below + c, ch)])
                y_flat[unsigned(to, ch)] = wins(upper, lower)


def im2col_conv_maxpool_forward(x, w2d, bias, window, relu):
    """The 2x2, stride-2 max-pool of ``im2col_conv_forward``'s y (keep_cols false), the output
    height and width even: (N, h_out / 2, w_out / 2, C_out). For inference only."""
    (kh, kw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    n, c = x.shape[0], x.shape[3]
    k_values, c_out = w2d.shape
    pointwise = window.pointwise
    x, w2d = contiguous(x), contiguous(w2d)
    x_rows = x.reshape(n, x.shape[1], x.shape[2] * c)
    bias = np.zeros(c_out, dtype=x.dtype) if bias is None else contiguous(bias)
    unit, half = 2 * w_out, w_out // 2          # pixels of a pair of output rows; pooled pixels
    units = n * (h_out // 2)
    y = np.empty((units * half, c_out), dtype=x.dtype)
    per_block = max(1, _block_rows(max(k_values, c_out)) // unit)
    no_mask = np.empty((0, c_out), dtype=np.bool_)
    if _runs_direct(window, c_out, x.dtype):
        _finish_in_place(x, w2d, bias, window, relu, True, y)
        return y.reshape(n, h_out // 2, half, c_out)

    def units_from(lo, hi):
        cols = None if pointwise else np.empty((per_block * unit, kh, kw * c), dtype=x.dtype)
        z = np.empty((per_block * unit, c_out), dtype=x.dtype)
        for u0 in range(lo, hi, per_block):
            u1 = min(u0 + per_block, hi)
            p0, p1 = u0 * unit, u1 * unit
            if pointwise:
                block = x.reshape(-1, c)[p0:p1]
            else:
                block = cols[:p1 - p0]
                _im2col_rows(x_rows, block, c, h_out, w_out, sh, sw, top, left, p0, p1)
            zb = z[:p1 - p0]
            gemm.product(block.reshape(p1 - p0, k_values), w2d, zb)
            # Pooled first, then the bias and the ReLU on a quarter of the numbers: both are
            # non-decreasing (rounding included), so the window's winner stays the winner.
            pooled = y[u0 * half:u1 * half]
            _maxpool_row_pairs(zb, pooled, w_out)
            _bias_activation_rows(pooled, bias, no_mask, relu, False)

    cpu_threads.run_ranges(units_from, units, n * h_out * w_out * k_values * c_out)
    return y.reshape(n, h_out // 2, half, c_out)


# --- training: a stride-1 convolution and the 2x2 max-pool after it, cols never kept ----------
# The forward pass pools each image's grid while it is in the cache, as inference does, and
# keeps the winners' places (argmax) and the input; the backward pass builds each block's
# cols again from the input (a few kilobytes of it per block), places the pooled gradient at
# the winners, and multiplies, so that neither cols nor the full-size output nor its
# gradient is ever written out whole.

def im2col_conv_maxpool_training_forward(x, w2d, bias, window, relu):
    """(y, argmax, positive): the 2x2, stride-2 max-pool of the convolution + bias, ReLU'd
    with ``relu``, each window's winner's place (ops.maxpool2d_forward's argmax of conv +
    bias), and with ``relu`` the mask y > 0 (None without); each (N, h_out / 2, w_out / 2,
    C_out). For training; the backward pass reads x again
    (``im2col_conv_maxpool_training_backward``). None where it does not apply: a stride
    other than 1, a 1x1 window, a dtype or width the product does not take, an odd output."""
    h_out, w_out = window.out_hw
    if not _runs_direct(window, w2d.shape[1], x.dtype) or h_out % 2 or w_out % 2:
        return None
    n, c_out = x.shape[0], w2d.shape[1]
    x, w2d = contiguous(x), contiguous(w2d)
    bias = np.zeros(c_out, dtype=x.dtype) if bias is None else contiguous(bias)
    shape = (n, h_out // 2, w_out // 2, c_out)
    y = np.empty(shape, dtype=x.dtype)
    argmax = np.empty(shape, dtype=np.uint8)
    positive = np.empty(shape if relu else (n, 0, 0, c_out), dtype=np.bool_)

    def finish(z, b0, b1, wp):
        def part(a):
            return a[b0:b1].reshape(b1 - b0, -1, c_out)
        _pool_images(z, wp, w_out, bias, relu, part(y), part(argmax), part(positive), True)

    _convolve_in_place(x, w2d, window, finish)
    return y, argmax, (positive if relu else None)


@njit(nogil=True, cache=True)
def _unpool_row_pairs(dq, argmax, dz, w_out):
    """dz (rows of whole pairs of output rows, 2 * w_out pixels each, C_out) from the pooled
    gradient dq and its argmax (w_out / 2 pixels per pair of rows): each window's winner
    gets dq, its other three pixels 0 (the adjoint of the pool, as a gather)."""
    rows, c = dz.shape
    half = w_out // 2
    dq_flat, places, dz_flat = flat(dq)[0], flat(argmax)[0], flat(dz)[0]
    for u in range(rows // (2 * w_out)):
        for o in range(half):
            at = (u * half + o) * c
            for place in range(4):
                to = (u * 2 * w_out + (place // 2) * w_out + 2 * o + place % 2) * c
                for ch in range(c):
                    g = dq_flat[unsigned(at, ch)]
                    dz_flat[unsigned(to, ch)] = g if places[unsigned(at, ch)] == place else 0


def im2col_conv_maxpool_training_backward(dq, argmax, x, w2d, window, input_grad):
    """(dx, dw2d) of the convolution under ``im2col_conv_maxpool_training_forward`` from dq,
    the gradient of the pooled conv + bias (the pooled ReLU's mask already applied): dz has
    dq at each window's winner and 0 elsewhere, dw2d = cols(x)^T dz, dx = col2im(dz w2d^T)
    (None without ``input_grad``). Block by block of whole pairs of output rows, each
    block's cols built again from x, dw2d summed per thread and then over threads in a fixed
    order."""
    (kh, kw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    n, c = x.shape[0], x.shape[3]
    k_values, c_out = w2d.shape
    x, dq, argmax = contiguous(x), contiguous(dq), contiguous(argmax)
    x_rows = x.reshape(n, x.shape[1], x.shape[2] * c)
    unit, half = 2 * w_out, w_out // 2
    units = n * (h_out // 2)
    dq_rows, places = dq.reshape(units * half, c_out), argmax.reshape(units * half, c_out)
    per_block = max(1, _block_rows(max(k_values, c_out)) // unit)
    dz_kept = np.empty((units * unit, c_out), dtype=dq.dtype) if input_grad else None
    partial = {}

    def units_from(lo, hi):
        cols = np.empty((per_block * unit, kh, kw * c), dtype=x.dtype)
        scratch = np.empty((per_block * unit, c_out), dtype=dq.dtype)
        dw = np.zeros((k_values, c_out), dtype=dq.dtype)
        for u0 in range(lo, hi, per_block):
            u1 = min(u0 + per_block, hi)
            p0, p1 = u0 * unit, u1 * unit
            dz = dz_kept[p0:p1] if dz_kept is not None else scratch[:p1 - p0]
            _unpool_row_pairs(dq_rows[u0 * half:u1 * half], places[u0 * half:u1 * half], dz, w_out)
            block = cols[:p1 - p0]
            _im2col_rows(x_rows, block, c, h_out, w_out, sh, sw, top, left, p0, p1)
            gemm.product(block.reshape(p1 - p0, k_values).T, dz, dw, accumulate=True)   # dW += cols^T dz
        partial[lo] = dw

    cpu_threads.run_ranges(units_from, units, (2 if input_grad else 1) * units * unit * k_values * c_out)
    dw = _sum_in_order([partial[lo] for lo in sorted(partial)], (k_values, c_out), dq.dtype)
    if dz_kept is None:
        return None, dw
    dcols = cpu_threads.matmul(dz_kept, w2d.T)                     # dcols = dz W^T
    return col2im(dcols.reshape(n, h_out, w_out, kh, kw, c), x.shape, window), dw


def _sum_in_order(parts, shape, dtype):
    """The threads' partial sums added in a fixed order (reproducible sums); zeros for none
    (an empty batch)."""
    if not parts:
        return np.zeros(shape, dtype=dtype)
    total = parts[0]
    for more in parts[1:]:
        total += more
    return total


def im2col_conv_backward(dy, cols, positive, w2d, window, x_shape, input_grad):
    """(dx, dW, db) of ``im2col_conv_forward`` from dy and its cols (and mask, with its ReLU).

    Block by block: dz = dy masked, db its column sums, dW = cols^T dz summed per thread,
    then over threads in a fixed order, without dz ever leaving the cache. dx is None
    without ``input_grad``. For a 1x1 window at stride 1 without padding, dx = dz W^T is
    made in the same blocks (row by row: windows do not overlap); for other windows, whose
    windows overlap across blocks, dz is kept whole and dx = col2im(dz W^T) follows the blocks.
    """
    n, h_out, w_out, kh, kw, c = cols.shape
    k_values, c_out = w2d.shape
    pixels = n * h_out * w_out
    pointwise = window.pointwise
    cols2d, dy2d = contiguous(cols).reshape(pixels, k_values), contiguous(dy).reshape(pixels, c_out)
    relu = positive is not None
    mask = contiguous(positive).reshape(pixels, c_out) if relu else np.empty((0, 0), dtype=np.bool_)
    w_t = np.ascontiguousarray(w2d.T)
    dx_rows = np.empty((pixels, k_values), dtype=dy.dtype) if input_grad and pointwise else None
    dz_kept = np.empty((pixels, c_out), dtype=dy.dtype) if input_grad and not pointwise else None
    rows = _block_rows(max(k_values, c_out))
    partial = {}

    def pixels_from(lo, hi):
        scratch = np.empty((rows, c_out), dtype=dy.dtype)
        dw = np.zeros((k_values, c_out), dtype=dy.dtype)
        db = np.zeros(c_out, dtype=dy.dtype)
        for p0 in range(lo, hi, rows):
            p1 = min(p0 + rows, hi)
            dz = dz_kept[p0:p1] if dz_kept is not None else scratch[:p1 - p0]
            _mask_and_sum_rows(dy2d[p0:p1], mask[p0:p1] if relu else mask, dz, db, relu)
            gemm.product(cols2d[p0:p1].T, dz, dw, accumulate=True)   # dW += cols^T dz
            if dx_rows is not None:
                gemm.product(dz, w_t, dx_rows[p0:p1])                 # dx rows = dz W^T
        partial[lo] = (dw, db)

    cpu_threads.run_ranges(pixels_from, pixels, (2 if input_grad else 1) * pixels * k_values * c_out)
    parts = [partial[lo] for lo in sorted(partial)]
    dw = _sum_in_order([dw for dw, _ in parts], (k_values, c_out), dy.dtype)
    db = _sum_in_order([db for _, db in parts], (c_out,), dy.dtype)
    if dx_rows is not None:
        dx = dx_rows.reshape(n, h_out, w_out, k_values)
    elif dz_kept is not None:
        dcols = cpu_threads.matmul(dz_kept, w2d.T)                 # dcols = dz W^T
        dx = col2im(dcols.reshape(cols.shape), x_shape, window)
    else:
        dx = None
    return dx, dw, db

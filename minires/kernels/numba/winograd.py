"""Numba kernels of ``minires.ops.winograd``: Winograd F(m x m, 3 x 3) convolutions, forward
and backward, in cache-sized blocks of tiles.

The transforms of minires.ops.winograd, one kernel per stage, each fused with the padding,
tiling or cropping around it, for any of its transforms (F(2x2, 3x3), F(4x4, 3x3)): the
matrices come in as small arrays and zero coefficients are skipped outside the channel loop,
so F(2x2, 3x3)'s sparse B^T costs only its additions; F(4x4, 3x3), the transform ``auto``
picks, has its matrices written out as sums (``_f4_*``). A block's transformed arrays are
(T, alpha^2, C): the block's tile t, then tile position (p, q) at index p*alpha + q, then
channels, so that a tile transform reads or writes one contiguous run; each position is a
(T, C) matrix whose rows lie alpha^2 * C apart, the stack the products take
(``_positions_first``). Both passes run one cache-sized block of tiles at a time, each thread
over a range of tiles of its own (``winograd_forward_blocked``,
``winograd_backward_blocked``), so the transformed arrays (V, M, dM, dV) never exist in
full.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from .. import cpu_threads
from . import _gemm as gemm
from ._inline import flat, relu_kept_nan, stack_array, unsigned, wins
from ._launch import SUMS, contiguous

INLINE_DIGEST = "8c8324cc122a6f0b"     # of _inline.py, whose helpers are compiled in here (its docstring says why)


@njit(cache=True, fastmath=SUMS)
def _input_tile(x, bt, e, v, slot, b, ty, tx, m, top, left):
    """V = B^T d B of tile (b, ty, tx) into v[slot]; e is (alpha, alpha, C) scratch."""
    _, h, w, c = x.shape
    alpha = bt.shape[0]
    r0, s0 = m * ty - top, m * tx - left
    e[:] = 0                                            # e[i, q] = row i of (d B)
    for i in range(alpha):
        r = r0 + i
        if r < 0 or r >= h:
            continue
        for j in range(alpha):
            s = s0 + j
            if s < 0 or s >= w:
                continue
            for q in range(alpha):
                coef = bt[q, j]
                if coef != 0:
                    for ch in range(c):
                        e[i, q, ch] += coef * x[b, r, s, ch]
    for p in range(alpha):
        for q in range(alpha):
            k = p * alpha + q
            v[slot, k, :] = 0
            for i in range(alpha):
                coef = bt[p, i]
                if coef != 0:
                    for ch in range(c):
                        v[slot, k, ch] += coef * e[i, q, ch]


@njit(cache=True, fastmath=SUMS)
def _output_tile(mt, at, f, bias, y, slot, b, ty, tx, relu):
    """y = A^T M A + bias of the tile in mt[slot], with ``relu`` max(that, 0) with NaN
    kept, written to its pixels of y (cropped); f is (m, alpha, C) scratch."""
    _, h_out, w_out, c = y.shape
    m, alpha = at.shape
    f[:] = 0                                            # f[p, j] = row p of (A^T M)
    for p in range(m):
        for i in range(alpha):
            coef = at[p, i]
            if coef != 0:
                for j in range(alpha):
                    for ch in range(c):
                        f[p, j, ch] += coef * mt[slot, i * alpha + j, ch]
    for p in range(m):
        r = m * ty + p
        if r >= h_out:
            continue
        for q in range(m):
            s = m * tx + q
            if s >= w_out:
                continue
            y[b, r, s, :] = bias
            for j in range(alpha):
                coef = at[q, j]
                if coef != 0:
                    for ch in range(c):
                        y[b, r, s, ch] += coef * f[p, j, ch]
            if relu:
                for ch in range(c):
                    v = y[b, r, s, ch]
                    y[b, r, s, ch] = v if (v > 0 or v != v) else 0


# F(4x4, 3x3), the transform ``auto`` picks, written out: its matrices' rows as sums of
# numbers rather than loops over coefficients, with the sums they share computed once, so each
# stage is one pass over the channels (the generic tile functions above make one pass per
# nonzero coefficient, reading the matrices as data).
# Each 1-D transform below is one matrix of ops.winograd.F4X4_3X3 applied to a vector:
# tests/kernels/numba/test_winograd.py applies them to unit vectors and compares.

@njit(inline="always")
def _x2(a):
    """2a, in a's own type: a literal 2 would make float32 arithmetic float64 in Numba (and
    2a, 4a and 8a are exact, so these round as the products do)."""
    return a + a


@njit(inline="always")
def _x4(a):
    return _x2(_x2(a))


@njit(inline="always")
def _x5(a):
    return _x4(a) + a


@njit(inline="always")
def _x8(a):
    return _x2(_x4(a))


@njit(inline="always")
def _f4_bt(d0, d1, d2, d3, d4, d5):
    """B^T d: the input transform along one axis of a tile (6 -> 6)."""
    a, b = d4 - _x4(d2), d3 - _x4(d1)
    c, e = d4 - d2, _x2(d3 - d1)
    return _x4(d0) - _x5(d2) + d4, a + b, a - b, c + e, c - e, _x4(d1) - _x5(d3) + d5


@njit(inline="always")
def _f4_b(v0, v1, v2, v3, v4, v5):
    """B v: the transpose of ``_f4_bt``, for the input gradient (6 -> 6)."""
    return (_x4(v0), _x4(v2 - v1) + _x2(v4 - v3) + _x4(v5), -_x5(v0) - _x4(v1 + v2) - (v3 + v4),
            (v1 - v2) + _x2(v3 - v4) - _x5(v5), v0 + v1 + v2 + v3 + v4, v5)


@njit(inline="always")
def _f4_at(m0, m1, m2, m3, m4, m5):
    """A^T m: the output transform along one axis of a tile (6 -> 4)."""
    s12, d12, s34, d34 = m1 + m2, m1 - m2, m3 + m4, m3 - m4
    return m0 + s12 + s34, d12 + _x2(d34), s12 + _x4(s34), d12 + _x8(d34) + m5


@njit(inline="always")
def _f4_a(y0, y1, y2, y3):
    """A y: the transpose of ``_f4_at``, for the output gradient (4 -> 6)."""
    s02, s13 = y0 + y2, y1 + y3
    e, o = y0 + _x4(y2), _x2(y1 + _x4(y3))
    return y0, s02 + s13, s02 - s13, e + o, e - o, y3


# The F(4x4, 3x3) tile transforms on flat buffers, a chunk of _LANES channels at a time:
# every load and store indexes a flat buffer with an unsigned index, and each stage's
# intermediate (B^T d, A^T M, ...) lives in a stack scratch, so that every channel loop is
# vector code with no runtime check that its arrays overlap (minires.kernels.numba._inline).
# A tile's positions k = 6 p + q lie c apart in a block's (T, 36, C) array.

_LANES = 64                  # channels per chunk
_TILE_SCRATCH = 36 * _LANES  # a 6x6 tile's chunk
_ROWS_SCRATCH = 24 * _LANES  # four of its rows (the output transform's A^T M, dY A^T)
_OUT_SCRATCH = 16 * _LANES   # a 4x4 output tile's chunk


@njit(inline="always", fastmath=SUMS)
def _input_tile_f4(src, at, row_step, c, v, to):
    """V = B^T d B of the 6x6 tile d of a zero-padded image into a block's V: d's pixel
    (i, j), channel ch at src[at + i * row_step + j * c + ch], V's position k at
    v[to + k * c + ch]. e = B^T d column by column, then V = e B row by row."""
    e = numba.carray(stack_array(v, _TILE_SCRATCH), (36, _LANES))   # e[6 i + j] = (B^T d)[i, j]
    for c0 in range(0, c, _LANES):
        width = min(_LANES, c - c0)
        for j in range(6):
            col = at + j * c + c0
            for q in range(width):
                t0, t1, t2, t3, t4, t5 = _f4_bt(
                    src[unsigned(col, q)], src[unsigned(col + row_step, q)],
                    src[unsigned(col + 2 * row_step, q)], src[unsigned(col + 3 * row_step, q)],
                    src[unsigned(col + 4 * row_step, q)], src[unsigned(col + 5 * row_step, q)])
                e[j, q], e[6 + j, q], e[12 + j, q] = t0, t1, t2
                e[18 + j, q], e[24 + j, q], e[30 + j, q] = t3, t4, t5
        for p in range(6):
            row = to + 6 * p * c + c0
            for q in range(width):
                t0, t1, t2, t3, t4, t5 = _f4_bt(e[6 * p, q], e[6 * p + 1, q], e[6 * p + 2, q],
                                                e[6 * p + 3, q], e[6 * p + 4, q], e[6 * p + 5, q])
                v[unsigned(row, q)] = t0
                v[unsigned(row + c, q)] = t1
                v[unsigned(row + 2 * c, q)] = t2
                v[unsigned(row + 3 * c, q)] = t3
                v[unsigned(row + 4 * c, q)] = t4
                v[unsigned(row + 5 * c, q)] = t5


@njit(inline="always", fastmath=SUMS)
def _output_tile_f4(mt, at, c, c0, width, bias, relu, out):
    """Y = A^T M A + bias, ReLU'd with ``relu`` (NaN kept), of the tile whose position k,
    channel ch is mt[at + k * c + ch], for channels c0 .. c0 + width: pixel (p, q) of the
    4x4 tile into out[4 p + q, :width] (a stack scratch). f = A^T M column by column, then
    Y = f A row by row."""
    f = numba.carray(stack_array(mt, _ROWS_SCRATCH), (24, _LANES))   # f[6 p + j] = (A^T M)[p, j]
    for j in range(6):
        col = at + j * c + c0
        for q in range(width):
            t0, t1, t2, t3 = _f4_at(mt[unsigned(col, q)], mt[unsigned(col + 6 * c, q)],
                                    mt[unsigned(col + 12 * c, q)], mt[unsigned(col + 18 * c, q)],
                                    mt[unsigned(col + 24 * c, q)], mt[unsigned(col + 30 * c, q)])
            f[j, q], f[6 + j, q], f[12 + j, q], f[18 + j, q] = t0, t1, t2, t3
    for p in range(4):
        for q in range(width):
            t0, t1, t2, t3 = _f4_at(f[6 * p, q], f[6 * p + 1, q], f[6 * p + 2, q],
                                    f[6 * p + 3, q], f[6 * p + 4, q], f[6 * p + 5, q])
            b = bias[unsigned(c0, q)]
            if relu:
                out[4 * p, q], out[4 * p + 1, q] = relu_kept_nan(t0 + b), relu_kept_nan(t1 + b)
                out[4 * p + 2, q], out[4 * p + 3, q] = relu_kept_nan(t2 + b), relu_kept_nan(t3 + b)
            else:
                out[4 * p, q], out[4 * p + 1, q] = t0 + b, t1 + b
                out[4 * p + 2, q], out[4 * p + 3, q] = t2 + b, t3 + b


@njit(inline="always", fastmath=SUMS)
def _output_grad_tile_f4(d, width, dm, to, c, c0):
    """dM = A dY A^T of the 4x4 tile dY in d[4 p + q, :width] (a stack scratch) into a block's
    dM: position k, channel c0 + ch at dm[to + k * c + c0 + ch]. g = dY A^T row by row, then
    dM = A g column by column."""
    g = numba.carray(stack_array(dm, _ROWS_SCRATCH), (24, _LANES))   # g[6 p + j] = (dY A^T)[p, j]
    for p in range(4):
        for q in range(width):
            t0, t1, t2, t3, t4, t5 = _f4_a(d[4 * p, q], d[4 * p + 1, q], d[4 * p + 2, q], d[4 * p + 3, q])
            g[6 * p, q], g[6 * p + 1, q], g[6 * p + 2, q] = t0, t1, t2
            g[6 * p + 3, q], g[6 * p + 4, q], g[6 * p + 5, q] = t3, t4, t5
    for j in range(6):
        col = to + j * c + c0
        for q in range(width):
            t0, t1, t2, t3, t4, t5 = _f4_a(g[j, q], g[6 + j, q], g[12 + j, q], g[18 + j, q])
            dm[unsigned(col, q)] = t0
            dm[unsigned(col + 6 * c, q)] = t1
            dm[unsigned(col + 12 * c, q)] = t2
            dm[unsigned(col + 18 * c, q)] = t3
            dm[unsigned(col + 24 * c, q)] = t4
            dm[unsigned(col + 30 * c, q)] = t5


@njit(inline="always", fastmath=SUMS)
def _input_grad_tile_f4(dv, at, c, dst, to, row_step):
    """B dV B^T of the tile whose position k, channel ch is dv[at + k * c + ch], added onto
    the 6x6 pixels of a zero-padded image it was read from: pixel (i, j), channel ch at
    dst[to + i * row_step + j * c + ch]. f = B dV column by column, then f B^T row by row."""
    f = numba.carray(stack_array(dv, _TILE_SCRATCH), (36, _LANES))   # f[6 i + q] = (B dV)[i, q]
    for c0 in range(0, c, _LANES):
        width = min(_LANES, c - c0)
        for q in range(6):
            col = at + q * c + c0
            for k in range(width):
                t0, t1, t2, t3, t4, t5 = _f4_b(dv[unsigned(col, k)], dv[unsigned(col + 6 * c, k)],
                                               dv[unsigned(col + 12 * c, k)], dv[unsigned(col + 18 * c, k)],
                                               dv[unsigned(col + 24 * c, k)], dv[unsigned(col + 30 * c, k)])
                f[q, k], f[6 + q, k], f[12 + q, k] = t0, t1, t2
                f[18 + q, k], f[24 + q, k], f[30 + q, k] = t3, t4, t5
        for i in range(6):
            row = to + i * row_step + c0
            for k in range(width):
                t0, t1, t2, t3, t4, t5 = _f4_b(f[6 * i, k], f[6 * i + 1, k], f[6 * i + 2, k],
                                               f[6 * i + 3, k], f[6 * i + 4, k], f[6 * i + 5, k])
                dst[unsigned(row, k)] += t0
                dst[unsigned(row + c, k)] += t1
                dst[unsigned(row + 2 * c, k)] += t2
                dst[unsigned(row + 3 * c, k)] += t3
                dst[unsigned(row + 4 * c, k)] += t4
                dst[unsigned(row + 5 * c, k)] += t5


@njit(inline="always")
def _output_tile_place(tile, th, tw, h_out, w_out):
    """(image, first row, first column, rows, columns) of F(4x4) output tile ``tile`` (in
    (n, ty, tx) order) of an (h_out, w_out) output: 4 x 4, cropped at the edges."""
    row = tile // tw
    r0, s0 = 4 * (row % th), 4 * (tile % tw)
    return row // th, r0, s0, min(4, h_out - r0), min(4, w_out - s0)


@njit(inline="always")
def _copy_image(x, b, padded, wp, top, left):
    """Image b of x (N, H, W, C) into the inside of ``padded``, a flat zero-padded image of
    width wp, from pixel (top, left) on (its border left as it is); returns whether the
    image holds a NaN or inf (v - v is 0 for every finite v, NaN for the others), found as
    it is copied, without a pass of its own. A comparison, not a sum of the v - v: the
    fastmath flags of the sums let LLVM cancel v - v inside a sum."""
    _, h, w, c = x.shape
    src = flat(x)[0]
    run = w * c                                         # one row of the image: a contiguous run
    not_finite = False
    for r in range(h):
        at, to = (b * h + r) * run, ((r + top) * wp + left) * c
        for k in range(run):
            v = src[unsigned(at, k)]
            padded[unsigned(to, k)] = v
            not_finite |= (v - v) != 0
    return not_finite


@njit(inline="always", fastmath=SUMS)
def _add_image(padded, wp, top, left, dx, b):
    """The inside of ``padded`` (flat, width wp; from pixel (top, left) on) added onto image
    b of dx (N, H, W, C); the border, the padding, dropped."""
    _, h, w, c = dx.shape
    dst = flat(dx)[0]
    run = w * c
    for r in range(h):
        at, to = ((r + top) * wp + left) * c, (b * h + r) * run
        for k in range(run):
            dst[unsigned(to, k)] += padded[unsigned(at, k)]


# The stages for a block of consecutive tiles [t0, t1), on the calling thread without the
# GIL: the pieces of ``winograd_forward_blocked`` and ``winograd_backward_blocked``. With
# F(4x4, 3x3) (``f4``), a tile's image is zero-padded once into a flat buffer of width
# wp = 4 tw + 2 (every tile whole inside it), which the tile transforms read or add onto.

@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_input_block(x, bt, v, m, th, tw, top, left, t0, t1, f4):
    """V of the block's tiles [t0, t1) into v; returns whether an image it read (every
    pixel of it, with f4; else the images of its tiles) holds a NaN or inf."""
    c = x.shape[3]
    not_finite = False
    if f4:
        wp = 4 * tw + 2
        padded = np.zeros((4 * th + 2) * wp * c, dtype=x.dtype)
        v_flat = flat(v)[0]
        image = -1                                      # the image in ``padded``
        for tile in range(t0, t1):
            row = tile // tw
            b = row // th
            if b != image:
                not_finite |= _copy_image(x, b, padded, wp, top, left)
                image = b
            r0, s0 = 4 * (row % th), 4 * (tile % tw)
            _input_tile_f4(padded, (r0 * wp + s0) * c, wp * c, c, v_flat, (tile - t0) * 36 * c)
        return not_finite
    e = np.empty((bt.shape[0], bt.shape[0], c), dtype=v.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _input_tile(x, bt, e, v, tile - t0, row // th, row % th, tile % tw, m, top, left)
    first, last = t0 // (th * tw), (t1 - 1) // (th * tw)
    return t1 > t0 and not np.isfinite(x[first:last + 1]).all()


@njit(nogil=True, cache=True)
def _pool_tile(t, y, b, ty, tx):
    """The 2x2, stride-2 max-pool of the m x m output tile t[0] into its pixels of y, windows
    in row-major order; a NaN wins (the first NaN stays), as in ops.maxpool2d_forward."""
    _, m, _, c = t.shape
    half = m // 2
    for pr in range(half):
        for pc in range(half):
            for ch in range(c):
                best = t[0, 2 * pr, 2 * pc, ch]
                for k in range(1, 4):
                    best = wins(best, t[0, 2 * pr + k // 2, 2 * pc + k % 2, ch])
                y[b, ty * half + pr, tx * half + pc, ch] = best


@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_output_block(mt, at, bias, y, th, tw, t0, t1, relu, pool, f4):
    """Y = A^T M A + bias (ReLU'd with ``relu``) of the block's tiles [t0, t1) into y; with
    ``pool``, each tile's 2x2, stride-2 max-pool instead (y the pooled output)."""
    if f4:
        _, h_y, w_y, c = y.shape
        h_out, w_out = (2 * h_y, 2 * w_y) if pool else (h_y, w_y)
        m_flat, y_flat = flat(mt)[0], flat(y)[0]
        out = numba.carray(stack_array(y, _OUT_SCRATCH), (16, _LANES))
        for tile in range(t0, t1):
            b, r0, s0, rows, cols = _output_tile_place(tile, th, tw, h_out, w_out)
            for c0 in range(0, c, _LANES):
                width = min(_LANES, c - c0)
                _output_tile_f4(m_flat, (tile - t0) * 36 * c, c, c0, width, bias, relu, out)
                if pool:                                    # whole tiles: 2 x 2 pooled pixels
                    for pr in range(2):
                        for pc in range(2):
                            p = 8 * pr + 2 * pc              # the window's first pixel, 4 p + q
                            to = ((b * h_y + r0 // 2 + pr) * w_y + s0 // 2 + pc) * c + c0
                            for k in range(width):
                                best = wins(wins(wins(out[p, k], out[p + 1, k]), out[p + 4, k]), out[p + 5, k])
                                y_flat[unsigned(to, k)] = best
                    continue
                for p in range(rows):
                    for q in range(cols):
                        to = ((b * h_y + r0 + p) * w_y + s0 + q) * c + c0
                        for k in range(width):
                            y_flat[unsigned(to, k)] = out[4 * p + q, k]
        return
    m = at.shape[0]
    f = np.empty((m, at.shape[1], y.shape[3]), dtype=y.dtype)
    t = np.empty((1, m, m, y.shape[3]), dtype=y.dtype)        # one output tile, before pooling
    for tile in range(t0, t1):
        row = tile // tw
        if pool:
            _output_tile(mt, at, f, bias, t, tile - t0, 0, 0, 0, relu)
            _pool_tile(t, y, row // th, row % th, tile % tw)
        else:
            _output_tile(mt, at, f, bias, y, tile - t0, row // th, row % th, tile % tw, relu)


# The backward stages, per tile and for a block of consecutive tiles, for
# ``winograd_backward_blocked``.

@njit(cache=True, fastmath=SUMS)
def _output_grad_tile(dy, at, g, dm, slot, b, ty, tx):
    """dM = A dY A^T of tile (b, ty, tx) (dy zero past its edge) into dm[slot];
    g is (m, alpha, C) scratch."""
    _, h_out, w_out, c = dy.shape
    m, alpha = at.shape
    g[:] = 0                                            # g[p, j] = row p of (dY A^T)
    for p in range(m):
        r = m * ty + p
        if r >= h_out:
            continue
        for q in range(m):
            s = m * tx + q
            if s >= w_out:
                continue
            for j in range(alpha):
                coef = at[q, j]
                if coef != 0:
                    for ch in range(c):
                        g[p, j, ch] += coef * dy[b, r, s, ch]
    for i in range(alpha):
        for j in range(alpha):
            k = i * alpha + j
            dm[slot, k, :] = 0
            for p in range(m):
                coef = at[p, i]
                if coef != 0:
                    for ch in range(c):
                        dm[slot, k, ch] += coef * g[p, j, ch]


@njit(cache=True, fastmath=SUMS)
def _input_grad_tile(dv, bt, f, dx, slot, b, ty, tx, m, top, left):
    """B dV B^T of the tile in dv[slot], added onto the pixels of dx it read (a
    scatter: the caller makes sure no other thread writes them); f is (alpha, alpha, C)."""
    _, h, w, c = dx.shape
    alpha = bt.shape[0]
    f[:] = 0                                            # f[i, q] = row i of (B dV)
    for p in range(alpha):
        for i in range(alpha):
            coef = bt[p, i]
            if coef != 0:
                for q in range(alpha):
                    for ch in range(c):
                        f[i, q, ch] += coef * dv[slot, p * alpha + q, ch]
    for i in range(alpha):
        r = m * ty + i - top
        if r < 0 or r >= h:
            continue
        for j in range(alpha):
            s = m * tx + j - left
            if s < 0 or s >= w:
                continue
            for q in range(alpha):
                coef = bt[q, j]
                if coef != 0:
                    for ch in range(c):
                        dx[b, r, s, ch] += coef * f[i, q, ch]


@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_output_grad_block(dy, at, dm, th, tw, t0, t1, f4):
    if f4:
        _, h_out, w_out, c = dy.shape
        dy_flat, dm_flat = flat(dy)[0], flat(dm)[0]
        d = numba.carray(stack_array(dm, _OUT_SCRATCH), (16, _LANES))
        for tile in range(t0, t1):
            b, r0, s0, rows, cols = _output_tile_place(tile, th, tw, h_out, w_out)  # dy zero past them
            for c0 in range(0, c, _LANES):
                width = min(_LANES, c - c0)
                for p in range(4):
                    for q in range(4):
                        if p < rows and q < cols:
                            at_pixel = ((b * h_out + r0 + p) * w_out + s0 + q) * c + c0
                            for k in range(width):
                                d[4 * p + q, k] = dy_flat[unsigned(at_pixel, k)]
                        else:
                            for k in range(width):
                                d[4 * p + q, k] = 0
                _output_grad_tile_f4(d, width, dm_flat, (tile - t0) * 36 * c, c, c0)
        return
    g = np.empty((at.shape[0], at.shape[1], dy.shape[3]), dtype=dm.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _output_grad_tile(dy, at, g, dm, tile - t0, row // th, row % th, tile % tw)


@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_input_grad_block(dv, bt, dx, m, th, tw, top, left, t0, t1, f4):
    c = dx.shape[3]
    if f4:
        wp = 4 * tw + 2
        padded = np.zeros((4 * th + 2) * wp * c, dtype=dx.dtype)
        dv_flat = flat(dv)[0]
        image = -1                                      # the image whose sums are in ``padded``
        for tile in range(t0, t1):
            row = tile // tw
            b = row // th
            if b != image:
                if image >= 0:
                    _add_image(padded, wp, top, left, dx, image)
                    padded[:] = 0
                image = b
            r0, s0 = 4 * (row % th), 4 * (tile % tw)
            _input_grad_tile_f4(dv_flat, (tile - t0) * 36 * c, c, padded, (r0 * wp + s0) * c, wp * c)
        if image >= 0:
            _add_image(padded, wp, top, left, dx, image)
        return
    f = np.empty((bt.shape[0], bt.shape[0], c), dtype=dx.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _input_grad_tile(dv, bt, f, dx, tile - t0, row // th, row % th, tile % tw, m, top, left)


@njit(inline="always")
def _row_sum(coefs, i, src, at, step, count, e):
    """sum over l < count of coefs[i, l] src[at + l * step + e], written out for the
    transforms' 3, 4 and 6 terms: a loop over l in the loop over e would keep it from
    becoming vector code."""
    total = coefs[i, 0] * src[unsigned(at, e)] + coefs[i, 1] * src[unsigned(at + step, e)]
    total += coefs[i, 2] * src[unsigned(at + 2 * step, e)]
    if count == 3:
        return total
    total += coefs[i, 3] * src[unsigned(at + 3 * step, e)]
    if count == 4:
        return total
    total += coefs[i, 4] * src[unsigned(at + 4 * step, e)] + coefs[i, 5] * src[unsigned(at + 5 * step, e)]
    return total


@njit(nogil=True, cache=True, fastmath=SUMS)
def _both_axes(mat, a, out):
    """out = mat a mat^T over the first two axes: a (p, p, R), out (q, q, R), C-contiguous,
    mat (q, p) of a's dtype, p in (3, 4, 6), p * q <= 36. As ops.winograd.both_axes, the second axis first
    (t[k, j] = sum over l of mat[j, l] a[k, l]), then the first; every coefficient
    multiplies, zeros included, as in a matrix product (an inf times 0 is NaN). A chunk of
    _LANES numbers of every row at a time, t in a stack scratch: a and out pass through the
    cache once."""
    q, p = mat.shape
    r = a.shape[2]
    a_flat, out_flat = flat(a)[0], flat(out)[0]
    t_chunk = numba.carray(stack_array(out, _TILE_SCRATCH), (36 * _LANES,))   # t[k * q + j]
    for e0 in range(0, r, _LANES):
        width = min(_LANES, r - e0)
        for k in range(p):
            for j in range(q):
                at, to = k * p * r + e0, (k * q + j) * _LANES
                for e in range(width):
                    t_chunk[unsigned(to, e)] = _row_sum(mat, j, a_flat, at, r, p, e)
        for i in range(q):
            for j in range(q):
                to = (i * q + j) * r + e0
                for e in range(width):
                    out_flat[unsigned(to, e)] = _row_sum(mat, i, t_chunk, j * _LANES, q * _LANES, p, e)


def winograd_kernel_transform(mat, a):
    """mat a mat^T over the first two axes of a (p, p, C_in, C_out): (q, q, C_in, C_out), on
    the calling thread (a kernel has a few thousand numbers per position)."""
    q, p = mat.shape
    if p not in (3, 4, 6) or p * q > 36:      # no transform of ops.winograd has such a shape
        from_numpy = np.asarray(mat, dtype=a.dtype)
        return np.einsum("ik,kl...,jl->ij...", from_numpy, a, from_numpy)
    a = contiguous(a)
    out = np.empty((q, q, *a.shape[2:]), dtype=a.dtype)
    _both_axes(_matrix(mat, a.dtype), a.reshape(p, p, -1), out.reshape(q, q, -1))
    return out


def _block_array(buffer, tiles, positions, channels):
    """A block's (tiles, positions, channels) array at the start of a flat scratch buffer:
    C-contiguous however few tiles the block has, each tile's alpha^2 positions together
    (the order the tile transforms write and read them in; ``_positions_first`` is the view
    the products take)."""
    return buffer[:tiles * positions * channels].reshape(tiles, positions, channels)


def _positions_first(block):
    """A (tiles, positions, channels) block as the stack of (tiles, channels) matrices, one
    per position, that the alpha^2 products multiply: a view, each matrix's rows
    ``positions * channels`` apart (``gemm.product`` takes rows that lie apart)."""
    return block.transpose(1, 0, 2)


def _matrix(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


# The matrices the ``_f4_*`` functions compute with (ops.winograd.F4X4_3X3's, which this
# layer may not import): a transform with exactly these takes the written-out path.
_F4X4_BT = np.array([[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
                     [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]])
_F4X4_AT = np.array([[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0],
                     [0, 1, -1, 8, -8, 1]])


def _is_f4x4(f) -> bool:
    """Whether transform ``f`` is the F(4x4, 3x3) that the ``_f4_*`` functions write out."""
    return (f.m == 4 and np.array_equal(np.asarray(f.BT), _F4X4_BT)
            and np.array_equal(np.asarray(f.AT), _F4X4_AT))


_BLOCK_TILES = 64             # tiles per block: V and M of a block (36 x 64 x 64 floats) stay in L2
_BLOCK_TILES_BACKWARD = 128   # more than the forward's: each block also adds a whole
                              # (alpha^2, C_in, C_out) product into dU, a cost larger blocks share


def winograd_forward_blocked(x, u, bias, padding, tiles, out_hw, f, relu=False, pool=False):
    """y = conv of x with the transformed kernel U (+ bias), with ``relu`` max(that, 0) with
    NaN kept: (N, h_out, w_out, C_out). The ReLU is applied as each output pixel is written,
    so the output is not read again for it. With ``pool`` (inference; the tiles covering the
    output exactly, m even), y is the 2x2, stride-2 max-pool of that, (N, h_out / 2,
    w_out / 2, C_out), each tile pooled as it is made: every pool window lies in one tile.

    The array code writes all of V, multiplies, and writes all of M before the output
    transform reads it back: four passes over arrays of 9 MB at the seed's 16x16 layers.
    Here each thread takes its share of the tiles in blocks of ``_BLOCK_TILES``, and
    transforms, multiplies (``_gemm.product``, on the calling thread) and transforms back one
    block at a time, so V and M never leave the cache. The backward pass recomputes V from x
    the same way (``winograd_backward_blocked``).

    Returns None, having stopped at the first block that saw one, when x holds a NaN or an
    inf: the input transform spreads it over whole tiles, so the caller convolves another
    way (ops.conv). The input transform finds it as it copies the images, so x is not read
    an extra time for it.
    """
    n, c, c_out = x.shape[0], x.shape[3], u.shape[2]
    (th, tw), ((top, _), (left, _)) = tiles, padding
    x, u = contiguous(x), contiguous(u)
    bt, at = _matrix(f.BT, x.dtype), _matrix(f.AT, x.dtype)
    f4 = _is_f4x4(f)
    bias = np.zeros(c_out, dtype=x.dtype) if bias is None else contiguous(bias)
    y_hw = (out_hw[0] // 2, out_hw[1] // 2) if pool else tuple(out_hw)
    y = np.empty((n, *y_hw, c_out), dtype=x.dtype)
    positions = f.alpha ** 2

    not_finite = []

    def tiles_from(lo, hi):
        v = np.empty(positions * _BLOCK_TILES * c, dtype=x.dtype)
        mt = np.empty(positions * _BLOCK_TILES * c_out, dtype=x.dtype)
        for t0 in range(lo, hi, _BLOCK_TILES):
            t1 = min(t0 + _BLOCK_TILES, hi)
            vb, mb = _block_array(v, t1 - t0, positions, c), _block_array(mt, t1 - t0, positions, c_out)
            if _winograd_input_block(x, bt, vb, f.m, th, tw, top, left, t0, t1, f4):
                not_finite.append(t0)
                return
            gemm.product(_positions_first(vb), u, _positions_first(mb))
            _winograd_output_block(mb, at, bias, y, th, tw, t0, t1, relu, pool, f4)

    cpu_threads.run_ranges(tiles_from, n * th * tw, positions * n * th * tw * c * c_out)
    return None if not_finite else y


def winograd_backward_blocked(dy, x, u, padding, tiles, f, input_grad=True):
    """(dx, dU) of a Winograd convolution from dy, the forward's input x and U; dx is None
    without ``input_grad``. ``dw = transform_kernel_grad(dU)`` is left to the caller.

    The array code runs its stages over whole arrays: dM = A dY A^T (9 MB at the seed's
    16x16 layers), dU = V^T dM with the V kept from the forward pass (9 MB), dV = dM U^T
    (9 MB more) and the overlap-add of B dV B^T onto dx. Here each thread takes whole images
    and runs the stages one block of ``_BLOCK_TILES_BACKWARD`` tiles at a time, V recomputed
    from x for the block, so no transformed array leaves the cache; dU is summed per thread,
    then over threads in a fixed order. Whole images per thread make the overlap-add
    race-free: tiles of different images never share a pixel, and one thread adds its tiles
    one after the other.
    """
    x_shape = x.shape
    n, c_in, c_out = dy.shape[0], x_shape[3], dy.shape[3]
    (th, tw), ((top, _), (left, _)) = tiles, padding
    dy, x = contiguous(dy), contiguous(x)
    at, bt = _matrix(f.AT, dy.dtype), _matrix(f.BT, dy.dtype)
    f4 = _is_f4x4(f)
    u_t = np.ascontiguousarray(u.transpose(0, 2, 1))
    positions, per_image = f.alpha ** 2, th * tw
    dx = np.zeros(x_shape, dtype=dy.dtype) if input_grad else None
    partial_du = {}

    def images_from(lo, hi):
        v = np.empty(positions * _BLOCK_TILES_BACKWARD * c_in, dtype=dy.dtype)
        dm = np.empty(positions * _BLOCK_TILES_BACKWARD * c_out, dtype=dy.dtype)
        dv = np.empty(positions * _BLOCK_TILES_BACKWARD * c_in, dtype=dy.dtype)
        du = np.zeros((positions, c_in, c_out), dtype=dy.dtype)
        for t0 in range(lo * per_image, hi * per_image, _BLOCK_TILES_BACKWARD):
            t1 = min(t0 + _BLOCK_TILES_BACKWARD, hi * per_image)
            vb, dmb = _block_array(v, t1 - t0, positions, c_in), _block_array(dm, t1 - t0, positions, c_out)
            _winograd_input_block(x, bt, vb, f.m, th, tw, top, left, t0, t1, f4)
            _winograd_output_grad_block(dy, at, dmb, th, tw, t0, t1, f4)
            dm_stack = _positions_first(dmb)
            gemm.product(vb.transpose(1, 2, 0), dm_stack, du, accumulate=True)   # dU += V^T dM
            if input_grad:
                dvb = _block_array(dv, t1 - t0, positions, c_in)
                gemm.product(dm_stack, u_t, _positions_first(dvb))                # dV = dM U^T
                _winograd_input_grad_block(dvb, bt, dx, f.m, th, tw, top, left, t0, t1, f4)
        partial_du[lo] = du

    cpu_threads.run_ranges(images_from, n, 2 * positions * n * per_image * c_in * c_out)
    parts = [partial_du[lo] for lo in sorted(partial_du)]    # a fixed order: reproducible sums
    if not parts:                                            # an empty batch
        parts = [np.zeros((positions, c_in, c_out), dtype=dy.dtype)]
    du = parts[0]
    for part in parts[1:]:
        du += part
    return dx, du

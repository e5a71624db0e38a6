"""Numba kernels of ``minires.ops.winograd``: Winograd F(m x m, 3 x 3) convolutions, forward
and backward, in cache-sized blocks of tiles.

The transforms of minires.ops.winograd, one kernel per stage, each fused with the padding,
tiling or cropping around it, for any of its transforms (F(2x2, 3x3), F(4x4, 3x3)): the
matrices come in as small arrays and zero coefficients are skipped outside the channel loop,
so F(2x2, 3x3)'s sparse B^T costs only its additions. Transformed arrays are (alpha^2, T, C):
tile position (p, q) at index p*alpha + q, then the tile t = (n*th + ty)*tw + tx, then
channels, so that each position is one (T, C) matrix for BLAS. Both passes run one
cache-sized block of tiles at a time, each thread over a range of tiles of its own
(``winograd_forward_blocked``, ``winograd_backward_blocked``), so the transformed arrays
(V, M, dM, dV) never exist in full.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .. import cpu_threads
from . import _gemm as gemm
from ._launch import SUMS, contiguous


@njit(cache=True, fastmath=SUMS)
def _input_tile(x, bt, e, v, slot, b, ty, tx, m, top, left):
    """V = B^T d B of tile (b, ty, tx) into v[:, slot, :]; e is (alpha, alpha, C) scratch."""
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
            v[k, slot, :] = 0
            for i in range(alpha):
                coef = bt[p, i]
                if coef != 0:
                    for ch in range(c):
                        v[k, slot, ch] += coef * e[i, q, ch]


@njit(cache=True, fastmath=SUMS)
def _output_tile(mt, at, f, bias, y, slot, b, ty, tx, relu):
    """y = A^T M A + bias of the tile in mt[:, slot, :], with ``relu`` max(that, 0) with NaN
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
                        f[p, j, ch] += coef * mt[i * alpha + j, slot, ch]
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


@njit(inline="always", fastmath=SUMS)
def _input_tile_f4(src, b, r0, s0, e, v, slot):
    """``_input_tile`` for F(4x4, 3x3): V = B^T d B of the tile d = src[b, r0:r0 + 6,
    s0:s0 + 6] into v[:, slot, :], column by column (e = B^T d), then row by row; e is
    (6, 6, C) scratch."""
    c = src.shape[3]
    for j in range(6):
        s = s0 + j
        for ch in range(c):
            t0, t1, t2, t3, t4, t5 = _f4_bt(src[b, r0, s, ch], src[b, r0 + 1, s, ch], src[b, r0 + 2, s, ch],
                                            src[b, r0 + 3, s, ch], src[b, r0 + 4, s, ch], src[b, r0 + 5, s, ch])
            e[0, j, ch], e[1, j, ch], e[2, j, ch] = t0, t1, t2
            e[3, j, ch], e[4, j, ch], e[5, j, ch] = t3, t4, t5
    for p in range(6):
        k = 6 * p
        for ch in range(c):
            t0, t1, t2, t3, t4, t5 = _f4_bt(e[p, 0, ch], e[p, 1, ch], e[p, 2, ch],
                                            e[p, 3, ch], e[p, 4, ch], e[p, 5, ch])
            v[k, slot, ch], v[k + 1, slot, ch], v[k + 2, slot, ch] = t0, t1, t2
            v[k + 3, slot, ch], v[k + 4, slot, ch], v[k + 5, slot, ch] = t3, t4, t5


@njit(inline="always", fastmath=SUMS)
def _output_tile_f4(mt, f, bias, dst, b, r0, s0, slot, relu):
    """``_output_tile`` for F(4x4, 3x3): A^T M A + bias of the tile in mt[:, slot, :]
    (ReLU'd with ``relu``, NaN kept) into dst[b, r0:r0 + 4, s0:s0 + 4], column by column
    (f = A^T M), then row by row; f is (4, 6, C) scratch."""
    c = dst.shape[3]
    for j in range(6):
        for ch in range(c):
            t0, t1, t2, t3 = _f4_at(mt[j, slot, ch], mt[6 + j, slot, ch], mt[12 + j, slot, ch],
                                    mt[18 + j, slot, ch], mt[24 + j, slot, ch], mt[30 + j, slot, ch])
            f[0, j, ch], f[1, j, ch], f[2, j, ch], f[3, j, ch] = t0, t1, t2, t3
    for p in range(4):
        r = r0 + p
        for ch in range(c):
            t0, t1, t2, t3 = _f4_at(f[p, 0, ch], f[p, 1, ch], f[p, 2, ch],
                                    f[p, 3, ch], f[p, 4, ch], f[p, 5, ch])
            z0, z1, z2, z3 = t0 + bias[ch], t1 + bias[ch], t2 + bias[ch], t3 + bias[ch]
            if relu:     # max(z, 0) with NaN kept (as the generic _output_tile writes it)
                dst[b, r, s0, ch] = z0 if (z0 > 0 or z0 != z0) else 0
                dst[b, r, s0 + 1, ch] = z1 if (z1 > 0 or z1 != z1) else 0
                dst[b, r, s0 + 2, ch] = z2 if (z2 > 0 or z2 != z2) else 0
                dst[b, r, s0 + 3, ch] = z3 if (z3 > 0 or z3 != z3) else 0
            else:
                dst[b, r, s0, ch], dst[b, r, s0 + 1, ch] = z0, z1
                dst[b, r, s0 + 2, ch], dst[b, r, s0 + 3, ch] = z2, z3


@njit(inline="always", fastmath=SUMS)
def _output_grad_tile_f4(src, b, r0, s0, g, dm, slot):
    """``_output_grad_tile`` for F(4x4, 3x3): dM = A dY A^T of the tile dY = src[b, r0:r0 + 4,
    s0:s0 + 4] into dm[:, slot, :], row by row (g = dY A^T), then column by column; g is
    (4, 6, C) scratch."""
    c = src.shape[3]
    for p in range(4):
        r = r0 + p
        for ch in range(c):
            t0, t1, t2, t3, t4, t5 = _f4_a(src[b, r, s0, ch], src[b, r, s0 + 1, ch],
                                           src[b, r, s0 + 2, ch], src[b, r, s0 + 3, ch])
            g[p, 0, ch], g[p, 1, ch], g[p, 2, ch] = t0, t1, t2
            g[p, 3, ch], g[p, 4, ch], g[p, 5, ch] = t3, t4, t5
    for j in range(6):
        for ch in range(c):
            t0, t1, t2, t3, t4, t5 = _f4_a(g[0, j, ch], g[1, j, ch], g[2, j, ch], g[3, j, ch])
            dm[j, slot, ch], dm[6 + j, slot, ch], dm[12 + j, slot, ch] = t0, t1, t2
            dm[18 + j, slot, ch], dm[24 + j, slot, ch], dm[30 + j, slot, ch] = t3, t4, t5


@njit(inline="always", fastmath=SUMS)
def _input_grad_tile_f4(dv, f, dst, b, r0, s0, slot):
    """``_input_grad_tile`` for F(4x4, 3x3): B dV B^T of the tile in dv[:, slot, :] added onto
    dst[b, r0:r0 + 6, s0:s0 + 6], column by column (f = B dV), then row by row; f is
    (6, 6, C) scratch."""
    c = dst.shape[3]
    for q in range(6):
        for ch in range(c):
            t0, t1, t2, t3, t4, t5 = _f4_b(dv[q, slot, ch], dv[6 + q, slot, ch], dv[12 + q, slot, ch],
                                           dv[18 + q, slot, ch], dv[24 + q, slot, ch], dv[30 + q, slot, ch])
            f[0, q, ch], f[1, q, ch], f[2, q, ch] = t0, t1, t2
            f[3, q, ch], f[4, q, ch], f[5, q, ch] = t3, t4, t5
    for i in range(6):
        r = r0 + i
        for ch in range(c):
            t0, t1, t2, t3, t4, t5 = _f4_b(f[i, 0, ch], f[i, 1, ch], f[i, 2, ch],
                                           f[i, 3, ch], f[i, 4, ch], f[i, 5, ch])
            dst[b, r, s0, ch] += t0
            dst[b, r, s0 + 1, ch] += t1
            dst[b, r, s0 + 2, ch] += t2
            dst[b, r, s0 + 3, ch] += t3
            dst[b, r, s0 + 4, ch] += t4
            dst[b, r, s0 + 5, ch] += t5


@njit(cache=True)
def _copy_shifted(src, sb, dst, db, dr, ds):
    """dst[db, r + dr, s + ds] = src[sb, r, s] for every pixel of image sb of src that lands
    inside dst; the rest of dst is left as it is."""
    _, h, w, c = src.shape
    _, hd, wd, _ = dst.shape
    for r in range(max(0, -dr), min(h, hd - dr)):
        for s in range(max(0, -ds), min(w, wd - ds)):
            for ch in range(c):
                dst[db, r + dr, s + ds, ch] = src[sb, r, s, ch]


@njit(cache=True, fastmath=SUMS)
def _add_shifted(src, dst, db, dr, ds):
    """dst[db, r, s] += src[0, r + dr, s + ds] for every pixel of dst's image db: the inside of
    a padded image added back onto the image (its border, the padding, dropped)."""
    _, h, w, c = dst.shape
    for r in range(h):
        for s in range(w):
            for ch in range(c):
                dst[db, r, s, ch] += src[0, r + dr, s + ds, ch]


# The stages for a block of consecutive tiles [t0, t1), on the calling thread without the
# GIL: the pieces of ``winograd_forward_blocked`` and ``winograd_backward_blocked``.

@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_input_block(x, bt, v, m, th, tw, top, left, t0, t1, f4):
    e = np.empty((bt.shape[0], bt.shape[0], x.shape[3]), dtype=v.dtype)
    padded = np.zeros((1, 4 * th + 2 if f4 else 0, 4 * tw + 2, x.shape[3]), dtype=x.dtype)
    image = -1                                          # the image in ``padded``
    for tile in range(t0, t1):
        row = tile // tw
        if f4:
            b = row // th
            if b != image:
                _copy_shifted(x, b, padded, 0, top, left)
                image = b
            _input_tile_f4(padded, 0, 4 * (row % th), 4 * (tile % tw), e, v, tile - t0)
        else:
            _input_tile(x, bt, e, v, tile - t0, row // th, row % th, tile % tw, m, top, left)


@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_output_block(mt, at, bias, y, th, tw, t0, t1, relu, f4):
    f = np.empty((at.shape[0], at.shape[1], y.shape[3]), dtype=y.dtype)
    exact = y.shape[1] == 4 * th and y.shape[2] == 4 * tw     # no tile is cropped
    one = np.empty((1, 4, 4, y.shape[3]), dtype=y.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        if f4:
            b, r0, s0 = row // th, 4 * (row % th), 4 * (tile % tw)
            if exact:
                _output_tile_f4(mt, f, bias, y, b, r0, s0, tile - t0, relu)
            else:
                _output_tile_f4(mt, f, bias, one, 0, 0, 0, tile - t0, relu)
                _copy_shifted(one, 0, y, b, r0, s0)
        else:
            _output_tile(mt, at, f, bias, y, tile - t0, row // th, row % th, tile % tw, relu)


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
                    v = t[0, 2 * pr + k // 2, 2 * pc + k % 2, ch]
                    if best == best and (v > best or v != v):
                        best = v
                y[b, ty * half + pr, tx * half + pc, ch] = best


@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_output_pooled_block(mt, at, bias, y, th, tw, t0, t1, relu, f4):
    m = at.shape[0]
    f = np.empty((m, at.shape[1], y.shape[3]), dtype=y.dtype)
    t = np.empty((1, m, m, y.shape[3]), dtype=y.dtype)        # one output tile, before pooling
    for tile in range(t0, t1):
        row = tile // tw
        if f4:
            _output_tile_f4(mt, f, bias, t, 0, 0, 0, tile - t0, relu)
        else:
            _output_tile(mt, at, f, bias, t, tile - t0, 0, 0, 0, relu)
        _pool_tile(t, y, row // th, row % th, tile % tw)


# The backward stages, per tile and for a block of consecutive tiles, for
# ``winograd_backward_blocked``.

@njit(cache=True, fastmath=SUMS)
def _output_grad_tile(dy, at, g, dm, slot, b, ty, tx):
    """dM = A dY A^T of tile (b, ty, tx) (dy zero past its edge) into dm[:, slot, :];
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
            dm[k, slot, :] = 0
            for p in range(m):
                coef = at[p, i]
                if coef != 0:
                    for ch in range(c):
                        dm[k, slot, ch] += coef * g[p, j, ch]


@njit(cache=True, fastmath=SUMS)
def _input_grad_tile(dv, bt, f, dx, slot, b, ty, tx, m, top, left):
    """B dV B^T of the tile in dv[:, slot, :], added onto the pixels of dx it read (a
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
                        f[i, q, ch] += coef * dv[p * alpha + q, slot, ch]
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
    g = np.empty((at.shape[0], at.shape[1], dy.shape[3]), dtype=dm.dtype)
    exact = dy.shape[1] == 4 * th and dy.shape[2] == 4 * tw
    one = np.zeros((1, 4, 4, dy.shape[3]), dtype=dy.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        if f4:
            b, r0, s0 = row // th, 4 * (row % th), 4 * (tile % tw)
            if exact:
                _output_grad_tile_f4(dy, b, r0, s0, g, dm, tile - t0)
            else:                                       # dy's edge tiles, zero past the edge
                one[:] = 0
                _copy_shifted(dy, b, one, 0, -r0, -s0)
                _output_grad_tile_f4(one, 0, 0, 0, g, dm, tile - t0)
        else:
            _output_grad_tile(dy, at, g, dm, tile - t0, row // th, row % th, tile % tw)


@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_input_grad_block(dv, bt, dx, m, th, tw, top, left, t0, t1, f4):
    f = np.empty((bt.shape[0], bt.shape[0], dx.shape[3]), dtype=dx.dtype)
    padded = np.zeros((1, 4 * th + 2 if f4 else 0, 4 * tw + 2, dx.shape[3]), dtype=dx.dtype)
    image = -1                                          # the image whose sums are in ``padded``
    for tile in range(t0, t1):
        row = tile // tw
        if f4:
            b = row // th
            if b != image:
                if image >= 0:
                    _add_shifted(padded, dx, image, top, left)
                    padded[:] = 0
                image = b
            _input_grad_tile_f4(dv, f, padded, 0, 4 * (row % th), 4 * (tile % tw), tile - t0)
        else:
            _input_grad_tile(dv, bt, f, dx, tile - t0, row // th, row % th, tile % tw, m, top, left)
    if image >= 0:
        _add_shifted(padded, dx, image, top, left)


def _block_array(buffer, positions, tiles, channels):
    """A block's (positions, tiles, channels) array at the start of a flat scratch buffer:
    C-contiguous however few tiles the block has (a slice [:, :tiles] of a full-size array
    would not be, and the matrix product reads contiguous rows fastest)."""
    return buffer[:positions * tiles * channels].reshape(positions, tiles, channels)


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
    transforms, multiplies (BLAS, one thread) and transforms back one block at a time, so V
    and M never leave the cache. The backward pass recomputes V from x the same way
    (``winograd_backward_blocked``).
    """
    n, c, c_out = x.shape[0], x.shape[3], u.shape[2]
    (th, tw), ((top, _), (left, _)) = tiles, padding
    x, u = contiguous(x), contiguous(u)
    bt, at = _matrix(f.BT, x.dtype), _matrix(f.AT, x.dtype)
    f4 = _is_f4x4(f)
    bias = np.zeros(c_out, dtype=x.dtype) if bias is None else contiguous(bias)
    if pool:
        y = np.empty((n, out_hw[0] // 2, out_hw[1] // 2, c_out), dtype=x.dtype)
        output_block = _winograd_output_pooled_block
    else:
        y = np.empty((n, *out_hw, c_out), dtype=x.dtype)
        output_block = _winograd_output_block
    positions = f.alpha ** 2

    def tiles_from(lo, hi):
        v = np.empty(positions * _BLOCK_TILES * c, dtype=x.dtype)
        mt = np.empty(positions * _BLOCK_TILES * c_out, dtype=x.dtype)
        for t0 in range(lo, hi, _BLOCK_TILES):
            t1 = min(t0 + _BLOCK_TILES, hi)
            vb, mb = _block_array(v, positions, t1 - t0, c), _block_array(mt, positions, t1 - t0, c_out)
            _winograd_input_block(x, bt, vb, f.m, th, tw, top, left, t0, t1, f4)
            gemm.product(vb, u, mb)
            output_block(mb, at, bias, y, th, tw, t0, t1, relu, f4)

    cpu_threads.run_ranges(tiles_from, n * th * tw, positions * n * th * tw * c * c_out)
    return y


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
            vb, dmb = _block_array(v, positions, t1 - t0, c_in), _block_array(dm, positions, t1 - t0, c_out)
            _winograd_input_block(x, bt, vb, f.m, th, tw, top, left, t0, t1, f4)
            _winograd_output_grad_block(dy, at, dmb, th, tw, t0, t1, f4)
            gemm.product(vb.transpose(0, 2, 1), dmb, du, accumulate=True)    # dU += V^T dM
            if input_grad:
                dvb = _block_array(dv, positions, t1 - t0, c_in)
                gemm.product(dmb, u_t, dvb)                                   # dV = dM U^T
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

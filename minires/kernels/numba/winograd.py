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


# The stages for a block of consecutive tiles [t0, t1), on the calling thread without the
# GIL: the pieces of ``winograd_forward_blocked`` and ``winograd_backward_blocked``.

@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_input_block(x, bt, v, m, th, tw, top, left, t0, t1):
    e = np.empty((bt.shape[0], bt.shape[0], x.shape[3]), dtype=v.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _input_tile(x, bt, e, v, tile - t0, row // th, row % th, tile % tw, m, top, left)


@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_output_block(mt, at, bias, y, th, tw, t0, t1, relu):
    f = np.empty((at.shape[0], at.shape[1], y.shape[3]), dtype=y.dtype)
    for tile in range(t0, t1):
        row = tile // tw
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
def _winograd_output_pooled_block(mt, at, bias, y, th, tw, t0, t1, relu):
    m = at.shape[0]
    f = np.empty((m, at.shape[1], y.shape[3]), dtype=y.dtype)
    t = np.empty((1, m, m, y.shape[3]), dtype=y.dtype)        # one output tile, before pooling
    for tile in range(t0, t1):
        row = tile // tw
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
def _winograd_output_grad_block(dy, at, dm, th, tw, t0, t1):
    g = np.empty((at.shape[0], at.shape[1], dy.shape[3]), dtype=dm.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _output_grad_tile(dy, at, g, dm, tile - t0, row // th, row % th, tile % tw)


@njit(nogil=True, cache=True, fastmath=SUMS)
def _winograd_input_grad_block(dv, bt, dx, m, th, tw, top, left, t0, t1):
    f = np.empty((bt.shape[0], bt.shape[0], dx.shape[3]), dtype=dx.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _input_grad_tile(dv, bt, f, dx, tile - t0, row // th, row % th, tile % tw, m, top, left)


def _matrix(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


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
    bias = np.zeros(c_out, dtype=x.dtype) if bias is None else contiguous(bias)
    if pool:
        y = np.empty((n, out_hw[0] // 2, out_hw[1] // 2, c_out), dtype=x.dtype)
        output_block = _winograd_output_pooled_block
    else:
        y = np.empty((n, *out_hw, c_out), dtype=x.dtype)
        output_block = _winograd_output_block
    positions = f.alpha ** 2

    def tiles_from(lo, hi):
        v = np.empty((positions, _BLOCK_TILES, c), dtype=x.dtype)
        mt = np.empty((positions, _BLOCK_TILES, c_out), dtype=x.dtype)
        for t0 in range(lo, hi, _BLOCK_TILES):
            t1 = min(t0 + _BLOCK_TILES, hi)
            vb, mb = v[:, :t1 - t0], mt[:, :t1 - t0]
            _winograd_input_block(x, bt, vb, f.m, th, tw, top, left, t0, t1)
            np.matmul(vb, u, out=mb)
            output_block(mb, at, bias, y, th, tw, t0, t1, relu)

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
    u_t = np.ascontiguousarray(u.transpose(0, 2, 1))
    positions, per_image = f.alpha ** 2, th * tw
    dx = np.zeros(x_shape, dtype=dy.dtype) if input_grad else None
    partial_du = {}

    def images_from(lo, hi):
        v = np.empty((positions, _BLOCK_TILES_BACKWARD, c_in), dtype=dy.dtype)
        dm = np.empty((positions, _BLOCK_TILES_BACKWARD, c_out), dtype=dy.dtype)
        dv = np.empty((positions, _BLOCK_TILES_BACKWARD, c_in), dtype=dy.dtype)
        du = np.zeros((positions, c_in, c_out), dtype=dy.dtype)
        du_block = np.empty_like(du)
        for t0 in range(lo * per_image, hi * per_image, _BLOCK_TILES_BACKWARD):
            t1 = min(t0 + _BLOCK_TILES_BACKWARD, hi * per_image)
            vb, dmb = v[:, :t1 - t0], dm[:, :t1 - t0]
            _winograd_input_block(x, bt, vb, f.m, th, tw, top, left, t0, t1)
            _winograd_output_grad_block(dy, at, dmb, th, tw, t0, t1)
            np.matmul(vb.transpose(0, 2, 1), dmb, out=du_block)               # dU += V^T dM
            du += du_block
            if input_grad:
                dvb = dv[:, :t1 - t0]
                np.matmul(dmb, u_t, out=dvb)                                  # dV = dM U^T
                _winograd_input_grad_block(dvb, bt, dx, f.m, th, tw, top, left, t0, t1)
        partial_du[lo] = du

    cpu_threads.run_ranges(images_from, n, 2 * positions * n * per_image * c_in * c_out)
    parts = [partial_du[lo] for lo in sorted(partial_du)]    # a fixed order: reproducible sums
    if not parts:                                            # an empty batch
        parts = [np.zeros((positions, c_in, c_out), dtype=dy.dtype)]
    du = parts[0]
    for part in parts[1:]:
        du += part
    return dx, du

"""Numba kernels of ``minires.ops.pool``: max-pool forward (value and first-maximum index),
its value alone for inference, and backward (a gather: each input pixel sums dy of the
windows it won).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from ...windows import argmax_dtype
from ._launch import contiguous, launch


@njit(parallel=True, cache=True)
def _maxpool_forward(x, y, argmax, ph, pw, sh, sw, top, left):
    n, h, w, c = x.shape
    _, h_out, w_out, _ = y.shape
    for row in prange(n * h_out):
        b, oh = row // h_out, row % h_out
        for ow in range(w_out):
            # Window elements in row-major order; the padding counts as -inf, as in NumPy's
            # argmax over the -inf-padded stack, and a NaN wins and stays (NumPy's argmax).
            for k in range(ph * pw):
                r, s = oh * sh + k // pw - top, ow * sw + k % pw - left
                inside = 0 <= r < h and 0 <= s < w
                for ch in range(c):
                    v = x[b, r, s, ch] if inside else -np.inf
                    if k == 0:
                        y[b, oh, ow, ch] = v
                        argmax[b, oh, ow, ch] = 0
                    else:
                        best = y[b, oh, ow, ch]
                        if best == best and (v > best or v != v):
                            y[b, oh, ow, ch] = v
                            argmax[b, oh, ow, ch] = k


@njit(parallel=True, cache=True)
def _maxpool2x2_forward(x, y, argmax):
    """_maxpool_forward for the 2x2 windows at stride 2 without padding (the seed's): the
    four offsets written out, so that the channel loop is selects LLVM turns into SIMD code."""
    _, h_out, w_out, c = y.shape
    for row in prange(x.shape[0] * h_out):
        b, r = row // h_out, 2 * (row % h_out)
        for ow in range(w_out):
            s = 2 * ow
            for ch in range(c):
                best, k = x[b, r, s, ch], 0
                v = x[b, r, s + 1, ch]
                if best == best and (v > best or v != v):
                    best, k = v, 1
                v = x[b, r + 1, s, ch]
                if best == best and (v > best or v != v):
                    best, k = v, 2
                v = x[b, r + 1, s + 1, ch]
                if best == best and (v > best or v != v):
                    best, k = v, 3
                y[b, r // 2, ow, ch] = best
                argmax[b, r // 2, ow, ch] = k


def _is_2x2(window) -> bool:
    return window.kernel == (2, 2) and window.strides == (2, 2) and window.padding == ((0, 0), (0, 0))


def maxpool2d_forward(x, window):
    """(y, argmax) of a max-pool: argmax[n, oh, ow, c] = i*pw + j of the first maximum."""
    (ph, pw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    y = np.empty((x.shape[0], h_out, w_out, x.shape[3]), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=argmax_dtype(window))
    if _is_2x2(window):
        launch(_maxpool2x2_forward, x.size, contiguous(x), y, argmax)
    else:
        launch(_maxpool_forward, x.size, contiguous(x), y, argmax, ph, pw, sh, sw, top, left)
    return y, argmax


@njit(parallel=True, cache=True)
def _maxpool_value(x, y, ph, pw, sh, sw, top, left):
    n, h, w, c = x.shape
    _, h_out, w_out, _ = y.shape
    for row in prange(n * h_out):
        b, oh = row // h_out, row % h_out
        for ow in range(w_out):
            # The padding is skipped rather than read as -inf: every window holds a real
            # element (windows.plan_windows), and -inf never beats one. The comparison is
            # _maxpool_forward's without the index, written as a select so that the channel
            # loop stays SIMD code.
            first = True
            for i in range(ph):
                r = oh * sh + i - top
                if r < 0 or r >= h:
                    continue
                for j in range(pw):
                    s = ow * sw + j - left
                    if s < 0 or s >= w:
                        continue
                    if first:
                        for ch in range(c):
                            y[b, oh, ow, ch] = x[b, r, s, ch]
                        first = False
                    else:
                        for ch in range(c):
                            v = x[b, r, s, ch]
                            best = y[b, oh, ow, ch]
                            y[b, oh, ow, ch] = v if (best == best and (v > best or v != v)) else best


def maxpool2d_forward_value(x, window):
    """y of ``maxpool2d_forward`` without the argmax: what inference needs."""
    (ph, pw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    y = np.empty((x.shape[0], h_out, w_out, x.shape[3]), dtype=x.dtype)
    launch(_maxpool_value, x.size, contiguous(x), y, ph, pw, sh, sw, top, left)
    return y


@njit(parallel=True, cache=True)
def _maxpool_backward(dy, argmax, dx, ph, pw, sh, sw, top, left):
    n, h_out, w_out, c = dy.shape
    _, h, w, _ = dx.shape
    for row in prange(n * h):
        b, r = row // h, row % h
        for s in range(w):
            dx[b, r, s, :] = 0
            for i in range(ph):
                t = r + top - i
                if t < 0 or t % sh != 0 or t // sh >= h_out:
                    continue
                oh = t // sh
                for j in range(pw):
                    u = s + left - j
                    if u < 0 or u % sw != 0 or u // sw >= w_out:
                        continue
                    ow = u // sw
                    k = i * pw + j
                    for ch in range(c):
                        if argmax[b, oh, ow, ch] == k:
                            dx[b, r, s, ch] += dy[b, oh, ow, ch]


@njit(parallel=True, cache=True)
def _maxpool2x2_backward(dy, argmax, dx):
    """_maxpool_backward for 2x2 windows at stride 2 without padding: each pixel reads the one
    window it belongs to (none past the last whole window: a zero)."""
    _, h_out, w_out, c = dy.shape
    _, h, w, _ = dx.shape
    for row in prange(dx.shape[0] * h):
        b, r = row // h, row % h
        oh = r // 2
        for s in range(w):
            ow = s // 2
            if oh >= h_out or ow >= w_out:
                dx[b, r, s, :] = 0
                continue
            k = (r % 2) * 2 + s % 2
            for ch in range(c):
                dx[b, r, s, ch] = dy[b, oh, ow, ch] if argmax[b, oh, ow, ch] == k else 0


def maxpool2d_backward(dy, argmax, x_shape, window):
    """dx of a max-pool: each input pixel gathers dy of the windows whose winner it is."""
    (ph, pw), (sh, sw), ((top, _), (left, _)), _ = window
    dx = np.empty(x_shape, dtype=dy.dtype)
    if _is_2x2(window):
        launch(_maxpool2x2_backward, dx.size, contiguous(dy), contiguous(argmax), dx)
    else:
        launch(_maxpool_backward, dx.size, contiguous(dy), contiguous(argmax), dx, ph, pw, sh, sw,
               top, left)
    return dx

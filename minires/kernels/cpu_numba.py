"""Numba JIT kernels for the CPU: the fast paths of the ``numba`` backend.

Each public function here has the same inputs and outputs as a piece of array code in
``minires.ops`` (``col2im`` returns the same ``dx``, ``maxpool2d_forward`` the same ``y`` and
``argmax``), so the op can take either path and its cache stays the same. An op asks
``minires.backend.kernels_for(*arrays)`` for this module and calls it only where it measured
faster than the array code at the seed model's shapes (numbers in docs/kernels.md).

The rules every kernel follows, so that the code reads the way it does:

1. **The outer loop is a ``prange`` over independent work**: rows of output images, tiles, or
   flat elements. An iteration writes only to the part of the output it owns, so no two
   threads ever write one element: no atomics, no locks, no races. (The blocked Winograd
   passes split their work over threads with ``cpu_threads.run_ranges`` instead, because
   each block also runs a BLAS product; the same ownership rule holds there.)
2. **Adjoints are gathers, not scatters.** col2im and the max-pool backward pass are
   written from the receiving side: each input pixel sums the contributions of the windows
   that read it. That is what makes rule 1 possible for them, and it sums in the same order
   as the array code, so float64 results agree to the last bit or nearly. The one exception
   is the Winograd input adjoint, where a gather would redo each tile's transform for every
   pixel it covers; it scatters, each thread over whole images of its own
   (``winograd_backward_blocked``).
3. **The innermost loop runs over channels**, which NHWC stores contiguously, so LLVM turns
   it into SIMD code; the spatial bounds checks sit outside it.
4. **Kernels take C-contiguous arrays**; the Python wrappers make them so. Each kernel then
   compiles once per dtype (float32, float64), not once per memory layout.
5. **No writes but to the owned part of the output**; scratch space (the Winograd kernels'
   half-transformed row of tiles) is allocated per iteration, never shared.
6. **cache=True**: compiled machine code is saved next to this file (or under
   ``NUMBA_CACHE_DIR``) and reloaded by later processes, so the compile cost (seconds per
   kernel and dtype) is paid once per machine, not once per run.
7. **fastmath only where results stay within float32's 1e-4 tolerance and NaN/inf keep their
   meaning**: the flags ``reassoc``, ``contract`` and ``nsz`` (reorder and fuse sums,
   ignore the sign of zero), on sums only. Never ``nnan``/``ninf``, and never on max-pool or
   ReLU, whose NaN behaviour must match NumPy's exactly.
8. **Outputs are allocated by NumPy, in the Python wrapper, and passed in**: NumPy asks the
   OS for huge pages on large arrays, Numba's allocator does not, and the first-touch page
   faults of a fresh 37 MB ``cols`` then cost more than filling it (an im2col kernel at
   16x16x64, batch 64: 24 ms with the array made inside the kernel, 9 ms with NumPy's). Accumulating
   kernels zero their own output as they go, so ``np.empty`` suffices.
9. **Small problems run on the calling thread alone** (``_launch``: fewer than 32768 output
   elements). Waking the pool costs about 10 us on an idle machine and milliseconds on a busy
   one, where a worker waits for a time slice: a tiny ReLU took 7 ms on two threads of a
   loaded 2-core machine and 4 us on one.
10. **Scalars are cast to the arrays' dtype** before a kernel runs, so float32 work is
    float32 arithmetic, as in the array code; only the softmax cross-entropy sums its few
    exponentials and its loss in float64.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import njit, prange

from ..windows import argmax_dtype
from . import cpu_threads

matmul = cpu_threads.matmul      # the backend's matrix product (k.matmul): BLAS, split over threads

_SUMS = {"reassoc", "contract", "nsz"}
_SMALL = 1 << 15          # outputs below this many elements run on the calling thread alone


def _c(a):
    return np.ascontiguousarray(a)


def _launch(kernel, work, *args):
    """Run a prange kernel on ``args``; with less than ``_SMALL`` elements of work, on one thread."""
    threads = numba.get_num_threads()
    if work >= _SMALL or threads == 1:
        return kernel(*args)
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)


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
    _launch(_col2im, dx.size, _c(cols), dx, sh, sw, top, left)
    return dx


# --- im2col convolution in blocks of output pixels -------------------------------------------
# The array code writes all of cols (7 MB for the seed's first layer), multiplies, then adds
# the bias and applies the ReLU in more passes over the 16 MB output. Here each thread takes
# a range of output pixels and, one block of them at a time, builds that block's cols,
# multiplies it (BLAS, one thread) and finishes its rows of the output while they are in the
# cache: 2.5 ms instead of 2.9 for the seed's first layer with its ReLU, batch 64, 2 cores.

_BLOCK_VALUES = 1 << 17    # cols values per block (512 KB in float32): block rows = this / K


@njit(nogil=True, cache=True)
def _im2col_rows(x, cols, c, h_out, w_out, sh, sw, top, left, p0, p1):
    """cols[p - p0] = the window of output pixel p (flat over n, oh, ow), p0 <= p < p1.

    x is (N, H, W*C) and cols (rows, kh, kw*C): a window row that lies inside the image is
    one contiguous run of kw*C values in both (at stride 1 along W), copied in one go; the
    seed's first layer has C = 3, where a loop per channel would copy 3 values at a time.
    """
    _, h, wc = x.shape
    w = wc // c
    _, kh, kwc = cols.shape
    kw = kwc // c
    for p in range(p0, p1):
        b, rest = p // (h_out * w_out), p % (h_out * w_out)
        oh, ow = rest // w_out, rest % w_out
        s0 = ow * sw - left
        slot = p - p0
        for i in range(kh):
            r = oh * sh + i - top
            if r < 0 or r >= h:
                for t in range(kwc):
                    cols[slot, i, t] = 0
            elif s0 >= 0 and s0 + kw <= w:
                start = s0 * c
                for t in range(kwc):
                    cols[slot, i, t] = x[b, r, start + t]
            else:
                for j in range(kw):
                    s = s0 + j
                    inside = 0 <= s < w
                    for ch in range(c):
                        cols[slot, i, j * c + ch] = x[b, r, s * c + ch] if inside else 0


def _block_rows(k_values):
    return max(16, _BLOCK_VALUES // max(k_values, 1))


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
    x, w2d = _c(x), _c(w2d)
    x_rows = x.reshape(n, x.shape[1], x.shape[2] * c)       # (N, H, W*C): window rows are runs
    bias = np.zeros(c_out, dtype=x.dtype) if bias is None else _c(bias)
    y = np.empty((pixels, c_out), dtype=x.dtype)
    keep_mask = relu and keep_cols
    positive = np.empty((pixels if keep_mask else 0, c_out), dtype=np.bool_)
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
            np.matmul(block.reshape(p1 - p0, k_values), w2d, out=y[p0:p1])
            _bias_activation_rows(y[p0:p1], bias, positive[p0:p1] if keep_mask else positive, relu,
                                  keep_mask)

    cpu_threads.run_ranges(pixels_from, pixels, pixels * k_values * c_out)
    shape = (n, h_out, w_out, c_out)
    if not keep_cols:
        return y.reshape(shape), None, None
    cols = x[:, :, :, None, None, :] if pointwise else kept.reshape(n, h_out, w_out, kh, kw, c)
    return y.reshape(shape), (positive.reshape(shape) if relu else None), cols


def im2col_conv_backward(dy, cols, positive, w2d, window, input_grad):
    """(dz or dx, dW, db) of ``im2col_conv_forward`` from dy and its cols (and mask, with
    its ReLU), block by block: dz = dy masked, db its column sums, dW = cols^T dz summed per
    thread, then over threads in a fixed order, without dz ever leaving the cache. The first
    result is None without ``input_grad``; for a 1x1 window at stride 1 without padding it is
    dx itself (dx = dz W^T, row by row, no overlap); for other windows it is dz, whose dx the
    caller makes with col2im (windows overlap across blocks)."""
    n, h_out, w_out, kh, kw, c = cols.shape
    k_values, c_out = w2d.shape
    pixels = n * h_out * w_out
    pointwise = window.pointwise
    cols2d, dy2d = _c(cols).reshape(pixels, k_values), _c(dy).reshape(pixels, c_out)
    relu = positive is not None
    mask = _c(positive).reshape(pixels, c_out) if relu else np.empty((0, 0), dtype=np.bool_)
    w_t = np.ascontiguousarray(w2d.T)
    first = None
    if input_grad:
        first = np.empty((pixels, k_values if pointwise else c_out), dtype=dy.dtype)
    rows = _block_rows(max(k_values, c_out))
    partial = {}

    def pixels_from(lo, hi):
        scratch = np.empty((rows, c_out), dtype=dy.dtype)
        dw = np.zeros((k_values, c_out), dtype=dy.dtype)
        dw_block = np.empty_like(dw)
        db = np.zeros(c_out, dtype=dy.dtype)
        for p0 in range(lo, hi, rows):
            p1 = min(p0 + rows, hi)
            dz = first[p0:p1] if input_grad and not pointwise else scratch[:p1 - p0]
            _mask_and_sum_rows(dy2d[p0:p1], mask[p0:p1] if relu else mask, dz, db, relu)
            np.matmul(cols2d[p0:p1].T, dz, out=dw_block)
            dw += dw_block
            if input_grad and pointwise:
                np.matmul(dz, w_t, out=first[p0:p1])                 # dx rows = dz W^T
        partial[lo] = (dw, db)

    cpu_threads.run_ranges(pixels_from, pixels, (2 if input_grad else 1) * pixels * k_values * c_out)
    parts = [partial[lo] for lo in sorted(partial)]          # a fixed order: reproducible sums
    if not parts:                                            # an empty batch
        parts = [(np.zeros((k_values, c_out), dtype=dy.dtype), np.zeros(c_out, dtype=dy.dtype))]
    dw, db = parts[0]
    for more_dw, more_db in parts[1:]:
        dw += more_dw
        db += more_db
    if first is not None:
        first = first.reshape(n, h_out, w_out, first.shape[1])
    return first, dw, db


# --- max-pool -------------------------------------------------------------------------------

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


def maxpool2d_forward(x, window):
    """(y, argmax) of a max-pool: argmax[n, oh, ow, c] = i*pw + j of the first maximum."""
    (ph, pw), (sh, sw), ((top, _), (left, _)), (h_out, w_out) = window
    y = np.empty((x.shape[0], h_out, w_out, x.shape[3]), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=argmax_dtype(window))
    _launch(_maxpool_forward, y.size, _c(x), y, argmax, ph, pw, sh, sw, top, left)
    return y, argmax


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


def maxpool2d_backward(dy, argmax, x_shape, window):
    """dx of a max-pool: each input pixel gathers dy of the windows whose winner it is."""
    (ph, pw), (sh, sw), ((top, _), (left, _)), _ = window
    dx = np.empty(x_shape, dtype=dy.dtype)
    _launch(_maxpool_backward, dx.size, _c(dy), _c(argmax), dx, ph, pw, sh, sw, top, left)
    return dx


# --- ReLU -----------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _relu_forward(x, y, positive):
    for k in prange(x.size):
        v = x[k]
        positive[k] = v > 0
        y[k] = v if (v > 0 or v != v) else 0      # max(v, 0), NaN kept


def relu_forward(x):
    """(y, positive): y = max(x, 0) with NaN propagated, and the mask x > 0, in one pass."""
    y = np.empty(x.shape, dtype=x.dtype)
    positive = np.empty(x.shape, dtype=np.bool_)
    _launch(_relu_forward, y.size, _c(x).reshape(-1), y.reshape(-1), positive.reshape(-1))
    return y, positive


@njit(parallel=True, cache=True)
def _relu_backward(dy, positive, dx):
    for k in prange(dy.size):
        dx[k] = dy[k] if positive[k] else 0


def relu_backward(dy, positive):
    """dx = dy where positive, else 0."""
    dx = np.empty(dy.shape, dtype=dy.dtype)
    _launch(_relu_backward, dx.size, _c(dy).reshape(-1), _c(positive).reshape(-1), dx.reshape(-1))
    return dx


# --- bias + ReLU, fused ---------------------------------------------------------------------
# A conv layer's output gets its bias and its ReLU in one pass over memory instead of three
# (add, compare, max), and its backward pass masks the gradient and sums the bias gradient
# in one pass instead of two. The row loops below serve the blocked convolutions too.

_BIAS_CHUNKS = 64    # fixed, so the bias gradient's summation order does not depend on threads


@njit(nogil=True, cache=True)
def _bias_activation_rows(y, bias, positive, relu, keep_mask):
    """y += bias, then (relu) y = max(y, 0) with NaN kept and (keep_mask) positive = y > 0;
    in place."""
    rows, c = y.shape
    for row in range(rows):
        for ch in range(c):
            v = y[row, ch] + bias[ch]
            if relu:
                if keep_mask:
                    positive[row, ch] = v > 0
                v = v if (v > 0 or v != v) else 0
            y[row, ch] = v


@njit(parallel=True, cache=True)
def _bias_relu(z, b, positive):
    rows = z.shape[0]
    for chunk in prange(_BIAS_CHUNKS):
        lo, hi = rows * chunk // _BIAS_CHUNKS, rows * (chunk + 1) // _BIAS_CHUNKS
        _bias_activation_rows(z[lo:hi], b, positive[lo:hi], True, True)


def bias_relu(z, b):
    """(y, positive): y = max(z + b, 0) over the last axis with NaN propagated, and the mask
    z + b > 0. ``z`` must be a C-contiguous array the caller owns: y is written over it.
    ``b`` (C,) or None."""
    c = z.shape[-1]
    b = np.zeros(c, dtype=z.dtype) if b is None else _c(b)
    positive = np.empty(z.shape, dtype=np.bool_)
    _launch(_bias_relu, z.size, z.reshape(-1, c), b, positive.reshape(-1, c))
    return z, positive


@njit(nogil=True, cache=True, fastmath=_SUMS)
def _mask_and_sum_rows(dy, positive, dz, db, relu):
    """dz = dy, masked by positive with ``relu``, and db += the column sums of dz."""
    rows, c = dy.shape
    for row in range(rows):
        for ch in range(c):
            v = dy[row, ch]
            if relu and not positive[row, ch]:
                v = 0
            dz[row, ch] = v
            db[ch] += v


@njit(parallel=True, cache=True)
def _bias_relu_backward(dy, positive, dz, partial):
    rows, chunks = dy.shape[0], partial.shape[0]
    for chunk in prange(chunks):
        partial[chunk, :] = 0
        lo, hi = rows * chunk // chunks, rows * (chunk + 1) // chunks
        _mask_and_sum_rows(dy[lo:hi], positive[lo:hi], dz[lo:hi], partial[chunk], True)


def bias_relu_backward(dy, positive):
    """(dz, db): dz = dy where positive, else 0; db = dz summed over every axis but the last.

    Each of ``_BIAS_CHUNKS`` blocks of rows sums into its own row of partial sums (no two
    threads write one element), which are then added up.
    """
    c = dy.shape[-1]
    dz = np.empty(dy.shape, dtype=dy.dtype)
    partial = np.empty((_BIAS_CHUNKS, c), dtype=dy.dtype)
    _launch(_bias_relu_backward, dz.size, _c(dy).reshape(-1, c), _c(positive).reshape(-1, c),
            dz.reshape(-1, c), partial)
    return dz, partial.sum(axis=0)


# --- softmax cross-entropy ------------------------------------------------------------------
# (N, C) is tiny in the seed's model (64 x 10): one thread, no prange, whose start-up would
# cost more than the work.

@njit(cache=True, fastmath=_SUMS)
def _log_softmax_rows(z, out):
    n, c = z.shape
    for row in range(n):
        top = z[row, 0]
        for k in range(1, c):
            top = max(top, z[row, k])
        total = 0.0
        for k in range(c):
            total += math.exp(z[row, k] - top)
        shift = top + math.log(total)
        for k in range(c):
            out[row, k] = z[row, k] - shift


@njit(cache=True, fastmath=_SUMS)
def _softmax_xent_ids(z, ids, probs):
    n, c = z.shape
    _log_softmax_rows(z, probs)
    loss = 0.0
    for row in range(n):
        loss -= probs[row, ids[row]]
    for row in range(n):
        for k in range(c):
            probs[row, k] = math.exp(probs[row, k])
    return loss / n


@njit(cache=True, fastmath=_SUMS)
def _softmax_xent_rows(z, t, probs):
    n, c = z.shape
    _log_softmax_rows(z, probs)
    loss = 0.0
    for row in range(n):
        for k in range(c):
            loss -= t[row, k] * probs[row, k]
            probs[row, k] = math.exp(probs[row, k])
    return loss / n


def softmax_cross_entropy_forward(logits, targets, sparse):
    """(mean loss as a Python float, probs): class ids if ``sparse``, else target rows."""
    probs = np.empty(logits.shape, dtype=logits.dtype)
    if sparse:
        loss = _softmax_xent_ids(_c(logits), _c(targets).astype(np.intp, copy=False), probs)
    else:
        loss = _softmax_xent_rows(_c(logits), _c(targets), probs)
    return loss, probs


@njit(cache=True)
def _softmax_xent_ids_backward(probs, ids, scale, dz):
    n, c = probs.shape
    for row in range(n):
        for k in range(c):
            dz[row, k] = probs[row, k] * scale
        dz[row, ids[row]] -= scale


@njit(cache=True, fastmath=_SUMS)
def _softmax_xent_rows_backward(probs, t, scale, dz):
    n, c = probs.shape
    for row in range(n):
        total = t[row, 0]
        for k in range(1, c):
            total += t[row, k]
        for k in range(c):
            dz[row, k] = (probs[row, k] * total - t[row, k]) * scale


def softmax_cross_entropy_backward(dloss, probs, targets, sparse):
    """dlogits = dloss * (p * sum(t) - t) / N."""
    scale = probs.dtype.type(dloss) / probs.dtype.type(probs.shape[0])
    dz = np.empty(probs.shape, dtype=probs.dtype)
    if sparse:
        _softmax_xent_ids_backward(_c(probs), _c(targets).astype(np.intp, copy=False), scale, dz)
    else:
        _softmax_xent_rows_backward(_c(probs), _c(targets), scale, dz)
    return dz


# --- Adam -----------------------------------------------------------------------------------

@njit(parallel=True, cache=True)
def _adam_update(p, g, m, v, lr_t, b1, b2, eps):
    one = b1 * 0 + 1
    for k in prange(p.size):
        gk = g[k]
        mk = b1 * m[k] + (one - b1) * gk
        vk = b2 * v[k] + (one - b2) * gk * gk
        m[k] = mk
        v[k] = vk
        p[k] -= lr_t * mk / (math.sqrt(vk) + eps)


def adam_update(param, grad, m, v, lr_t, beta1, beta2, eps):
    """One Adam step in place, Keras' form; param, m, v must be C-contiguous, one dtype:

        m = b1*m + (1-b1)*g;  v = b2*v + (1-b2)*g*g;  param -= lr_t * m / (sqrt(v) + eps)
    """
    t = param.dtype.type
    _launch(_adam_update, param.size, param.reshape(-1), _c(grad).reshape(-1), m.reshape(-1),
            v.reshape(-1), t(lr_t), t(beta1), t(beta2), t(eps))


@njit(parallel=True, cache=True)
def _adam_update_many(ps, gs, ms, vs, lr_t, b1, b2, eps):
    one = b1 * 0 + 1
    for i in prange(len(ps)):                 # one array per iteration, whole
        p, g, m, v = ps[i], gs[i], ms[i], vs[i]
        for k in range(p.size):
            gk = g[k]
            mk = b1 * m[k] + (one - b1) * gk
            vk = b2 * v[k] + (one - b2) * gk * gk
            m[k] = mk
            v[k] = vk
            p[k] -= lr_t * mk / (math.sqrt(vk) + eps)


def adam_update_many(params, grads, ms, vs, lr_t, beta1, beta2, eps):
    """``adam_update`` for every (param, grad, m, v) of the lists in one kernel call: a model's
    parameters are many small arrays (the seed's 270,026 values are 24 arrays), and a call
    per array cost 38 us of dispatch and thread start-up each, 0.9 ms a step. Every array
    is of one dtype; params, ms and vs C-contiguous."""
    t = params[0].dtype.type
    flat = [tuple(_c(a).reshape(-1) for a in arrays) for arrays in (params, grads, ms, vs)]
    _adam_update_many(*flat, t(lr_t), t(beta1), t(beta2), t(eps))


# --- Winograd F(m x m, 3 x 3) ----------------------------------------------------------------
# The transforms of minires.ops.winograd, one kernel per stage, each fused with the padding,
# tiling or cropping around it, for any of its transforms (F(2x2, 3x3), F(4x4, 3x3)): the
# matrices come in as small arrays and zero coefficients are skipped outside the channel
# loop, so F(2x2, 3x3)'s sparse B^T costs only its additions. Transformed arrays are
# (alpha^2, T, C): tile position (p, q) at index p*alpha + q, then the tile
# t = (n*th + ty)*tw + tx, then channels, so that each position is one (T, C) matrix for BLAS.
# Both passes run one cache-sized block of tiles at a time, each thread over a range of
# tiles of its own (``winograd_forward_blocked``, ``winograd_backward_blocked``), so the
# transformed arrays (V, M, dM, dV) never exist in full.

@njit(cache=True, fastmath=_SUMS)
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


@njit(cache=True, fastmath=_SUMS)
def _output_tile(mt, at, f, bias, y, slot, b, ty, tx):
    """y = A^T M A + bias of the tile in mt[:, slot, :], written to its pixels of y (cropped);
    f is (m, alpha, C) scratch."""
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


# The stages for a block of consecutive tiles [t0, t1), on the calling thread without the
# GIL: the pieces of ``winograd_forward_blocked`` and ``winograd_backward_blocked``.

@njit(nogil=True, cache=True, fastmath=_SUMS)
def _winograd_input_block(x, bt, v, m, th, tw, top, left, t0, t1):
    e = np.empty((bt.shape[0], bt.shape[0], x.shape[3]), dtype=v.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _input_tile(x, bt, e, v, tile - t0, row // th, row % th, tile % tw, m, top, left)


@njit(nogil=True, cache=True, fastmath=_SUMS)
def _winograd_output_block(mt, at, bias, y, th, tw, t0, t1):
    f = np.empty((at.shape[0], at.shape[1], y.shape[3]), dtype=y.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _output_tile(mt, at, f, bias, y, tile - t0, row // th, row % th, tile % tw)


# The backward stages, per tile and for a block of consecutive tiles, for
# ``winograd_backward_blocked``.

@njit(cache=True, fastmath=_SUMS)
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


@njit(cache=True, fastmath=_SUMS)
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


@njit(nogil=True, cache=True, fastmath=_SUMS)
def _winograd_output_grad_block(dy, at, dm, th, tw, t0, t1):
    g = np.empty((at.shape[0], at.shape[1], dy.shape[3]), dtype=dm.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _output_grad_tile(dy, at, g, dm, tile - t0, row // th, row % th, tile % tw)


@njit(nogil=True, cache=True, fastmath=_SUMS)
def _winograd_input_grad_block(dv, bt, dx, m, th, tw, top, left, t0, t1):
    f = np.empty((bt.shape[0], bt.shape[0], dx.shape[3]), dtype=dx.dtype)
    for tile in range(t0, t1):
        row = tile // tw
        _input_grad_tile(dv, bt, f, dx, tile - t0, row // th, row % th, tile % tw, m, top, left)


def _matrix(a, dtype):
    return np.ascontiguousarray(a, dtype=dtype)


_BLOCK_TILES = 64             # tiles per block: V and M of a block (36 x 64 x 64 floats) stay in L2
_BLOCK_TILES_BACKWARD = 128   # measured best for the backward pass at the seed's shapes


def winograd_forward_blocked(x, u, bias, padding, tiles, out_hw, f):
    """y = conv of x with the transformed kernel U (+ bias): (N, h_out, w_out, C_out).

    The array code writes all of V, multiplies, and writes all of M before the output
    transform reads it back: four passes over arrays of 9 MB at the seed's 16x16 layers.
    Here each thread takes its share of the tiles in blocks of ``_BLOCK_TILES``, and
    transforms, multiplies (BLAS, one thread) and transforms back one block at a time, so V
    and M never leave the cache: 2.4 ms instead of 3.1 at 16x16x64, batch 64, 2 cores. The
    backward pass recomputes V from x the same way (``winograd_backward_blocked``).
    """
    n, c, c_out = x.shape[0], x.shape[3], u.shape[2]
    (th, tw), ((top, _), (left, _)) = tiles, padding
    x, u = _c(x), _c(u)
    bt, at = _matrix(f.BT, x.dtype), _matrix(f.AT, x.dtype)
    bias = np.zeros(c_out, dtype=x.dtype) if bias is None else _c(bias)
    y = np.empty((n, *out_hw, c_out), dtype=x.dtype)
    positions = f.alpha ** 2

    def tiles_from(lo, hi):
        v = np.empty((positions, _BLOCK_TILES, c), dtype=x.dtype)
        mt = np.empty((positions, _BLOCK_TILES, c_out), dtype=x.dtype)
        for t0 in range(lo, hi, _BLOCK_TILES):
            t1 = min(t0 + _BLOCK_TILES, hi)
            vb, mb = v[:, :t1 - t0], mt[:, :t1 - t0]
            _winograd_input_block(x, bt, vb, f.m, th, tw, top, left, t0, t1)
            np.matmul(vb, u, out=mb)
            _winograd_output_block(mb, at, bias, y, th, tw, t0, t1)

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
    dy, x = _c(dy), _c(x)
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

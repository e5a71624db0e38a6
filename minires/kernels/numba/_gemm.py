"""A float32 matrix product for the numba backend's blocked kernels: ``out (+)= a @ b`` on the
calling thread, in register-sized blocks, with the machine's widest vectors.

The blocked convolutions (im2col and Winograd) multiply one cache-sized block at a time on
each thread. NumPy's BLAS does that on one thread with the kernels it chose when it loaded,
and it may have been told to use narrower vectors than the machine has (OpenBLAS reads
``OPENBLAS_CORETYPE`` when it loads). Numba compiles for the machine it runs on, so this
product uses whatever vectors the machine has.

How it computes ``out[i, j] = sum_k a[i, k] b[k, j]``: the output is cut into blocks of
``_ROWS`` rows by ``_COLUMNS`` columns, and each block's sums stay in registers while k runs
over the whole inner dimension: per k, ``_ROWS`` numbers of a, one row of ``_COLUMNS``
numbers of b, and ``_ROWS * _COLUMNS`` fused multiply-adds. The accumulators are an array
on the stack (``stack_array``), which LLVM keeps in registers because every index into it
is a constant once the fixed-length loops are unrolled; an array made by ``np.empty`` lives
on the heap, where every multiply-add would load and store it. When ``_ROWS`` does not
divide the rows, the last block ends at the last row and overlaps the block before (its
rows computed twice, stored once); a product of fewer rows takes one row at a time.

The sums run over k in order, as a textbook loop does; BLAS orders them its own way, so the
two agree to float32 rounding (the suite's float32 tolerance), not to the last bit.

Only float32 with a multiple of ``_COLUMNS`` output columns runs here (``runs_here``):
the block's width is a constant of the compiled code, and float64 (the verification
precision) stays with BLAS, whose sums are its reference.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from ._inline import flat, stack_array, unsigned
from ._launch import SUMS

INLINE_DIGEST = "8c8324cc122a6f0b"     # of _inline.py, whose helpers are compiled in here (its docstring says why)

_ROWS = 6          # rows of a block: 6 x 4 vectors of 16 floats = 24 accumulators, of 32
_COLUMNS = 64      # columns of a block: four 512-bit vectors (eight 256-bit ones)
_BLOCK = _ROWS * _COLUMNS


@njit(nogil=True, cache=True, fastmath=SUMS)
def _stacked_product(a, b, out, accumulate):
    """out[s] (+)= a[s] @ b[s] for every s, with the inner dimension in two parts:
    out[s, i, j] = sum over (p, k) of a[s, i, p, k] b[s, p, k, j], for a (S, M, P, K), b
    (S, P, K, N) or (1, P, K, N) (one b for every s) and out (S, M, N), N a multiple of
    _COLUMNS; a with any strides, b's and out's last axis contiguous. An ordinary product
    has P = 1; a convolution read in place from its zero-padded images has one s per image
    and one p per kernel row (``window_product``); the Winograd kernels keep each tile's
    alpha^2 positions together, so their stacks step across the rows of b and out.

    Every access indexes single numbers, b and out through bare flat buffers
    (``_inline.flat``, indexed by ``_inline.unsigned``): a view (b[k], out[i]) would count
    a reference to its array, an atomic operation on memory that two threads sharing b (the
    kernel, the same for every block) would pass back and forth between their cores, and
    the two threads would run no faster than one."""
    stack, m, parts, inner = a.shape
    n = b.shape[3]
    b_flat, b_steps = flat(b)
    out_flat, out_steps = flat(out)
    bs, bp, bk = b_steps[0], b_steps[1], b_steps[2]      # bs = 0: one b for every s
    os, oi = out_steps[0], out_steps[1]
    blocks = -(-m // _ROWS) if m >= _ROWS else 0
    for s in range(stack):
        for j0 in range(0, n, _COLUMNS):
            for block in range(blocks):
                # The last block, when _ROWS does not divide m, ends at row m: it computes
                # again rows of the block before and stores only those from ``new`` on.
                new = block * _ROWS
                i0 = min(new, m - _ROWS)
                acc = numba.carray(stack_array(a, _BLOCK), (_ROWS, _COLUMNS))
                for r in range(_ROWS):
                    for j in range(_COLUMNS):
                        acc[r, j] = 0
                for p in range(parts):
                    for k in range(inner):
                        row = s * bs + p * bp + k * bk + j0
                        for r in range(_ROWS):
                            a_value = a[s, i0 + r, p, k]
                            for j in range(_COLUMNS):
                                acc[r, j] += a_value * b_flat[unsigned(row, j)]
                # The stores run over ``columns`` (always _COLUMNS): a loop whose length the
                # compiler cannot see stays a loop, which it turns into vector stores; one of
                # known length it unrolls first, into one store per number.
                columns = min(_COLUMNS, n - j0)
                for r in range(_ROWS):
                    if i0 + r < new:
                        continue
                    row = s * os + (i0 + r) * oi + j0
                    if accumulate:
                        for j in range(columns):
                            out_flat[unsigned(row, j)] += acc[r, j]
                    else:
                        for j in range(columns):
                            out_flat[unsigned(row, j)] = acc[r, j]
            for i in range(m if blocks == 0 else 0):      # fewer than _ROWS rows: one at a time
                acc = numba.carray(stack_array(a, _COLUMNS), (_COLUMNS,))
                for j in range(_COLUMNS):
                    acc[j] = 0
                for p in range(parts):
                    for k in range(inner):
                        a_value = a[s, i, p, k]
                        row = s * bs + p * bp + k * bk + j0
                        for j in range(_COLUMNS):
                            acc[j] += a_value * b_flat[unsigned(row, j)]
                row = s * os + i * oi + j0
                columns = min(_COLUMNS, n - j0)
                if accumulate:
                    for j in range(columns):
                        out_flat[unsigned(row, j)] += acc[j]
                else:
                    for j in range(columns):
                        out_flat[unsigned(row, j)] = acc[j]


def takes(dtype, columns: int) -> bool:
    """Whether products of this dtype with this many output columns run here."""
    return dtype == np.float32 and columns > 0 and columns % _COLUMNS == 0


def _rows_of_vectors(x) -> bool:
    """Whether x's last axis is contiguous and its other strides are whole, non-negative
    numbers of elements: its rows are runs of a flat buffer (``flat``)."""
    item = x.itemsize
    return (x.size > 0 and (x.shape[-1] == 1 or x.strides[-1] == item)
            and all(s >= 0 and s % item == 0 for s in x.strides[:-1]))


def _apart(x) -> bool:
    """Whether no two elements of x share memory (its axes, by stride, each step past the
    whole extent of the axes below it): where the product may write."""
    extent = x.itemsize
    for size, stride in sorted(zip(x.shape, x.strides), key=lambda d: d[1]):
        if size > 1:
            if stride < extent:
                return False
            extent = stride * (size - 1) + extent
    return True


def runs_here(a, b, out) -> bool:
    """Whether ``product`` computes out (+)= a @ b itself rather than handing it to NumPy:
    float32 throughout, 2-D or equal stacks (3-D), ``_COLUMNS`` dividing the columns, the
    rows of b and out contiguous (any steps between them; out's elements apart). a may have
    any strides: it is read one number at a time, so a transposed view is read in place;
    b's and out's rows are read and written as vectors, which strides Numba cannot see would
    turn into gathers."""
    return (a.dtype == b.dtype == out.dtype and takes(b.dtype, b.shape[-1])
            and a.ndim == b.ndim == out.ndim and a.ndim in (2, 3)
            and (b.flags.c_contiguous or _rows_of_vectors(b))
            and (out.flags.c_contiguous or (_rows_of_vectors(out) and _apart(out))))


def product(a, b, out, accumulate=False):
    """out = a @ b, or out += a @ b with ``accumulate``, on the calling thread; a (M, K), b
    (K, N), out (M, N), or stacks of them (S, ., .). Releases the GIL where it runs itself."""
    if runs_here(a, b, out):
        if a.ndim == 2:                    # a stack of one, inner dimension in one part: views
            _stacked_product(a[None, :, None, :], b[None, None], out[None], accumulate)
        else:
            _stacked_product(a[:, :, None, :], b[:, None], out, accumulate)
    elif accumulate:
        out += np.matmul(a, b)
    else:
        np.matmul(a, b, out=out)
    return out


def window_product(a, b, out):
    """out[s] = a[s] @ b for every s, with the inner dimension in parts: a (S, M, P, Q) (any
    strides), b (P, Q, N) and out (S, M, N) float32 with contiguous rows, N a multiple of
    ``_COLUMNS``: out[s, i] = sum over (p, q) of a[s, i, p, q] b[p, q]. A stride-1
    convolution reads its windows from the padded images this way, one s per image and one
    part per kernel row, with no im2col copy."""
    _stacked_product(a, b[None], out, False)
    return out

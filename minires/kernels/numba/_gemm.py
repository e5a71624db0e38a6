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
on the stack (``_stack_array``), which LLVM keeps in registers because every index into it
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
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._launch import SUMS

_ROWS = 6          # rows of a block: 6 x 4 vectors of 16 floats = 24 accumulators, of 32
_COLUMNS = 64      # columns of a block: four 512-bit vectors (eight 256-bit ones)
_BLOCK = _ROWS * _COLUMNS


@intrinsic
def _stack_array(typingctx, like, size):
    """A pointer to ``size`` (a constant) uninitialised numbers of ``like``'s dtype on the
    stack of the calling function."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    dtype = like.dtype

    def codegen(context, builder, signature, args):
        count = context.get_constant(types.intp, size.literal_value)
        return cgutils.alloca_once(builder, context.get_value_type(dtype), size=count)

    return types.CPointer(dtype)(like, size), codegen


@njit(inline="always")
def _column(j0, j):
    """Column j0 + j as an unsigned index: never negative, so Numba checks nothing."""
    return numba.uint64(j0 + j)


@njit(nogil=True, cache=True, fastmath=SUMS)
def _stacked_product(a, b, out, accumulate):
    """out[s] (+)= a[s] @ b[s] for every s, with the inner dimension in two parts:
    out[s, i, n] = sum over (p, q) of a[s, i, p, q] b[s, p, q, n], for a (S, M, P, Q), b (S,
    P, Q, N) or (1, P, Q, N) (one b for every s) and out (S, M, N), N a multiple of _COLUMNS.
    An ordinary product has P = 1; a convolution read in place from its zero-padded images
    has one s per image and one p per kernel row (``window_product``).

    Every access indexes single numbers: a view (b[k], out[i]) would count a reference to
    its array, an atomic operation on memory that two threads sharing b (the kernel, the
    same for every block) would pass back and forth between their cores, and the two threads
    would run no faster than one. The column index is unsigned (``_column``): Numba adds the
    length to a negative index, and that check, on every load, keeps LLVM from turning the
    column loop into vector loads and the accumulators into registers."""
    stack, m, parts, inner = a.shape
    n = b.shape[3]
    blocks = -(-m // _ROWS) if m >= _ROWS else 0
    shared = b.shape[0] == 1                 # one b for every s
    for s in range(stack):
        sb = 0 if shared else s
        for j0 in range(0, n, _COLUMNS):
            for block in range(blocks):
                # The last block, when _ROWS does not divide m, ends at row m: it computes
                # again rows of the block before and stores only those from ``new`` on.
                new = block * _ROWS
                i0 = min(new, m - _ROWS)
                acc = numba.carray(_stack_array(a, _BLOCK), (_ROWS, _COLUMNS))
                for r in range(_ROWS):
                    for j in range(_COLUMNS):
                        acc[r, j] = 0
                for p in range(parts):
                    for k in range(inner):
                        for r in range(_ROWS):
                            a_value = a[s, i0 + r, p, k]
                            for j in range(_COLUMNS):
                                acc[r, j] += a_value * b[sb, p, k, _column(j0, j)]
                for r in range(_ROWS):
                    if i0 + r < new:
                        continue
                    if accumulate:
                        for j in range(_COLUMNS):
                            out[s, i0 + r, _column(j0, j)] += acc[r, j]
                    else:
                        for j in range(_COLUMNS):
                            out[s, i0 + r, _column(j0, j)] = acc[r, j]
            for i in range(m if blocks == 0 else 0):      # fewer than _ROWS rows: one at a time
                acc = numba.carray(_stack_array(a, _COLUMNS), (_COLUMNS,))
                for j in range(_COLUMNS):
                    acc[j] = 0
                for p in range(parts):
                    for k in range(inner):
                        a_value = a[s, i, p, k]
                        for j in range(_COLUMNS):
                            acc[j] += a_value * b[sb, p, k, _column(j0, j)]
                if accumulate:
                    for j in range(_COLUMNS):
                        out[s, i, _column(j0, j)] += acc[j]
                else:
                    for j in range(_COLUMNS):
                        out[s, i, _column(j0, j)] = acc[j]


def takes(dtype, columns: int) -> bool:
    """Whether products of this dtype with this many output columns run here."""
    return dtype == np.float32 and columns > 0 and columns % _COLUMNS == 0


def runs_here(a, b, out) -> bool:
    """Whether ``product`` computes out (+)= a @ b itself rather than handing it to NumPy:
    float32 throughout, 2-D or equal stacks (3-D), ``_COLUMNS`` dividing the columns, b and
    out C-contiguous (a may have any strides: a transposed view is read in place, one number
    at a time; b's rows are read as vectors, which strides Numba cannot see would turn into
    gathers)."""
    return (a.dtype == b.dtype == out.dtype and takes(b.dtype, b.shape[-1])
            and a.ndim == b.ndim == out.ndim and a.ndim in (2, 3)
            and b.flags.c_contiguous and out.flags.c_contiguous)


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
    strides), b (P, Q, N) and out (S, M, N) C-contiguous float32, N a multiple of
    ``_COLUMNS``: out[s, i] = sum over (p, q) of a[s, i, p, q] b[p, q]. A stride-1
    convolution reads its windows from the padded images this way, one s per image and one
    part per kernel row, with no im2col copy."""
    _stacked_product(a, b[None], out, False)
    return out

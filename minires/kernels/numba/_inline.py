"""Jitted helpers compiled into the kernels of several files: what lets LLVM turn their
channel loops into vector code, and max-pool's rule.

How a channel loop becomes vector code here (docs/kernels.md has the measurements):

- its loads and stores index flat, C-contiguous buffers (``flat``) with an unsigned index
  (``unsigned``): Numba adds the length to a negative index, a select on every access that
  keeps LLVM from loading sixteen numbers at once, and a buffer of one axis has a known
  stride of one number;
- what one stage writes and the next reads goes through a scratch array on the stack
  (``stack_array``): LLVM knows that no other pointer reaches it, so the loops that fill it
  and read it need no runtime check that their arrays overlap. Where those checks were
  needed (a tile transform with six rows read and six written per loop), they failed or
  cost more than the loop, and the loop ran one number at a time.

Numba caches a compiled kernel under its own file's timestamp alone, and these helpers are
compiled into kernels in other files: a change here would not reach their cached code. So
every file that calls them records this file's digest (``INLINE_DIGEST``), and
tests/kernels/numba/test_inline.py fails while a record is stale; bringing the record up
to date changes that file, and with it the key of its cached kernels.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def stack_array(typingctx, like, size):
    """A pointer to ``size`` (a constant) uninitialised numbers of ``like``'s dtype on the
    stack of the calling function, allocated once at its entry however often the call runs;
    ``numba.carray(stack_array(a, n), shape)`` makes it an array."""
    if not isinstance(size, types.IntegerLiteral):
        return None
    dtype = like.dtype

    def codegen(context, builder, signature, args):
        count = context.get_constant(types.intp, size.literal_value)
        return cgutils.alloca_once(builder, context.get_value_type(dtype), size=count)

    return types.CPointer(dtype)(like, size), codegen


@intrinsic
def _data(typingctx, array):
    """A pointer to the first element of ``array``."""
    if not isinstance(array, types.Array):
        return None

    def codegen(context, builder, signature, args):
        return context.make_array(signature.args[0])(context, builder, args[0]).data

    return types.CPointer(array.dtype)(array), codegen


@njit(inline="always")
def flat(x):
    """(buffer, steps): x's memory as a C-contiguous 1-D array from its first element, and
    the steps of x's leading axes in elements (0 for an axis of one). For an x whose last
    axis is contiguous: its rows are then runs of the buffer. The buffer is a bare view (no
    reference counted), so two threads reading one array do not pass its count between
    their cores."""
    span = 1 if x.size > 0 else 0
    for d in range(x.ndim if x.size > 0 else 0):
        span += (x.shape[d] - 1) * (x.strides[d] // x.itemsize)
    steps = np.zeros(max(x.ndim - 1, 0), dtype=np.int64)
    for d in range(x.ndim - 1):
        if x.shape[d] > 1:
            steps[d] = x.strides[d] // x.itemsize
    return numba.carray(_data(x), (span,)), steps


@njit(inline="always")
def unsigned(base, j):
    """Index base + j as an unsigned number: never negative, so Numba checks nothing."""
    return numba.uint64(base + j)


@njit(inline="always")
def wins(best, v):
    """max-pool's rule: v replaces best when larger, or NaN (the first NaN stays)."""
    return v if (best == best and (v > best or v != v)) else best


@njit(inline="always")
def relu_kept_nan(z):
    """max(z, 0), NaN kept."""
    return z if (z > 0 or z != z) else 0

"""How the Numba kernels run: the fastmath flags of their sums, C-contiguous arguments, and
small problems kept on the calling thread (rules 4, 7 and 9 of ``minires.kernels.numba``).

A jitted function here would be compiled into its callers in other files, where Numba's cache
would not notice it change; so this module holds plain Python only.
"""

from __future__ import annotations

import numba
import numpy as np

SUMS = {"reassoc", "contract", "nsz"}    # fastmath for sums: reorder and fuse, ignore -0's sign
SMALL = 1 << 15          # outputs below this many elements run on the calling thread alone


def contiguous(a):
    """``a`` as a C-contiguous array (itself when it already is one)."""
    return np.ascontiguousarray(a)


def launch(kernel, work, *args):
    """Run a prange kernel on ``args``; with less than ``SMALL`` elements of work, on one thread."""
    threads = numba.get_num_threads()
    if work >= SMALL or threads == 1:
        return kernel(*args)
    numba.set_num_threads(1)
    try:
        return kernel(*args)
    finally:
        numba.set_num_threads(threads)

"""How the Numba kernels run: the fastmath flags of their sums, C-contiguous arguments, and
small problems kept on the calling thread (rules 4, 7 and 9 of ``minires.kernels.numba``).

A jitted function here would be compiled into its callers in other files, where Numba's cache
would not notice it change; so this module holds plain Python only.
"""

from __future__ import annotations

import types

import numba
import numpy as np

SUMS = {"reassoc", "contract", "nsz"}    # fastmath for sums: reorder and fuse, ignore -0's sign
SMALL = 1 << 21          # kernels touching fewer elements run on the calling thread alone


def contiguous(a):
    """``a`` as a C-contiguous array (itself when it already is one)."""
    return np.ascontiguousarray(a)


_serial: dict = {}        # prange kernel -> its serial twin


def _serial_twin(kernel):
    """The same Python function compiled without ``parallel`` (its prange loops run as plain
    loops on the calling thread), cached on disk beside it under a name of its own, so that
    the two compilations never share a cache entry."""
    twin = _serial.get(kernel)
    if twin is None:
        source = kernel.py_func
        function = types.FunctionType(source.__code__, source.__globals__, source.__name__ + "_serial",
                                      source.__defaults__, source.__closure__)
        function.__qualname__ = source.__qualname__ + "_serial"
        function.__module__ = source.__module__
        options = {k: v for k, v in kernel.targetoptions.items() if k not in ("parallel", "nopython")}
        twin = _serial[kernel] = numba.njit(cache=True, **options)(function)
    return twin


def launch(kernel, work, *args):
    """Run a prange kernel on ``args``; with less than ``SMALL`` elements of work (the
    larger of what it reads and what it writes: a 2x2 max-pool reads four times what it
    writes) or one thread, its serial twin, on the calling thread: starting a parallel
    loop costs a worker's wake-up even on one thread (the workqueue layer hands the loop
    to a worker), more than a small kernel's work."""
    if work >= SMALL and numba.get_num_threads() > 1:
        return kernel(*args)
    return _serial_twin(kernel)(*args)

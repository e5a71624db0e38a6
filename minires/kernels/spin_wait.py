"""Waiting for another thread without the GIL and without sleeping: a bounded spin on a flag.

A thread that sleeps (on a lock, a condition, a queue) is woken by the OS, and on a virtual
machine an idle core's wake-up costs tens of microseconds: the guest's core halts, and the
host has to run it again. ``cpu_threads`` hands work to its helper threads many times a
train step, and each hand-over paid that twice (the helper woken to start, the caller woken
when it finished). Here a thread waits by reading a flag in a loop for a bounded time, in
compiled code that holds no GIL, so the other thread runs Python meanwhile and the change is
seen within a fraction of a microsecond.

The flag is an element of an int64 array, read with an atomic load (acquire): the compiler
may neither hoist the read out of the loop nor reorder the reads after it before it. Writers
set it from Python (a plain store, made while holding the GIL, which orders it after the
writer's earlier stores for any thread that then takes the GIL to read them).
"""

from __future__ import annotations

import time

import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic


@intrinsic
def _load_acquire(typingctx, flags, index):
    """flags[index], an int64 array's element, by an atomic load with acquire ordering."""
    if not (isinstance(flags, types.Array) and flags.dtype == types.int64 and flags.ndim == 1):
        return None
    signature = types.int64(flags, types.intp)

    def codegen(context, builder, sig, args):
        array_type = sig.args[0]
        array = context.make_array(array_type)(context, builder, args[0])
        pointer = cgutils.get_item_pointer(context, builder, array_type, array, [args[1]])
        return builder.load_atomic(pointer, ordering="acquire", align=8)

    return signature, codegen


@njit(nogil=True, cache=True)
def _wait_while(flags, index, value, spins):
    seen = value
    for _ in range(spins):
        seen = _load_acquire(flags, index)
        if seen != value:
            break
    return seen


def new_flags(count: int) -> np.ndarray:
    """``count`` flags, all 0."""
    return np.zeros(count, dtype=np.int64)


def wait_while(flags: np.ndarray, index: int, value: int, spins: int) -> int:
    """Read flags[index] until it differs from ``value`` or ``spins`` reads were made; return
    the last value read (``value`` when the spins ran out). The GIL is released meanwhile."""
    return int(_wait_while(flags, index, value, spins))


_spins_per_second: float | None = None


def spins_per_second() -> float:
    """How many reads ``wait_while`` makes in a second on this machine, measured once (a few
    milliseconds, after the first call compiles or loads it)."""
    global _spins_per_second
    if _spins_per_second is None:
        flags = new_flags(1)
        wait_while(flags, 0, 0, 1000)
        spins = 1 << 20
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            wait_while(flags, 0, 0, spins)
            best = min(best, time.perf_counter() - start)
        _spins_per_second = spins / max(best, 1e-9)
    return _spins_per_second

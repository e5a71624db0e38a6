"""Work split over threads, for the ``numba`` backend whose BLAS runs on one thread:
matrix products (``matmul``) and, with ``run_ranges``, any work on ranges of an array.

On the ``numba`` backend BLAS is held to one thread (``minires.backend.blas_threads_for``:
OpenBLAS' own threads spin after each product and starve Numba's kernels). A large product
would then use one core of several, so ``matmul`` cuts it into one piece per thread and runs
each piece on single-threaded BLAS in a small pool of Python threads. NumPy releases the GIL
inside BLAS, so the pieces run at the same time, and a waiting Python thread sleeps rather
than spins, so the pool leaves the cores to Numba between products.

How a product is cut, so that no two threads write one element:

- a stack of products (a 3-D operand, as in Winograd's alpha^2 products) by the stack;
- a tall product (more rows than the inner dimension) by rows of the left operand and the
  output;
- otherwise (a weight gradient, ``cols^T @ dy``: few rows, a long inner dimension) by the
  inner dimension, each thread writing its own partial product, which are then summed.
  The sum's order differs from BLAS' own, so such a result may differ from ``a @ b`` in the
  last bits, as BLAS results on different thread counts do.

Products below ``_SPLIT_MACS`` multiply-adds stay whole: handing work to a thread costs
tens of microseconds, more than a small product gains from a second core.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..threads import get_num_threads

_SPLIT_MACS = 1 << 25     # multiply-adds below which a product runs whole on the calling thread

_pool: ThreadPoolExecutor | None = None
_pool_size = 0
_pool_lock = threading.Lock()


def _executor(threads: int) -> ThreadPoolExecutor:
    """The shared pool of ``threads`` helper threads (the caller makes one more), made anew
    when the thread setting changed since the last product."""
    global _pool, _pool_size
    with _pool_lock:
        if _pool is None or _pool_size != threads:
            if _pool is not None:
                _pool.shutdown(wait=False)
            _pool = ThreadPoolExecutor(max_workers=max(threads, 1), thread_name_prefix="minires-matmul")
            _pool_size = threads
        return _pool


def _bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` nearly equal [start, stop) ranges covering range(length)."""
    edges = [length * i // parts for i in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def _in_errstate(errors: dict, function, *args):
    with np.errstate(**errors):
        return function(*args)


def _run(tasks, threads: int) -> list:
    """Run (function, *args) tasks, the first on the calling thread; return their results.

    The helper threads run under the caller's floating-point error settings (``np.errstate``
    is per thread): a product split over threads warns, or stays quiet, as the caller's whole
    product would (training silences overflow while it checks for non-finite losses)."""
    if len(tasks) == 1:                     # nothing to hand over: no pool at all
        return [tasks[0][0](*tasks[0][1:])]
    pool = _executor(threads - 1)
    errors = np.geterr()
    futures = [pool.submit(_in_errstate, errors, *task) for task in tasks[1:]]
    first = tasks[0][0](*tasks[0][1:])
    return [first, *(f.result() for f in futures)]


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for 2-D operands, or stacks of them with the same leading length (3-D),
    computed in pieces on ``get_num_threads()`` threads when it is large enough to pay."""
    if (a.ndim not in (2, 3) or a.ndim != b.ndim or a.shape[-1] != b.shape[-2]
            or (a.ndim == 3 and a.shape[0] != b.shape[0])):
        return a @ b                       # shapes matmul itself will judge (or broadcast)
    rows, inner = a.shape[-2:]
    cols = b.shape[-1]
    stack = a.shape[0] if a.ndim == 3 else 1
    threads = get_num_threads()
    if threads == 1 or stack * rows * inner * cols < _SPLIT_MACS:
        return a @ b
    out = np.empty((*a.shape[:-1], cols), dtype=np.result_type(a, b))
    if a.ndim == 3 and stack >= threads:
        _run([(np.matmul, a[lo:hi], b[lo:hi], out[lo:hi]) for lo, hi in _bounds(stack, threads)],
             threads)
    elif rows >= inner:
        _run([(np.matmul, a[..., lo:hi, :], b, out[..., lo:hi, :])
              for lo, hi in _bounds(rows, threads)], threads)
    else:
        partials = _run([(np.matmul, a[..., lo:hi], b[..., lo:hi, :])
                         for lo, hi in _bounds(inner, threads)], threads)
        np.copyto(out, partials[0])
        for partial in partials[1:]:
            out += partial
    return out


def run_ranges(work, length: int, macs: int) -> None:
    """``work(lo, hi)`` over ``get_num_threads()`` nearly equal ranges covering range(length),
    the first on the calling thread; ``work`` must release the GIL to run in parallel
    (Numba ``nogil`` kernels, NumPy's BLAS calls) and write only what its range owns.
    ``macs``, the multiply-adds of all the work, keeps small jobs on the calling thread
    alone, as ``matmul`` does (a small job loses more to the hand-over than it gains)."""
    threads = 1 if macs < _SPLIT_MACS else get_num_threads()
    tasks = [(work, lo, hi) for lo, hi in _bounds(length, threads)]
    if tasks:
        _run(tasks, threads)

"""Work split over threads, for the ``numba`` backend whose BLAS runs on one thread:
matrix products (``matmul``) and, with ``run_ranges``, any work on ranges of an array.

On the ``numba`` backend BLAS is held to one thread (``minires.backend.blas_threads_for``:
OpenBLAS' own threads spin after each product and starve Numba's kernels). A large product
would then use one core of several, so ``matmul`` cuts it into one piece per thread and runs
each piece on single-threaded BLAS on a small team of helper threads. NumPy releases the
GIL inside BLAS (and the blocked kernels release it too), so the pieces run at the same time.

How work is handed to a helper: a helper that has finished its task waits for the next by
spinning on a flag for ``_SPIN_SECONDS`` (``spin_wait``: compiled code, no GIL held) before
it sleeps, and the caller waits for a helper's result the same way. A train step hands work
over dozens of times, mostly a millisecond or less apart, so both threads stay awake through
it and a hand-over costs a flag's write. With sleeping threads (a ``ThreadPoolExecutor``,
as before) each hand-over paid two wake-ups by the OS, the helper's and then the caller's,
tens of microseconds each on a virtual machine, where an idle core is halted. Between steps
(longer than ``_SPIN_SECONDS``) the helpers sleep and leave the cores alone.

How a product is cut, so that no two threads write one element:

- a stack of products (a 3-D operand, as in Winograd's alpha^2 products) by the stack;
- a tall product (more rows than the inner dimension) by rows of the left operand and the
  output;
- otherwise (a weight gradient, ``cols^T @ dy``: few rows, a long inner dimension) by the
  inner dimension, each thread writing its own partial product, which are then summed.
  The sum's order differs from BLAS' own, so such a result may differ from ``a @ b`` in the
  last bits, as BLAS results on different thread counts do.

Products below ``_SPLIT_MACS`` multiply-adds stay whole: a piece of work must outweigh
the hand-over, and the Python work each thread does around its kernels, during which the
other thread may wait for the GIL (a thread waiting for the GIL sleeps).
"""

from __future__ import annotations

import os
import threading

import numpy as np

from ..threads import get_num_threads
from . import spin_wait

_SPLIT_MACS = 1 << 25     # multiply-adds below which a product runs whole on the calling thread

_SPIN_SECONDS = 0.002    # how long a thread waits by spinning (spin_wait) before it sleeps

_team: "_Team | None" = None
_team_lock = threading.Lock()
_fork_hook = False


def _bounds(length: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` nearly equal [start, stop) ranges covering range(length)."""
    edges = [length * i // parts for i in range(parts + 1)]
    return [(lo, hi) for lo, hi in zip(edges[:-1], edges[1:]) if hi > lo]


def _in_errstate(errors: dict, function, *args):
    with np.errstate(**errors):
        return function(*args)


class _Helper:
    """One helper thread, handed one task at a time.

    ``flags[_POSTED]`` counts the tasks handed over and ``flags[_DONE]`` those finished. The
    helper waits for the next task by spinning on ``_POSTED`` (``spin_wait``, no GIL held)
    for ``_SPIN_SECONDS``, then sleeps on ``wake``; the caller waits for the result the same
    way on ``_DONE``, then on ``finished``. Each event is cleared before its flag is read
    and set after its flag is written, so a sleeper cannot miss its flag's change. Between
    the kernels of a train step both threads stay awake, and a hand-over costs a flag's
    write instead of two wake-ups by the OS.
    """

    _POSTED, _DONE = 0, 1

    def __init__(self, spins: int):
        self.flags = spin_wait.new_flags(2)
        self.spins = spins
        self.task = None
        self.result = None
        self.wake = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._serve, name="minires-cpu", daemon=True)
        self.thread.start()

    def post(self, task) -> None:
        self.task = task
        self.finished.clear()
        self.flags[self._POSTED] += 1
        self.wake.set()

    def outcome(self) -> tuple:
        """(True, the task's result) or (False, the exception it raised), once it finished."""
        posted = int(self.flags[self._POSTED])
        while int(self.flags[self._DONE]) != posted:
            if spin_wait.wait_while(self.flags, self._DONE, posted - 1, self.spins) == posted - 1:
                self.finished.wait()
        outcome, self.result = self.result, None
        return outcome

    def stop(self) -> None:
        self.post(None)

    def _serve(self) -> None:
        seen = 0
        while True:
            self.wake.clear()
            if spin_wait.wait_while(self.flags, self._POSTED, seen, self.spins) == seen:
                self.wake.wait()
                continue
            seen += 1
            task, self.task = self.task, None
            if task is None:
                return
            try:
                self.result = (True, task[0](*task[1:]))
            except BaseException as error:      # handed to the caller, raised there
                self.result = (False, error)
            self.flags[self._DONE] = seen
            self.finished.set()


class _Team:
    """``size`` helpers; ``busy`` is held while a call of ``_run`` uses them."""

    def __init__(self, size: int):
        spins = max(1, int(_SPIN_SECONDS * spin_wait.spins_per_second()))
        self.helpers = [_Helper(spins) for _ in range(size)]
        self.busy = threading.Lock()

    def stop(self) -> None:
        for helper in self.helpers:
            helper.stop()


def _forget_team() -> None:
    """In a forked child: the parent's helper threads do not exist there."""
    global _team, _team_lock
    _team, _team_lock = None, threading.Lock()


def _forget_team_in_forked_children() -> None:
    global _fork_hook
    if not _fork_hook and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_forget_team)
        _fork_hook = True


def _take_team(size: int) -> _Team | None:
    """The shared team of ``size`` helper threads (the caller makes one more), its ``busy``
    lock taken for the caller, made anew when the thread setting changed since the last
    call; None while the team is busy (another caller's, or the caller's own from inside a
    task): the caller then runs its tasks itself. Taken under ``_team_lock``, so that no
    caller can stop a team that another has just been given."""
    global _team
    with _team_lock:
        if _team is not None and not _team.busy.acquire(blocking=False):
            return None
        if _team is None or len(_team.helpers) != size:
            if _team is not None:
                _team.stop()
                _team.busy.release()
            _forget_team_in_forked_children()
            _team = _Team(size)
            _team.busy.acquire()
        return _team


def _run(tasks, threads: int) -> list:
    """Run (function, *args) tasks, the first on the calling thread; return their results.

    The helper threads run under the caller's floating-point error settings (``np.errstate``
    is per thread): a product split over threads warns, or stays quiet, as the caller's whole
    product would (training silences overflow while it checks for non-finite losses). A call
    made while the team is busy (from another thread, or from inside a task) runs its tasks
    one after the other on the calling thread: the same results, without waiting. An
    exception in any task is raised once every task has finished."""
    if len(tasks) == 1:                     # nothing to hand over: no helper at all
        return [tasks[0][0](*tasks[0][1:])]
    team = _take_team(threads - 1)
    if team is None:
        return [task[0](*task[1:]) for task in tasks]
    try:
        errors = np.geterr()
        helpers = team.helpers[:len(tasks) - 1]
        for helper, task in zip(helpers, tasks[1:]):
            helper.post((_in_errstate, errors, *task))
        try:
            first = tasks[0][0](*tasks[0][1:])
        finally:
            rest = [helper.outcome() for helper in helpers]
        for ok, value in rest:
            if not ok:
                raise value
        return [first, *(value for _, value in rest)]
    finally:
        team.busy.release()


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

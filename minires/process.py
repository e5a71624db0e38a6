"""Tuning the whole process for minires' speed: one explicit call, never made on import.

``import minires`` and choosing a backend leave the environment and the allocator alone: a
library imported into someone else's process (a test suite, a notebook beside PyTorch, JAX or
Keras) must not change how that process, or the children it starts, behave. Four settings
make the CPU backends faster but reach the whole process, so they are made only when asked,
by ``tune_process()``. The command line (``minires train``, ``evaluate``, ``predict``,
``bench``) calls it first thing; a library user who wants the same speed calls it once, as
early as possible:

    import minires
    minires.tune_process()          # before the first numba kernel and the first train step

What it does, each skipped where the user already decided:

1. **Freed memory is kept for reuse** (``minires.memory.reuse_freed_memory``; glibc only):
   a train step frees and reallocates the same large arrays, and glibc would otherwise hand
   them back to the OS and fault fresh zeroed pages in each step. The process keeps its peak
   memory. ``MINIRES_REUSE_MEMORY=0`` turns this one off.
2. **Numba's kernels run on Numba's own thread pool** (``NUMBA_THREADING_LAYER=workqueue``,
   unless set), not on an OpenMP runtime. Numba's default layer here is OpenMP (libgomp), and
   libgomp is one runtime per process: PyTorch's wheel brings a ``libgomp.so.1``, and once
   torch is imported Numba's kernels run on the runtime torch started, with the wait policy
   it read at its start; its workers spin after each parallel loop and starve the threads
   that run minires' matrix products between kernels (docs/kernels.md has the figures). The
   workqueue pool's workers sleep between kernels whoever else is in the process, and leave
   the OpenMP runtime, and its settings, to PyTorch. Numba reads the variable when it starts
   its pool, at the first parallel kernel, so this works only before that. The workqueue
   layer refuses parallel kernels launched from two threads at once (it stops the process):
   a program that runs minires' ops from several threads at a time sets
   ``NUMBA_THREADING_LAYER=omp`` itself, which is kept.
3. **OpenMP workers sleep between kernels** (``OMP_WAIT_POLICY=PASSIVE``, unless set), only
   when Numba still runs on OpenMP (the user chose its layer): libgomp lets its workers spin
   after each parallel region, and the numba backend runs its matrix products on threads of
   its own right after a kernel, so spinning workers would take their cores. libgomp reads
   the variable when it is loaded. It stays in ``os.environ``: child processes inherit it,
   and ``made_settings()`` tells a launcher which variables to take out again.
4. **BLAS pools sized by ``MINIRES_NUM_THREADS``** (or ``threads=``): ``OPENBLAS_NUM_THREADS``,
   ``OMP_NUM_THREADS`` and ``MKL_NUM_THREADS`` are set where unset, for libraries that have not
   loaded yet and for child processes. Within minires the thread count is applied at run time
   anyway (``minires.set_num_threads``), so this matters for what loads later.

This module imports nothing from minires but the allocator setting.
"""

from __future__ import annotations

import os

from . import threads as _threads
from .memory import reuse_freed_memory

_BLAS_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
NUMBA_LAYER_VARIABLE = "NUMBA_THREADING_LAYER"
NUMBA_LAYER = "workqueue"        # Numba's own pool: no OpenMP runtime shared with PyTorch

_made: dict[str, str] = {}       # environment variables tune_process set (not the user)
_tuned: dict | None = None


def tune_process(threads: int | None = None) -> dict:
    """Make the process-wide settings of the module doc; return what is now in force.

    ``threads``: the BLAS thread variables to set (default ``MINIRES_NUM_THREADS``; none are
    set when neither is given). Calling it again only adds what the first call did not set.
    Returns ``{"reuse_freed_memory": bool, "environment": {variable: value set}}``.
    """
    global _tuned
    count = _threads.environment_threads() if threads is None else _threads.check_threads(
        "tune_process: threads", threads)
    wanted = {NUMBA_LAYER_VARIABLE: NUMBA_LAYER}
    layer = os.environ.get(NUMBA_LAYER_VARIABLE, NUMBA_LAYER).strip().lower()
    if layer != NUMBA_LAYER:
        wanted["OMP_WAIT_POLICY"] = "PASSIVE"     # Numba stays on OpenMP: let its workers sleep
    if count is not None:
        wanted.update({name: str(count) for name in _BLAS_VARIABLES})
    for name, value in wanted.items():
        if name not in os.environ:
            os.environ[name] = value
            _made[name] = value
    _tuned = {"reuse_freed_memory": reuse_freed_memory(), "environment": dict(_made)}
    return _tuned


def made_settings() -> dict[str, str]:
    """The environment variables ``tune_process`` set in this process (not those the user set)."""
    return dict(_made)


def is_tuned() -> bool:
    """Whether ``tune_process`` has run in this process."""
    return _tuned is not None

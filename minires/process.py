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
2. **Numba's kernels share no OpenMP runtime with another library.** Numba's default layer
   here is OpenMP (libgomp), and libgomp is one runtime per process: PyTorch's wheel brings
   a ``libgomp.so.1``, and once torch is imported Numba's kernels would run on the runtime
   torch started, with the wait policy it read at its start; its workers spin after each
   parallel loop and starve the threads that run minires' matrix products between kernels
   (docs/kernels.md has the figures). So where an OpenMP runtime is already loaded when
   ``tune_process`` runs (``openmp_loaded``: torch imported first), Numba gets its own pool
   (``NUMBA_THREADING_LAYER=workqueue``), whose workers sleep between kernels whoever else is
   in the process. Otherwise Numba keeps OpenMP, and item 3 makes its workers sleep: the
   workqueue pool wakes a worker even for a kernel run on one thread, which costs tens to
   hundreds of microseconds a kernel on a virtual machine, where OpenMP runs a one-thread
   kernel on the calling thread (the seed's train step runs dozens of small kernels).
   Numba reads the variable when it starts its pool, at the first parallel kernel, so this
   works only before that. The workqueue layer refuses parallel kernels launched from two
   threads at once (it stops the process): a program that runs minires' ops from several
   threads at a time beside torch sets ``NUMBA_THREADING_LAYER=omp`` itself, which is kept.
3. **OpenMP workers sleep between kernels** (``OMP_WAIT_POLICY=PASSIVE``, unless set), when
   Numba runs on OpenMP: libgomp lets its workers spin after each parallel region, and the
   numba backend runs its matrix products on threads of its own right after a kernel, so
   spinning workers would take their cores. libgomp reads the variable when it is loaded.
   It stays in ``os.environ``: child processes inherit it, and ``made_settings()`` tells a
   launcher which variables to take out again.
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
_OPENMP_LIBRARIES = ("libgomp", "libiomp", "libomp")


def openmp_loaded() -> bool:
    """Whether an OpenMP runtime is already mapped into this process (Linux: read from
    /proc/self/maps; elsewhere, whether torch, which brings one, is imported)."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            return any(name in line for line in maps for name in _OPENMP_LIBRARIES)
    except OSError:
        import sys
        return "torch" in sys.modules

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
    wanted = {}
    if NUMBA_LAYER_VARIABLE not in os.environ and openmp_loaded():
        wanted[NUMBA_LAYER_VARIABLE] = NUMBA_LAYER
    layer = os.environ.get(NUMBA_LAYER_VARIABLE, wanted.get(NUMBA_LAYER_VARIABLE, "")).strip().lower()
    if layer != NUMBA_LAYER:
        wanted["OMP_WAIT_POLICY"] = "PASSIVE"     # Numba on OpenMP: let its workers sleep
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

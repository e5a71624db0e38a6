"""The array backend: which array module (NumPy or CuPy) minires computes with.

Code above the kernels never imports numpy or cupy for its array work. It asks this module:

- ``array_module(*arrays)`` gives the module that owns the arrays it was handed (CuPy arrays
  stay on the GPU, everything else is NumPy), so an op runs wherever its inputs live;
- ``xp()`` gives the module of the current backend, for code that creates arrays from nothing
  (initialisers, data loaders);
- ``set_backend`` / ``get_backend`` / ``use_backend`` choose the current backend, whose
  default comes from the ``MINIRES_BACKEND`` environment variable (numpy when unset);
  ``auto_backend()`` names the fastest CPU backend that loads here (numba, else numpy), which
  the command line uses by default and ``MINIRES_BACKEND=auto`` asks for;
- ``kernel(name, *arrays)`` gives the current backend's kernel ``name`` for those arrays, or
  None: the one line with which an op picks its path (``k = kernel("relu_backward", dy,
  mask)`` ... ``k(dy, mask) if k else dy * mask``). The names and their contracts are the
  table ``minires.kernels.interface.KERNELS``;
- ``set_num_threads`` / ``get_num_threads`` set how many threads the CPU work uses.

A backend is a name for an array module plus the device-specific kernels that replace parts
of the vectorized code:

- ``numpy``: the vectorized code on the CPU, NumPy and its BLAS only;
- ``numba``: NumPy arrays too, with the Numba JIT kernels of ``minires.kernels.numba``
  swapped in where they measured faster (matrix products stay in BLAS);
- ``cupy``: the vectorized code on a CUDA GPU, with the CUDA kernels of
  ``minires.kernels.gpu_cupy`` swapped in (matrix products in cuBLAS).

Threads: one setting, ``MINIRES_NUM_THREADS`` or ``set_num_threads(n)`` (default: the cores
this process may run on; the number itself lives in ``minires.threads``), sizes both Numba's
thread pool and, through threadpoolctl, the BLAS pool; on the numba backend BLAS runs on one
thread (``blas_threads_for`` says why) and large products are split over threads by minires
itself (``minires.kernels.cpu_threads``). The pools are sized when a backend is first chosen
or resolved, never on import.

Choosing a backend changes nothing else in the process: no environment variable, no allocator
setting. The process-wide settings that make the CPU backends faster are one explicit call,
``minires.tune_process()`` (``minires.process``), which the command line makes for itself.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
from types import ModuleType
from typing import Callable, Iterator

import numpy

from . import threads as _threads
from .kernels.interface import KERNELS

BACKENDS = ("numpy", "numba", "cupy")
AUTO = "auto"            # not a backend: a request for auto_backend()'s choice
_ENV_VAR = "MINIRES_BACKEND"

_current: str | None = None
_numba_kernels: ModuleType | None = None
_cupy_kernels: ModuleType | None = None
_blas_limits = None      # threadpoolctl's record of the BLAS pool sizes before minires set them


def _load_module(name: str) -> ModuleType:
    """Import the array module of backend ``name``, or explain why it cannot be used."""
    if name == "numpy":
        return numpy
    if name == "numba":
        _load_numba_kernels()
        return numpy
    try:
        cupy = importlib.import_module("cupy")
    except ImportError as exc:
        raise RuntimeError(
            "minires backend 'cupy' needs CuPy: install minires[cuda] (cupy-cuda12x) "
            f"on a machine with a CUDA GPU ({exc})"
        ) from exc
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken: CuPy raises its own types
        raise RuntimeError(f"minires backend 'cupy' found no usable CUDA device ({exc})") from exc
    if count < 1:
        raise RuntimeError("minires backend 'cupy' found no CUDA device")
    return cupy


def _check_name(name: object) -> str:
    if not isinstance(name, str) or name not in BACKENDS:
        raise ValueError(
            f"set_backend: name must be one of {', '.join(repr(b) for b in BACKENDS)}, got {name!r}"
        )
    return name


def _load_numba_kernels() -> ModuleType:
    """The Numba kernel module, imported (not compiled: each kernel compiles on first use)."""
    global _numba_kernels
    if _numba_kernels is None:
        # Numba's workers run faster asleep between kernels, on an OpenMP runtime no other
        # library shares, but that is the process' setting to make: minires.tune_process()
        # makes it.
        try:
            importlib.import_module("numba")
        except ImportError as exc:
            raise RuntimeError(
                "minires backend 'numba' needs Numba: pip install 'numba>=0.60' "
                f"(or choose backend 'numpy') ({exc})"
            ) from exc
        _numba_kernels = importlib.import_module("minires.kernels.numba")
        _apply_num_threads()
    return _numba_kernels


def set_backend(name: str) -> None:
    """Make ``name`` ("numpy", "numba" or "cupy") the current backend."""
    global _current
    _load_module(_check_name(name))
    previous, _current = _current, name
    n = get_num_threads()
    if blas_threads_for(previous, n) != blas_threads_for(name, n):
        _apply_num_threads()        # the BLAS pool's size depends on the backend


def get_backend() -> str:
    """The current backend's name; on first use it is read from ``MINIRES_BACKEND`` (default
    numpy; ``auto``: ``auto_backend()``'s choice)."""
    global _current
    if _current is None:
        requested = requested_backend() or "numpy"
        if requested == AUTO:
            requested = auto_backend()
        _load_module(requested)
        _current = requested
        _apply_num_threads()
    return _current


def requested_backend() -> str | None:
    """``MINIRES_BACKEND`` checked and lower-cased (a backend's name or "auto"), None when unset."""
    requested = os.environ.get(_ENV_VAR, "").strip().lower()
    if not requested:
        return None
    if requested not in (*BACKENDS, AUTO):
        raise ValueError(f"{_ENV_VAR} must be one of {', '.join((*BACKENDS, AUTO))}, got {requested!r}")
    return requested


def auto_backend() -> str:
    """The fastest CPU backend that loads in this process: "numba" when Numba imports, else
    "numpy". Nothing is chosen: pass the answer to ``set_backend``."""
    try:
        _load_numba_kernels()
    except RuntimeError:            # Numba is not installed (or does not import)
        return "numpy"
    return "numba"


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Run a block with backend ``name``, restoring the previous one afterwards."""
    previous = get_backend()
    set_backend(name)
    try:
        yield name
    finally:
        set_backend(previous)


def xp() -> ModuleType:
    """The array module of the current backend, for code that creates new arrays."""
    return _load_module(get_backend())


def kernel(name: str, *arrays: object) -> Callable | None:
    """The current backend's kernel ``name`` for ``arrays``, or None: then the op runs its array code.

    ``name`` is one of ``minires.kernels.interface.KERNELS``, which states each kernel's
    contract; any other name is refused (a ValueError naming it). A kernel is looked up in
    ``minires.kernels.numba`` when the backend is ``numba`` and the arrays are NumPy arrays,
    in ``minires.kernels.gpu_cupy`` when it is ``cupy`` and one of them is a CuPy array; the
    answer is None for backend ``numpy``, for arrays of another device than the backend's,
    and for a kernel that the backend's module does not provide. An op reaches its kernels
    only through this function, so switching the backend switches every op.
    """
    if name not in KERNELS:
        raise ValueError(f"kernel: name must be one of the kernels of minires.kernels.interface."
                         f"KERNELS, got {name!r}")
    current = get_backend()
    if current == "numba" and array_module(*arrays) is numpy:
        return getattr(_load_numba_kernels(), name, None)
    if current == "cupy" and array_module(*arrays) is not numpy:
        return getattr(_load_cupy_kernels(), name, None)
    return None


def _load_cupy_kernels() -> ModuleType:
    """The CUDA kernel module (each kernel compiles on first use)."""
    global _cupy_kernels
    if _cupy_kernels is None:
        _cupy_kernels = importlib.import_module("minires.kernels.gpu_cupy")
    return _cupy_kernels


def array_module(*arrays: object) -> ModuleType:
    """The array module that owns ``arrays``: CuPy if any of them is a CuPy array, else NumPy.

    This mirrors ``cupy.get_array_module`` without importing CuPy when it is not already
    loaded, so NumPy-only users never pay for (or need) it.
    """
    cupy = _loaded_cupy()
    if cupy is not None and any(isinstance(a, cupy.ndarray) for a in arrays):
        return cupy
    return numpy


def _loaded_cupy() -> ModuleType | None:
    return sys.modules.get("cupy")


def to_numpy(array: object) -> numpy.ndarray:
    """A NumPy copy (or view) of ``array``, fetched from the GPU when it lives there."""
    cupy = _loaded_cupy()
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy.asnumpy(array)
    return numpy.asarray(array)


# --- threads ----------------------------------------------------------------------------------

def get_num_threads() -> int:
    """Threads for CPU work: ``set_num_threads``' value, else ``MINIRES_NUM_THREADS``, else the
    number of cores this process may run on."""
    return _threads.get_num_threads()


def set_num_threads(n: int | None = None) -> int:
    """Use ``n`` threads (None: back to the default) for Numba kernels and, with threadpoolctl
    installed, for BLAS. Returns the number now in force.

    Numba's pool cannot grow past the size it started with (``NUMBA_NUM_THREADS``, the core
    count by default), so a larger ``n`` is capped there; its setting is per calling thread,
    so call this from the thread that trains.
    """
    _threads.set_requested(n)
    _apply_num_threads()
    return get_num_threads()


def blas_threads_for(backend: str | None, n: int) -> int:
    """BLAS threads for ``n`` CPU threads on ``backend``: all of them, except on numba.

    On the numba backend, Numba's kernels take the cores between matrix products, and BLAS
    threads that are left spinning after each product (as OpenBLAS' do) fight them for the
    cores; minires splits the large products over threads itself instead
    (``minires.kernels.cpu_threads``), and the small ones lose little on one thread.
    docs/kernels.md has the measurement.
    """
    return 1 if backend == "numba" else n


def _apply_num_threads() -> None:
    """Size Numba's pool and the BLAS pool.

    The BLAS pool keeps the size the process gave it unless a thread count was asked for or
    the backend is numba (which needs BLAS on one thread): a library does not resize someone
    else's pools unasked. When neither holds any more (back from numba to numpy), the pool
    gets its original size back.
    """
    global _blas_limits
    n = get_num_threads()
    numba = sys.modules.get("numba")
    if numba is not None and hasattr(numba, "set_num_threads"):
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    if _current != "numba" and not _threads.is_requested():
        if _blas_limits is not None:
            _blas_limits.restore_original_limits()
            _blas_limits = None
        return
    threadpoolctl = _import_threadpoolctl()
    if threadpoolctl is None:
        return
    limits = threadpoolctl.threadpool_limits(limits=blas_threads_for(_current, n), user_api="blas")
    if _blas_limits is None:
        _blas_limits = limits       # the first change made remembers the sizes before any


def _import_threadpoolctl() -> ModuleType | None:
    """threadpoolctl, or None when it is not installed, imported without a trace in os.environ.

    Importing threadpoolctl sets ``KMP_DUPLICATE_LIB_OK=True`` (Intel's OpenMP then tolerates
    being loaded twice) for the whole process and its children; minires uses it only to size
    the BLAS pool, so the variable is taken out again unless it was there before.
    """
    if "threadpoolctl" in sys.modules:
        return sys.modules["threadpoolctl"]
    before = os.environ.get("KMP_DUPLICATE_LIB_OK")
    try:
        return importlib.import_module("threadpoolctl")
    except ImportError:
        return None
    finally:
        if before is None:
            os.environ.pop("KMP_DUPLICATE_LIB_OK", None)

"""The array backend: which array module (NumPy or CuPy) minires computes with.

Code above the kernels never imports numpy or cupy for its array work. It asks this module:

- ``array_module(*arrays)`` gives the module that owns the arrays it was handed (CuPy arrays
  stay on the GPU, everything else is NumPy), so an op runs wherever its inputs live;
- ``xp()`` gives the module of the current backend, for code that creates arrays from nothing
  (initialisers, data loaders);
- ``set_backend`` / ``get_backend`` / ``use_backend`` choose the current backend, whose
  default comes from the ``MINIRES_BACKEND`` environment variable.

A backend is a name for an array module plus, later, the device-specific kernels that replace
parts of the vectorized code. ``numpy`` runs the vectorized code on the CPU; ``cupy`` runs the
same code on a CUDA GPU.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from types import ModuleType
from typing import Iterator

import numpy

BACKENDS = ("numpy", "cupy")
_ENV_VAR = "MINIRES_BACKEND"

_current: str | None = None


def _load_module(name: str) -> ModuleType:
    """Import the array module of backend ``name``, or explain why it cannot be used."""
    if name == "numpy":
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


def set_backend(name: str) -> None:
    """Make ``name`` ("numpy" or "cupy") the current backend."""
    global _current
    _load_module(_check_name(name))
    _current = name


def get_backend() -> str:
    """The current backend's name; on first use it is read from ``MINIRES_BACKEND`` (default numpy)."""
    global _current
    if _current is None:
        requested = os.environ.get(_ENV_VAR, "numpy").strip().lower() or "numpy"
        if requested not in BACKENDS:
            raise ValueError(
                f"{_ENV_VAR} must be one of {', '.join(BACKENDS)}, got {requested!r}"
            )
        _load_module(requested)
        _current = requested
    return _current


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
    import sys

    return sys.modules.get("cupy")


def to_numpy(array: object) -> numpy.ndarray:
    """A NumPy copy (or view) of ``array``, fetched from the GPU when it lives there."""
    cupy = _loaded_cupy()
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy.asnumpy(array)
    return numpy.asarray(array)

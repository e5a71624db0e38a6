"""Keep freed large arrays for reuse instead of handing them back to the OS (glibc only).

A train step allocates and frees the same large arrays every time: a conv layer's output
and its im2col or Winograd buffers are megabytes each. glibc's malloc serves blocks above a
threshold (128 KiB, rising to at most 32 MiB as it adapts) with fresh ``mmap`` calls and
returns them with ``munmap``, and trims the top of its heap when more than a threshold is
free, so each step gets new pages from the OS and pays a page fault, and the zeroing of a
page, for every 4 KiB it touches first (PyTorch, in a process of its own, gains as much from
it; docs/kernels.md has the measurement).

``reuse_freed_memory`` raises both thresholds to 1 GiB with ``mallopt``, so freed blocks
stay in the heap and the next step's arrays reuse pages that are already mapped. The cost:
the process keeps its peak memory instead of shrinking after a large step. It is a setting
of the whole process, so minires makes it only when asked: ``minires.tune_process()`` calls
it (the command line does); ``MINIRES_REUSE_MEMORY=0`` in the environment turns it off. It does nothing where malloc is not glibc's (macOS, Windows, musl).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

_ENV_VAR = "MINIRES_REUSE_MEMORY"
_M_TRIM_THRESHOLD = -1           # mallopt parameters, from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 1 << 30            # blocks up to this size come from the heap and stay there
_GLIBC_CAP = 32 << 20            # older glibc refuses an mmap threshold above this

_applied: bool | None = None     # None: not tried yet; then whether the thresholds were raised


def reuse_freed_memory() -> bool:
    """Ask glibc to keep freed blocks of up to 1 GiB for reuse (once per process).

    Returns whether the setting is in force: False off glibc, with ``MINIRES_REUSE_MEMORY=0``,
    or where glibc refused it.
    """
    global _applied
    if _applied is None:
        _applied = _apply()
    return _applied


def _apply() -> bool:
    if os.environ.get(_ENV_VAR, "").strip() == "0":
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    # mallopt returns 1 on success. Trim first: raising the mmap threshold alone would put
    # large blocks on the heap and then trim them away again.
    if mallopt(_M_TRIM_THRESHOLD, _KEEP_BYTES) != 1:
        return False
    return any(mallopt(_M_MMAP_THRESHOLD, limit) == 1 for limit in (_KEEP_BYTES, _GLIBC_CAP))

"""How many threads minires' CPU work uses: one setting, read by the backend and the kernels.

``MINIRES_NUM_THREADS`` in the environment, or ``set_requested(n)`` (through
``minires.set_num_threads``), else the number of cores this process may run on. This module
only holds the number; applying it to Numba's pool and to BLAS is ``minires.backend``'s work.
It imports nothing from minires, so the kernels can read it without importing the backend.
"""

from __future__ import annotations

import numbers
import os

ENV_VAR = "MINIRES_NUM_THREADS"

_requested: int | None = None


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS reports one)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


def check_threads(who: str, n: object) -> int:
    """``n`` as a positive int, or a ValueError naming ``who``."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{who} must be a positive int, got {n!r}")
    return int(n)


def get_num_threads() -> int:
    """``set_requested``'s value, else ``MINIRES_NUM_THREADS``, else ``usable_cores()``."""
    if _requested is not None:
        return _requested
    from_environment = environment_threads()
    return usable_cores() if from_environment is None else from_environment


def environment_threads() -> int | None:
    """``MINIRES_NUM_THREADS`` as a positive int, None when unset or blank."""
    text = os.environ.get(ENV_VAR, "").strip()
    if not text:
        return None
    try:
        return check_threads(ENV_VAR, int(text))
    except ValueError:
        raise ValueError(f"{ENV_VAR} must be a positive int, got {text!r}") from None


def is_requested() -> bool:
    """Whether a thread count was asked for (``set_requested`` or ``MINIRES_NUM_THREADS``)."""
    return _requested is not None or environment_threads() is not None


def set_requested(n: int | None) -> None:
    """Ask for ``n`` threads (None: back to the default)."""
    global _requested
    _requested = None if n is None else check_threads("set_num_threads: n", n)

"""Checks of the arguments users pass to the model API; each error names the method and the value."""

from __future__ import annotations

from ..windows import is_int


def batch_size(who: str, value) -> int:
    """``batch_size``: a positive int, Keras' 32 when None."""
    if value is None:
        return 32
    if not is_int(value) or value < 1:
        raise ValueError(f"{who}: batch_size must be a positive int, got {value!r}")
    return int(value)


def progress_mode(who: str, verbose) -> str:
    """Keras' ``verbose`` (0, 1, 2 or "auto") as a ``minires.progress`` mode."""
    if verbose == "auto":
        verbose = 1
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"{who}: verbose must be 0, 1, 2 or 'auto', got {verbose!r}")
    return ("silent", "bar", "epoch")[verbose]

"""Argument checks shared by the ops: every message names the op, the argument and what was due.

An op that gets bad input should fail at its door with a sentence a user can act on
(``conv2d: x must be NHWC with 4 dims, got shape (32, 32, 3)``), not deep inside a matrix
product with a broadcasting error.
"""

from __future__ import annotations

from ..backend import array_module


def as_float_array(op: str, name: str, value, ndim: int | None = None, min_ndim: int | None = None):
    """``value`` as an array of a floating dtype, checked for rank; raises TypeError/ValueError."""
    xp = array_module(value)
    array = value if hasattr(value, "dtype") and hasattr(value, "shape") else xp.asarray(value)
    if array.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point array, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dims, got shape {tuple(array.shape)}")
    if min_ndim is not None and array.ndim < min_ndim:
        raise ValueError(
            f"{op}: {name} must have at least {min_ndim} dims, got shape {tuple(array.shape)}"
        )
    return array


def check_same_dtype(op: str, **arrays) -> None:
    """All named arrays share one dtype: ops keep dtypes, so they refuse to guess a promotion."""
    dtypes = {name: a.dtype for name, a in arrays.items() if a is not None}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} is {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"{op}: arrays must share one dtype, got {listed}")


def check_dtype(op: str, name: str, array, dtype) -> None:
    """A gradient must come in the dtype of the forward pass it belongs to."""
    if array.dtype != dtype:
        raise TypeError(f"{op}: {name} must have dtype {dtype} (the forward pass's), got {array.dtype}")


def check_shape(op: str, name: str, array, expected: tuple) -> None:
    if tuple(array.shape) != tuple(expected):
        raise ValueError(
            f"{op}: {name} must have shape {tuple(expected)}, got {tuple(array.shape)}"
        )


def same_shape_pair(op: str, a, b):
    """(a, b) as float arrays of one shape and one dtype: element-wise ops of two tensors do not
    broadcast, since a silent broadcast would hide a wrong shape."""
    a = as_float_array(op, "a", a)
    b = as_float_array(op, "b", b)
    if a.shape != b.shape:
        raise ValueError(
            f"{op}: a and b must have the same shape, got a {tuple(a.shape)} and b {tuple(b.shape)}"
        )
    check_same_dtype(op, a=a, b=b)
    return a, b

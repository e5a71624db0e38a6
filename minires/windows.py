"""Sliding-window geometry shared by convolution and pooling: padding rules, output sizes,
the checks of window arguments, and the type that numbers a window's elements.

A leaf: it imports nothing from minires, so the ops and the kernels both read their window
plans from here without either depending on the other.

For one spatial axis of size ``n``, a window of size ``k`` moved by stride ``s`` over an input
padded with ``p_before`` and ``p_after`` zeros (or -inf for max-pool) produces

    n_out = (n + p_before + p_after - k) // s + 1

outputs; output ``o`` reads padded rows ``o*s .. o*s + k - 1``.

Padding forms (Keras/TensorFlow conventions):

- ``"valid"``: no padding; rows left over past the last full window are ignored.
- ``"same"``: ``n_out = ceil(n / s)``, with total padding
  ``max((n_out - 1)*s + k - n, 0)`` split as ``total // 2`` before and the rest (the odd
  pixel) after, i.e. on the bottom/right. PyTorch's symmetric ``padding=`` cannot express
  this for even kernels or strides > 1.
- an int ``p``: ``p`` on every side.
- a pair ``(ph, pw)``: ``ph`` on top and bottom, ``pw`` on left and right.
- ``((top, bottom), (left, right))``: explicit.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import numpy

Padding = tuple[tuple[int, int], tuple[int, int]]


class Window(NamedTuple):
    """Everything an op needs to know about where its windows fall."""

    kernel: tuple[int, int]      # (kh, kw)
    strides: tuple[int, int]     # (sh, sw)
    padding: Padding             # ((top, bottom), (left, right))
    out_hw: tuple[int, int]      # (h_out, w_out)

    @property
    def pointwise(self) -> bool:
        """A 1x1 window at stride 1 without padding: output pixel p reads input pixel p alone,
        so im2col's cols is the input itself."""
        return self.kernel == (1, 1) and self.strides == (1, 1) and self.padding == ((0, 0), (0, 0))


def same_padding(n: int, k: int, s: int) -> tuple[int, int]:
    """Keras 'same' padding of one axis: (before, after), the odd pixel after."""
    n_out = -(-n // s)  # ceil(n / s)
    total = max((n_out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def resolve_padding(op: str, padding, in_hw: tuple[int, int], kernel: tuple[int, int],
                    strides: tuple[int, int], allowed: tuple[str, ...]) -> Padding:
    """Turn any accepted padding form into ((top, bottom), (left, right))."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in allowed:
            raise ValueError(f"{op}: padding must be {' or '.join(map(repr, allowed))}, got {padding!r}")
        if mode == "valid":
            return (0, 0), (0, 0)
        return (same_padding(in_hw[0], kernel[0], strides[0]),
                same_padding(in_hw[1], kernel[1], strides[1]))
    if "explicit" not in allowed:
        raise ValueError(f"{op}: padding must be {' or '.join(map(repr, allowed))}, got {padding!r}")
    expected = "'same', 'valid', an int, (ph, pw) or ((top, bottom), (left, right))"
    if is_int(padding):
        pads = ((padding, padding), (padding, padding))
    else:
        try:
            rows, cols = padding
            if is_int(rows) and is_int(cols):
                pads = ((rows, rows), (cols, cols))
            else:
                (top, bottom), (left, right) = rows, cols
                pads = ((top, bottom), (left, right))
        except (TypeError, ValueError):
            raise TypeError(f"{op}: padding must be {expected}, got {padding!r}") from None
    flat = [p for side in pads for p in side]
    if not all(is_int(p) for p in flat):
        raise TypeError(f"{op}: padding must be {expected}, got {padding!r}")
    if any(p < 0 for p in flat):
        raise ValueError(f"{op}: padding must be >= 0 on every side, got {padding!r}")
    return (int(pads[0][0]), int(pads[0][1])), (int(pads[1][0]), int(pads[1][1]))


def plan_windows(op: str, in_hw: tuple[int, int], kernel: tuple[int, int],
                 strides: tuple[int, int], padding, allowed: tuple[str, ...]) -> Window:
    """Resolve the padding and the output size, refusing windows that do not fit."""
    pads = resolve_padding(op, padding, in_hw, kernel, strides, allowed)
    out = []
    for axis in range(2):
        padded = in_hw[axis] + pads[axis][0] + pads[axis][1]
        if kernel[axis] > padded:
            raise ValueError(
                f"{op}: window {kernel} is larger than the padded input "
                f"{(in_hw[0] + sum(pads[0]), in_hw[1] + sum(pads[1]))} "
                f"(input {in_hw}, padding {pads})"
            )
        out.append((padded - kernel[axis]) // strides[axis] + 1)
    return Window(kernel, strides, pads, (out[0], out[1]))


def positive_pair(op: str, name: str, value) -> tuple[int, int]:
    """An int or a pair of ints, each >= 1, as a pair (rows, cols)."""
    items = (value, value) if is_int(value) else value
    try:
        first, second = items
    except (TypeError, ValueError):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}") from None
    if not (is_int(first) and is_int(second)):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if first < 1 or second < 1:
        raise ValueError(f"{op}: {name} must be >= 1, got {value!r}")
    return int(first), int(second)


def is_int(value) -> bool:
    """An integer (Python or NumPy), but not a bool."""
    return isinstance(value, (numbers.Integral, numpy.integer)) and not isinstance(value, bool)


def argmax_dtype(window: Window):
    """The integer type of max-pool's argmax (the window element each output took), the
    smallest that numbers a window's elements: uint8 for windows of up to 256 elements (every
    usual pool), whose argmax array is then an eighth of an intp one, and eight times less
    memory to write and read back. The array code and every kernel store it in this type."""
    return numpy.uint8 if window.kernel[0] * window.kernel[1] <= 256 else numpy.int32

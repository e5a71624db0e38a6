"""Sliding-window geometry shared by convolution and pooling: padding rules and output sizes.

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

from typing import NamedTuple

from ._checks import is_int

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

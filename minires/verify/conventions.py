"""Named differences of definition, and minires recomputed on their other sides.

A framework that differs from minires on a case is following a convention, not making a
mistake, when minires recomputed with the other side of that convention agrees with it:
the difference is measured on the case, never assumed. Each convention names minires' side
and the others; ``alternatives`` computes a case's outputs on every other side that changes
them (float64, by the loop reference or loops written here).

- **max-pool ties**: which element of a window whose maximum is tied takes the gradient.
  minires: the first maximum in row-major window order. Others: the last one; all of them,
  sharing it equally; all of them, each taking all of it.
- **ReLU'(0)**: the derivative taken at exactly 0. minires: 0. Others: 1, 1/2.
- **'same' odd pixel**: where Keras' 'same' padding puts the odd pixel when the total is odd.
  minires (and Keras/TensorFlow): bottom/right. Other: top/left.
- **soft labels**: softmax cross-entropy against label rows that do not sum to 1. minires
  (PyTorch, TensorFlow): the rows as given, L = -sum t log p, so dL/dz = p sum(t) - t. Other:
  the rows renormalised to sum to 1 first.

minires does not offer the other sides as options: its max-pool caches one argmax per window
(its Numba kernels too), and the rest follow Keras, whose behaviour the seed's code expects.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import reference
from .cases import RELU_AT_ZERO, SAME_PIXEL, SOFT_LABELS, TIES, Case
from .specs import pair


@dataclass(frozen=True)
class Convention:
    name: str
    ops: tuple[str, ...]
    minires: str                 # minires' side
    others: tuple[str, ...]      # the other sides


CONVENTIONS = {c.name: c for c in (
    Convention(TIES, ("maxpool2d",), "first maximum", ("last maximum", "shared equally", "every maximum")),
    Convention(RELU_AT_ZERO, ("relu",), "0", ("1", "1/2")),
    Convention(SAME_PIXEL, ("conv2d", "maxpool2d"), "bottom/right", ("top/left",)),
    Convention(SOFT_LABELS, ("softmax_cross_entropy",), "as given", ("renormalised",)),
)}


# --- max-pool: the tie rules and the padding side ------------------------------------------------

def _pool_geometry(x_shape, options):
    kernel = pair(options["pool_size"])
    strides = kernel if options.get("strides") is None else pair(options["strides"])
    pads = reference.resolve_padding("maxpool2d", options["padding"], tuple(x_shape[1:3]), kernel, strides)
    return kernel, strides, pads


def _pad_inf(x, pads):
    (top, bottom), (left, right) = pads
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=-np.inf)


def _pool_dx(x, dy, kernel, strides, pads, rule: str):
    """dx of max-pool with padding ``pads`` (-inf) and gradients routed by ``rule``."""
    (top, _), (left, _) = pads
    xpad = _pad_inf(x, pads)
    dxpad = np.zeros_like(xpad)
    (ph, pw), (sh, sw) = kernel, strides
    for n, oh, ow, c in np.ndindex(dy.shape):
        window = xpad[n, oh * sh:oh * sh + ph, ow * sw:ow * sw + pw, c]
        tied = np.argwhere(window == window.max())          # row-major order
        if rule == "first maximum":
            chosen, share = tied[:1], 1.0
        elif rule == "last maximum":
            chosen, share = tied[-1:], 1.0
        elif rule == "shared equally":
            chosen, share = tied, 1.0 / len(tied)
        else:                                              # every maximum
            chosen, share = tied, 1.0
        for i, j in chosen:
            dxpad[n, oh * sh + i, ow * sw + j, c] += share * dy[n, oh, ow, c]
    return dxpad[:, top:top + x.shape[1], left:left + x.shape[2], :]


def _pool_y(x, kernel, strides, pads):
    return reference.maxpool2d_forward(_pad_inf(x, pads), kernel, strides, "valid")


def _swapped(pads):
    """The odd pixel of each axis moved to the other side."""
    return tuple((after, before) for before, after in pads)


def _odd(pads) -> bool:
    return any(before != after for before, after in pads)


def _windows(x, kernel, strides, pads):
    """Every window of max-pool on x padded with -inf, one channel at a time."""
    xpad = _pad_inf(x, pads)
    (ph, pw), (sh, sw) = kernel, strides
    for n in range(x.shape[0]):
        for c in range(x.shape[3]):
            for r in range(0, xpad.shape[1] - ph + 1, sh):
                for s in range(0, xpad.shape[2] - pw + 1, sw):
                    yield xpad[n, r:r + ph, s:s + pw, c]


def _maxpool_alternatives(case: Case):
    x, dy = case.inputs["x"], case.dy
    kernel, strides, pads = _pool_geometry(x.shape, case.options)
    tied = any(np.count_nonzero(w == w.max()) > 1 for w in _windows(x, kernel, strides, pads))
    if tied:
        for rule in CONVENTIONS[TIES].others:
            yield TIES, rule, {"dx": _pool_dx(x, dy, kernel, strides, pads, rule)}
    if isinstance(case.options["padding"], str) and case.options["padding"].lower() == "same" and _odd(pads):
        other = _swapped(pads)
        yield SAME_PIXEL, "top/left", {"y": _pool_y(x, kernel, strides, other),
                                       "dx": _pool_dx(x, dy, kernel, strides, other, "first maximum")}


# --- the other ops -------------------------------------------------------------------------------

def _conv_alternatives(case: Case):
    padding = case.options["padding"]
    if not (isinstance(padding, str) and padding.lower() == "same"):
        return
    x, w, b = case.inputs["x"], case.inputs["w"], case.inputs.get("b")
    stride = pair(case.options["stride"])
    pads = reference.resolve_padding("conv2d", "same", tuple(x.shape[1:3]), w.shape[:2], stride)
    if not _odd(pads):
        return
    other = [list(p) for p in _swapped(pads)]
    y = reference.conv2d_forward(x, w, b, stride, other)
    dx, dw, db = reference.conv2d_backward(case.dy, x, w, b, stride, other)
    outputs = {"y": y, "dx": dx, "dw": dw}
    if b is not None:
        outputs["db"] = db
    yield SAME_PIXEL, "top/left", outputs


def _relu_alternatives(case: Case):
    x, dy = case.inputs["x"], case.dy
    zero = x == 0
    if not zero.any():
        return
    base = np.where(x > 0, dy, 0.0)
    yield RELU_AT_ZERO, "1", {"dx": np.where(zero, dy, base)}
    yield RELU_AT_ZERO, "1/2", {"dx": np.where(zero, dy / 2, base)}


def _soft_label_alternatives(case: Case):
    logits, labels = case.inputs["logits"], case.inputs["labels"]
    if labels.dtype.kind in "iu":
        return
    sums = labels.sum(axis=1, keepdims=True)
    if np.allclose(sums, 1.0, rtol=0, atol=1e-12) or np.any(sums == 0):
        return
    rows = labels / sums
    yield SOFT_LABELS, "renormalised", {
        "y": reference.softmax_cross_entropy_forward(logits, rows),
        "dlogits": reference.softmax_cross_entropy_backward(case.dy, logits, rows)}


_ALTERNATIVES = {"maxpool2d": _maxpool_alternatives, "conv2d": _conv_alternatives,
                 "relu": _relu_alternatives, "softmax_cross_entropy": _soft_label_alternatives}


def alternatives(case: Case) -> list[tuple[str, str, dict]]:
    """[(convention, side, outputs)] for every other side of a convention that changes this
    case's outputs, computed in float64 from the case's values."""
    make = _ALTERNATIVES.get(case.op)
    return [] if make is None else list(make(case.as_float64()))

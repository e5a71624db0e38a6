"""How two answers to the same case are compared: the relative error, its floor, the tolerances.

The relative error of an answer ``a`` against ``b`` is one number per output of a case:

    err(a, b) = max_i |a_i - b_i| / max(max_i |b_i|, floor)

The floor is the size the output would have if nothing in it cancelled: a sum of K terms,
each at most s in magnitude, is about sqrt(K) * s when the terms do not cancel, and its
rounding error is relative to that, not to the sum. So a conv gradient that is small because
its terms cancel (an upstream gradient of alternating signs), a loss near 0 computed from
logits of 1e4, or a softmax gradient along a constant ``dy`` do not turn rounding into
alarms. ``floors`` gives each op's floor per output; docs/verify.md tabulates them.

Tolerances, per dtype:

- float64: 1e-10. Two correct float64 computations of these small cases differ by summation
  order and fused multiply-adds, a few hundred units of 1.1e-16 at most relative to the
  floor; a float32 step anywhere inside (float32 keeps 6e-8) or a dropped term is far above.
- float32: 1e-4. The answers are compared with minires' loop reference computed in float64
  from the same float32 inputs, so each side's own float32 rounding counts (about
  sqrt(K) * 6e-8), with a margin for Winograd's larger rounding; an index mistake or a
  wrong term is far above.
- central differences: 1e-6 plus the rounding noise of the difference quotient (see
  ``minires.verify.opinions``): they approximate a derivative, with an error of
  step^2 * f''' from truncation, and are a check of minires' gradients against its own
  forward pass, not a measure of a framework's last digits.
"""

from __future__ import annotations

import math

import numpy as np

from .specs import pair, window_geometry

TOLERANCES = {"float64": 1e-10, "float32": 1e-4}
CENTRAL_DIFFERENCES_TOLERANCE = 1e-6


def relative_error(a, b, floor: float = 0.0) -> float:
    """max |a - b| / max(max |b|, floor); inf when the shapes differ or a is not finite where
    b is; 0 when both are all zeros."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return math.inf
    if a.size == 0:
        return 0.0
    with np.errstate(invalid="ignore"):           # inf - inf: handled below
        diff = np.abs(a - b)
    same_inf = np.isinf(a) & np.isinf(b) & (np.sign(a) == np.sign(b))
    diff = np.where(same_inf, 0.0, diff)
    if not np.all(np.isfinite(diff)):
        return math.inf
    finite_b = np.abs(b[np.isfinite(b)])
    scale = max(float(finite_b.max(initial=0.0)), floor)
    worst = float(diff.max())
    if worst == 0.0:
        return 0.0
    return worst / scale if scale > 0 else math.inf


def _size(a) -> float:
    """max |a| over the finite elements (0 for None or an empty array)."""
    if a is None:
        return 0.0
    a = np.abs(np.asarray(a, dtype=np.float64))
    return float(a[np.isfinite(a)].max(initial=0.0))


def floors(op: str, inputs: dict, options: dict, dy) -> dict[str, float]:
    """The floor of each output's relative error: sqrt(terms) * the largest term, per output."""
    s = {name: _size(value) for name, value in inputs.items()}
    g = _size(dy)
    if op == "conv2d":
        x, w = inputs["x"], inputs["w"]
        kh, kw, c_in, c_out = w.shape
        _, (h, wd) = window_geometry(op, x.shape, (kh, kw), pair(options["stride"]), options["padding"])
        positions = x.shape[0] * h * wd
        return {"y": math.sqrt(kh * kw * c_in) * s["x"] * s["w"] + s.get("b", 0.0),
                "dx": math.sqrt(kh * kw * c_out) * g * s["w"],
                "dw": math.sqrt(positions) * g * s["x"],
                "db": math.sqrt(positions) * g}
    if op == "dense":
        (n, d_in), d_out = inputs["x"].shape, inputs["w"].shape[1]
        return {"y": math.sqrt(d_in) * s["x"] * s["w"] + s.get("b", 0.0),
                "dx": math.sqrt(d_out) * g * s["w"],
                "dw": math.sqrt(n) * g * s["x"],
                "db": math.sqrt(n) * g}
    if op == "maxpool2d":
        kh, kw = pair(options["pool_size"])
        sh, sw = (kh, kw) if options.get("strides") is None else pair(options["strides"])
        # An input pixel takes the gradient of every window it is the maximum of.
        return {"y": s["x"], "dx": math.sqrt(math.ceil(kh / sh) * math.ceil(kw / sw)) * g}
    if op == "add":
        return {"y": s["a"] + s["b"], "da": g, "db": g}
    if op == "softmax":
        # Probabilities are computed to a few units of rounding relative to themselves;
        # dx = y * (dy - sum(dy * y)) cancels when dy is constant along the axis.
        return {"y": 0.0, "dx": g}
    if op == "softmax_cross_entropy":
        logits, labels = inputs["logits"], inputs["labels"]
        n, c = logits.shape
        mass = 1.0 if labels.dtype.kind in "iu" else float(np.abs(labels).sum(axis=1).max(initial=0.0))
        # The loss is log-sum-exp minus the labelled logits: terms as large as the logits.
        return {"y": (s["logits"] + math.log(c)) * max(mass, 1.0),
                "dlogits": g * max(mass, 1.0) / n}
    return {"y": s["x"], "dx": g}                    # relu, flatten: no arithmetic to cancel

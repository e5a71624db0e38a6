"""The cases ``minires verify`` runs: a fixed list of adversarial cases per op, plus random draws.

The adversarial cases are where frameworks differ or slip: ties in max-pool windows, exact
zeros into ReLU, Keras' 'same' padding with even kernels and strides (the odd pixel),
strides larger than the window, 1x1 images, batch 1, inputs that are non-contiguous views,
logits of magnitude 1e4, soft labels whose rows do not sum to 1, sums that cancel. They are
the same in every run; ``--seed`` draws the random ones (shapes, options and values), and
``--cases N`` sets how many random cases each op gets per dtype. Every case exists in both
dtypes: the float32 case holds the float64 case's values rounded to float32.

A case is small on purpose: the loop reference and element-wise central differences run on
every one of them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .specs import OPS, SPECS, output_shape

DTYPES = ("float64", "float32")
# The fixed cases carry most of the adversity; the random ones add variety. A framework that
# compiles each new shape (JAX jit-compiles every case) pays per case, so the default run
# keeps the random ones few; --cases raises them.
DEFAULT_RANDOM_CASES = 2

# The conventions a case can be built to expose (minires.verify.conventions defines them).
TIES = "max-pool ties"
RELU_AT_ZERO = "ReLU'(0)"
SAME_PIXEL = "'same' odd pixel"
SOFT_LABELS = "soft labels"


@dataclass
class Case:
    id: str
    op: str
    dtype: str
    inputs: dict                       # name -> array, in the op's argument order
    options: dict
    dy: np.ndarray                     # the upstream gradient of y
    note: str = ""                     # what the case is built to expose
    exposes: tuple = ()                # conventions whose sides it tells apart
    smooth: bool = True                # central differences apply (no ties, no kinks)
    noncontiguous: tuple = ()          # inputs handed over as non-contiguous views

    @property
    def outputs(self) -> list[str]:
        return SPECS[self.op].outputs(self.inputs)

    def as_float64(self) -> "Case":
        """The same case with every float array in float64 (exact: float32 values are)."""
        def up(a):
            return a.astype(np.float64) if a.dtype.kind == "f" else a
        return Case(self.id, self.op, "float64", {k: up(v) for k, v in self.inputs.items()}, self.options,
                    up(self.dy), self.note, self.exposes, self.smooth, self.noncontiguous)


def noncontiguous(a: np.ndarray) -> np.ndarray:
    """The same values as a view with gaps: every other element of a buffer twice as wide
    along the last axis (a 0-d array stays as it is)."""
    if a.ndim == 0:
        return a
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def laid_out(case: Case) -> dict:
    """The case's inputs as the implementations get them: non-contiguous where asked."""
    return {k: noncontiguous(v) if k in case.noncontiguous else v for k, v in case.inputs.items()}


# --- the adversarial cases ---------------------------------------------------------------------
#
# Each builder returns dicts: inputs (float64 values, int64 labels), options, note, and
# optionally exposes, smooth and noncontiguous.

def _normal(rng, *shape):
    return rng.standard_normal(shape)


def _ties(rng, *shape):
    """Small integers: many exact ties, the same in float32 and float64."""
    return rng.integers(-2, 3, size=shape).astype(np.float64)


def _conv2d_cases(rng):
    def conv(x_shape, kernel, out, stride, padding, note, bias=True, **more):
        c_in = x_shape[3]
        inputs = {"x": _normal(rng, *x_shape), "w": _normal(rng, *kernel, c_in, out)}
        if bias:
            inputs["b"] = _normal(rng, out)
        return dict(inputs=inputs, options={"stride": stride, "padding": padding}, note=note, **more)

    return [
        conv((2, 5, 5, 3), (2, 2), 4, 1, "same", "'same' with an even kernel: one odd pixel",
             exposes=(SAME_PIXEL,)),
        conv((1, 7, 6, 2), (4, 4), 3, 2, "same", "'same' with an even kernel and stride 2", exposes=(SAME_PIXEL,)),
        conv((2, 7, 5, 3), (2, 3), 2, [2, 1], "same", "'same', kernel 2x3, stride (2, 1)", exposes=(SAME_PIXEL,)),
        conv((1, 8, 8, 2), (2, 2), 3, 3, "valid", "stride 3 larger than the 2x2 kernel"),
        conv((2, 1, 1, 3), (3, 3), 2, 1, "same", "1x1 images under a 3x3 'same' kernel"),
        conv((1, 5, 4, 3), (1, 1), 5, 2, "valid", "1x1 kernel at stride 2, batch 1"),
        conv((2, 4, 3, 1), (2, 3), 3, [1, 2], "valid", "one input channel, stride (1, 2), no bias", bias=False),
        conv((1, 5, 6, 2), (3, 3), 2, 1, [[1, 0], [0, 2]], "explicit asymmetric padding"),
        conv((2, 6, 6, 4), (3, 3), 3, 1, "same", "3x3 stride 1 (Winograd applies), non-contiguous x and w",
             noncontiguous=("x", "w")),
        # Two equal channels against weights +1 and -1: every output is a sum that cancels to 0.
        dict(inputs={"x": np.repeat(_normal(rng, 1, 4, 4, 1), 2, axis=3),
                     "w": np.tile(np.array([1.0, -1.0])[:, None], (3, 3, 1, 2))},
             options={"stride": 1, "padding": "valid"}, note="terms that cancel exactly"),
    ]


def _maxpool2d_cases(rng):
    def pool(x, pool_size, strides, padding, note, **more):
        return dict(inputs={"x": x}, options={"pool_size": pool_size, "strides": strides, "padding": padding},
                    note=note, **more)

    tied = dict(exposes=(TIES,), smooth=False)
    return [
        pool(_ties(rng, 2, 4, 4, 3), 2, None, "valid", "ties in 2x2 windows", **tied),
        pool(_ties(rng, 1, 5, 5, 2), 3, 1, "valid", "ties in overlapping 3x3 windows", **tied),
        pool(np.full((1, 4, 4, 2), 0.5), 2, None, "valid", "constant input: every window one tie", **tied),
        pool(_ties(rng, 2, 5, 5, 2), 2, None, "same", "ties, and 'same' on an odd size",
             exposes=(TIES, SAME_PIXEL), smooth=False),
        pool(_normal(rng, 2, 5, 5, 2), 2, None, "same", "'same' on an odd size: one odd pixel",
             exposes=(SAME_PIXEL,)),
        pool(-np.abs(_normal(rng, 1, 6, 6, 2)) - 1, 3, 2, "same",
             "negative inputs under 'same': padding is -inf, not 0", exposes=(SAME_PIXEL,)),
        pool(_normal(rng, 1, 7, 7, 2), 2, 3, "valid", "stride 3 larger than the 2x2 window"),
        pool(_normal(rng, 2, 1, 1, 3), 2, None, "same", "1x1 images, 2x2 'same' window"),
        pool(_normal(rng, 1, 4, 6, 3), [2, 3], [1, 2], "valid", "non-square window, non-contiguous x",
             noncontiguous=("x",)),
    ]


def _relu_cases(rng):
    zeros = _normal(rng, 2, 3, 3, 2)
    zeros[rng.random(zeros.shape) < 0.4] = 0.0
    zeros.flat[0] = -0.0
    return [
        dict(inputs={"x": zeros}, options={}, note="exact zeros (and -0.0)", exposes=(RELU_AT_ZERO,),
             smooth=False),
        # Central differences would step across 0: a kink at this scale.
        dict(inputs={"x": _normal(rng, 3, 4) * 1e-30}, options={}, note="tiny magnitudes", smooth=False),
        dict(inputs={"x": _normal(rng, 1, 2, 3, 4)}, options={}, note="non-contiguous x", noncontiguous=("x",)),
    ]


def _add_cases(rng):
    a = _normal(rng, 2, 3, 3, 2)
    return [
        dict(inputs={"a": a, "b": -a + 1e-9 * _normal(rng, *a.shape)}, options={}, note="a + b cancels"),
        dict(inputs={"a": _normal(rng, 1, 1, 1, 1), "b": _normal(rng, 1, 1, 1, 1)}, options={},
             note="one element"),
        dict(inputs={"a": _normal(rng, 2, 5), "b": _normal(rng, 2, 5)}, options={}, note="non-contiguous a and b",
             noncontiguous=("a", "b")),
    ]


def _flatten_cases(rng):
    return [
        dict(inputs={"x": _normal(rng, 2, 3, 4, 5)}, options={}, note="non-contiguous x: (h, w, c) order",
             noncontiguous=("x",)),
        dict(inputs={"x": _normal(rng, 1, 1, 1, 1)}, options={}, note="1x1x1 image, batch 1"),
        dict(inputs={"x": _normal(rng, 3, 2, 5)}, options={}, note="3-d input"),
    ]


def _dense_cases(rng):
    return [
        dict(inputs={"x": _normal(rng, 1, 5), "w": _normal(rng, 5, 3)}, options={}, note="batch 1, no bias"),
        dict(inputs={"x": _normal(rng, 4, 1), "w": _normal(rng, 1, 3), "b": _normal(rng, 3)}, options={},
             note="one input feature"),
        dict(inputs={"x": _normal(rng, 3, 6), "w": _normal(rng, 6, 1), "b": _normal(rng, 1)}, options={},
             note="one output feature"),
        dict(inputs={"x": _normal(rng, 3, 4), "w": _normal(rng, 4, 5), "b": _normal(rng, 5)}, options={},
             note="non-contiguous x and w", noncontiguous=("x", "w")),
        dict(inputs={"x": _normal(rng, 4, 8) * 1e3, "w": _normal(rng, 8, 3) * 1e-3, "b": _normal(rng, 3)},
             options={}, note="inputs of magnitude 1e3 against weights of 1e-3"),
    ]


def _softmax_cases(rng):
    return [
        dict(inputs={"x": _normal(rng, 3, 5) * 1e4}, options={"axis": -1}, note="logits of magnitude 1e4"),
        dict(inputs={"x": _normal(rng, 2, 3, 4)}, options={"axis": 1}, note="axis 1 of a 3-d input"),
        dict(inputs={"x": _normal(rng, 4, 3)}, options={"axis": 0}, note="axis 0"),
        dict(inputs={"x": np.full((2, 4), 3.0)}, options={"axis": -1}, note="constant rows: uniform output"),
        dict(inputs={"x": _normal(rng, 3, 1)}, options={"axis": -1}, note="one class"),
        dict(inputs={"x": _normal(rng, 2, 2, 2, 3)}, options={"axis": -1}, note="4-d, non-contiguous x",
             noncontiguous=("x",)),
    ]


def _softmax_cross_entropy_cases(rng):
    def ce(logits, labels, note, **more):
        return dict(inputs={"logits": logits, "labels": labels}, options={}, note=note, **more)

    n, c = 4, 5
    soft = rng.random((n, c)) * 0.8                    # rows summing to anything from ~1 to ~3
    return [
        ce(_normal(rng, n, c) * 1e4, rng.integers(0, c, n), "logits of magnitude 1e4, class ids"),
        ce(_normal(rng, n, c), soft, "soft labels whose rows do not sum to 1", exposes=(SOFT_LABELS,)),
        ce(_normal(rng, n, c) * 30, np.eye(c)[rng.integers(0, c, n)], "one-hot float labels, large logits"),
        ce(_normal(rng, 1, 3), np.array([2]), "batch 1"),
        ce(_normal(rng, 3, 1), np.zeros(3, dtype=np.int64), "one class: loss and gradient 0"),
        ce(_normal(rng, 3, 4), rng.integers(0, 4, 3), "non-contiguous logits", noncontiguous=("logits",)),
    ]


_ADVERSARIAL = {
    "conv2d": _conv2d_cases, "maxpool2d": _maxpool2d_cases, "relu": _relu_cases, "add": _add_cases,
    "flatten": _flatten_cases, "dense": _dense_cases, "softmax": _softmax_cases,
    "softmax_cross_entropy": _softmax_cross_entropy_cases,
}


# --- the random draws ----------------------------------------------------------------------------

def _random_case(op: str, rng):
    """One case of ``op`` with shapes, options and values drawn from ``rng``."""
    n = int(rng.integers(1, 3))
    if op == "conv2d":
        kh, kw = (int(k) for k in rng.integers(1, 4, 2))
        stride = [int(s) for s in rng.integers(1, 3, 2)]
        padding = str(rng.choice(["same", "valid"]))
        h, w = int(rng.integers(kh, 7)), int(rng.integers(kw, 7))
        c_in, c_out = (int(c) for c in rng.integers(1, 4, 2))
        inputs = {"x": _normal(rng, n, h, w, c_in), "w": _normal(rng, kh, kw, c_in, c_out),
                  "b": _normal(rng, c_out)}
        return dict(inputs=inputs, options={"stride": stride, "padding": padding})
    if op == "maxpool2d":
        ph, pw = (int(k) for k in rng.integers(1, 4, 2))
        strides = None if rng.random() < 0.5 else [int(s) for s in rng.integers(1, 4, 2)]
        padding = str(rng.choice(["same", "valid"]))
        x = _normal(rng, n, int(rng.integers(ph, 8)), int(rng.integers(pw, 8)), int(rng.integers(1, 4)))
        return dict(inputs={"x": x}, options={"pool_size": [ph, pw], "strides": strides, "padding": padding})
    if op in ("relu", "flatten"):
        return dict(inputs={"x": _normal(rng, n, *(int(d) for d in rng.integers(1, 5, 3)))}, options={})
    if op == "add":
        shape = (n, *(int(d) for d in rng.integers(1, 5, 3)))
        return dict(inputs={"a": _normal(rng, *shape), "b": _normal(rng, *shape)}, options={})
    if op == "dense":
        d_in, d_out = (int(d) for d in rng.integers(1, 9, 2))
        return dict(inputs={"x": _normal(rng, n + 1, d_in), "w": _normal(rng, d_in, d_out),
                            "b": _normal(rng, d_out)}, options={})
    if op == "softmax":
        shape = tuple(int(d) for d in rng.integers(1, 6, int(rng.integers(2, 4))))
        axis = int(rng.integers(-len(shape), len(shape)))
        return dict(inputs={"x": _normal(rng, *shape) * 3}, options={"axis": axis})
    # softmax_cross_entropy
    rows, classes = int(rng.integers(1, 5)), int(rng.integers(2, 7))
    labels = (rng.integers(0, classes, rows) if rng.random() < 0.5
              else rng.dirichlet(np.ones(classes), rows))
    return dict(inputs={"logits": _normal(rng, rows, classes) * 3, "labels": labels}, options={})


# --- putting them together -----------------------------------------------------------------------

def _finish(op: str, dtype: str, tag: str, spec: dict, rng) -> Case:
    inputs = {}
    for name in SPECS[op].inputs:
        if name in spec["inputs"]:
            value = np.asarray(spec["inputs"][name])
            inputs[name] = value.astype(np.int64) if value.dtype.kind in "iu" else value.astype(dtype)
    dy = np.asarray(rng.standard_normal(output_shape(op, inputs, spec["options"]))).astype(dtype)
    if op == "softmax_cross_entropy":
        dy = np.asarray(rng.uniform(0.5, 1.5), dtype=dtype)     # dloss: not 1, so a lost factor shows
    return Case(f"{op}-{dtype}-{tag}", op, dtype, inputs, dict(spec["options"]), dy, spec.get("note", ""),
                tuple(spec.get("exposes", ())), spec.get("smooth", True), tuple(spec.get("noncontiguous", ())))


def build_cases(ops=OPS, dtypes=DTYPES, random_cases: int = DEFAULT_RANDOM_CASES, seed: int = 0) -> list[Case]:
    """Every adversarial case of ``ops`` and ``random_cases`` random ones per op, in each dtype.

    The adversarial cases do not depend on ``seed``; the random ones do, and a random case of
    one op does not change when other ops or dtypes are chosen.
    """
    cases = []
    for op_index, op in enumerate(OPS):
        if op not in ops:
            continue
        for dtype in dtypes:
            values = np.random.default_rng([op_index, 0])
            gradients = np.random.default_rng([op_index, 1])
            for k, spec in enumerate(_ADVERSARIAL[op](values)):
                cases.append(_finish(op, dtype, f"a{k:02d}", spec, gradients))
            drawn = np.random.default_rng([seed, op_index, 2])
            for k in range(random_cases):
                cases.append(_finish(op, dtype, f"s{seed}r{k:02d}", _random_case(op, drawn), drawn))
    return cases

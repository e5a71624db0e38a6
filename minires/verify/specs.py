"""The ops that ``minires verify`` checks: their inputs, options and outputs, in minires' names.

Outputs are "y" (the forward value) and "d" + the name of each differentiable input ("dx",
"dw", "db", "da", "dlogits"): the gradient of sum(y * dy) with respect to that input, for a
random upstream gradient ``dy`` (a 0-d array for the loss). Inputs are listed in the order
minires' functions take them, so ``minires.ops.<op>_forward(*inputs, **options)`` and
``minires.reference.<op>_backward(dy, *inputs, **options)`` can be called from this table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .. import reference


@dataclass(frozen=True)
class OpSpec:
    name: str
    inputs: tuple[str, ...]          # in the order the functions take them
    grads: tuple[str, ...]           # the inputs with a gradient, in the backward's order
    optional: tuple[str, ...] = ()   # inputs a case may leave out (a bias)

    def outputs(self, present) -> list[str]:
        """The outputs of a case whose inputs are ``present``."""
        return ["y"] + [f"d{name}" for name in self.grads if name in present]


SPECS = {spec.name: spec for spec in (
    OpSpec("conv2d", ("x", "w", "b"), ("x", "w", "b"), optional=("b",)),
    OpSpec("maxpool2d", ("x",), ("x",)),
    OpSpec("relu", ("x",), ("x",)),
    OpSpec("add", ("a", "b"), ("a", "b")),
    OpSpec("flatten", ("x",), ("x",)),
    OpSpec("dense", ("x", "w", "b"), ("x", "w", "b"), optional=("b",)),
    OpSpec("softmax", ("x",), ("x",)),
    OpSpec("softmax_cross_entropy", ("logits", "labels"), ("logits",)),
)}

OPS = tuple(SPECS)


def pair(value) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def window_geometry(op: str, x_shape, kernel, strides, padding):
    """(((top, bottom), (left, right)), (h_out, w_out)) of a conv or pool window on NHWC x,
    by the loop reference's own padding rule."""
    in_hw = tuple(x_shape[1:3])
    pads = reference.resolve_padding(op, padding, in_hw, kernel, strides)
    out = tuple(reference.output_size(op, n, k, s, *p) for n, k, s, p in zip(in_hw, kernel, strides, pads))
    return pads, out


def output_shape(op: str, inputs: dict, options: dict) -> tuple[int, ...]:
    """The shape of y, so that a case can draw its upstream gradient before anything runs."""
    if op == "conv2d":
        x, w = inputs["x"], inputs["w"]
        _, (h, wd) = window_geometry(op, x.shape, w.shape[:2], pair(options["stride"]), options["padding"])
        return (x.shape[0], h, wd, w.shape[3])
    if op == "maxpool2d":
        x = inputs["x"]
        kernel = pair(options["pool_size"])
        strides = kernel if options.get("strides") is None else pair(options["strides"])
        _, (h, wd) = window_geometry(op, x.shape, kernel, strides, options["padding"])
        return (x.shape[0], h, wd, x.shape[3])
    if op == "flatten":
        x = inputs["x"]
        return (x.shape[0], math.prod(x.shape[1:]))
    if op == "dense":
        return (inputs["x"].shape[0], inputs["w"].shape[1])
    if op == "softmax_cross_entropy":
        return ()
    return tuple(inputs["x" if "x" in inputs else "a"].shape)

"""minires' own opinions of a case: its array code on each CPU backend, its loop reference,
and central differences.

- **array code**: ``minires.ops`` on every CPU backend there is (``numpy``, ``numba``), and
  for conv2d each algorithm that applies (im2col always; Winograd F(2x2, 3x3) and F(4x4, 3x3)
  for 3x3 kernels at stride 1), fed the case's inputs in their layout (non-contiguous views
  where the case says so).
- **reference**: ``minires.reference``, the naive loops, in the case's dtype; and in float64
  from the same values, the answer every float32 result is measured against.
- **central differences** (gradients only, float64): for L = sum(y * dy),

      dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2h),   h = 1e-6,

  element by element, with y from the numpy array code in float64. Their error is the
  truncation h^2 f''' / 6 plus the rounding of the quotient, about
  eps * (sum |y * dy| + floor(y) * sum |dy|) / h: the noise returned with each gradient. They
  are skipped for cases built on kinks (ties in a max-pool window, exact zeros into ReLU),
  where the derivative they approximate does not exist.
"""

from __future__ import annotations

import importlib.util

import numpy as np

from .. import ops, reference
from ..backend import to_numpy, use_backend
from .cases import Case, laid_out
from .compare import floors
from .specs import SPECS, pair

STEP = 1e-6
ELEMENT_LIMIT = 1000        # inputs larger than this get no central differences
_NOISE = 8 * np.finfo(np.float64).eps


def cpu_backends() -> list[str]:
    """The CPU backends this machine has."""
    return ["numpy"] + (["numba"] if importlib.util.find_spec("numba") is not None else [])


def _conv_algorithms(case: Case, backend: str) -> list[str]:
    kernel = case.inputs["w"].shape[:2]
    if kernel != (3, 3) or pair(case.options["stride"]) != (1, 1):
        return ["im2col"]
    # F(4x4, 3x3) has no numba kernels: on numba it is the numpy code again.
    return ["im2col", "winograd"] + (["winograd4x4"] if backend == "numpy" else [])


def _arguments(case: Case, inputs: dict) -> list:
    return [inputs.get(name) for name in SPECS[case.op].inputs]


def _named(case: Case, y, grads) -> dict:
    """{"y": y, "dx": ..., ...} from a forward value and a backward's result."""
    spec = SPECS[case.op]
    if not isinstance(grads, tuple):
        grads = (grads,)
    out = {"y": np.array(to_numpy(y))}
    for name, g in zip(spec.grads, grads):
        if name in case.inputs:
            out[f"d{name}"] = np.array(to_numpy(g))
    return out


def run_array(case: Case, backend: str = "numpy", algorithm: str | None = None) -> dict:
    """The case's outputs from ``minires.ops`` on ``backend``, fed the case's layout."""
    forward = getattr(ops, f"{case.op}_forward")
    backward = getattr(ops, f"{case.op}_backward")
    options = dict(case.options)
    if algorithm is not None:
        options["algorithm"] = algorithm
    with use_backend(backend):
        y, cache = forward(*_arguments(case, laid_out(case)), **options)
        return _named(case, y, backward(case.dy, cache))


def array_opinions(case: Case) -> dict:
    """{"numpy": outputs, "numba": ..., "numpy/winograd": ...}; an opinion that raised is the
    exception instead."""
    opinions = {}
    for backend in cpu_backends():
        algorithms = _conv_algorithms(case, backend) if case.op == "conv2d" else [None]
        for algorithm in algorithms:
            name = backend if algorithm in (None, "im2col") else f"{backend}/{algorithm}"
            try:
                opinions[name] = run_array(case, backend, algorithm)
            except Exception as exc:       # a failing opinion is reported, not fatal
                opinions[name] = exc
    return opinions


def run_reference(case: Case) -> dict:
    """The case's outputs from the loop reference, in the case's dtype."""
    args = _arguments(case, case.inputs)
    y = getattr(reference, f"{case.op}_forward")(*args, **case.options)
    return _named(case, y, getattr(reference, f"{case.op}_backward")(case.dy, *args, **case.options))


def central_differences(case: Case) -> dict:
    """{"dx": (numeric gradient, its noise), ...} in float64, for a smooth case; {} otherwise."""
    if not case.smooth:
        return {}
    case = case.as_float64()
    spec = SPECS[case.op]
    forward = getattr(ops, f"{case.op}_forward")
    dy = case.dy

    def loss(values: dict) -> float:
        with use_backend("numpy"):
            y, _ = forward(*_arguments(case, values), **case.options)
        return float(np.sum(np.asarray(y) * dy))

    with use_backend("numpy"):
        y0, _ = forward(*_arguments(case, case.inputs), **case.options)
    floor_y = floors(case.op, case.inputs, case.options, dy)["y"]
    noise = _NOISE * (float(np.sum(np.abs(np.asarray(y0) * dy))) + floor_y * float(np.sum(np.abs(dy)))) / STEP
    result = {}
    for name in spec.grads:
        x = case.inputs.get(name)
        if x is None or x.size > ELEMENT_LIMIT:
            continue
        numeric = np.zeros_like(x)
        for idx in np.ndindex(x.shape):
            values = dict(case.inputs)
            shifted = x.copy()
            shifted[idx] = x[idx] + STEP
            values[name] = shifted
            up = loss(values)
            shifted[idx] = x[idx] - STEP
            down = loss(values)
            numeric[idx] = (up - down) / (2 * STEP)
        result[f"d{name}"] = (numeric, noise)
    return result


class Opinions:
    """Everything minires says about one case: ``arrays`` (per backend/algorithm),
    ``reference`` (the case's dtype), ``exact`` (the reference in float64 from the same
    values), ``central`` (gradients: (array, noise))."""

    def __init__(self, case: Case):
        self.case = case
        self.arrays = array_opinions(case)
        try:
            self.reference = run_reference(case)
        except Exception as exc:
            self.reference = exc
        if case.dtype == "float64":
            self.exact = self.reference
        else:
            try:
                self.exact = run_reference(case.as_float64())
            except Exception as exc:
                self.exact = exc
        self.central = central_differences(case)
        self.floors = floors(case.op, case.as_float64().inputs, case.options, case.as_float64().dy)

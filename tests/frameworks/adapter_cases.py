"""Cases for the framework adapters' tests, their answers from minires.reference, the
conventions they measure, and the runner that computes them with one adapter.

Each framework runs in a process of its own, as ``minires verify`` runs it: Keras picks its
backend once per process and JAX needs x64 switched on for the whole process. The test
starts ``python -m tests.frameworks.adapter_cases MODULE OUT`` with the framework's
environment; that process builds the same deterministic cases, runs every one through the
adapter (a case that raises becomes an error message, not a crash) and writes the outputs
to OUT. The test then compares them with the reference in its own process.

The cases are adversarial where frameworks differ: odd sizes, 'same' with even kernels and
strides (asymmetric padding), stride larger than the kernel, explicit pads, a 1x1 image,
batch 1, max-pool windows of negative values next to 'same' padding and windows full of
ties, exact zeros into ReLU, logits of magnitude 1e4, soft labels whose rows do not sum to
1, non-contiguous inputs, and both float dtypes, each with a random upstream gradient (1 for
the loss).
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from minires import reference as ref
from tests.gradcheck import relative_error

ROOT = Path(__file__).resolve().parents[2]
DTYPES = ("float32", "float64")
# Relative tolerance of a framework against the reference: a few hundred roundings of the
# dtype, for sums of up to a few hundred terms computed in another order.
TOL = {"float32": 1e-5, "float64": 1e-12}


@dataclass
class Case:
    id: str
    op: str
    inputs: dict
    options: dict = field(default_factory=dict)
    dtype: str = "float64"
    dy: np.ndarray | None = None


def _normal(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def _specs(rng, dtype):
    """(name, op, inputs, options) of every case in ``dtype``."""
    n = lambda *shape: _normal(rng, shape, dtype)  # noqa: E731
    relu_x = n(4, 6)
    relu_x[:, ::2] = 0.0                            # exact zeros: ReLU'(0)
    return [
        ("conv2d-same-odd", "conv2d", dict(x=n(2, 5, 7, 3), w=n(3, 3, 3, 4), b=n(4)),
         dict(stride=1, padding="same")),
        # 'same' with an even kernel at stride 2: one odd padding pixel on each axis
        ("conv2d-same-even-stride2", "conv2d", dict(x=n(2, 5, 7, 3), w=n(2, 4, 3, 2), b=n(2)),
         dict(stride=2, padding="same")),
        ("conv2d-valid-stride-pair", "conv2d", dict(x=n(2, 7, 6, 2), w=n(3, 2, 2, 3)),
         dict(stride=(1, 2), padding="valid")),
        ("conv2d-explicit-pads", "conv2d", dict(x=n(1, 4, 5, 2), w=n(3, 3, 2, 2), b=n(2)),
         dict(stride=2, padding=((1, 2), (0, 1)))),
        ("conv2d-stride-over-kernel", "conv2d", dict(x=n(2, 7, 7, 2), w=n(2, 2, 2, 3), b=n(3)),
         dict(stride=3, padding=1)),
        ("conv2d-1x1-image", "conv2d", dict(x=n(3, 1, 1, 4), w=n(1, 1, 4, 2), b=n(2)),
         dict(stride=1, padding="same")),
        ("maxpool2d-valid-odd", "maxpool2d", dict(x=n(2, 5, 7, 3)), dict(pool_size=2)),
        # negative values next to 'same' padding: the padding must take no part in a max
        ("maxpool2d-same-negative", "maxpool2d", dict(x=-np.abs(n(2, 5, 5, 2))),
         dict(pool_size=(3, 2), strides=2, padding="same")),
        # overlapping windows over three values: ties everywhere
        ("maxpool2d-ties", "maxpool2d", dict(x=rng.integers(0, 3, (2, 6, 6, 3)).astype(dtype)),
         dict(pool_size=3, strides=1)),
        ("maxpool2d-tie-window", "maxpool2d", dict(x=np.ones((1, 2, 2, 1), dtype)), dict(pool_size=2)),
        ("relu-zeros", "relu", dict(x=relu_x), {}),
        ("add", "add", dict(a=n(2, 3, 4, 5), b=n(2, 3, 4, 5)), {}),
        ("flatten-noncontiguous", "flatten", dict(x=n(2, 5, 4, 3).transpose(0, 2, 1, 3)), {}),
        ("dense", "dense", dict(x=n(5, 7), w=n(3, 7).T, b=n(3)), {}),
        ("dense-batch1-nobias", "dense", dict(x=n(1, 4), w=n(4, 6)), {}),
        ("softmax-last", "softmax", dict(x=n(4, 6)), dict(axis=-1)),
        ("softmax-axis1", "softmax", dict(x=n(2, 3, 4, 5)), dict(axis=1)),
        ("sce-ids", "softmax_cross_entropy", dict(logits=n(5, 4), labels=rng.integers(0, 4, 5)), {}),
        ("sce-soft-rows", "softmax_cross_entropy",
         dict(logits=n(5, 4), labels=rng.random((5, 4)).astype(dtype)), {}),       # rows do not sum to 1
        ("sce-logits-1e4", "softmax_cross_entropy",
         dict(logits=1e4 * n(3, 6), labels=rng.integers(0, 6, 3)), {}),
    ]


def build_cases() -> list[Case]:
    """Every case in both dtypes, the same arrays in every process."""
    cases = []
    for dtype in DTYPES:
        rng = np.random.default_rng(20240610)
        for name, op, inputs, options in _specs(rng, dtype):
            y = forward(op, inputs, options)
            # the loss's upstream gradient is 1, as in training and in minires verify
            dy = np.ones((), dtype) if y.ndim == 0 else _normal(rng, y.shape, dtype)
            cases.append(Case(f"{name}-{dtype}", op, inputs, options, dtype, dy))
    return cases


# --- the reference's answers ----------------------------------------------------------------

def forward(op, inputs, options):
    return getattr(ref, f"{op}_forward")(**inputs, **options)


def expected(case: Case) -> dict:
    """{"y": ..., "d<input>": ...} from minires.reference."""
    i, o, dy = case.inputs, case.options, case.dy
    out = {"y": forward(case.op, i, o)}
    if case.op == "conv2d":
        grads = dict(zip(("dx", "dw", "db"), ref.conv2d_backward(dy, i["x"], i["w"], i.get("b"), **o)))
    elif case.op == "maxpool2d":
        grads = {"dx": ref.maxpool2d_backward(dy, i["x"], **o)}
    elif case.op in ("relu", "flatten"):
        grads = {"dx": getattr(ref, f"{case.op}_backward")(dy, i["x"])}
    elif case.op == "add":
        grads = dict(zip(("da", "db"), ref.add_backward(dy, i["a"], i["b"])))
    elif case.op == "dense":
        grads = dict(zip(("dx", "dw", "db"), ref.dense_backward(dy, i["x"], i["w"], i.get("b"))))
    elif case.op == "softmax":
        grads = {"dx": ref.softmax_backward(dy, i["x"], **o)}
    else:
        grads = {"dlogits": ref.softmax_cross_entropy_backward(dy, i["logits"], i["labels"])}
    out.update({k: v for k, v in grads.items() if v is not None})
    return out


def check_case(results: "Results", case: Case, outputs=None, float32_accurate=()) -> None:
    """The framework's outputs for ``case`` agree with the reference within TOL, in the
    requested dtype. ``outputs`` limits the outputs expected (None: all of them);
    ``float32_accurate`` names outputs known to be computed in float32 whatever the dtype:
    they must then be float32-accurate and no better, so the test notices a fix."""
    assert case.id not in results.errors, f"{results.name} failed on {case.id}: {results.errors[case.id]}"
    for name, want in expected(case).items():
        if outputs is not None and name not in outputs:
            continue
        key = f"{case.id}/{name}"
        assert key in results.outputs, f"{results.name} returned no {name} for {case.id}"
        got = results.outputs[key]
        assert got.shape == want.shape, f"{key}: shape {got.shape}, expected {want.shape}"
        err = relative_error(got, want)
        if name in float32_accurate:
            assert 1e-10 < err < 1e-6, f"{key}: relative error {err:.1e}, expected float32 rounding"
            continue
        assert got.dtype == np.dtype(case.dtype), f"{key}: dtype {got.dtype}, expected {case.dtype}"
        assert err <= TOL[case.dtype], f"{key}: relative error {err:.1e} > {TOL[case.dtype]:.0e}"


# --- conventions, measured from a framework's outputs -------------------------------------

def _swap(pads):
    """The same amounts with before and after exchanged: the odd pixel at the top/left."""
    return tuple((after, before) for before, after in pads)


def _same_pads(x_hw, kernel, strides):
    return tuple(ref.same_padding(n, k, s) for n, k, s in zip(x_hw, kernel, strides))


def _odd_pixel_side(y, at_end, at_start) -> str:
    close = lambda a, b: np.allclose(np.asarray(a, np.float64), b, rtol=1e-4, atol=1e-5)  # noqa: E731
    return "bottom/right" if close(y, at_end) else "top/left" if close(y, at_start) else "neither"


def conventions(outputs: dict, dtype: str = "float32") -> dict:
    """What the framework did where definitions differ, read from the measuring cases:
    where 'same' puts the odd padding pixel (conv and max-pool), which element of a tied
    max-pool window takes the gradient, and ReLU'(0). A convention whose case the framework
    did not compute (no gradients in ONNX Runtime) is absent."""
    cases = {case.id: case for case in build_cases()}
    found = {}

    case = cases[f"conv2d-same-even-stride2-{dtype}"]
    x, w, b = case.inputs["x"], case.inputs["w"], case.inputs["b"]
    pads = _same_pads(x.shape[1:3], w.shape[:2], (2, 2))
    if f"{case.id}/y" in outputs:
        found["same_conv"] = _odd_pixel_side(outputs[f"{case.id}/y"], ref.conv2d_forward(x, w, b, 2, pads),
                                             ref.conv2d_forward(x, w, b, 2, _swap(pads)))

    case = cases[f"maxpool2d-same-negative-{dtype}"]
    x = case.inputs["x"]
    pads = _same_pads(x.shape[1:3], (3, 2), (2, 2))
    pool = lambda p: ref.maxpool2d_forward(  # noqa: E731  (the windows over x padded by p with -inf)
        np.pad(x, ((0, 0), *p, (0, 0)), constant_values=-np.inf), (3, 2), 2, "valid")
    if f"{case.id}/y" in outputs:
        found["same_pool"] = _odd_pixel_side(outputs[f"{case.id}/y"], pool(pads), pool(_swap(pads)))

    case = cases[f"maxpool2d-tie-window-{dtype}"]
    if f"{case.id}/dx" in outputs:
        share = (outputs[f"{case.id}/dx"] / case.dy).reshape(4)
        rules = {"first": [1, 0, 0, 0], "last": [0, 0, 0, 1], "split": [0.25] * 4, "every": [1] * 4}
        found["pool_tie"] = next((rule for rule, s in rules.items() if np.allclose(share, s)), str(share))

    case = cases[f"relu-zeros-{dtype}"]
    if f"{case.id}/dx" in outputs:
        zeros = case.inputs["x"] == 0
        slopes = np.unique(outputs[f"{case.id}/dx"][zeros] / case.dy[zeros])
        found["relu_grad_at_0"] = float(slopes[0]) if slopes.size == 1 else str(slopes)
    return found


# --- running an adapter in a process of its own ---------------------------------------------

@dataclass
class Results:
    name: str
    versions: dict
    outputs: dict          # "<case id>/<output>" -> array
    errors: dict           # case id -> "ExceptionType: message"


def run_adapter(module: str, out_dir: Path, env: dict | None = None, timeout: float = 600) -> Results:
    """Run every case through adapter ``module`` in a child process with ``env`` added."""
    child_env = {**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu"), **(env or {})}
    done = subprocess.run([sys.executable, "-m", "tests.frameworks.adapter_cases", module, str(out_dir)],
                          cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    info = json.loads((out_dir / "results.json").read_text())
    with np.load(out_dir / "outputs.npz", allow_pickle=False) as npz:
        outputs = {key: npz[key] for key in npz.files}
    return Results(info["name"], info["versions"], outputs, info["errors"])


def main(module: str, out_dir: str) -> None:
    adapter = importlib.import_module(module)
    outputs, errors = {}, {}
    for case in build_cases():
        try:
            result = adapter.run_op(case.op, case.inputs, case.options, case.dy, case.dtype)
        except Exception as exc:  # noqa: BLE001  (a framework's failure is a result)
            errors[case.id] = f"{type(exc).__name__}: {exc}"
            continue
        outputs.update({f"{case.id}/{name}": np.asarray(a) for name, a in result.items()})
    out = Path(out_dir)
    np.savez(out / "outputs.npz", **outputs)
    (out / "results.json").write_text(json.dumps(
        {"name": adapter.NAME, "versions": adapter.versions(), "errors": errors}, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])

"""Whole models, checked against every framework: predictions, loss, every weight gradient,
and the weights after N steps of each framework's own Adam and SGD.

    report = run(None, ["torch", "keras-jax"])            # the seed's model, fresh weights
    report = run("model.npz", ["jax"], dtype="float32")   # a saved model (or a .keras file)

The model's weights are carried into each framework by its model module in
``minires.frameworks`` (PyTorch: ``torch_models``, JAX: ``jax_models``, Keras 3 on JAX or
PyTorch: ``keras_models``), each in a process of its own (``model_worker``), so this process
never imports a framework. The seed's architecture is built there with each framework's own
code for the seed's model (``SeedResNet``; the seed article's Keras functions); any other
model from its description (``minires.interop.spec``). ONNX Runtime runs the model exported
by ``minires export`` and gives predictions only.

The batch is fixed: ``BATCH`` inputs drawn uniformly from [0, 1) by ``default_rng(seed)``,
and one-hot labels of random classes (the seed's categorical cross-entropy) when the output
is a softmax over classes; otherwise random targets and the mean squared error. Optimizers
start from the same weights and take ``steps`` steps on that batch: Adam with Keras'
defaults (lr 1e-3, betas 0.9/0.999, epsilon 1e-7) and SGD with lr 0.01, momentum 0.9.

The report has the shape of the op checks' (``{"versions", "cells"}``), one cell per
(output, framework): op ``model:<name>``, output ``predictions``, ``loss``,
``grad:<weight name>``, ``adam:step<k>``, ``sgd:step<k>``. The error of an array is
``max|theirs - ours| / max(max|theirs|, max|ours|)``: relative to the array's scale, so an
entry near zero (a bias after one step, a probability of 1e-9) is neither hidden nor
inflated. An optimizer cell's error is the largest over the model's weights. Adam's steps
are compared in float64 only (``TOLERANCES`` says why).

Conventions are measured: PyTorch's and JAX's Adam add epsilon to the bias-corrected root,
Keras' (and minires' default) to the root itself. A framework whose Adam steps disagree
with minires' Keras form but agree with ``Adam(epsilon_placement="torch")`` gets the verdict
``convention``, named ``ADAM_EPSILON``. A disagreeing gradient names the framework as the
outlier when minires' own gradient of that weight agrees with central differences of the
loss (float64, along a random direction); when it does not, minires is the outlier.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import numpy

from .. import __version__
from ..frameworks import FRAMEWORKS, install_hint, installed
from ..interop.spec import model_from_config, model_spec
from ..model import Model
from ..models import build_resnet
from ..optim import SGD, Adam
from ..serialization import load_model
from .runner import worker_environment

ADAM = {"learning_rate": 1e-3, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
SGD_MOMENTUM = {"learning_rate": 0.01, "momentum": 0.9}
BATCH = 4
ADAM_EPSILON = "adam_epsilon_placement=torch"
WORKER_TIMEOUT = 900

# Why each bound: float64 results of the same math in another summation order differ by a
# few ulps per operation, and the seed's model chains about a hundred of them per output, so
# 1e-10 leaves four orders of magnitude of room while anything float32-accurate (1e-7 and
# worse) fails it. float32 rounds at 6e-8: predictions and the loss stay within 1e-5; a weight
# gradient sums thousands of products (1e-4), and SGD's steps are linear in the gradients.
# Adam is compared in float64 only: it divides each gradient by its own root mean square, so
# an entry whose gradient is below float32's rounding noise (a nearly dead unit) moves by up
# to the whole learning rate in a direction the noise picks, in any two correct frameworks.
TOLERANCES = {
    "float64": {"predictions": 1e-10, "loss": 1e-10, "grad": 1e-10, "adam": 1e-10, "sgd": 1e-10},
    "float32": {"predictions": 1e-5, "loss": 1e-5, "grad": 1e-4, "sgd": 1e-4},
}
OPTIMIZERS = {"adam": ADAM, "sgd": SGD_MOMENTUM}
# minires' gradient against central differences of its loss (float64). With a step h (relative
# to the weights' scale) the truncation error is O(h^2) and the rounding error about
# 1e-16 / h of the loss: near 1e-9 at h = 1e-7, far below the bound, which a wrong gradient
# (a missed branch, a wrong factor) exceeds by orders of magnitude.
CENTRAL_DIFFERENCE_STEPS = (1e-7, 1e-8, 1e-6)
CENTRAL_DIFFERENCE_TOL = 1e-5


# --- the model and its batch -------------------------------------------------------------------

def in_dtype(model: Model, dtype: str) -> Model:
    """A copy of ``model`` computing in ``dtype``, with its weights (rounded if need be)."""
    config = model.get_config()
    for entry in config["layers"]:
        entry["config"]["dtype"] = dtype
    copy = model_from_config(config, f"model {model.name!r}")
    copy.set_weights([w.astype(dtype) for w in model.get_weights()])
    return copy


def load(model_path: str | None, dtype: str, seed: int = 0) -> Model:
    """The model to check: the seed's with fresh weights drawn from ``seed``, or a file's."""
    if model_path is None:
        return build_resnet(seed=seed, dtype=dtype)
    return in_dtype(load_model(model_path, compile=False), dtype)


def loss_name(model: Model) -> str:
    """Cross-entropy for a softmax over classes (the seed's), else the mean squared error."""
    if model._output_layer.ends_in_softmax and len(model.output.shape) == 2:
        return "categorical_crossentropy"
    return "mean_squared_error"


def make_batch(model: Model, loss: str, seed: int = 0, size: int = BATCH):
    """(x, targets) in the model's dtype: uniform images, one-hot labels or normal targets."""
    rng = numpy.random.default_rng(seed)
    shape = tuple(model.input.shape[1:])
    if None in shape:
        raise ValueError(f"model {model.name!r}: its input shape {shape} must be fully known")
    x = rng.random((size, *shape)).astype(model.dtype)
    out_shape = tuple(model.output.shape[1:])
    if loss == "categorical_crossentropy":
        targets = numpy.eye(out_shape[0], dtype=model.dtype)[rng.integers(0, out_shape[0], size)]
    else:
        targets = rng.standard_normal((size, *out_shape)).astype(model.dtype)
    return x, targets


def _fresh(model: Model, optimizer, loss: str) -> Model:
    copy = model_from_config(model.get_config(), f"model {model.name!r}")
    copy.set_weights(model.get_weights())
    copy.compile(optimizer=optimizer, loss=loss)
    return copy


def minires_results(model: Model, x, targets, loss: str, steps: int, optimizers=("adam", "sgd")) -> dict:
    """minires' side, keyed as a worker's results are (plus ``adam_torch/<k>/<i>``)."""
    out = {"predictions": model.predict(x, batch_size=len(x))}
    value, grads, _ = _fresh(model, Adam(), loss).loss_and_gradients(x, targets)
    out["loss"] = numpy.asarray(value, dtype=model.dtype)
    out.update({f"grad/{i}": numpy.asarray(g) for i, g in enumerate(grads)})
    runs = {"adam": lambda: Adam(**ADAM),
            "adam_torch": lambda: Adam(**ADAM, epsilon_placement="torch"),
            "sgd": lambda: SGD(**SGD_MOMENTUM)}
    for key, optimizer in runs.items():
        if key.split("_")[0] not in optimizers:
            continue
        trained = _fresh(model, optimizer(), loss)
        for step in range(1, steps + 1):
            trained.train_on_batch(x, targets)
            out.update({f"{key}/{step}/{i}": w for i, w in enumerate(trained.get_weights())})
    return out


def central_difference_agreement(model: Model, x, targets, loss: str, seed: int = 0) -> list[float]:
    """Per weight: the relative gap between minires' directional derivative of the loss along
    a random direction and its central difference, in float64.

    A step that moves a pre-activation across zero or changes a max-pool window's winner
    spoils a central difference, and the seed's model has many near-ties; so each weight
    gets up to three step sizes, and its gap is the smallest.
    """
    model64 = _fresh(in_dtype(model, "float64"), Adam(), loss)
    x64, t64 = x.astype(numpy.float64), targets.astype(numpy.float64)
    _, grads, _ = model64.loss_and_gradients(x64, t64)
    weights = model64.get_weights()
    rng = numpy.random.default_rng(seed)
    gaps = []
    for i, (w, g) in enumerate(zip(weights, grads)):
        direction = rng.standard_normal(w.shape)
        analytic = float(numpy.sum(numpy.asarray(g) * direction))
        gap = float("inf")
        for step in CENTRAL_DIFFERENCE_STEPS:
            h = step * max(1.0, float(numpy.abs(w).max()))
            values = []
            for sign in (1.0, -1.0):
                moved = list(weights)
                moved[i] = w + sign * h * direction
                model64.set_weights(moved)
                values.append(float(model64.test_on_batch(x64, t64)))
            numeric = (values[0] - values[1]) / (2 * h)
            gap = min(gap, abs(numeric - analytic) / max(abs(numeric), abs(analytic), 1e-30))
            if gap <= CENTRAL_DIFFERENCE_TOL:
                break
        model64.set_weights(weights)
        gaps.append(gap)
    return gaps


# --- the frameworks' processes -----------------------------------------------------------------

def spawn(framework: str, directory: str) -> None:
    """Run ``model_worker`` for ``framework`` on the job in ``directory``, in a new process."""
    try:
        done = subprocess.run([sys.executable, "-m", "minires.verify.model_worker", framework, directory],
                              capture_output=True, text=True, check=False, env=worker_environment(framework),
                              timeout=WORKER_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"the {framework} process ran past {WORKER_TIMEOUT} s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the {framework} process failed: {last}")


def run_framework(framework: str, job: dict, arrays: dict) -> tuple[dict, dict]:
    """(results, result.json) of ``framework`` on ``job``."""
    with tempfile.TemporaryDirectory(prefix="minires-model-") as directory:
        with open(os.path.join(directory, "model.json"), "w", encoding="utf-8") as handle:
            json.dump({**job, "framework": framework}, handle)
        numpy.savez(os.path.join(directory, "arrays.npz"), **arrays)
        spawn(framework, directory)
        with open(os.path.join(directory, "result.json"), encoding="utf-8") as handle:
            info = json.load(handle)
        with numpy.load(os.path.join(directory, "result.npz"), allow_pickle=False) as loaded:
            results = {key: loaded[key] for key in loaded.files}
    return results, info


# --- comparing ---------------------------------------------------------------------------------

def relative_error(theirs, ours) -> float:
    """max|theirs - ours| / max(max|theirs|, max|ours|); inf for a shape mismatch or a NaN."""
    a, b = numpy.asarray(theirs, dtype=numpy.float64), numpy.asarray(ours, dtype=numpy.float64)
    if a.shape != b.shape:
        return float("inf")
    if a.size == 0:
        return 0.0
    scale = max(float(numpy.abs(a).max()), float(numpy.abs(b).max()))
    diff = float(numpy.abs(a - b).max())
    if not numpy.isfinite(diff) or not numpy.isfinite(scale):
        return float("inf")
    return diff / scale if scale > 0 else 0.0


def _cell(op, output, framework, dtype, error, tol, verdict=None, convention=None, outlier=None):
    if verdict is None:
        verdict = "agree" if error <= tol else "disagree"
    if verdict == "disagree" and outlier is None:
        outlier = framework
    return {"op": op, "output": output, "framework": framework, "dtype": dtype, "cases": 1,
            "max_rel_err": error, "tol": tol, "verdict": verdict, "convention": convention,
            "outlier": outlier if verdict == "disagree" else None}


def _error_cell(op, output, framework, dtype, tol, message):
    cell = _cell(op, output, framework, dtype, None, tol, verdict="error")
    cell["error"] = message
    return cell


def compare(op: str, framework: str, dtype: str, ours: dict, theirs: dict, errors: dict,
            weight_names: list, steps: int, gradient_gaps=None) -> list[dict]:
    """The cells of one framework's results against minires'.

    ``gradient_gaps``: a callable giving minires' central-difference gaps per weight, asked
    only when a gradient disagrees.
    """
    tol = TOLERANCES[dtype]
    cells = []
    n = len(weight_names)
    if framework == "onnxruntime":
        # ONNX Runtime computes the float32 export of the model, whatever the model's dtype.
        tol, dtype = TOLERANCES["float32"], "float32"
        if "gradients" in errors:
            return [_error_cell(op, "predictions", framework, dtype, tol["predictions"], errors["gradients"])]
        return [_cell(op, "predictions", framework, dtype,
                      relative_error(theirs["predictions"], ours["predictions"]), tol["predictions"])]
    outputs = [("predictions", "predictions", "predictions"), ("loss", "loss", "loss")]
    outputs += [(f"grad:{name}", f"grad/{i}", "grad") for i, name in enumerate(weight_names)]
    gaps = None
    for output, key, kind in outputs:
        if "gradients" in errors:
            cells.append(_error_cell(op, output, framework, dtype, tol[kind], errors["gradients"]))
            continue
        cell = _cell(op, output, framework, dtype, relative_error(theirs[key], ours[key]), tol[kind])
        if cell["verdict"] == "disagree" and kind == "grad" and gradient_gaps is not None:
            gaps = gradient_gaps() if gaps is None else gaps
            if gaps[int(key.split("/")[1])] > CENTRAL_DIFFERENCE_TOL:
                cell["outlier"] = "minires"
        cells.append(cell)
    for name in OPTIMIZERS:
        if name not in tol:
            continue
        for step in range(1, steps + 1):
            output = f"{name}:step{step}"
            if name in errors:
                cells.append(_error_cell(op, output, framework, dtype, tol[name], errors[name]))
                continue
            error = max(relative_error(theirs[f"{name}/{step}/{i}"], ours[f"{name}/{step}/{i}"])
                        for i in range(n))
            cell = _cell(op, output, framework, dtype, error, tol[name])
            if name == "adam" and cell["verdict"] == "disagree":
                other = max(relative_error(theirs[f"adam/{step}/{i}"], ours[f"adam_torch/{step}/{i}"])
                            for i in range(n))
                if other <= tol[name]:
                    cell = _cell(op, output, framework, dtype, other, tol[name], verdict="convention",
                                 convention=ADAM_EPSILON)
            cells.append(cell)
    return cells


# --- the check ---------------------------------------------------------------------------------

def run(model_path: str | None, frameworks: list[str], dtype: str = "float64", steps: int = 5,
        log=print, seed: int = 0) -> dict:
    """Check the model at ``model_path`` (None: the seed's, fresh weights) against ``frameworks``.

    Returns ``{"versions": {...}, "cells": [...]}``. A framework that is not installed is
    skipped with a log line; one whose process fails gives cells with verdict ``error``.
    """
    if dtype not in TOLERANCES:
        raise ValueError(f"verify: dtype must be one of {', '.join(TOLERANCES)}, got {dtype!r}")
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"verify: steps must be an int >= 1, got {steps!r}")
    unknown = [f for f in frameworks if f not in FRAMEWORKS]
    if unknown:
        raise ValueError(f"verify: unknown framework {unknown[0]!r}; known: {', '.join(FRAMEWORKS)}")
    model = load(model_path, dtype, seed)
    spec = model_spec(model)
    loss = loss_name(model)
    x, targets = make_batch(model, loss, seed)
    op = f"model:{model.name}"
    log(f"{op}: {model.count_params():,} parameters, {dtype}, batch {len(x)}, {loss}, {steps} steps")
    optimizers = {name: settings for name, settings in OPTIMIZERS.items() if name in TOLERANCES[dtype]}
    if len(optimizers) < len(OPTIMIZERS):
        log(f"{op}: {', '.join(sorted(set(OPTIMIZERS) - set(optimizers)))} compared in float64 only "
            f"(see TOLERANCES)")
    ours = minires_results(model, x, targets, loss, steps, tuple(optimizers))
    job = {"spec": spec, "config": model.get_config(), "loss": loss, "steps": steps,
           "optimizers": optimizers}
    arrays = {"x": x, "targets": targets, **{f"weights/{i}": w for i, w in enumerate(model.get_weights())}}
    gaps: list = []

    def gradient_gaps():
        if not gaps:
            gaps.extend(central_difference_agreement(model, x, targets, loss, seed))
        return gaps

    versions = {"minires": __version__}
    cells = []
    for framework in frameworks:
        if not installed(framework):
            log(f"{op}: {framework}: skipped ({install_hint(framework)})")
            continue
        try:
            theirs, info = run_framework(framework, job, arrays)
        except RuntimeError as exc:
            info = {"versions": {}, "errors": {k: str(exc) for k in ("gradients", *optimizers)}}
            theirs = {}
        versions.update(info["versions"])
        new = compare(op, framework, dtype, ours, theirs, info["errors"], spec["weights"], steps,
                      gradient_gaps)
        cells.extend(new)
        worst = max((c["max_rel_err"] for c in new if c["max_rel_err"] is not None), default=None)
        verdicts = sorted({c["verdict"] for c in new})
        log(f"{op}: {framework}: {len(new)} cells, {', '.join(verdicts)}"
            + (f"; worst relative error {worst:.1e}" if worst is not None else ""))
    return {"versions": versions, "cells": cells}

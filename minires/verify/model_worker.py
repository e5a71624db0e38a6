"""One framework's side of a whole-model check, in a process of its own.

    python -m minires.verify.model_worker FRAMEWORK DIR

``minires.verify.models`` writes into DIR ``model.json`` (the model's spec and config, the
loss, the optimizers, the step count) and ``arrays.npz`` (``x``, ``targets`` and
``weights/<i>``, saved without pickle), and starts this module with the framework's
environment (``KERAS_BACKEND`` for Keras). It imports the framework's model module, asks it
for the predictions, the loss and the gradients, then for the weights after each optimizer
step, and writes ``result.npz`` (``predictions``, ``loss``, ``grad/<i>``,
``<optimizer>/<step>/<i>``) and ``result.json`` (the versions, and an error line per part
that failed: a framework's exception is a result, not a crash). JAX computes float64 only
with ``jax_enable_x64``, so the JAX and Keras-on-JAX processes enable it before anything
imports JAX; minires' own process never does.

ONNX Runtime computes forward values only: its process exports the minires model to ONNX
(float32, ``minires.interop.onnx_export``) and runs it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

import numpy

# framework -> the module that runs whole models in it (ONNX Runtime: none, see above)
MODULES = {"torch": "minires.frameworks.torch_models", "jax": "minires.frameworks.jax_models",
           "keras-jax": "minires.frameworks.keras_models",
           "keras-torch": "minires.frameworks.keras_models"}


def _error(exc: BaseException) -> str:
    line = f"{type(exc).__name__}: {exc}".splitlines()[0]
    return line[:500]


def _onnxruntime(job: dict, arrays: dict) -> tuple[dict, dict]:
    import onnxruntime

    from ..interop.onnx_export import to_onnx
    from ..interop.spec import model_from_config

    model = model_from_config(job["config"], "the model")
    model.set_weights([arrays[f"weights/{i}"] for i in range(len(job["spec"]["weights"]))])
    session = onnxruntime.InferenceSession(to_onnx(model).SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    x = arrays["x"].astype(numpy.float32)
    return {"predictions": session.run(None, {"input": x})[0]}, {"onnxruntime": onnxruntime.__version__}


def run(framework: str, directory: str) -> None:
    """Run the job in ``directory`` on ``framework`` and write its results there."""
    with open(os.path.join(directory, "model.json"), encoding="utf-8") as handle:
        job = json.load(handle)
    with numpy.load(os.path.join(directory, "arrays.npz"), allow_pickle=False) as loaded:
        arrays = {key: loaded[key] for key in loaded.files}
    out, errors, versions = {}, {}, {}
    if framework == "onnxruntime":
        try:
            out, versions = _onnxruntime(job, arrays)
        except Exception as exc:  # any failure of the framework is a result
            errors["gradients"] = _error(exc)
    else:
        if framework in ("jax", "keras-jax"):
            import jax

            jax.config.update("jax_enable_x64", True)
        module = importlib.import_module(MODULES[framework])
        versions = module.versions()
        spec, loss = job["spec"], job["loss"]
        weights = [arrays[f"weights/{i}"] for i in range(len(spec["weights"]))]
        x, targets = arrays["x"], arrays["targets"]
        try:
            result = module.gradients(spec, weights, x, targets, loss)
            out["predictions"], out["loss"] = result["predictions"], result["loss"]
            out.update({f"grad/{i}": g for i, g in enumerate(result["grads"])})
        except Exception as exc:
            errors["gradients"] = _error(exc)
            if os.environ.get("MINIRES_DEBUG"):
                traceback.print_exc()
        for name, settings in job["optimizers"].items():
            try:
                history = module.train(spec, weights, x, targets, loss, {"name": name, **settings},
                                       job["steps"])
                for step, values in enumerate(history, start=1):
                    out.update({f"{name}/{step}/{i}": w for i, w in enumerate(values)})
            except Exception as exc:
                errors[name] = _error(exc)
                if os.environ.get("MINIRES_DEBUG"):
                    traceback.print_exc()
    numpy.savez(os.path.join(directory, "result.npz"),
                **{k: numpy.asarray(v) for k, v in out.items()})
    with open(os.path.join(directory, "result.json"), "w", encoding="utf-8") as handle:
        json.dump({"versions": versions, "errors": errors}, handle)


def main(argv=None) -> int:
    framework, directory = (sys.argv[1:] if argv is None else argv)
    run(framework, directory)
    return 0


if __name__ == "__main__":
    sys.exit(main())

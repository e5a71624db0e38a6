"""Adapters to other frameworks, for comparisons: benchmarks, ``minires verify``, the tests.

Each adapter module here imports its framework at module level, so nothing in this package
but this registry is imported by ``import minires``; import the module you need once the
framework is installed. Every layout and padding mapping between minires and a framework
belongs in that framework's module here.

``FRAMEWORKS`` names every framework ``minires verify`` can check: the adapter module, and the
environment its process needs (Keras picks its backend once per process, from
``KERAS_BACKEND``, so each Keras backend runs in a process of its own). An adapter provides
``NAME``, ``versions()`` and ``run_op(op, inputs, options, dy, dtype)`` (docs/verify.md). The
module may also be given as the path of a ``.py`` file, so that a test can register an adapter
of its own.

``installed(name)`` says whether a framework's packages are there, without importing them.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

FRAMEWORKS = {
    "torch": ("minires.frameworks.torch_adapter", {}),
    "jax": ("minires.frameworks.jax_adapter", {}),
    "keras-jax": ("minires.frameworks.keras_adapter", {"KERAS_BACKEND": "jax"}),
    "keras-torch": ("minires.frameworks.keras_adapter", {"KERAS_BACKEND": "torch"}),
    "onnxruntime": ("minires.frameworks.onnx_adapter", {}),
}

# The packages each framework's adapter imports.
PACKAGES = {
    "torch": ("torch",),
    "jax": ("jax",),
    "keras-jax": ("keras", "jax"),
    "keras-torch": ("keras", "torch"),
    "onnxruntime": ("onnx", "onnxruntime"),
}

# The extras of minires that install them (pip install "minires[EXTRAS]").
EXTRAS = {"torch": "verify", "jax": "jax", "keras-jax": "keras,jax", "keras-torch": "keras,verify",
          "onnxruntime": "onnx"}


def _found(module: str) -> bool:
    if module.endswith(".py"):
        return Path(module).is_file()
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:      # a parent package is missing
        return False


def installed(name: str) -> bool:
    """Whether framework ``name`` (a key of FRAMEWORKS) can run here: its adapter module and
    the packages it imports are found. Nothing is imported."""
    if name not in FRAMEWORKS:
        raise ValueError(f"unknown framework {name!r}; known: {', '.join(FRAMEWORKS)}")
    module, _ = FRAMEWORKS[name]
    return _found(module) and all(_found(package) for package in PACKAGES.get(name, ()))


def install_hint(name: str) -> str:
    """How to install framework ``name``: 'pip install "minires[keras]"'."""
    extra = EXTRAS.get(name)
    return f'pip install "minires[{extra}]"' if extra else f"the adapter {FRAMEWORKS[name][0]}"

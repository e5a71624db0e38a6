"""Whole minires models as pure JAX functions: ``apply(spec, weights, x)`` from a model spec.

A spec is ``minires.interop.spec``'s plain description of a model; ``weights`` is the list
of ``Model.get_weights()``. JAX's convolution takes any layout it is told, so the function
runs in minires' own, NHWC activations and HWIO kernels (``dimension_numbers``), and the
weights move into it unchanged: the pure function is the check of the math alone. Keras'
'same' is JAX's ``"SAME"`` (TensorFlow's rule: the odd pixel bottom/right); max pooling is
``lax.reduce_window`` with ``-inf`` as its initial value.

``gradients`` and ``train`` are what ``minires verify`` asks of every framework. The loss is
``-sum(t * log_softmax(z)) / N`` on the logits z of a softmax output, or the mean squared
error. JAX has no optimizers of its own beyond ``jax.example_libraries.optimizers``, so those
are the ones used: ``adam`` (epsilon added to the bias-corrected root, as in PyTorch) and
``momentum`` (the buffer form of SGD with momentum).

Each function is compiled once with ``jax.jit`` (op by op, JAX would compile every primitive
for every weight shape). float64 needs ``jax_enable_x64``, which only the process that runs this module sets
(``minires.verify.model_worker``).
"""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.example_libraries import optimizers


def versions() -> dict:
    return {"jax": jax.__version__}


def _window(layer) -> tuple:
    window = layer["kernel_size"] if layer["kind"] == "conv2d" else layer["pool_size"]
    return tuple(window), tuple(layer["strides"]), layer["padding"].upper()


def apply(spec: dict, weights: list, x, logits: bool = False):
    """The model's output for a batch ``x``; ``logits=True`` stops a final softmax before it."""
    values = {spec["input"]["name"]: x}
    for layer in spec["layers"]:
        inputs = [values[n] for n in layer["inputs"]]
        params = {p: weights[i] for p, i in layer["weights"].items()}
        kind, y = layer["kind"], inputs[0]
        if kind == "conv2d":
            _, strides, padding = _window(layer)
            y = lax.conv_general_dilated(y, params["kernel"], strides, padding,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
            if "bias" in params:
                y = y + params["bias"]
        elif kind == "maxpool2d":
            window, strides, padding = _window(layer)
            y = lax.reduce_window(y, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1), padding)
        elif kind == "dense":
            y = y @ params["kernel"]
            if "bias" in params:
                y = y + params["bias"]
        elif kind == "flatten":
            y = y.reshape(y.shape[0], -1)
        elif kind == "reshape":
            y = y.reshape(y.shape[0], *layer["target_shape"])
        elif kind == "add":
            for other in inputs[1:]:
                y = y + other
        if layer["activation"] == "relu":
            y = jax.nn.relu(y)
        elif layer["activation"] == "softmax" and not (logits and layer["name"] == spec["output"]):
            y = jax.nn.softmax(y, axis=-1)
        values[layer["name"]] = y
    return values[spec["output"]]


def _loss(spec, loss: str):
    def value(weights, x, targets):
        if loss == "categorical_crossentropy":
            z = apply(spec, weights, x, logits=True)
            return -jnp.sum(targets * jax.nn.log_softmax(z, axis=-1)) / x.shape[0]
        return jnp.mean((apply(spec, weights, x) - targets) ** 2)
    return value


_compiled: dict = {}


def _value_and_grad(spec: dict, loss: str):
    """The loss and its gradient wrt the weights, compiled once per model and loss."""
    key = (json.dumps(spec, sort_keys=True), loss)
    if key not in _compiled:
        _compiled[key] = jax.jit(jax.value_and_grad(_loss(spec, loss)))
    return _compiled[key]


def gradients(spec: dict, weights: list, x: np.ndarray, targets: np.ndarray, loss: str) -> dict:
    """{"predictions", "loss", "grads": [per weight, minires' order]}."""
    params = [jnp.asarray(w) for w in weights]
    value, grads = _value_and_grad(spec, loss)(params, jnp.asarray(x), jnp.asarray(targets))
    predictions = jax.jit(lambda p, batch: apply(spec, p, batch))(params, jnp.asarray(x))
    return {"predictions": np.asarray(predictions), "loss": np.asarray(value),
            "grads": [np.asarray(g) for g in grads]}


def train(spec: dict, weights: list, x: np.ndarray, targets: np.ndarray, loss: str, optimizer: dict,
          steps: int) -> list:
    """The weights after each of ``steps`` steps of ``optimizers.adam`` or ``optimizers.momentum``."""
    if optimizer["name"] == "adam":
        init, update, get_params = optimizers.adam(optimizer["learning_rate"], b1=optimizer["beta_1"],
                                                   b2=optimizer["beta_2"], eps=optimizer["epsilon"])
    else:
        init, update, get_params = optimizers.momentum(optimizer["learning_rate"],
                                                       mass=optimizer["momentum"])
    value_and_grad = _value_and_grad(spec, loss)
    update = jax.jit(update)
    xt, tt = jnp.asarray(x), jnp.asarray(targets)
    state = init([jnp.asarray(w) for w in weights])
    history = []
    for step in range(steps):
        _, grads = value_and_grad(get_params(state), xt, tt)
        state = update(step, grads, state)
        history.append([np.asarray(w) for w in get_params(state)])
    return history

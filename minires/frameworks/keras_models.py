"""Whole minires models in Keras 3: the seed's own model code, or any model from its spec.

``residual_block`` and ``build_resnet`` below are the seed article's (section 5.2), layer
for layer, with ``tf.keras.layers`` spelled ``keras.layers`` and the literals 64 filters,
3 blocks and 128 units made arguments (their defaults), so that smaller models of the same
shape can be checked quickly. The seed's model is built with them; any other model is built
from ``minires.interop.spec``'s description, one Keras layer per minires layer, of the same
name. Keras' layouts are minires' (NHWC, HWIO, (in, out)) and its weights are listed in the
same order, so weights move unchanged.

Keras picks its backend once per process, from ``KERAS_BACKEND`` (``jax`` or ``torch``),
before it is first imported: ``minires.verify`` runs this module in a process of its own per
backend. The gradients are the backend's own autodiff of Keras' forward pass and of Keras'
``CategoricalCrossentropy`` (or ``MeanSquaredError``) (``stateless_call`` under
``jax.value_and_grad``; ``torch.autograd.grad``); the optimizer steps are Keras' own training
step, ``train_on_batch`` with ``keras.optimizers.Adam`` or ``SGD``. The predictions are the
forward pass of the gradients' computation (these layers compute the same in training).
"""

from __future__ import annotations

import json

import keras
import numpy as np
from keras.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
from keras.models import Model


def versions() -> dict:
    backend = keras.backend.backend()
    module = __import__(backend)
    return {"keras": keras.__version__, backend: module.__version__.split("+")[0]}


# --- the seed's code -------------------------------------------------------------------------

def residual_block(inputs, filters, block_index):
    x = Conv2D(filters, (3, 3), padding='same', activation='relu')(inputs)
    x = Conv2D(filters, (3, 3), padding='same')(x)
    x = MaxPooling2D(pool_size=(2, 2))(x)

    skip_connection = Conv2D(filters, (1, 1), padding='same')(inputs)
    skip_connection = MaxPooling2D(pool_size=(2, 2))(skip_connection)

    x = keras.layers.add([x, skip_connection])
    x = keras.layers.Activation('relu')(x)

    return x


def build_resnet(input_shape, num_classes, filters=64, blocks=3, dense_units=128):
    inputs = Input(shape=input_shape)

    x = Conv2D(filters, (3, 3), activation='relu', padding='same')(inputs)
    x = MaxPooling2D(pool_size=(2, 2))(x)

    for i in range(blocks):
        x = residual_block(x, filters, i)

    x = Flatten()(x)
    x = Dense(dense_units, activation='relu')(x)
    outputs = Dense(num_classes, activation='softmax')(x)

    model = Model(inputs=inputs, outputs=outputs)

    return model


# --- any model from its spec -------------------------------------------------------------------

def _layer(layer: dict):
    kind, name, activation = layer["kind"], layer["name"], layer["activation"]
    if kind == "conv2d":
        return Conv2D(layer["filters"], tuple(layer["kernel_size"]), strides=tuple(layer["strides"]),
                      padding=layer["padding"], activation=activation,
                      use_bias="bias" in layer["weights"], name=name)
    if kind == "maxpool2d":
        return MaxPooling2D(tuple(layer["pool_size"]), strides=tuple(layer["strides"]),
                            padding=layer["padding"], name=name)
    if kind == "dense":
        return Dense(layer["units"], activation=activation, use_bias="bias" in layer["weights"],
                     name=name)
    if kind == "flatten":
        return Flatten(name=name)
    if kind == "reshape":
        return keras.layers.Reshape(tuple(layer["target_shape"]), name=name)
    if kind == "add":
        return keras.layers.Add(name=name)
    return keras.layers.Activation(activation, name=name)


_built: dict = {}


def build(spec: dict, weights: list):
    """(Keras model, its weights' positions in minires' list) with ``weights`` carried in.

    A process builds each model once (building draws initial weights, which JAX compiles
    per shape) and gives it new weights on every call.
    """
    key = json.dumps(spec, sort_keys=True)
    if key not in _built:
        _built[key] = _build(spec, len(weights))
    model, order = _built[key]
    shapes = [tuple(w.shape) for w in model.weights]
    given = [tuple(weights[i].shape) for i in order]
    if shapes != given:
        raise ValueError(f"Keras model: its weights have shapes {shapes}, minires' {given}")
    model.set_weights([weights[i] for i in order])
    return model, order


def _build(spec: dict, count: int):
    keras.config.set_floatx(spec["dtype"])
    keras.config.set_dtype_policy(spec["dtype"])
    if spec.get("resnet"):
        arguments = spec["resnet"]
        model = build_resnet(tuple(arguments["input_shape"]), arguments["num_classes"],
                             arguments["filters"], arguments["blocks"], arguments["dense_units"])
        return model, list(range(count))
    tensors = {spec["input"]["name"]: Input(shape=tuple(spec["input"]["shape"]),
                                            name=spec["input"]["name"])}
    for layer in spec["layers"]:
        inputs = [tensors[n] for n in layer["inputs"]]
        tensors[layer["name"]] = _layer(layer)(inputs if layer["kind"] == "add" else inputs[0])
    model = Model(inputs=tensors[spec["input"]["name"]], outputs=tensors[spec["output"]])
    by_name = {layer["name"]: layer for layer in spec["layers"]}
    order = []
    for keras_layer in model.layers:
        entry = by_name.get(keras_layer.name)
        if entry is not None:
            order.extend(entry["weights"][p] for p in ("kernel", "bias") if p in entry["weights"])
    return model, order


def _loss_function(loss: str):
    if loss == "categorical_crossentropy":
        return keras.losses.CategoricalCrossentropy()
    return keras.losses.MeanSquaredError()


def _in_minires_order(arrays: list, order: list) -> list:
    out = [None] * len(order)
    for array, index in zip(arrays, order):
        out[index] = np.asarray(array)
    return out


def gradients(spec: dict, weights: list, x: np.ndarray, targets: np.ndarray, loss: str) -> dict:
    """{"predictions", "loss", "grads": [per weight, minires' order]}."""
    model, order = build(spec, weights)
    loss_fn = _loss_function(loss)
    xt, tt = keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(targets)
    if keras.backend.backend() == "jax":
        import jax

        others = [v.value for v in model.non_trainable_variables]

        def objective(values):
            y, _ = model.stateless_call(values, others, xt, training=True)
            return loss_fn(tt, y), y

        # Compiled as Keras' own training step is (op by op, JAX compiles every primitive).
        (value, predictions), grads = jax.jit(jax.value_and_grad(objective, has_aux=True))(
            [v.value for v in model.trainable_variables])
    else:
        import torch

        predictions = model(xt, training=True)
        value = loss_fn(tt, predictions)
        grads = torch.autograd.grad(value, [v.value for v in model.trainable_variables])
    predictions = keras.ops.convert_to_numpy(predictions)
    grads = [keras.ops.convert_to_numpy(g) for g in grads]
    return {"predictions": predictions, "loss": keras.ops.convert_to_numpy(value),
            "grads": _in_minires_order(grads, order)}


def train(spec: dict, weights: list, x: np.ndarray, targets: np.ndarray, loss: str, optimizer: dict,
          steps: int) -> list:
    """The weights after each of ``steps`` calls of ``train_on_batch`` with Keras' Adam or SGD."""
    model, order = build(spec, weights)
    if optimizer["name"] == "adam":
        opt = keras.optimizers.Adam(learning_rate=optimizer["learning_rate"], beta_1=optimizer["beta_1"],
                                    beta_2=optimizer["beta_2"], epsilon=optimizer["epsilon"])
    else:
        opt = keras.optimizers.SGD(learning_rate=optimizer["learning_rate"],
                                   momentum=optimizer["momentum"])
    model.compile(optimizer=opt, loss=_loss_function(loss))
    history = []
    for _ in range(steps):
        model.train_on_batch(x, targets)
        history.append(_in_minires_order(model.get_weights(), order))
    return history

"""A minires model as plain data for other frameworks: its layers, their options, its weights.

Every framework that runs a minires model (PyTorch, JAX and Keras in ``minires verify``,
ONNX in ``minires export``) is handed the same description, built here from the model's
graph, instead of reading ``Model.get_config()`` itself::

    {"name": "resnet", "dtype": "float64",
     "input": {"name": "input", "shape": [32, 32, 3]},
     "layers": [{"name": "stem_conv", "kind": "conv2d", "inputs": ["input"],
                 "input_shapes": [[32, 32, 3]], "output_shape": [32, 32, 64],
                 "activation": "relu", "filters": 64, "kernel_size": [3, 3],
                 "strides": [1, 1], "padding": "same",
                 "weights": {"kernel": 0, "bias": 1}}, ...],
     "output": "predictions",
     "weights": ["stem_conv/kernel", "stem_conv/bias", ...],
     "resnet": {"input_shape": [32, 32, 3], "num_classes": 10, "filters": 64,
                "blocks": 3, "dense_units": 128}}

Shapes leave out the batch. ``weights`` maps a layer's parameters to their positions in
``Model.get_weights()`` (minires' layouts: HWIO kernels, (in, out) dense kernels); each
framework moves them into its own layouts. Kinds: conv2d, maxpool2d, dense, flatten, add,
activation (relu, softmax, linear), reshape; a layer of any other class is refused by name.

``resnet`` is not None when the model is the seed's architecture (``build_resnet`` with
some input shape, class count, filter count, block count and dense width): frameworks then
build it with their own code for the seed's model (PyTorch's ``SeedResNet``, the seed's Keras
functions) rather than from the layer list, which checks the architecture as well as the math.
Its weights are in ``build_resnet``'s order, the order those builders list theirs in.
"""

from __future__ import annotations

import numpy

from .. import initializers
from ..layers import LAYER_CLASSES
from ..model import Model
from ..model.inputs import InputLayer
from ..models import build_resnet

KINDS = {"Conv2D": "conv2d", "MaxPooling2D": "maxpool2d", "Dense": "dense", "Flatten": "flatten",
         "Add": "add", "Activation": "activation", "Reshape": "reshape"}


def _shape(shape) -> list:
    return [None if d is None else int(d) for d in shape[1:]]


def model_spec(model: Model) -> dict:
    """The description above of ``model``; ValueError naming any layer no framework is given."""
    positions = {name: i for i, name in enumerate(model.weight_names())}
    layers = []
    input_name = model.input.layer.name
    for layer in model.layers:
        class_name = type(layer).__name__
        if layer.name == input_name:
            continue
        if class_name not in KINDS:
            raise ValueError(f"model {model.name!r}: layer {layer.name!r} is a {class_name}, which "
                             f"cannot be carried into other frameworks (they get "
                             f"{', '.join(sorted(KINDS))})")
        node = layer._nodes[0]
        entry = {"name": layer.name, "kind": KINDS[class_name],
                 "inputs": [t.layer.name for t in node.inbound],
                 "input_shapes": [_shape(t.shape) for t in node.inbound],
                 "output_shape": _shape(node.shape),
                 "activation": getattr(layer, "activation", "linear"),
                 "weights": {p: positions[f"{layer.name}/{p}"] for p in layer.params}}
        if class_name == "Conv2D":
            entry.update(filters=layer.filters, kernel_size=list(layer.kernel_size),
                         strides=list(layer.strides), padding=layer.padding)
        elif class_name == "MaxPooling2D":
            entry.update(pool_size=list(layer.pool_size), strides=list(layer.strides),
                         padding=layer.padding)
        elif class_name == "Dense":
            entry.update(units=layer.units)
        elif class_name == "Reshape":
            entry.update(target_shape=list(layer.target_shape))
        layers.append(entry)
    return {"name": model.name, "dtype": model.dtype,
            "input": {"name": input_name, "shape": _shape(model.input.shape)},
            "layers": layers, "output": model._output_layer.name,
            "weights": model.weight_names(), "resnet": resnet_arguments(model)}


# --- the seed's architecture -----------------------------------------------------------------

# What two layers of the same role may differ in and still be the same architecture.
_INCIDENTAL = ("name", "dtype", "trainable", "kernel_initializer", "bias_initializer")


def resnet_arguments(model: Model) -> dict | None:
    """``build_resnet``'s keyword arguments if ``model`` has its architecture, else None.

    The count of Add layers gives the blocks, the first convolution the filters, the Dense
    layers the width and the classes; the model is the seed's when ``build_resnet`` with those
    arguments has the same layers, in the same order, with the same options and connections.
    """
    config = model.get_config()
    layers = config["layers"]
    classes = [entry["class_name"] for entry in layers]
    dense = [entry["config"] for entry in layers if entry["class_name"] == "Dense"]
    if classes[:2] != ["InputLayer", "Conv2D"] or len(dense) != 2:
        return None
    batch_shape = layers[0]["config"]["batch_shape"]
    if len(batch_shape) != 4 or None in batch_shape[1:]:
        return None
    arguments = {"input_shape": list(batch_shape[1:]), "num_classes": dense[1]["units"],
                 "filters": layers[1]["config"]["filters"], "blocks": classes.count("Add"),
                 "dense_units": dense[0]["units"]}
    try:
        with initializers.use_generator(numpy.random.default_rng(0)):   # keep the global stream
            seed = build_resnet(**{**arguments, "input_shape": tuple(arguments["input_shape"])})
    except ValueError:
        return None       # e.g. too many blocks for the input size: not the seed's shape
    expected = seed.get_config()["layers"]
    if len(expected) != len(layers):
        return None
    index = {entry["config"]["name"]: i for i, entry in enumerate(layers)}
    seed_index = {entry["config"]["name"]: i for i, entry in enumerate(expected)}
    for ours, theirs in zip(layers, expected):
        if (ours["class_name"] != theirs["class_name"] or ours["list_call"] != theirs["list_call"]
                or [index[n] for n in ours["inbound"]] != [seed_index[n] for n in theirs["inbound"]]
                or _essential(ours["config"]) != _essential(theirs["config"])):
            return None
    return arguments


def _essential(config: dict) -> dict:
    return {k: v for k, v in config.items() if k not in _INCIDENTAL}


# --- building from a file's config ----------------------------------------------------------

def model_from_config(config: dict, source: str, error=ValueError) -> Model:
    """``Model.from_config`` for a file whose weights replace the initial ones: those are drawn
    from a throwaway generator, so loading a file never moves the global random stream.
    A bad config raises ``error`` naming ``source``."""
    try:
        with initializers.use_generator(numpy.random.default_rng(0)):
            return Model.from_config(config)
    except (ValueError, TypeError, KeyError) as exc:
        raise error(f"{source}: bad architecture ({exc})") from None


# --- sizes before allocation -----------------------------------------------------------------

def parameter_shapes(config: dict) -> dict:
    """layer name -> the shapes of its parameters (kernel, bias), from a model config alone.

    Each layer object is made from its config and asked for its output shape; nothing is
    allocated, so a file's arrays can be checked against the architecture before the model
    that would hold them is built. ValueError for a config that does not describe a model.
    """
    out_shapes, shapes = {}, {}
    try:
        for entry in config["layers"]:
            settings = entry["config"]
            if entry["class_name"] == "InputLayer":
                out_shapes[settings["name"]] = InputLayer(**settings).output_shape
                continue
            if entry["class_name"] not in LAYER_CLASSES:
                raise ValueError(f"unknown layer class {entry['class_name']!r}")
            layer = LAYER_CLASSES[entry["class_name"]].from_config(dict(settings))
            inputs = [out_shapes[n] for n in entry["inbound"]]
            input_shape = inputs if entry["list_call"] else inputs[0]
            out_shapes[layer.name] = layer.compute_output_shape(input_shape)
            if entry["class_name"] == "Conv2D":
                kernel = (*layer.kernel_size, input_shape[-1], layer.filters)
            elif entry["class_name"] == "Dense":
                kernel = (input_shape[-1], layer.units)
            else:
                shapes[layer.name] = []
                continue
            if None in kernel:
                raise ValueError(f"layer {layer.name!r} needs a known input size, got {input_shape}")
            shapes[layer.name] = [kernel] + ([(kernel[-1],)] if layer.use_bias else [])
    except (TypeError, KeyError, IndexError) as exc:
        raise ValueError(f"malformed model config ({type(exc).__name__}: {exc})") from None
    return shapes

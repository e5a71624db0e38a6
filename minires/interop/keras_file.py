"""Keras 3 files, read as data: ``.keras`` model archives and ``.weights.h5`` weight files.

    model = minires.load_model("seed.keras")          # architecture, weights, compile settings
    model.load_weights("seed.weights.h5")             # weights alone, into a model of that shape

A ``.keras`` file is a zip holding ``config.json`` (the architecture, JSON), ``metadata.json``
(the Keras version) and ``model.weights.h5`` (HDF5). The config is read as JSON and
translated, layer by layer, into minires' own config; no class, function or module named in
the file is ever imported or run. The weights are read with h5py, after every dataset's shape
and dtype has been checked against the architecture and the total against the file's size,
so a damaged or hostile file cannot make minires allocate more than the file holds.

The layers minires has are read (Conv2D, Dense, MaxPooling2D, Flatten, Reshape, Activation,
Add, InputLayer), in Functional or Sequential models with one input and one output; any
other layer class, a shared layer, a nested model, an activation other than relu, softmax or
linear, or an option that changes the math (dilation, groups, channels_first, a regularizer,
a constraint) is refused by name. Initializers only shape fresh weights, so a loaded model
takes minires' equivalent where it has one and Keras' defaults' otherwise; its weights come
from the file.

Where Keras puts the weights: ``layers/<name>/vars/<i>``, ``<i>`` counting the layer's
variables (kernel 0, bias 1), ``<name>`` the snake-cased class name made unique by a counter
in the order of the model's layers (``conv2d``, ``conv2d_1``, ...): never the layer's own
name. That is Keras 3's ``saving_lib``; ``_h5_names`` follows it.

A compiled model's ``compile_config`` (Adam or SGD, a cross-entropy or MSE loss, accuracy)
compiles the minires model the same way, with a fresh optimizer state; anything else leaves
it uncompiled, ready to predict. Every problem raises one ``ValueError`` naming the file.
"""

from __future__ import annotations

import json
import os
import re
import zipfile

import h5py
import numpy

from .. import initializers, losses, optim
from ..model import Model
from .spec import model_from_config, parameter_shapes

CONFIG_ENTRY = "config.json"
METADATA_ENTRY = "metadata.json"
WEIGHTS_ENTRY = "model.weights.h5"
# A config is a few kilobytes per layer; more than this is not a model minires can hold.
MAX_CONFIG_BYTES = 16 * 2 ** 20

LAYERS = ("InputLayer", "Conv2D", "Dense", "MaxPooling2D", "Flatten", "Reshape", "Activation", "Add")
ACTIVATIONS = ("relu", "softmax", "linear")
# The options each class keeps; every other option must hold its neutral value (below).
_KEPT = {
    "Conv2D": ("filters", "kernel_size", "strides", "padding", "activation", "use_bias",
               "kernel_initializer", "bias_initializer"),
    "Dense": ("units", "activation", "use_bias", "kernel_initializer", "bias_initializer"),
    "MaxPooling2D": ("pool_size", "strides", "padding"),
    "Flatten": (), "Add": (), "Activation": ("activation",), "Reshape": ("target_shape",),
}
_NEUTRAL = {"data_format": ("channels_last", None), "dilation_rate": (1, [1, 1]), "groups": (1,)}
# Options that do not change what a layer computes once its weights are given.
_HARMLESS = ("name", "trainable", "dtype", "lora_alpha")


class KerasFileError(ValueError):
    """A .keras or .weights.h5 file minires cannot read; the message names the file."""


# --- entry points ----------------------------------------------------------------------------

def load_keras(path, compile: bool = True) -> Model:
    """The model of a Keras 3 ``.keras`` archive, with its weights (and compile settings)."""
    source = os.fspath(path)
    if _is_hdf5(source):
        raise KerasFileError(f"{source}: an HDF5 file, not a .keras archive (a Keras 2 model? "
                             f"save it with Keras 3 as .keras, or load its weights with "
                             f"model.load_weights)")
    try:
        archive = zipfile.ZipFile(source)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (zipfile.BadZipFile, OSError) as exc:
        raise KerasFileError(f"{source}: not a .keras archive ({exc})") from None
    with archive:
        names = set(archive.namelist())
        if CONFIG_ENTRY not in names:
            raise KerasFileError(f"{source}: not a .keras archive (no {CONFIG_ENTRY})")
        _check_metadata(source, archive, names)
        keras_config = _read_json(source, archive, CONFIG_ENTRY)
        config, order = _translate_model(source, keras_config)
        if WEIGHTS_ENTRY not in names:
            other = sorted(n for n in names if "weights" in n)
            raise KerasFileError(f"{source}: no {WEIGHTS_ENTRY} in the archive"
                                 + (f" (it holds {', '.join(other)}: sharded weights are not read)"
                                    if other else ""))
        try:
            shapes = parameter_shapes(config)
        except ValueError as exc:
            raise KerasFileError(f"{source}: bad architecture ({exc})") from None
        size = archive.getinfo(WEIGHTS_ENTRY).file_size
        try:
            with archive.open(WEIGHTS_ENTRY) as raw, h5py.File(raw, "r") as h5:
                values = _read_weights(source, h5, size, order, shapes)
        except KerasFileError:
            raise
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            raise KerasFileError(f"{source}: corrupt weights ({type(exc).__name__}: {exc})") from None
    model = model_from_config(config, source, KerasFileError)
    for layer in model.layers:
        if layer.params:
            layer.set_weights(values[layer.name])
    if compile:
        _compile(model, keras_config.get("compile_config"))
    return model


def load_keras_weights(model: Model, path) -> None:
    """Load a Keras 3 ``.weights.h5`` file (``model.save_weights`` in Keras) into ``model``.

    Keras matches weights to layers by position (its file names layers by class and count),
    so ``model`` must have the same layers, in the same order, as the Keras model saved.
    """
    source = os.fspath(path)
    order = [(layer.name, type(layer).__name__) for layer in model.layers]
    shapes = {layer.name: [tuple(p.shape) for p in layer.params.values()] for layer in model.layers}
    try:
        size = os.path.getsize(source)
        with h5py.File(source, "r") as h5:
            values = _read_weights(source, h5, size, order, shapes)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except KerasFileError:
        raise
    except (OSError, ValueError, KeyError) as exc:
        raise KerasFileError(f"{source}: not a readable Keras weights file ({type(exc).__name__}: "
                             f"{exc})") from None
    for layer in model.layers:
        if layer.params:
            layer.set_weights(values[layer.name])


# --- the archive -------------------------------------------------------------------------------

def _is_hdf5(source: str) -> bool:
    try:
        with open(source, "rb") as handle:
            return handle.read(8) == b"\x89HDF\r\n\x1a\n"
    except OSError:
        return False


def _read_json(source: str, archive: zipfile.ZipFile, entry: str):
    info = archive.getinfo(entry)
    if info.file_size > MAX_CONFIG_BYTES:
        raise KerasFileError(f"{source}: {entry} holds {info.file_size} bytes, more than a model "
                             f"config ({MAX_CONFIG_BYTES})")
    try:
        return json.loads(archive.read(entry).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, zipfile.BadZipFile, OSError) as exc:
        raise KerasFileError(f"{source}: {entry} is not readable JSON ({exc})") from None


def _check_metadata(source: str, archive: zipfile.ZipFile, names: set) -> None:
    if METADATA_ENTRY not in names:
        return
    metadata = _read_json(source, archive, METADATA_ENTRY)
    version = metadata.get("keras_version") if isinstance(metadata, dict) else None
    if isinstance(version, str) and not version.startswith("3."):
        raise KerasFileError(f"{source}: written by Keras {version}; minires reads Keras 3 files")


# --- the architecture --------------------------------------------------------------------------

def _translate_model(source: str, keras_config) -> tuple[dict, list]:
    """(minires config, [(layer name, Keras class name)] in the file's layer order)."""
    if not isinstance(keras_config, dict) or not isinstance(keras_config.get("config"), dict):
        raise KerasFileError(f"{source}: {CONFIG_ENTRY} does not describe a Keras model")
    kind = keras_config.get("class_name")
    body = keras_config["config"]
    entries = body.get("layers")
    if kind not in ("Functional", "Sequential", "Model") or not isinstance(entries, list):
        raise KerasFileError(f"{source}: the model is a {kind!r}; minires reads Functional and "
                             f"Sequential models (a subclassed model's code is not in the file)")
    try:
        if kind == "Sequential":
            layers = _sequential_layers(source, keras_config, entries)
            input_name, output_name = layers[0][0]["config"]["name"], layers[-1][0]["config"]["name"]
        else:
            layers = [_translate_layer(source, entry, _functional_inbound(source, entry))
                      for entry in entries]
            input_name = _single_endpoint(source, body.get("input_layers"), "inputs")
            output_name = _single_endpoint(source, body.get("output_layers"), "outputs")
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        raise KerasFileError(f"{source}: malformed model config ({type(exc).__name__}: {exc})") from None
    config = {"name": str(body.get("name", "model")), "layers": [e for e, _ in layers],
              "input": input_name, "output": output_name}
    return config, [(e["config"]["name"], keras_class) for e, keras_class in layers]


def _sequential_layers(source, keras_config, entries) -> list:
    layers = []
    if not entries or entries[0].get("class_name") != "InputLayer":
        build = keras_config.get("build_config") or keras_config["config"].get("build_config") or {}
        shape = build.get("input_shape")
        if not isinstance(shape, list):
            raise KerasFileError(f"{source}: the Sequential model has no input shape (never built)")
        dtype = _dtype(source, "input", keras_config["config"].get("dtype"))
        layers.append(({"class_name": "InputLayer", "inbound": [], "list_call": False,
                        "config": {"name": "input_layer", "dtype": dtype, "batch_shape": shape}},
                       "InputLayer"))
    for entry in entries:
        previous = [layers[-1][0]["config"]["name"]] if layers else []
        layers.append(_translate_layer(source, entry, (previous, False)))
    return layers


def _functional_inbound(source: str, entry: dict) -> tuple[list, bool]:
    """(names of the layers feeding ``entry``, called on a list?) from its inbound_nodes."""
    name = entry.get("name") or entry["config"].get("name")
    nodes = entry.get("inbound_nodes") or []
    if entry.get("class_name") == "InputLayer":
        return [], False
    if len(nodes) != 1:
        raise KerasFileError(f"{source}: layer {name!r} is called {len(nodes)} times; a minires "
                             f"layer is used once (shared layers are not read)")
    node = nodes[0]
    if not isinstance(node, dict) or not isinstance(node.get("args"), list) or len(node["args"]) != 1:
        raise KerasFileError(f"{source}: layer {name!r} has an inbound node minires does not read")
    if any(value not in (None, False) for value in (node.get("kwargs") or {}).values()):
        raise KerasFileError(f"{source}: layer {name!r} is called with {sorted(node['kwargs'])}, "
                             f"which minires does not read")
    arg = node["args"][0]
    list_call = isinstance(arg, list)
    tensors = arg if list_call else [arg]
    inbound = []
    for tensor in tensors:
        history = tensor["config"]["keras_history"]
        if tensor.get("class_name") != "__keras_tensor__" or list(history[1:]) != [0, 0]:
            raise KerasFileError(f"{source}: layer {name!r} reads a tensor minires cannot follow "
                                 f"({tensor!r:.80})")
        inbound.append(str(history[0]))
    return inbound, list_call


def _single_endpoint(source: str, value, what: str) -> str:
    """The layer name of a Functional model's one input or output ([name, 0, 0] or [[...]])."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        if len(value) != 1:
            raise KerasFileError(f"{source}: the model has {len(value)} {what}; minires models have one")
        value = value[0]
    if not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], str):
        raise KerasFileError(f"{source}: the model's {what} are not described ({value!r:.80})")
    return value[0]


def _translate_layer(source: str, entry: dict, inbound: tuple[list, bool]) -> tuple[dict, str]:
    """(minires layer entry, Keras class name) of one entry of the file's layer list."""
    keras_class = entry.get("class_name")
    settings = entry.get("config")
    name = (settings or {}).get("name") if isinstance(settings, dict) else None
    if keras_class in ("Functional", "Sequential", "Model"):
        raise KerasFileError(f"{source}: layer {name!r} is a nested {keras_class} model, which "
                             f"minires does not read")
    if keras_class not in LAYERS:
        raise KerasFileError(f"{source}: layer {name!r} is a {keras_class}, which minires does not "
                             f"have (it reads {', '.join(LAYERS)})")
    if not isinstance(settings, dict) or not isinstance(name, str):
        raise KerasFileError(f"{source}: layer of class {keras_class} has no config")
    where = f"{source}: layer {name!r} ({keras_class})"
    if keras_class == "InputLayer":
        shape = settings.get("batch_shape", settings.get("batch_input_shape"))
        if not isinstance(shape, list):
            raise KerasFileError(f"{where}: no batch_shape")
        for flag in ("sparse", "ragged"):
            if settings.get(flag):
                raise KerasFileError(f"{where}: {flag} inputs are not read")
        config = {"name": name, "dtype": _dtype(source, name, settings.get("dtype")),
                  "batch_shape": shape}
        return {"class_name": "InputLayer", "config": config, "inbound": [], "list_call": False}, keras_class
    kept = _KEPT[keras_class]
    config = {"name": name, "dtype": _dtype(source, name, settings.get("dtype")),
              "trainable": bool(settings.get("trainable", True))}
    for key, value in settings.items():
        if key in kept or key in _HARMLESS:
            continue
        if key in _NEUTRAL:
            if value not in _NEUTRAL[key]:
                raise KerasFileError(f"{where}: {key}={value!r} is not read (minires computes "
                                     f"{key}={_NEUTRAL[key][0]!r} only)")
        elif value not in (None, False, {}, []):
            raise KerasFileError(f"{where}: {key}={value!r:.60} is not read by minires")
    for key in kept:
        if key not in settings:
            continue
        value = settings[key]
        if key == "activation":
            value = _activation(where, value)
        elif key.endswith("_initializer"):
            value = _initializer(value, "glorot_uniform" if key.startswith("kernel") else "zeros")
        config[key] = value
    entry = {"class_name": keras_class, "config": config, "inbound": inbound[0], "list_call": inbound[1]}
    return entry, keras_class


def _dtype(source: str, name, value) -> str:
    if isinstance(value, dict):
        value = (value.get("config") or {}).get("name")
    if value is None:
        return "float32"
    if value not in ("float32", "float64"):
        raise KerasFileError(f"{source}: layer {name!r} computes in {value!r}; minires computes in "
                             f"float32 or float64")
    return value


def _activation(where: str, value) -> str:
    if isinstance(value, dict):            # a serialized built-in: {"class_name": "function", "config": "relu"}
        value = value.get("config")
    if value is None:
        return "linear"
    if not isinstance(value, str) or value not in ACTIVATIONS:
        raise KerasFileError(f"{where}: activation {value!r:.60} is not one minires has "
                             f"({', '.join(ACTIVATIONS)})")
    return value


def _initializer(value, default: str):
    """minires' initializer of the same class (its default settings), else ``default``."""
    class_name = value.get("class_name") if isinstance(value, dict) else value
    try:
        return initializers.serialize(initializers.get(class_name))
    except (ValueError, TypeError):
        return default


# --- the weights -------------------------------------------------------------------------------

def _snake_case(name: str) -> str:
    """Keras' ``naming.to_snake_case``: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _h5_names(order: list) -> dict:
    """layer name -> its group under ``layers/`` in Keras' weights file (see the module doc)."""
    used: dict[str, int] = {}
    groups = {}
    for layer_name, class_name in order:
        base = _snake_case(class_name)
        if base in used:
            used[base] += 1
            groups[layer_name] = f"{base}_{used[base]}"
        else:
            used[base] = 0
            groups[layer_name] = base
    return groups


def _read_weights(source: str, h5, size: int, order: list, shapes: dict) -> dict:
    """layer name -> its weight arrays, after checking every dataset against ``shapes``."""
    groups = _h5_names(order)
    if "layers" not in h5:
        hint = " (a Keras 2 weights file?)" if "layer_names" in h5.attrs else ""
        raise KerasFileError(f"{source}: no 'layers' group: not a Keras 3 weights file{hint}")
    datasets, total = {}, 0
    for layer_name, _ in order:
        expected = shapes.get(layer_name, [])
        if not expected:
            continue
        path = f"layers/{groups[layer_name]}/vars"
        if path not in h5:
            raise KerasFileError(f"{source}: no weights for layer {layer_name!r} (expected {path})")
        group = h5[path]
        found = sorted(group.keys())
        wanted = [str(i) for i in range(len(expected))]
        if found != wanted:
            raise KerasFileError(f"{source}: {path} holds {found}; layer {layer_name!r} has "
                                 f"{len(expected)} weights ({wanted})")
        arrays = []
        for key, shape in zip(wanted, expected):
            ds = group[key]
            if not isinstance(ds, h5py.Dataset) or ds.dtype.kind != "f":
                raise KerasFileError(f"{source}: {path}/{key} is not a floating-point array "
                                     f"(dtype {getattr(ds, 'dtype', type(ds).__name__)})")
            if tuple(ds.shape) != tuple(shape):
                raise KerasFileError(f"{source}: {path}/{key} (layer {layer_name!r}) has shape "
                                     f"{tuple(ds.shape)}; the architecture needs {tuple(shape)}")
            total += ds.size * ds.dtype.itemsize
            arrays.append(ds)
        datasets[layer_name] = arrays
    if total > size:
        raise KerasFileError(f"{source}: the weights declare {total} bytes but the file holds {size}")
    return {name: [numpy.asarray(ds[()]) for ds in arrays] for name, arrays in datasets.items()}


# --- compile settings --------------------------------------------------------------------------

_OPTIMIZERS = {"Adam": ("learning_rate", "beta_1", "beta_2", "epsilon"),
               "SGD": ("learning_rate", "momentum", "nesterov")}
# Optimizer options whose neutral values are the only ones minires computes.
_OPTIMIZER_NEUTRAL = ("weight_decay", "clipnorm", "global_clipnorm", "clipvalue", "use_ema",
                      "loss_scale_factor", "gradient_accumulation_steps", "amsgrad")


def _compile(model: Model, settings) -> None:
    """Compile ``model`` as the file's model was, when minires has its optimizer and loss."""
    if not isinstance(settings, dict):
        return
    spec = settings.get("optimizer")
    if not isinstance(spec, dict) or spec.get("class_name") not in _OPTIMIZERS:
        return
    options = spec.get("config") or {}
    if any(options.get(key) not in (None, False) for key in _OPTIMIZER_NEUTRAL):
        return
    loss = settings.get("loss")
    if isinstance(loss, dict):
        loss = {"class_name": loss.get("class_name"),
                "config": {k: v for k, v in (loss.get("config") or {}).items()
                           if k in ("from_logits", "label_smoothing")}}
    metrics = [m for m in settings.get("metrics") or [] if isinstance(m, str)]
    try:
        optimizer = optim.get({"class_name": spec["class_name"],
                               "config": {k: options[k] for k in _OPTIMIZERS[spec["class_name"]]
                                          if k in options}})
        model.compile(optimizer=optimizer, loss=losses.get(loss), metrics=metrics)
    except (ValueError, TypeError, KeyError):
        return

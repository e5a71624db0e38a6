"""The seed's ResNet as a PyTorch state dict in safetensors; and the way back.

    export_safetensors(model, "model.safetensors")
    # in PyTorch:
    from safetensors.torch import load_file
    from minires.frameworks.torch_resnet import SeedResNet
    net = SeedResNet(**json.loads(metadata["minires.resnet"]))   # or the defaults, for the seed
    net.load_state_dict(load_file("model.safetensors"))

The state dict is ``minires.frameworks.torch_resnet.SeedResNet``'s: ``stem``,
``blocks.<i>.conv1`` / ``conv2`` / ``skip``, ``hidden``, ``out``, each ``.weight`` and
``.bias``. Conv kernels go from minires' HWIO to PyTorch's OIHW, dense kernels from
(in, out) to (out, in). ``SeedResNet`` flattens its last feature map in Keras' (h, w, c)
order, so the first dense kernel needs no reordering of its rows. safetensors holds raw
arrays and a JSON header, never a pickle; the header's metadata carries the model's
``build_resnet`` arguments (``minires.resnet``) and its minires config (``minires.config``),
which ``load_safetensors`` uses to rebuild the model. Only the seed's architecture has a
PyTorch module here; other models export to ONNX.

Writing needs safetensors and NumPy only, not PyTorch.
"""

from __future__ import annotations

import json
import os

import numpy
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save

from ..data.atomic import atomic_write
from ..model import Model
from .spec import model_from_config, parameter_shapes, resnet_arguments

RESNET_KEY = "minires.resnet"
CONFIG_KEY = "minires.config"


def state_dict_keys(blocks: int) -> list[str]:
    """SeedResNet's state-dict keys in ``build_resnet``'s weight order."""
    modules = ["stem", *(f"blocks.{i}.{conv}" for i in range(blocks) for conv in ("conv1", "conv2", "skip")),
               "hidden", "out"]
    return [f"{module}.{param}" for module in modules for param in ("weight", "bias")]


def _torch_shape(shape: tuple) -> tuple:
    if len(shape) == 4:
        return (shape[3], shape[2], shape[0], shape[1])
    return tuple(reversed(shape))


def _to_torch(array: numpy.ndarray) -> numpy.ndarray:
    """HWIO -> OIHW, (in, out) -> (out, in); biases unchanged."""
    if array.ndim == 4:
        return array.transpose(3, 2, 0, 1)
    return array.T if array.ndim == 2 else array


def _from_torch(array: numpy.ndarray) -> numpy.ndarray:
    if array.ndim == 4:
        return array.transpose(2, 3, 1, 0)
    return array.T if array.ndim == 2 else array


def to_state_dict(model: Model) -> tuple[dict, dict]:
    """(SeedResNet state dict as NumPy arrays, the build_resnet arguments) of ``model``."""
    arguments = resnet_arguments(model)
    if arguments is None:
        raise ValueError(f"model {model.name!r} is not the seed's ResNet "
                         f"architecture, the one PyTorch module minires has "
                         f"(minires.frameworks.torch_resnet.SeedResNet); export it to ONNX instead")
    keys = state_dict_keys(arguments["blocks"])
    arrays = {key: numpy.ascontiguousarray(_to_torch(w)) for key, w in zip(keys, model.get_weights())}
    return arrays, arguments


def export_safetensors(model: Model, path) -> None:
    """Write ``model``'s SeedResNet state dict to ``path`` (safetensors, atomically)."""
    arrays, arguments = to_state_dict(model)
    data = save(arrays, metadata={"format": "pt", RESNET_KEY: json.dumps(arguments),
                                  CONFIG_KEY: json.dumps(model.get_config())})
    with atomic_write(os.fspath(path)) as handle:
        handle.write(data)


def load_safetensors(path, compile: bool = True) -> Model:
    """The minires model of a file written by ``export_safetensors`` (never compiled)."""
    source = os.fspath(path)
    try:
        with safe_open(source, framework="numpy") as f:
            metadata = f.metadata() or {}
            if CONFIG_KEY not in metadata:
                raise ValueError(f"{source}: a safetensors file without a minires config "
                                 f"({CONFIG_KEY}); minires reads back only the files minires "
                                 f"export writes")
            config = json.loads(metadata[CONFIG_KEY])
            shapes = [s for layer_shapes in parameter_shapes(config).values() for s in layer_shapes]
            blocks = sum(entry["class_name"] == "Add" for entry in config["layers"])
            keys = state_dict_keys(blocks)
            if sorted(f.keys()) != sorted(keys) or len(shapes) != len(keys):
                raise ValueError(f"{source}: holds {len(list(f.keys()))} tensors; the seed's ResNet "
                                 f"with {blocks} blocks has {len(keys)} ({', '.join(keys[:4])}, ...)")
            for key, shape in zip(keys, shapes):
                expected, tensor = _torch_shape(shape), f.get_slice(key)
                found, dtype = tuple(tensor.get_shape()), tensor.get_dtype()
                if found != expected or dtype not in ("F16", "F32", "F64"):
                    raise ValueError(f"{source}: tensor {key!r} has shape {found} and dtype {dtype}; "
                                     f"the model needs {expected}, floating point")
            values = [_from_torch(f.get_tensor(key)) for key in keys]
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except (SafetensorError, OSError, json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ValueError(f"{source}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    model = model_from_config(config, source)
    if resnet_arguments(model) is None:
        raise ValueError(f"{source}: its minires config is not the seed's ResNet architecture")
    model.set_weights(values)
    return model

"""A minires model as an ONNX graph, built with ``onnx.helper``; and the way back.

    export_onnx(model, "model.onnx")          # checked with onnx.checker
    model = load_onnx("model.onnx")           # or minires.load_model("model.onnx")

The graph takes and returns minires' layout, NHWC (input ``input``, output ``output``);
inside, 4-D values are NCHW, ONNX's own, with one Transpose after the input and one before
each Flatten or Reshape (which must see Keras' (h, w, c) order) and before a 4-D output.
Keras' 'same' padding becomes explicit ``pads`` per side (the odd pixel after, bottom/right),
so nothing depends on ONNX's ``auto_pad`` conventions. Conv2D -> Conv (+ Relu / Softmax over
channels), MaxPooling2D -> MaxPool, Dense -> Gemm, Flatten -> Flatten, Add -> Add, Reshape ->
Reshape, Activation -> Relu / Softmax / Identity.

The export is float32, the one float type ONNX Runtime's CPU convolution computes in; a
float64 model is rounded to float32 on the way. Initializers are named after minires'
weights (``stem_conv/kernel``; conv kernels stored OIHW, dense kernels (in, out) as
``Gemm`` reads them), and the model's minires config is stored in the file's metadata
(``minires.config``), so ``load_onnx`` rebuilds the same model and takes the weights back
from the initializers. It reads only files written here: an ONNX graph in general is not a
minires model. External tensor data is never followed.
"""

from __future__ import annotations

import json
import os

import numpy
import onnx
from onnx import TensorProto, helper, numpy_helper

from ..data.atomic import atomic_write
from ..model import Model
from ..windows import same_padding
from .spec import model_from_config, model_spec, parameter_shapes

OPSET = 17
CONFIG_KEY = "minires.config"
TO_NCHW, TO_NHWC = [0, 3, 1, 2], [0, 2, 3, 1]


def to_onnx(model: Model) -> onnx.ModelProto:
    """The ONNX model of ``model`` (float32), checked by ``onnx.checker``."""
    spec = model_spec(model)
    weights = [numpy.asarray(w, dtype=numpy.float32) for w in model.get_weights()]
    graph = _Graph(spec, weights)
    shape = ["N", *spec["input"]["shape"]]
    value = graph.transpose("input", len(shape))
    values = {spec["input"]["name"]: (value, len(shape))}
    for layer in spec["layers"]:
        values[layer["name"]] = graph.layer(layer, [values[n] for n in layer["inputs"]])
    out, rank = values[spec["output"]]
    if rank == 4:
        out = graph.node("Transpose", [out], perm=TO_NHWC)
    graph.nodes.append(helper.make_node("Identity", [out], ["output"]))
    output_shape = ["N", *_output_shape(spec)]
    onnx_graph = helper.make_graph(
        graph.nodes, spec["name"],
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, output_shape)],
        graph.initializers)
    proto = helper.make_model(onnx_graph, producer_name="minires",
                              opset_imports=[helper.make_opsetid("", OPSET)])
    # The IR version of ONNX 1.13 (opset 17), so older runtimes read the file too.
    proto.ir_version = 8
    config = model.get_config()
    for entry in config["layers"]:
        entry["config"]["dtype"] = "float32"
    helper.set_model_props(proto, {CONFIG_KEY: json.dumps(config)})
    onnx.checker.check_model(proto, full_check=True)
    return proto


def export_onnx(model: Model, path) -> None:
    """Write ``to_onnx(model)`` to ``path`` (atomically)."""
    data = to_onnx(model).SerializeToString()
    with atomic_write(os.fspath(path)) as handle:
        handle.write(data)


def _output_shape(spec: dict) -> list:
    for layer in spec["layers"]:
        if layer["name"] == spec["output"]:
            return layer["output_shape"]
    return spec["input"]["shape"]


class _Graph:
    """The nodes and initializers of the graph being built, with fresh value names."""

    def __init__(self, spec: dict, weights: list):
        self.spec, self.weights = spec, weights
        self.nodes, self.initializers = [], []
        self.count = 0

    def node(self, op: str, inputs: list, **attributes) -> str:
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attributes))
        return out

    def constant(self, name: str, array) -> str:
        self.initializers.append(numpy_helper.from_array(numpy.ascontiguousarray(array), name))
        return name

    def weight(self, layer: dict, param: str, array=None) -> str:
        index = layer["weights"][param]
        return self.constant(self.spec["weights"][index],
                             self.weights[index] if array is None else array(self.weights[index]))

    def transpose(self, value: str, rank: int) -> str:
        return self.node("Transpose", [value], perm=TO_NCHW) if rank == 4 else value

    def activation(self, name: str, value: str, rank: int) -> str:
        if name == "relu":
            return self.node("Relu", [value])
        if name == "softmax":      # Keras' softmax runs over the last axis: channels (NCHW axis 1)
            return self.node("Softmax", [value], axis=1 if rank == 4 else -1)
        return value

    def layer(self, layer: dict, inputs: list) -> tuple[str, int]:
        kind = layer["kind"]
        value, rank = inputs[0]
        if kind in ("conv2d", "maxpool2d"):
            window = layer["kernel_size"] if kind == "conv2d" else layer["pool_size"]
            pads = [0, 0, 0, 0]
            if layer["padding"] == "same":
                h, w = layer["input_shapes"][0][:2]
                (top, bottom), (left, right) = (same_padding(h, window[0], layer["strides"][0]),
                                                same_padding(w, window[1], layer["strides"][1]))
                pads = [top, left, bottom, right]
            if kind == "maxpool2d":
                return self.node("MaxPool", [value], kernel_shape=window, strides=layer["strides"],
                                 pads=pads), 4
            args = [value, self.weight(layer, "kernel", lambda k: k.transpose(3, 2, 0, 1))]
            if "bias" in layer["weights"]:
                args.append(self.weight(layer, "bias"))
            out = self.node("Conv", args, kernel_shape=window, strides=layer["strides"], pads=pads)
            return self.activation(layer["activation"], out, 4), 4
        if kind == "dense":
            args = [value, self.weight(layer, "kernel")]
            if "bias" in layer["weights"]:
                args.append(self.weight(layer, "bias"))
            return self.activation(layer["activation"], self.node("Gemm", args), 2), 2
        if kind in ("flatten", "reshape"):
            if rank == 4:
                value = self.node("Transpose", [value], perm=TO_NHWC)
            if kind == "flatten":
                return self.node("Flatten", [value], axis=1), 2
            target = [0, *layer["target_shape"]]            # 0: keep the batch dimension
            shape = self.constant(f"{layer['name']}/shape", numpy.asarray(target, numpy.int64))
            out = self.node("Reshape", [value, shape])
            return self.transpose(out, len(target)), len(target)
        if kind == "add":
            out = value
            for other, _ in inputs[1:]:
                out = self.node("Add", [out, other])
            return out, rank
        if kind == "activation":
            return self.activation(layer["activation"], value, rank), rank
        raise ValueError(f"export_onnx: layer {layer['name']!r} of kind {kind!r} has no ONNX form")


# --- the way back ----------------------------------------------------------------------------

def load_onnx(path, compile: bool = True) -> Model:
    """The minires model of an ONNX file written by ``export_onnx`` (float32; never compiled)."""
    source = os.fspath(path)
    try:
        proto = onnx.load(source, load_external_data=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # protobuf reports a damaged file in several ways
        raise ValueError(f"{source}: not a readable ONNX file ({type(exc).__name__}: {exc})") from None
    props = {p.key: p.value for p in proto.metadata_props}
    if CONFIG_KEY not in props:
        raise ValueError(f"{source}: an ONNX file without a minires config ({CONFIG_KEY}); "
                         f"minires reads back only the files minires export writes")
    try:
        config = json.loads(props[CONFIG_KEY])
        shapes = parameter_shapes(config)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{source}: bad minires config ({exc})") from None
    stored = {t.name: t for t in proto.graph.initializer}
    arrays = {}
    for layer_name, layer_shapes in shapes.items():
        for param, shape in zip(("kernel", "bias"), layer_shapes):
            name = f"{layer_name}/{param}"
            tensor = stored.get(name)
            if tensor is None:
                raise ValueError(f"{source}: no initializer {name!r}")
            if tensor.data_location == TensorProto.EXTERNAL:
                raise ValueError(f"{source}: initializer {name!r} is stored outside the file; not read")
            if len(shape) == 4:
                shape = (shape[3], shape[2], shape[0], shape[1])          # OIHW in the file
            if tuple(tensor.dims) != tuple(shape) or tensor.data_type != TensorProto.FLOAT:
                raise ValueError(f"{source}: initializer {name!r} has shape {tuple(tensor.dims)} and "
                                 f"type {TensorProto.DataType.Name(tensor.data_type)}; the model "
                                 f"needs {tuple(shape)} FLOAT")
            array = numpy_helper.to_array(tensor)
            arrays[name] = array.transpose(2, 3, 1, 0) if array.ndim == 4 else array
    model = model_from_config(config, source)
    model.set_weights([arrays[name] for name in model.weight_names()])
    return model

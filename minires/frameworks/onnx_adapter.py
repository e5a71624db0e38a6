"""The eight ops' forward values computed by ONNX Runtime, on the CPU.

Each op is a small ONNX graph built with ``onnx.helper`` (opset 17) and run by
``onnxruntime.InferenceSession`` with the CPU execution provider, in the requested dtype.
ONNX Runtime runs inference only, so ``run_op`` returns the forward value ``y`` and no gradient.

minires              ONNX
NHWC activations     NCHW       Transpose(perm=[0, 3, 1, 2]) before, [0, 2, 3, 1] after
HWIO conv kernel     OIHW       Transpose(perm=[3, 2, 0, 1])
(in, out) dense      (in, out)  Gemm(x, w, b) (MatMul without a bias)
'same'               auto_pad="SAME_UPPER" (ONNX's name for the odd pixel at the end), so
                     that ONNX Runtime's own rule is the one tested
'valid'              auto_pad="VALID"
explicit pads        pads=[top, left, bottom, right] (ONNX lists every axis' start, then every end)
softmax cross-entropy  class ids: SoftmaxCrossEntropyLoss(reduction="mean");
                     probability rows (which the loss node does not take): the mean over the
                     batch of -ReduceSum(t * LogSoftmax(z))

What ONNX Runtime (1.32, CPU) runs in float64 is measured, not assumed: a graph whose node has
no float64 kernel fails to load with NOT_IMPLEMENTED, and ``run_op`` then raises
``NotImplementedError`` naming the op (Conv is the one: it has a float32 kernel only). The
other ops run in both dtypes.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, helper

NAME = "onnxruntime"
OPSET = 17

_ELEM = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "int64": TensorProto.INT64}


def versions() -> dict[str, str]:
    """The versions of ONNX Runtime and of the onnx package that builds the graphs."""
    return {"onnxruntime": onnxruntime.__version__, "onnx": onnx.__version__}


def _pair(v):
    return [v, v] if isinstance(v, (int, np.integer)) else [int(i) for i in v]


def _window_padding(padding, in_hw=None, kernel=None, strides=None) -> dict:
    """The attributes of a Conv or MaxPool node for minires' padding forms.

    'same' is ONNX's own SAME_UPPER (the odd pixel after, as Keras), except where its total
    pad would be negative (a stride larger than the window leaves pixels unread): ONNX's
    formula has no max(0, ...) and ONNX Runtime refuses the node, so there the pads of Keras'
    rule, total max((ceil(n/s) - 1)*s + k - n, 0), go in explicitly (docs/frameworks.md).
    """
    if isinstance(padding, str):
        if padding.lower() != "same":
            return {"auto_pad": "VALID"}
        totals = [(-(-n // s) - 1) * s + k - n for n, k, s in zip(in_hw or (), kernel or (), strides or ())]
        if not totals or min(totals) >= 0:
            return {"auto_pad": "SAME_UPPER"}
        (top, bottom), (left, right) = [(max(t, 0) // 2, max(t, 0) - max(t, 0) // 2) for t in totals]
        return {"pads": [top, left, bottom, right]}
    if isinstance(padding, (int, np.integer)):
        padding = (padding, padding)
    (top, bottom), (left, right) = [_pair(side) for side in padding]
    return {"pads": [top, left, bottom, right]}


def _nchw(name):
    return helper.make_node("Transpose", [name], [name + "_nchw"], perm=[0, 3, 1, 2])


def _nhwc(name, out="y"):
    return helper.make_node("Transpose", [name], [out], perm=[0, 2, 3, 1])


def conv2d(x, w, b=None, stride=1, padding="same"):
    ins = ["x_nchw", "w_oihw"] + ([] if b is None else ["b"])
    return [_nchw("x"), helper.make_node("Transpose", ["w"], ["w_oihw"], perm=[3, 2, 0, 1]),
            helper.make_node("Conv", ins, ["y_nchw"], kernel_shape=list(w.shape[:2]),
                             strides=_pair(stride),
                             **_window_padding(padding, x.shape[1:3], w.shape[:2], _pair(stride))),
            _nhwc("y_nchw")]


def maxpool2d(x, pool_size=2, strides=None, padding="valid"):
    kernel = _pair(pool_size)
    strides = kernel if strides is None else _pair(strides)
    return [_nchw("x"),
            helper.make_node("MaxPool", ["x_nchw"], ["y_nchw"], kernel_shape=kernel, strides=strides,
                             **_window_padding(padding, x.shape[1:3], kernel, strides)),
            _nhwc("y_nchw")]


def relu(x):
    return [helper.make_node("Relu", ["x"], ["y"])]


def add(a, b):
    return [helper.make_node("Add", ["a", "b"], ["y"])]


def flatten(x):
    return [helper.make_node("Flatten", ["x"], ["y"], axis=1)]    # row-major over (h, w, c)


def dense(x, w, b=None):
    if b is None:
        return [helper.make_node("MatMul", ["x", "w"], ["y"])]
    return [helper.make_node("Gemm", ["x", "w", "b"], ["y"])]


def softmax(x, axis=-1):
    return [helper.make_node("Softmax", ["x"], ["y"], axis=axis)]


def softmax_cross_entropy(logits, labels):
    if labels.dtype.kind in "iu":
        return [helper.make_node("SoftmaxCrossEntropyLoss", ["logits", "labels"], ["y"], reduction="mean")]
    axis = helper.make_tensor("axis", TensorProto.INT64, [1], [1])
    return [helper.make_node("LogSoftmax", ["logits"], ["log_p"], axis=1),
            helper.make_node("Mul", ["labels", "log_p"], ["t_log_p"]),
            helper.make_node("Constant", [], ["axis"], value=axis),
            helper.make_node("ReduceSum", ["t_log_p", "axis"], ["row"], keepdims=0),
            helper.make_node("ReduceMean", ["row"], ["mean"], axes=[0], keepdims=0),
            helper.make_node("Neg", ["mean"], ["y"])]


_OPS = {fn.__name__: fn for fn in (conv2d, maxpool2d, relu, add, flatten, dense, softmax,
                                   softmax_cross_entropy)}


def run_op(op: str, inputs: dict, options: dict, dy, dtype: str) -> dict:
    """{"y": the forward value} as ONNX Runtime computes it in ``dtype``; ``dy`` is unused
    (no gradients). Raises NotImplementedError where ONNX Runtime has no kernel in ``dtype``."""
    if op not in _OPS:
        raise ValueError(f"{NAME}: unknown op {op!r}, expected one of {', '.join(_OPS)}")
    feeds = {name: np.asarray(a, dtype=dtype) if np.asarray(a).dtype.kind == "f" else np.asarray(a, np.int64)
             for name, a in inputs.items() if a is not None}
    nodes = _OPS[op](**feeds, **options)
    graph = helper.make_graph(
        nodes, op,
        [helper.make_tensor_value_info(name, _ELEM[a.dtype.name], list(a.shape)) for name, a in feeds.items()],
        [helper.make_tensor_value_info("y", _ELEM[dtype], None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    try:
        session = onnxruntime.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    except onnxruntime.capi.onnxruntime_pybind11_state.NotImplemented as exc:
        raise NotImplementedError(f"{NAME} {onnxruntime.__version__}: no {dtype} CPU kernel for {op} "
                                  f"({str(exc).split(':')[-1].strip()})") from None
    (y,) = session.run(["y"], feeds)
    return {"y": y}

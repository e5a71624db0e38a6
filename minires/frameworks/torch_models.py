"""Whole minires models in PyTorch: built from a model spec, weights carried in and out.

A spec is ``minires.interop.spec``'s plain description of a model (layers, options, the
positions of the weights in ``Model.get_weights()``); weights arrive in minires' layouts.
The seed's architecture (``spec["resnet"]``) is built as ``torch_resnet.SeedResNet``, the
seed's model written for PyTorch by hand; any other model as ``GraphModule``, which runs the
spec's layers one by one. Either way the model computes in NCHW, PyTorch's layout:

- conv kernels HWIO -> OIHW, dense kernels (in, out) -> (out, in);
- Keras' 'same' padding becomes explicit pads (the odd pixel bottom/right; ``-inf`` for max
  pooling), since PyTorch's own ``padding="same"`` is symmetric and refuses strides;
- Flatten: ``GraphModule`` flattens NCHW as PyTorch does, in (c, h, w) order, so the first
  Dense after it gets its kernel's rows reordered from Keras' (h, w, c) order on the way in
  (and back on the way out). ``SeedResNet`` instead permutes its feature map to NHWC before
  flattening, so its dense kernel moves unchanged.

``gradients`` and ``train`` are what ``minires verify`` asks of every framework: the
predictions, the loss and its weight gradients on one batch, and the weights after each of
N steps of PyTorch's own ``torch.optim.Adam`` / ``torch.optim.SGD``; everything comes back
in minires' layouts and order. Losses: ``F.cross_entropy`` on the logits of a softmax output
against probability rows, or ``F.mse_loss``.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .torch_resnet import SeedResNet


def versions() -> dict:
    return {"torch": torch.__version__.split("+")[0]}


def same_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """Keras' 'same' padding of one axis: (before, after), the odd pixel after."""
    total = max((-(-n // s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


# --- weight layouts ----------------------------------------------------------------------------

def conv_to_torch(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(3, 2, 0, 1)


def conv_from_torch(weight: np.ndarray) -> np.ndarray:
    return weight.transpose(2, 3, 1, 0)


def dense_to_torch(kernel: np.ndarray, flattened=None) -> np.ndarray:
    """(in, out) -> (out, in); ``flattened`` = (h, w, c) when the input is a feature map
    flattened by PyTorch in (c, h, w) order: the rows follow it."""
    if flattened is not None:
        h, w, c = flattened
        kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1)
    return kernel.T


def dense_from_torch(weight: np.ndarray, flattened=None) -> np.ndarray:
    kernel = weight.T
    if flattened is not None:
        h, w, c = flattened
        kernel = kernel.reshape(c, h, w, -1).transpose(1, 2, 0, 3).reshape(h * w * c, -1)
    return kernel


# --- a model from its spec ----------------------------------------------------------------------

class GraphModule(nn.Module):
    """The spec's layers in NCHW; takes NHWC, returns the output in minires' layout.

    ``logits=True`` stops a final softmax before it (for ``F.cross_entropy``).
    """

    def __init__(self, spec: dict, dtype: torch.dtype):
        super().__init__()
        self.spec = spec
        self.weight_list = nn.ParameterList(
            nn.Parameter(torch.zeros(1, dtype=dtype)) for _ in spec["weights"])
        # (h, w, c) of the feature map a 2-D value was flattened from, in (c, h, w) order.
        self.flattened: dict[str, tuple | None] = {spec["input"]["name"]: None}
        for layer in spec["layers"]:
            tags = [self.flattened[n] for n in layer["inputs"]]
            kind = layer["kind"]
            if kind == "flatten" and len(layer["input_shapes"][0]) == 3:
                tag = tuple(layer["input_shapes"][0])
            elif kind in ("flatten", "activation") or (kind == "add" and len(set(tags)) == 1):
                tag = tags[0]
            else:
                tag = None
            self.flattened[layer["name"]] = tag

    def layouts(self) -> list:
        """Per weight: (to_torch, from_torch) array functions."""
        moves = [None] * len(self.spec["weights"])
        for layer in self.spec["layers"]:
            for param, index in layer["weights"].items():
                if param == "bias":
                    moves[index] = (lambda a: a, lambda a: a)
                elif layer["kind"] == "conv2d":
                    moves[index] = (conv_to_torch, conv_from_torch)
                else:
                    tag = self.flattened[layer["inputs"][0]]
                    moves[index] = (lambda a, t=tag: dense_to_torch(a, t),
                                    lambda a, t=tag: dense_from_torch(a, t))
        return moves

    def _natural(self, value, name):
        """A value in minires' layout: NHWC, or features in (h, w, c) order."""
        tag = self.flattened[name]
        if value.dim() == 4:
            return value.permute(0, 2, 3, 1)
        if tag is not None:
            h, w, c = tag
            return value.reshape(-1, c, h, w).permute(0, 2, 3, 1).reshape(value.shape[0], -1)
        return value

    def forward(self, x, logits: bool = False):
        spec = self.spec
        values = {spec["input"]["name"]: x.permute(0, 3, 1, 2) if x.dim() == 4 else x}
        for layer in spec["layers"]:
            inputs = [values[n] for n in layer["inputs"]]
            stop = logits and layer["name"] == spec["output"]
            values[layer["name"]] = self._layer(layer, inputs, stop)
        return self._natural(values[spec["output"]], spec["output"])

    def _layer(self, layer, inputs, stop_before_softmax):
        kind, x = layer["kind"], inputs[0]
        params = {p: self.weight_list[i] for p, i in layer["weights"].items()}
        if kind in ("conv2d", "maxpool2d"):
            window = layer["kernel_size"] if kind == "conv2d" else layer["pool_size"]
            if layer["padding"] == "same":
                (top, bottom), (left, right) = (same_pads(x.shape[2], window[0], layer["strides"][0]),
                                                same_pads(x.shape[3], window[1], layer["strides"][1]))
                x = F.pad(x, (left, right, top, bottom),
                          value=0.0 if kind == "conv2d" else float("-inf"))
            if kind == "maxpool2d":
                return F.max_pool2d(x, window, layer["strides"])
            y = F.conv2d(x, params["kernel"], params.get("bias"), stride=layer["strides"])
        elif kind == "dense":
            y = F.linear(x, params["kernel"], params.get("bias"))
        elif kind == "flatten":
            return x.flatten(1)
        elif kind == "add":
            tags = {self.flattened[n] for n in layer["inputs"]}
            if len(tags) > 1:
                inputs = [self._natural(v, n) for v, n in zip(inputs, layer["inputs"])]
            y = inputs[0]
            for other in inputs[1:]:
                y = y + other
            return y
        elif kind == "reshape":
            y = self._natural(x, layer["inputs"][0]).reshape(x.shape[0], *layer["target_shape"])
            return y.permute(0, 3, 1, 2) if y.dim() == 4 else y
        else:
            y = x
        return _activation(layer["activation"], y, stop_before_softmax)


def _activation(name, y, stop_before_softmax):
    if name == "relu":
        return F.relu(y)
    if name == "softmax" and not stop_before_softmax:
        return F.softmax(y, dim=1)          # channels (NCHW) or features: Keras' last axis
    return y


class _Seed(nn.Module):
    """SeedResNet with the GraphModule interface: NHWC in, probabilities or logits out."""

    def __init__(self, arguments: dict, dtype):
        super().__init__()
        self.net = SeedResNet(**{**arguments, "input_shape": tuple(arguments["input_shape"])}).to(dtype)

    def layouts(self):
        moves = []
        for name in self.net.keras_order():
            param = self.net.get_parameter(name)
            if param.dim() == 4:
                moves.append((conv_to_torch, conv_from_torch))
            elif param.dim() == 2:
                moves.append((dense_to_torch, dense_from_torch))
            else:
                moves.append((lambda a: a, lambda a: a))
        return moves

    @property
    def weight_list(self):
        return [self.net.get_parameter(name) for name in self.net.keras_order()]

    def forward(self, x, logits: bool = False):
        z = self.net(x.permute(0, 3, 1, 2))
        return z if logits else F.softmax(z, dim=1)


def build(spec: dict, weights: list):
    """(module, layouts) for ``spec`` with ``weights`` (minires' order and layouts) carried in."""
    dtype = {"float32": torch.float32, "float64": torch.float64}[spec["dtype"]]
    module = _Seed(spec["resnet"], dtype) if spec.get("resnet") else GraphModule(spec, dtype)
    layouts = module.layouts()
    with torch.no_grad():
        for param, (to_torch, _), value in zip(module.weight_list, layouts, weights):
            moved = torch.from_numpy(np.ascontiguousarray(to_torch(value)))
            if isinstance(module, GraphModule):
                param.data = moved.clone()
            else:
                if tuple(param.shape) != tuple(moved.shape):
                    raise ValueError(f"SeedResNet: a weight of shape {tuple(moved.shape)} does not "
                                     f"fit its parameter of shape {tuple(param.shape)}")
                param.copy_(moved)
    return module, layouts


def _weights_out(module, layouts) -> list:
    return [from_torch(p.detach().numpy()).copy() for p, (_, from_torch) in zip(module.weight_list, layouts)]


def _loss(module, x, targets, loss: str):
    if loss == "categorical_crossentropy":
        return F.cross_entropy(module(x, logits=True), targets)
    return F.mse_loss(module(x), targets)


def gradients(spec: dict, weights: list, x: np.ndarray, targets: np.ndarray, loss: str) -> dict:
    """{"predictions", "loss", "grads": [per weight, minires' order and layouts]}."""
    module, layouts = build(spec, weights)
    xt, tt = torch.from_numpy(x), torch.from_numpy(targets)
    with torch.no_grad():
        predictions = module(xt).numpy()
    value = _loss(module, xt, tt, loss)
    grads = torch.autograd.grad(value, list(module.weight_list))
    return {"predictions": predictions, "loss": value.detach().numpy(),
            "grads": [from_torch(g.numpy()) for g, (_, from_torch) in zip(grads, layouts)]}


def train(spec: dict, weights: list, x: np.ndarray, targets: np.ndarray, loss: str, optimizer: dict,
          steps: int) -> list:
    """The weights after each of ``steps`` steps of ``torch.optim.Adam`` or ``SGD`` on the batch."""
    module, layouts = build(spec, weights)
    params = list(module.weight_list)
    if optimizer["name"] == "adam":
        opt = torch.optim.Adam(params, lr=optimizer["learning_rate"],
                               betas=(optimizer["beta_1"], optimizer["beta_2"]), eps=optimizer["epsilon"])
    else:
        opt = torch.optim.SGD(params, lr=optimizer["learning_rate"], momentum=optimizer["momentum"])
    xt, tt = torch.from_numpy(x), torch.from_numpy(targets)
    history = []
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        _loss(module, xt, tt, loss).backward()
        opt.step()
        history.append(_weights_out(module, layouts))
    return history

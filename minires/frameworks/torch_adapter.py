"""PyTorch's side of every comparison: minires' ops computed by PyTorch, in minires' layouts.

Every layout and padding mapping between minires and PyTorch lives here; ``minires verify``
(through ``run_op``, in a process of its own) and the test suite both use this module.

minires           PyTorch
NHWC activations  NCHW          x.permute(0, 3, 1, 2)
HWIO conv kernel  OIHW          w.permute(3, 2, 0, 1)
(in, out) dense   (out, in)     w.T  (F.linear computes x @ W^T)
Keras 'same'      explicit F.pad before an unpadded op: PyTorch's padding= is symmetric,
                  while Keras puts the odd pixel on the bottom/right.
upsample2d size   F.interpolate(mode="nearest", size=(H*fh, W*fw)) on NCHW: the output size
                  given exactly, so no float scale factor is rounded.
concat axis       torch.cat(dim=axis): the same axis, since both sides are NHWC here.
pos_weight        BCEWithLogits' pos_weight, broadcast along the last axis on both sides.

Each function takes NumPy arrays, runs forward and autograd backward with upstream gradient
``dy``, and returns NumPy arrays in minires' layouts, in the dtype PyTorch computed them in.
``run_op`` and ``versions`` are the adapter interface of ``minires.frameworks`` (the
registry there lists every adapter); the other functions are what the tests call directly.
Importing this module imports PyTorch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

F = torch.nn.functional

NAME = "torch"      # set by the registry to the name it runs under


def _t(a, grad=False):
    return torch.tensor(np.ascontiguousarray(a), requires_grad=grad)


def _np(t):
    return None if t is None else t.detach().numpy()


def nhwc_to_nchw(t):
    return t.permute(0, 3, 1, 2)


def nchw_to_nhwc(t):
    return t.permute(0, 2, 3, 1)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def keras_pads(padding, in_hw, kernel, stride):
    """((top, bottom), (left, right)) per Keras/TensorFlow, written out independently."""
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return (0, 0), (0, 0)
        pads = []
        for n, k, s in zip(in_hw, kernel, stride):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            pads.append((total // 2, total - total // 2))
        return tuple(pads)
    if isinstance(padding, int):
        return (padding, padding), (padding, padding)
    rows, cols = padding
    if isinstance(rows, int):
        return (rows, rows), (cols, cols)
    return tuple(rows), tuple(cols)


def _pad_nchw(x, pads, value=0.0):
    (top, bottom), (left, right) = pads
    return F.pad(x, (left, right, top, bottom), value=value)   # F.pad lists the last dim first


def conv2d(x, w, b, stride, padding, dy):
    """(y, dx, dw, db) of PyTorch's conv2d in minires' layouts."""
    stride = _pair(stride)
    xt, wt = _t(x, True), _t(w, True)
    bt = None if b is None else _t(b, True)
    pads = keras_pads(padding, x.shape[1:3], w.shape[:2], stride)
    # clone(contiguous_format), not contiguous(): with one input channel the permuted tensor
    # already counts as contiguous but keeps stride 1 on C, and PyTorch 2.13's CPU (oneDNN)
    # conv then returns wrong values, even uninitialised memory, e.g. for x (2, 4, 3, 1),
    # w (2, 3, 1, 3), stride (1, 2), 'valid'. Canonical strides avoid it.
    y = F.conv2d(_pad_nchw(nhwc_to_nchw(xt), pads).clone(memory_format=torch.contiguous_format),
                 wt.permute(3, 2, 0, 1).clone(memory_format=torch.contiguous_format), bt, stride=stride)
    y = nchw_to_nhwc(y)
    y.backward(_t(dy))
    return _np(y), _np(xt.grad), _np(wt.grad), None if bt is None else _np(bt.grad)


def maxpool2d(x, pool_size, strides, padding, dy):
    """(y, dx) of PyTorch's max_pool2d; 'same' pads with -inf explicitly."""
    kernel = _pair(pool_size)
    stride = kernel if strides is None else _pair(strides)
    xt = _t(x, True)
    pads = keras_pads(padding, x.shape[1:3], kernel, stride)
    y = F.max_pool2d(_pad_nchw(nhwc_to_nchw(xt), pads, value=-math.inf), kernel, stride)
    y = nchw_to_nhwc(y)
    y.backward(_t(dy))
    return _np(y), _np(xt.grad)


def relu(x, dy):
    xt = _t(x, True)
    y = torch.relu(xt)
    y.backward(_t(dy))
    return _np(y), _np(xt.grad)


def add(a, b, dy):
    at, bt = _t(a, True), _t(b, True)
    y = at + bt
    y.backward(_t(dy))
    return _np(y), _np(at.grad), _np(bt.grad)


def subtract(a, b, dy):
    at, bt = _t(a, True), _t(b, True)
    y = at - bt
    y.backward(_t(dy))
    return _np(y), _np(at.grad), _np(bt.grad)


def sigmoid(x, dy):
    xt = _t(x, True)
    y = torch.sigmoid(xt)
    y.backward(_t(dy))
    return _np(y), _np(xt.grad)


def flatten(x, dy):
    xt = _t(x, True)
    y = torch.flatten(xt, 1)     # on the NHWC tensor itself: Keras flattens (h, w, c)
    y.backward(_t(dy))
    return _np(y), _np(xt.grad)


def dense(x, w, b, dy):
    xt, wt = _t(x, True), _t(w, True)
    bt = None if b is None else _t(b, True)
    y = F.linear(xt, wt.T, bt)
    y.backward(_t(dy))
    return _np(y), _np(xt.grad), _np(wt.grad), None if bt is None else _np(bt.grad)


def softmax(x, axis, dy):
    """(y, dx) of torch.softmax along ``axis``."""
    xt = _t(x, True)
    y = torch.softmax(xt, dim=axis)
    y.backward(_t(dy))
    return _np(y), _np(xt.grad)


def softmax_cross_entropy(logits, labels, dloss):
    """(loss, dlogits); integer labels as class indices, float labels as probabilities."""
    zt = _t(logits, True)
    target = torch.tensor(labels.astype(np.int64)) if labels.dtype.kind in "iu" else _t(labels)
    loss = F.cross_entropy(zt, target, reduction="mean")
    loss.backward(torch.tensor(dloss, dtype=zt.dtype))
    return _np(loss), _np(zt.grad)


def probability_cross_entropy(probs, labels, dloss):
    """(loss, dprobs) of F.cross_entropy applied to log(probs): its log-softmax of log(p) is
    log(p / sum p), Keras' renormalised cross-entropy without the clip."""
    pt = _t(probs, True)
    target = torch.tensor(labels.astype(np.int64)) if labels.dtype.kind in "iu" else _t(labels)
    loss = F.cross_entropy(torch.log(pt), target, reduction="mean")
    loss.backward(torch.tensor(dloss, dtype=pt.dtype))
    return _np(loss), _np(pt.grad)


def nll_of_log(probs, ids):
    """F.nll_loss of log(probs) against class ids: the cross-entropy of rows that sum to 1."""
    return _np(F.nll_loss(torch.log(_t(probs)), torch.tensor(ids.astype(np.int64))))


def mean_squared_error(y, targets, dloss):
    """(loss, dy) of F.mse_loss with the mean over every element."""
    yt = _t(y, True)
    loss = F.mse_loss(yt, _t(targets), reduction="mean")
    loss.backward(torch.tensor(dloss, dtype=yt.dtype))
    return _np(loss), _np(yt.grad)


def upsample2d(x, size, dy):
    """(y, dx) of nearest-neighbour F.interpolate by integer factors ``size``, NHWC in and out."""
    fh, fw = _pair(size)
    xt = _t(x, True)
    y = F.interpolate(nhwc_to_nchw(xt), size=(x.shape[1] * fh, x.shape[2] * fw), mode="nearest")
    y = nchw_to_nhwc(y)
    y.backward(_t(dy))
    return _np(y), _np(xt.grad)


def concat(arrays, axis, dy):
    """(y, dx_1, ..., dx_K) of torch.cat along ``axis``."""
    tensors = [_t(a, True) for a in arrays]
    y = torch.cat(tensors, dim=axis)
    y.backward(_t(dy))
    return (_np(y), *(_np(t.grad) for t in tensors))


def abs_diff(a, b, dy):
    """(y, da, db) of torch.abs(a - b); PyTorch's abs has gradient 0 at 0."""
    at, bt = _t(a, True), _t(b, True)
    y = torch.abs(at - bt)
    y.backward(_t(dy))
    return _np(y), _np(at.grad), _np(bt.grad)


def instance_norm(x, dy, epsilon):
    """(y, dx) of F.instance_norm (no running statistics, no affine) on NHWC x.

    The upstream gradient goes in contiguous NCHW: with one image and a channels-last
    gradient (what permuting the result back to NHWC would hand it), PyTorch 2.13's
    instance_norm backward is wrong (docs/findings/torch_instance_norm_channels_last_grad.py).
    """
    xt = _t(x, True)
    y = F.instance_norm(xt.permute(0, 3, 1, 2), eps=epsilon)
    y.backward(_t(dy).permute(0, 3, 1, 2).contiguous())
    return _np(y.permute(0, 2, 3, 1)), _np(xt.grad)


def sigmoid_binary_cross_entropy(logits, targets, pos_weight, dloss):
    """(loss, dlogits) of F.binary_cross_entropy_with_logits with the mean over every element."""
    zt = _t(logits, True)
    weight = None if pos_weight is None else torch.tensor(np.asarray(pos_weight, dtype=logits.dtype))
    loss = F.binary_cross_entropy_with_logits(zt, _t(targets), pos_weight=weight, reduction="mean")
    loss.backward(torch.tensor(dloss, dtype=zt.dtype))
    return _np(loss), _np(zt.grad)


def adam(params, steps, lr, betas, eps):
    """The parameters after torch.optim.Adam takes one step per list of gradients in ``steps``.

    ``eps`` is a number, or a function of the step t (from 1) giving that step's eps.
    """
    tensors = [_t(p.copy(), True) for p in params]
    opt = torch.optim.Adam(tensors, lr=lr, betas=betas, eps=eps if not callable(eps) else 0.0)
    for t, grads in enumerate(steps, start=1):
        if callable(eps):
            opt.param_groups[0]["eps"] = eps(t)
        for tensor, g in zip(tensors, grads):
            tensor.grad = _t(g)
        opt.step()
    return [_np(t) for t in tensors]


def sgd(params, steps, lr, momentum, nesterov):
    """The parameters after torch.optim.SGD takes one step per list of gradients in ``steps``;
    ``lr`` is a number, or a list with one learning rate per step."""
    tensors = [_t(p.copy(), True) for p in params]
    rates = lr if isinstance(lr, list) else [lr] * len(steps)
    opt = torch.optim.SGD(tensors, lr=rates[0], momentum=momentum, nesterov=nesterov)
    for rate, grads in zip(rates, steps):
        opt.param_groups[0]["lr"] = rate
        for tensor, g in zip(tensors, grads):
            tensor.grad = _t(g)
        opt.step()
    return [_np(t) for t in tensors]


# --- the adapter interface ---------------------------------------------------------------------

def versions() -> dict[str, str]:
    return {"torch": torch.__version__}


def run_op(op: str, inputs: dict, options: dict, dy, dtype: str) -> dict:
    """Outputs of ``op`` ("y" and the gradient of each input: "dx", "dw", ...), computed by
    PyTorch in ``dtype`` ("float32" or "float64") from minires-layout ``inputs`` and the
    upstream gradient ``dy`` (0-d for the loss)."""
    dtype = np.dtype(dtype)
    x = {k: v.astype(dtype, copy=False) if v.dtype.kind == "f" else v for k, v in inputs.items()}
    dy = np.asarray(dy).astype(dtype, copy=False)
    if op == "conv2d":
        names, values = ("y", "dx", "dw", "db"), conv2d(x["x"], x["w"], x.get("b"), options.get("stride", 1),
                                                       options.get("padding", "same"), dy)
    elif op == "maxpool2d":
        names, values = ("y", "dx"), maxpool2d(x["x"], options.get("pool_size", 2), options.get("strides"),
                                               options.get("padding", "valid"), dy)
    elif op == "relu":
        names, values = ("y", "dx"), relu(x["x"], dy)
    elif op == "add":
        names, values = ("y", "da", "db"), add(x["a"], x["b"], dy)
    elif op == "flatten":
        names, values = ("y", "dx"), flatten(x["x"], dy)
    elif op == "dense":
        names, values = ("y", "dx", "dw", "db"), dense(x["x"], x["w"], x.get("b"), dy)
    elif op == "softmax":
        names, values = ("y", "dx"), softmax(x["x"], options.get("axis", -1), dy)
    elif op == "softmax_cross_entropy":
        names, values = ("y", "dlogits"), softmax_cross_entropy(x["logits"], x["labels"], dy)
    elif op == "upsample2d":
        names, values = ("y", "dx"), upsample2d(x["x"], options.get("size", 2), dy)
    elif op == "abs_diff":
        names, values = ("y", "da", "db"), abs_diff(x["a"], x["b"], dy)
    elif op == "sigmoid_binary_cross_entropy":
        names, values = ("y", "dlogits"), sigmoid_binary_cross_entropy(
            x["logits"], x["targets"], options.get("pos_weight"), dy)
    else:
        raise NotImplementedError(f"the PyTorch adapter has no op {op!r}")
    return {name: value for name, value in zip(names, values) if value is not None}

"""Every op at the seed's shapes (batch 64), on each backend and on PyTorch CPU, in one run.

For each op and direction (forward, backward) the benchmark reports the median time, the
GFLOP/s where the op is arithmetic (convolutions and dense layers: 2 flops per multiply-add;
a backward pass computes dx and dw, twice the forward's products), the ratio of PyTorch's time
to minires' (above 1: minires is faster), and the percentage of the float32 matmul peak
measured in the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy

from .. import backend, ops
from .timing import median_seconds

BATCH = 64


@dataclass(frozen=True)
class Case:
    """One op at one shape. ``make`` builds one closure per direction for a framework:
    (forward, backward), or (inference,) for the inference graph's fused steps."""

    name: str
    op: str
    flops_forward: float        # 0 when the op moves data rather than computing
    make_minires: Callable
    make_torch: Callable
    directions: tuple = ("forward", "backward")
    flops_backward: float | None = None     # None: twice the forward's (dx and dw)


def _rng():
    return numpy.random.default_rng(0)


def _conv_case(h: int, c_in: int, c_out: int, k: int, label: str) -> Case:
    flops = 2.0 * BATCH * h * h * k * k * c_in * c_out

    def make_minires():
        rng = _rng()
        x = rng.standard_normal((BATCH, h, h, c_in), dtype=numpy.float32)
        w = rng.standard_normal((k, k, c_in, c_out), dtype=numpy.float32)
        b = numpy.zeros(c_out, numpy.float32)
        y, cache = ops.conv2d_forward(x, w, b, padding="same")
        dy = rng.standard_normal(y.shape, dtype=numpy.float32)
        return (lambda: ops.conv2d_forward(x, w, b, padding="same"),
                lambda: ops.conv2d_backward(dy, cache))

    def make_torch():
        import torch
        import torch.nn.functional as F

        rng = _rng()
        x = _torch_nhwc(rng.standard_normal((BATCH, h, h, c_in), dtype=numpy.float32))
        w = torch.tensor(rng.standard_normal((c_out, c_in, k, k), dtype=numpy.float32))
        w = w.contiguous(memory_format=torch.channels_last).requires_grad_()
        b = torch.zeros(c_out, requires_grad=True)
        y = F.conv2d(x, w, b, padding=k // 2)
        dy = torch.randn(y.shape).contiguous(memory_format=torch.channels_last)
        return (lambda: F.conv2d(x, w, b, padding=k // 2),
                lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True))

    return Case(label, "conv2d", flops, make_minires, make_torch)


def _inference_case(h: int, c_in: int, c_out: int, k: int, relu: bool, pool: bool) -> Case:
    """A conv layer as inference runs it: bias, ReLU and a following 2x2 max-pool fused where
    the model fuses them (``Model.forward``); PyTorch runs the same layers without autograd."""
    flops = 2.0 * BATCH * h * h * k * k * c_in * c_out
    label = f"conv {k}x{k} {h}x{h}x{c_in}->{c_out}" + (" +relu" if relu else "") + (" +maxpool" if pool else "")

    def make_minires():
        rng = _rng()
        x = rng.standard_normal((BATCH, h, h, c_in), dtype=numpy.float32)
        w = rng.standard_normal((k, k, c_in, c_out), dtype=numpy.float32)
        b = rng.standard_normal(c_out, dtype=numpy.float32)
        activation = "relu" if relu else None
        if pool:
            return (lambda: ops.conv2d_maxpool_forward(x, w, b, activation=activation),)
        return (lambda: ops.conv2d_forward(x, w, b, activation=activation, keep_cache=False),)

    def make_torch():
        import torch
        import torch.nn.functional as F

        rng = _rng()
        x = torch.from_numpy(rng.standard_normal((BATCH, h, h, c_in), dtype=numpy.float32)).permute(0, 3, 1, 2)
        w = torch.tensor(rng.standard_normal((c_out, c_in, k, k), dtype=numpy.float32))
        w = w.contiguous(memory_format=torch.channels_last)
        b = torch.tensor(rng.standard_normal(c_out, dtype=numpy.float32))

        def infer():
            with torch.no_grad():
                y = F.conv2d(x, w, b, padding=k // 2)
                y = F.relu(y) if relu else y
                return F.max_pool2d(y, 2) if pool else y

        return (infer,)

    return Case(label, "conv2d", flops, make_minires, make_torch, ("inference",))


def _training_pair_case(h: int, c_in: int, c_out: int, k: int) -> Case:
    """A ReLU conv layer and the 2x2 max-pool that alone reads it, as training runs the
    seed's first layer (``Model.forward(training=True)``: one op, ``conv2d_maxpool_*``), its
    backward without dx (the input is data); PyTorch's the same layers under autograd."""
    flops = 2.0 * BATCH * h * h * k * k * c_in * c_out

    def make_minires():
        rng = _rng()
        x = rng.standard_normal((BATCH, h, h, c_in), dtype=numpy.float32)
        w = rng.standard_normal((k, k, c_in, c_out), dtype=numpy.float32)
        b = rng.standard_normal(c_out, dtype=numpy.float32)
        y, cache = ops.conv2d_maxpool_forward(x, w, b, activation="relu", keep_cache=True)
        dy = rng.standard_normal(y.shape, dtype=numpy.float32)
        return (lambda: ops.conv2d_maxpool_forward(x, w, b, activation="relu", keep_cache=True),
                lambda: ops.conv2d_maxpool_backward(dy, cache, input_grad=False))

    def make_torch():
        import torch
        import torch.nn.functional as F

        rng = _rng()
        x = torch.from_numpy(rng.standard_normal((BATCH, h, h, c_in), dtype=numpy.float32)).permute(0, 3, 1, 2)
        w = torch.tensor(rng.standard_normal((c_out, c_in, k, k), dtype=numpy.float32))
        w = w.contiguous(memory_format=torch.channels_last).requires_grad_()
        b = torch.tensor(rng.standard_normal(c_out, dtype=numpy.float32), requires_grad=True)

        def forward():
            return F.max_pool2d(F.relu(F.conv2d(x, w, b, padding=k // 2)), 2)

        y = forward()
        dy = torch.randn(y.shape).contiguous(memory_format=torch.channels_last)
        return forward, lambda: torch.autograd.grad(y, (w, b), dy, retain_graph=True)

    return Case(f"conv {k}x{k} {h}x{h}x{c_in}->{c_out} +relu +maxpool (training)", "conv2d", flops,
                make_minires, make_torch, flops_backward=flops)


def _pool_case(h: int, c: int) -> Case:
    def make_minires():
        rng = _rng()
        x = rng.standard_normal((BATCH, h, h, c), dtype=numpy.float32)
        y, cache = ops.maxpool2d_forward(x, 2)
        dy = rng.standard_normal(y.shape, dtype=numpy.float32)
        return lambda: ops.maxpool2d_forward(x, 2), lambda: ops.maxpool2d_backward(dy, cache)

    def make_torch():
        import torch
        import torch.nn.functional as F

        x = _torch_nhwc(_rng().standard_normal((BATCH, h, h, c), dtype=numpy.float32))
        y = F.max_pool2d(x, 2)
        dy = torch.randn(y.shape).contiguous(memory_format=torch.channels_last)
        return lambda: F.max_pool2d(x, 2), lambda: torch.autograd.grad(y, x, dy, retain_graph=True)

    return Case(f"maxpool 2x2 {h}x{h}x{c}", "maxpool2d", 0.0, make_minires, make_torch)


def _elementwise_case(name: str, shape: tuple[int, ...]) -> Case:
    """relu, bias + relu (a conv layer's bias and activation, fused) or the residual add on
    an activation of ``shape``."""

    def make_minires():
        rng = _rng()
        a = rng.standard_normal(shape, dtype=numpy.float32)
        b = rng.standard_normal(shape, dtype=numpy.float32)
        bias = rng.standard_normal(shape[-1:], dtype=numpy.float32)
        dy = rng.standard_normal(shape, dtype=numpy.float32)
        if name == "relu":
            _, cache = ops.relu_forward(a)
            return lambda: ops.relu_forward(a), lambda: ops.relu_backward(dy, cache)
        if name == "bias+relu":
            # As in a conv layer, the input is a temporary the op writes over: the timing is
            # the fused pass alone, without a copy (after the first call ``a`` holds ReLU
            # outputs, which cost the kernel the same).
            _, cache = ops.bias_relu_forward(a, bias)
            return (lambda: ops.bias_relu_forward(a, bias, overwrite_x=True),
                    lambda: ops.bias_relu_backward(dy, cache))
        _, cache = ops.add_forward(a, b)
        return lambda: ops.add_forward(a, b), lambda: ops.add_backward(dy, cache)

    def make_torch():
        import torch

        rng = _rng()
        a = torch.tensor(rng.standard_normal(shape, dtype=numpy.float32), requires_grad=True)
        b = torch.tensor(rng.standard_normal(shape, dtype=numpy.float32), requires_grad=True)
        bias = torch.tensor(rng.standard_normal(shape[-1:], dtype=numpy.float32), requires_grad=True)
        dy = torch.randn(shape)
        if name == "relu":
            y = torch.relu(a)
            return lambda: torch.relu(a), lambda: torch.autograd.grad(y, a, dy, retain_graph=True)
        if name == "bias+relu":
            y = torch.relu(a + bias)
            return (lambda: torch.relu(a + bias),
                    lambda: torch.autograd.grad(y, (a, bias), dy, retain_graph=True))
        y = a + b
        return lambda: a + b, lambda: torch.autograd.grad(y, (a, b), dy, retain_graph=True)

    label = "x".join(map(str, shape[1:]))
    return Case(f"{name} {label}", name, 0.0, make_minires, make_torch)


def _dense_case(d_in: int, d_out: int) -> Case:
    def make_minires():
        rng = _rng()
        x = rng.standard_normal((BATCH, d_in), dtype=numpy.float32)
        w = rng.standard_normal((d_in, d_out), dtype=numpy.float32)
        b = numpy.zeros(d_out, numpy.float32)
        _, cache = ops.dense_forward(x, w, b)
        dy = rng.standard_normal((BATCH, d_out), dtype=numpy.float32)
        return lambda: ops.dense_forward(x, w, b), lambda: ops.dense_backward(dy, cache)

    def make_torch():
        import torch
        import torch.nn.functional as F

        rng = _rng()
        x = torch.tensor(rng.standard_normal((BATCH, d_in), dtype=numpy.float32), requires_grad=True)
        w = torch.tensor(rng.standard_normal((d_out, d_in), dtype=numpy.float32), requires_grad=True)
        b = torch.zeros(d_out, requires_grad=True)
        y = F.linear(x, w, b)
        dy = torch.randn(y.shape)
        return lambda: F.linear(x, w, b), lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True)

    return Case(f"dense {d_in}->{d_out}", "dense", 2.0 * BATCH * d_in * d_out, make_minires, make_torch)


def _loss_case(classes: int = 10) -> Case:
    def make_minires():
        rng = _rng()
        z = rng.standard_normal((BATCH, classes), dtype=numpy.float32)
        labels = rng.integers(0, classes, BATCH)
        _, cache = ops.softmax_cross_entropy_forward(z, labels)
        return (lambda: ops.softmax_cross_entropy_forward(z, labels),
                lambda: ops.softmax_cross_entropy_backward(1.0, cache))

    def make_torch():
        import torch
        import torch.nn.functional as F

        rng = _rng()
        z = torch.tensor(rng.standard_normal((BATCH, classes), dtype=numpy.float32), requires_grad=True)
        labels = torch.tensor(rng.integers(0, classes, BATCH))
        loss = F.cross_entropy(z, labels)
        return lambda: F.cross_entropy(z, labels), lambda: torch.autograd.grad(loss, z, retain_graph=True)

    return Case(f"softmax cross-entropy {BATCH}x{classes}", "softmax_cross_entropy", 0.0,
                make_minires, make_torch)


def _torch_nhwc(x_nhwc: numpy.ndarray):
    """An NCHW tensor stored channels-last (PyTorch's faster CPU format), requiring grad."""
    import torch

    return torch.from_numpy(x_nhwc).permute(0, 3, 1, 2).requires_grad_()


def seed_cases() -> list[Case]:
    """The ops of the seed's model at batch 64, in the order the model runs them."""
    cases = [_conv_case(32, 3, 64, 3, "conv 3x3 32x32x3->64")]
    for h in (16, 8, 4):
        cases.append(_conv_case(h, 64, 64, 3, f"conv 3x3 {h}x{h}x64->64"))
        cases.append(_conv_case(h, 64, 64, 1, f"conv 1x1 {h}x{h}x64->64"))
    cases += [_pool_case(h, 64) for h in (32, 16, 8, 4)]
    cases += [_elementwise_case("relu", (BATCH, 32, 32, 64)), _elementwise_case("bias+relu", (BATCH, 32, 32, 64)),
              _elementwise_case("add", (BATCH, 8, 8, 64))]
    cases += [_dense_case(256, 128), _dense_case(128, 10), _loss_case()]
    # The first layer with its ReLU and pool as training runs them (one op, no dx).
    cases.append(_training_pair_case(32, 3, 64, 3))
    # The inference graph's conv layers, as Model.forward runs them outside training.
    cases.append(_inference_case(32, 3, 64, 3, relu=True, pool=True))
    for h in (16, 8, 4):
        cases.append(_inference_case(h, 64, 64, 3, relu=True, pool=False))
        cases.append(_inference_case(h, 64, 64, 3, relu=False, pool=True))
        cases.append(_inference_case(h, 64, 64, 1, relu=False, pool=True))
    return cases


def available_backends() -> list[str]:
    """The CPU backends that load on this machine (the GPU has its own benchmark)."""
    names = []
    for name in backend.BACKENDS:
        if name == "cupy":
            continue
        try:
            with backend.use_backend(name):
                names.append(name)
        except (RuntimeError, ValueError):
            pass
    return names


def torch_seconds(repeats: int = 7) -> dict:
    """{case name: [seconds per direction of the case]} for PyTorch (run in its own process,
    ``torch_process``)."""
    return {case.name: [median_seconds(fn, repeats) for fn in case.make_torch()] for case in seed_cases()}


def run(backends: list[str] | None = None, repeats: int = 7, with_torch: bool = True,
        peak_gflops: float | None = None, log=print) -> list[dict]:
    """Time every case; one row per (case, direction, framework)."""
    from . import torch_process

    backends = backends or available_backends()
    per_case = {}
    for case in seed_cases():
        per_case[case.name] = {}
        for name in backends:
            with backend.use_backend(name):
                per_case[case.name][name] = tuple(median_seconds(fn, repeats) for fn in case.make_minires())
    if with_torch:
        for name, pair in torch_process.measure("kernels", repeats).items():
            if name in per_case:
                per_case[name]["torch"] = tuple(pair)
    rows = []
    for case in seed_cases():
        timings = per_case[case.name]
        for d, direction in enumerate(case.directions):
            flops = case.flops_forward
            if direction == "backward":
                flops = 2 * flops if case.flops_backward is None else case.flops_backward
            torch_time = timings.get("torch", (None,) * len(case.directions))[d]
            for framework, pair in timings.items():
                seconds = pair[d]
                gflops = flops / seconds / 1e9 if flops else None
                row = dict(case=case.name, op=case.op, direction=direction, framework=framework,
                           seconds=seconds, gflops=gflops,
                           torch_over_this=(torch_time / seconds) if torch_time else None,
                           percent_of_peak=(100.0 * gflops / peak_gflops) if gflops and peak_gflops else None)
                rows.append(row)
            log("  " + f"{case.name:32s} {direction:8s} " + "  ".join(
                f"{fw} {pair[d] * 1e3:8.3f} ms" for fw, pair in timings.items()))
    return rows

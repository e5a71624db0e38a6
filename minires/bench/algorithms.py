"""Convolution algorithms side by side: each seed conv layer by im2col, Winograd F(2x2, 3x3),
F(4x4, 3x3) and "auto"'s choice, on each CPU backend, against PyTorch's conv2d.

    minires bench algorithms          # MINIRES_NUM_THREADS=1 for one core, as docs/winograd.md

Each figure is the median time of one forward + backward pass of the layer (batch 64,
float32, 'same' padding, stride 1), in milliseconds. Winograd columns are empty for the 1x1
layers, where it does not apply. PyTorch (``torch.nn.functional.conv2d``, channels-last) is
timed in a process of its own, as in every other benchmark (``torch_process``).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy

from .. import backend, ops
from .timing import median_seconds

BATCH = 64
ALGORITHMS = ("im2col", "winograd", "winograd4x4", "auto")


class ConvLayer(NamedTuple):
    name: str
    hw: int          # input height = width
    c_in: int
    c_out: int
    k: int           # kernel size, 'same' padding, stride 1


# The seed model's convolutions (32x32x3 input, 64 filters; three residual blocks at
# 16x16, 8x8 and 4x4, each with a 3x3 main path and a 1x1 skip).
SEED_LAYERS = (
    ConvLayer("conv 3x3 32x32 3->64", 32, 3, 64, 3),
    ConvLayer("conv 3x3 16x16 64->64", 16, 64, 64, 3),
    ConvLayer("conv 1x1 16x16 64->64", 16, 64, 64, 1),
    ConvLayer("conv 3x3 8x8 64->64", 8, 64, 64, 3),
    ConvLayer("conv 1x1 8x8 64->64", 8, 64, 64, 1),
    ConvLayer("conv 3x3 4x4 64->64", 4, 64, 64, 3),
    ConvLayer("conv 1x1 4x4 64->64", 4, 64, 64, 1),
)


def _layer_arrays(layer: ConvLayer, batch: int):
    """x, w, b and dy of ``layer``, the same for every framework (seeded)."""
    rng = numpy.random.default_rng(0)
    x = rng.standard_normal((batch, layer.hw, layer.hw, layer.c_in)).astype(numpy.float32)
    w = (0.1 * rng.standard_normal((layer.k, layer.k, layer.c_in, layer.c_out))).astype(numpy.float32)
    b = numpy.zeros(layer.c_out, numpy.float32)
    dy = rng.standard_normal((batch, layer.hw, layer.hw, layer.c_out)).astype(numpy.float32)
    return x, w, b, dy


def minires_milliseconds(backends: list[str], batch: int = BATCH, repeats: int = 7) -> list[dict]:
    """One row per seed layer: {"layer": name, "<backend> <algorithm>": ms or None, ...}."""
    rows = []
    for layer in SEED_LAYERS:
        x, w, b, dy = _layer_arrays(layer, batch)
        row = {"layer": layer.name}
        for name in backends:
            for algorithm in ALGORITHMS:
                key = f"{name} {algorithm}"
                if algorithm.startswith("winograd") and layer.k != 3:
                    row[key] = None
                    continue

                def step(algorithm=algorithm):
                    _, cache = ops.conv2d_forward(x, w, b, algorithm=algorithm)
                    ops.conv2d_backward(dy, cache)
                with backend.use_backend(name):
                    row[key] = 1e3 * median_seconds(step, repeats, min_seconds=0.0)
        rows.append(row)
    return rows


def torch_milliseconds(batch: int = BATCH, repeats: int = 7) -> dict:
    """{layer name: ms} of torch's conv2d forward + backward (run in PyTorch's own process)."""
    import torch

    result = {}
    for layer in SEED_LAYERS:
        x, w, b, dy = _layer_arrays(layer, batch)

        def nchw(a):
            return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
        tx = nchw(x).requires_grad_()
        tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
        tw.requires_grad_()
        tb = torch.from_numpy(b).requires_grad_()
        tdy = nchw(dy)

        def step(tx=tx, tw=tw, tb=tb, tdy=tdy, pad=layer.k // 2):
            tx.grad = tw.grad = tb.grad = None
            torch.nn.functional.conv2d(tx, tw, tb, padding=pad).backward(tdy)
        result[layer.name] = 1e3 * median_seconds(step, repeats, min_seconds=0.0)
    return result


def run(backends: list[str], repeats: int = 7, with_torch: bool = True, batch: int = BATCH,
        log=print) -> list[dict]:
    """Rows of ``minires_milliseconds``, with a "torch" column when PyTorch is timed."""
    from . import torch_process

    rows = minires_milliseconds(backends, batch=batch, repeats=repeats)
    if with_torch:
        torch_ms = torch_process.measure("algorithms", repeats, batch)
        for row in rows:
            row["torch"] = torch_ms.get(row["layer"])
    for row in rows:
        log("  " + f"{row['layer']:24s} " + "  ".join(
            f"{key} {value:7.2f}" for key, value in row.items() if key != "layer" and value is not None))
    return rows

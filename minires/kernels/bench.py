"""Timing the kernels: Numba against the NumPy path, Winograd against im2col and PyTorch.

Every figure is a median of several runs, and every comparison is taken in the same process
right after its counterpart, so that a busy machine slows both sides alike; read the ratios
more than the milliseconds. The shapes are the seed model's at batch 64 (``SEED_LAYERS``).

    python -m minires.kernels.bench [--threads N] [--repeats R] [--batch B]

prints three tables: the JIT compile times (cold cache and warm), each kernel against the
NumPy path of the same op, and the forward + backward time of every seed conv layer by
im2col, Winograd and PyTorch. The functions return plain rows for other tools to print.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Callable, NamedTuple

import numpy as np

from .. import backend, ops


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
SEED_POOLS = (32, 16, 8, 4)
ALGORITHM_COLUMNS = ("im2col", "winograd", "winograd4x4", "auto")          # max-pool 2x2 inputs, 64 channels
SEED_DENSE = ((256, 128), (128, 10))


def median_time(fn: Callable[[], object], repeats: int = 7, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _compare(fn, repeats: int) -> tuple[float, float]:
    """(numpy seconds, numba seconds) of ``fn()``, interleaved run by run."""
    samples = {"numpy": [], "numba": []}
    for name in samples:
        with backend.use_backend(name):
            fn()                                            # warm-up (and JIT compile)
    for _ in range(repeats):
        for name in samples:
            with backend.use_backend(name):
                start = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - start)
    return statistics.median(samples["numpy"]), statistics.median(samples["numba"])


# --- kernel against the NumPy path --------------------------------------------------------

def kernel_speedups(batch: int = 64, dtype=np.float32, repeats: int = 7) -> list[dict]:
    """One row per op and seed shape: the op's time on backend numpy and on numba (ms), the
    speedup numpy/numba. Conv rows use algorithm="im2col", so they time the im2col path."""
    rng = np.random.default_rng(0)
    rows = []

    def row(op, shape, fn):
        t_np, t_nb = _compare(fn, repeats)
        rows.append(dict(op=op, shape=shape, numpy_ms=1e3 * t_np, numba_ms=1e3 * t_nb,
                         speedup=t_np / t_nb))

    def caches_per_backend(forward):
        """Each backend's own forward cache, for timing its backward pass."""
        caches = {}
        for name in ("numpy", "numba"):
            with backend.use_backend(name):
                caches[name] = forward()[1]
        return caches

    for layer in SEED_LAYERS:
        x = rng.standard_normal((batch, layer.hw, layer.hw, layer.c_in)).astype(dtype)
        w = (0.1 * rng.standard_normal((layer.k, layer.k, layer.c_in, layer.c_out))).astype(dtype)
        b = np.zeros(layer.c_out, dtype)
        y, cache = ops.conv2d_forward(x, w, b, algorithm="im2col")
        dy = rng.standard_normal(y.shape).astype(dtype)
        row("conv2d_forward (im2col)", layer.name,
            lambda: ops.conv2d_forward(x, w, b, algorithm="im2col"))

        def backward():
            _, c = ops.conv2d_forward(x, w, b, algorithm="im2col")   # this backend's cache
            return ops.conv2d_backward(dy, c)
        t_fwd = rows[-1]
        row("conv2d_backward (col2im)", layer.name, backward)
        # The backward row timed forward + backward; subtract the forward's time.
        rows[-1]["numpy_ms"] -= t_fwd["numpy_ms"]
        rows[-1]["numba_ms"] -= t_fwd["numba_ms"]
        rows[-1]["speedup"] = rows[-1]["numpy_ms"] / rows[-1]["numba_ms"]

    for hw in SEED_POOLS:
        x = rng.standard_normal((batch, hw, hw, 64)).astype(dtype)
        y, _ = ops.maxpool2d_forward(x)
        dy = rng.standard_normal(y.shape).astype(dtype)
        shape = f"{hw}x{hw}x64 pool 2"
        row("maxpool2d_forward", shape, lambda: ops.maxpool2d_forward(x))
        caches = caches_per_backend(lambda: ops.maxpool2d_forward(x))
        row("maxpool2d_backward", shape,
            lambda: ops.maxpool2d_backward(dy, caches[backend.get_backend()]))

    for hw in (32, 16, 8):
        x = rng.standard_normal((batch, hw, hw, 64)).astype(dtype)
        shape = f"{hw}x{hw}x64"
        row("relu_forward", shape, lambda: ops.relu_forward(x))
        caches = caches_per_backend(lambda: ops.relu_forward(x))
        row("relu_backward", shape, lambda: ops.relu_backward(x, caches[backend.get_backend()]))

    logits = rng.standard_normal((batch, 10)).astype(dtype)
    labels = rng.integers(0, 10, batch)
    one_hot = np.eye(10, dtype=dtype)[labels]
    for kind, t in (("class ids", labels), ("one-hot", one_hot)):
        shape = f"{batch}x10 {kind}"
        row("softmax_cross_entropy_forward", shape, lambda: ops.softmax_cross_entropy_forward(logits, t))
        caches = caches_per_backend(lambda: ops.softmax_cross_entropy_forward(logits, t))
        row("softmax_cross_entropy_backward", shape,
            lambda: ops.softmax_cross_entropy_backward(1.0, caches[backend.get_backend()]))

    # Adam over every parameter of the seed model (270,026 values in 14 arrays).
    shapes = [(3, 3, 3, 64), (64,)] + [(3, 3, 64, 64), (64,), (3, 3, 64, 64), (64,), (1, 1, 64, 64),
                                        (64,)] * 3 + [(256, 128), (128,), (128, 10), (10,)]
    params = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ms = [np.zeros(s, dtype) for s in shapes]
    vs = [np.zeros(s, dtype) for s in shapes]

    def adam_step():
        for p, g, m, v in zip(params, grads, ms, vs):
            ops.adam_update(p, g, m, v, 1e-3, 0.9, 0.999, 1e-7)
    row("adam_update", f"{sum(p.size for p in params):,} params in {len(params)} arrays", adam_step)
    return rows


# --- conv layers: im2col, Winograd, PyTorch -------------------------------------------------

def conv_layer_times(batch: int = 64, dtype=np.float32, repeats: int = 7,
                     threads: int | None = None) -> list[dict]:
    """Forward + backward time (ms) of each seed conv layer: im2col, Winograd F(2x2, 3x3) and
    F(4x4, 3x3) on backends numpy and numba, "auto"'s choice on numba, and
    torch.nn.functional.conv2d (channels_last, the same thread count) when PyTorch is
    installed. Winograd columns are None where it does not apply (1x1)."""
    threads = backend.get_num_threads() if threads is None else threads
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    rng = np.random.default_rng(0)
    rows = []
    for layer in SEED_LAYERS:
        x = rng.standard_normal((batch, layer.hw, layer.hw, layer.c_in)).astype(dtype)
        w = (0.1 * rng.standard_normal((layer.k, layer.k, layer.c_in, layer.c_out))).astype(dtype)
        b = np.zeros(layer.c_out, dtype)
        dy = rng.standard_normal((batch, layer.hw, layer.hw, layer.c_out)).astype(dtype)
        row = dict(layer=layer.name)
        for name in ("numpy", "numba"):
            for algorithm in ALGORITHM_COLUMNS:
                key = f"{name} {algorithm}"
                if algorithm.startswith("winograd") and layer.k != 3:
                    row[key] = None
                    continue

                def step():
                    _, cache = ops.conv2d_forward(x, w, b, algorithm=algorithm)
                    ops.conv2d_backward(dy, cache)
                with backend.use_backend(name):
                    row[key] = 1e3 * median_time(step, repeats)
        if torch is not None:
            row["torch"] = 1e3 * median_time(_torch_conv_step(torch, x, w, b, dy), repeats)
        rows.append(row)
    return rows


def _torch_conv_step(torch, x, w, b, dy):
    """A forward + backward of torch's conv2d on the same data, NCHW in channels_last memory."""
    def nchw(a):
        return torch.from_numpy(a).permute(0, 3, 1, 2).contiguous(memory_format=torch.channels_last)
    tx = nchw(x).requires_grad_()
    tw = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=torch.channels_last)
    tw.requires_grad_()
    tb = torch.from_numpy(b).requires_grad_()
    tdy = nchw(dy)
    pad = w.shape[0] // 2

    def step():
        tx.grad = tw.grad = tb.grad = None
        torch.nn.functional.conv2d(tx, tw, tb, padding=pad).backward(tdy)
    return step


# --- compile times --------------------------------------------------------------------------

_COMPILE_SCRIPT = """
import json, sys, time
start = time.perf_counter()
import minires.kernels.cpu_numba as k
imported = time.perf_counter() - start
from minires.kernels.bench import _first_call_times
print(json.dumps(dict(import_s=imported, **_first_call_times(sys.argv[1]))))
"""


def _first_call_times(dtype_name: str) -> dict:
    """Time each kernel's first call (compile or cache load + run) in this fresh process."""
    from . import cpu_numba as k
    from ..ops import winograd
    from ..ops.windows import plan_windows

    dtype = np.dtype(dtype_name)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 6, 6, 4)).astype(dtype)
    win = plan_windows("conv2d", (6, 6), (3, 3), (1, 1), "same", ("same",))
    pool = plan_windows("maxpool2d", (6, 6), (2, 2), (2, 2), "valid", ("valid",))
    f = winograd.F2X2_3X3
    tiles = winograd.tile_counts((6, 6), f.m)
    z = rng.standard_normal((4, 5)).astype(dtype)
    ids = np.arange(4) % 5
    rows = np.full((4, 5), 0.2, dtype)
    p = x.reshape(-1).copy()
    m, v2, g = np.zeros_like(p), np.zeros_like(p), p.copy()
    out = {}

    def first(name, fn):
        start = time.perf_counter()
        result = fn()
        out[name] = time.perf_counter() - start
        return result

    first("col2im", lambda: k.col2im(np.ones((2, 6, 6, 3, 3, x.shape[3]), dtype), x.shape, win))
    w2d = rng.standard_normal((9 * x.shape[3], 4)).astype(dtype)
    y_conv, mask, cols = first("im2col_conv_forward",
                               lambda: k.im2col_conv_forward(x, w2d, None, win, True, True))
    first("im2col_conv_backward", lambda: k.im2col_conv_backward(y_conv, cols, mask, w2d, win, False))
    y, argmax = first("maxpool2d_forward", lambda: k.maxpool2d_forward(x, pool))
    first("maxpool2d_backward", lambda: k.maxpool2d_backward(y, argmax, x.shape, pool))
    _, positive = first("relu_forward", lambda: k.relu_forward(x))
    first("relu_backward", lambda: k.relu_backward(x, positive))
    first("bias_relu", lambda: k.bias_relu(x.copy(), None))
    first("bias_relu_backward", lambda: k.bias_relu_backward(x, positive))
    _, probs = first("softmax_cross_entropy_forward (ids)",
                     lambda: k.softmax_cross_entropy_forward(z, ids, True))
    first("softmax_cross_entropy_forward (rows)", lambda: k.softmax_cross_entropy_forward(z, rows, False))
    first("softmax_cross_entropy_backward (ids)",
          lambda: k.softmax_cross_entropy_backward(1.0, probs, ids, True))
    first("softmax_cross_entropy_backward (rows)",
          lambda: k.softmax_cross_entropy_backward(1.0, probs, rows, False))
    first("adam_update", lambda: k.adam_update(p, g, m, v2, 1e-3, 0.9, 0.999, 1e-7))
    first("adam_update_many", lambda: k.adam_update_many([p], [g], [m], [v2], 1e-3, 0.9, 0.999, 1e-7))
    u = np.zeros((f.alpha ** 2, x.shape[3], x.shape[3]), dtype=x.dtype)
    first("winograd_forward_blocked",
          lambda: k.winograd_forward_blocked(x, u, None, win.padding, tiles, (6, 6), f))
    first("winograd_backward_blocked",
          lambda: k.winograd_backward_blocked(x, x, u, win.padding, tiles, f))
    return out


def compile_times(dtype: str = "float32", cache_dir: str | None = None) -> dict:
    """First-call time (s) of every kernel, cold and warm: {"cold": {...}, "warm": {...}}.

    Cold runs a fresh Python with NUMBA_CACHE_DIR set to an empty directory, so every kernel
    compiles; warm runs another fresh Python on the same directory, so every kernel loads
    its machine code from the cache. Each dict has one entry per kernel, "import_s" (import
    of the kernel module, Numba included) and "total".
    """
    with tempfile.TemporaryDirectory(prefix="minires-numba-cache-") as fresh:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir or fresh)
        result = {}
        for phase in ("cold", "warm"):
            done = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT, dtype], env=env,
                                  capture_output=True, text=True, check=True)
            times = json.loads(done.stdout.strip().splitlines()[-1])
            times["total"] = sum(times.values())
            result[phase] = times
    return result


# --- printing -------------------------------------------------------------------------------

def _table(rows: list[dict], columns: list[str], formats: dict) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            value = r.get(c)
            cells.append("-" if value is None else formats.get(c, "{}").format(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minires.kernels.bench",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="threads for Numba, BLAS and torch")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--skip", nargs="*", default=[], choices=["compile", "kernels", "conv"])
    args = parser.parse_args(argv)
    threads = backend.set_num_threads(args.threads)
    print(f"threads: {threads}, batch {args.batch}, float32, median of {args.repeats}\n")
    if "compile" not in args.skip:
        times = compile_times()
        rows = [dict(kernel=name, cold=times["cold"][name], warm=times["warm"][name])
                for name in times["cold"]]
        print(_table(rows, ["kernel", "cold", "warm"], {"cold": "{:.2f} s", "warm": "{:.3f} s"}), "\n")
    if "kernels" not in args.skip:
        rows = kernel_speedups(args.batch, repeats=args.repeats)
        print(_table(rows, ["op", "shape", "numpy_ms", "numba_ms", "speedup"],
                     {"numpy_ms": "{:.3f}", "numba_ms": "{:.3f}", "speedup": "{:.2f}x"}), "\n")
    if "conv" not in args.skip:
        rows = conv_layer_times(args.batch, repeats=args.repeats, threads=threads)
        columns = (["layer"] + [f"{b} {a}" for b in ("numpy", "numba") for a in ALGORITHM_COLUMNS]
                   + ["torch"])
        print(_table(rows, columns, {c: "{:.2f}" for c in columns[1:]}))


if __name__ == "__main__":
    main()

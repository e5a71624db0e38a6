"""``minires bench gpu``: the cupy backend against PyTorch + cuDNN on the same GPU, in one run.

What it measures, all in float32 on device-resident data:

- the machine: the GPU's name and memory, the CUDA, CuPy and PyTorch versions;
- its ceilings: cuBLAS' float32 matrix-product rate (an 8192^3 product, TensorFloat-32 off)
  and the device memory bandwidth (a 1 GiB device-to-device copy: bytes read + written);
- every op at the seed's shapes (batch 64; the list of ``minires.bench.kernels``), forward
  and backward, and the kernels that have no op of their own (im2col, col2im, bias + ReLU,
  Adam over the seed's 270,026 parameters), each next to the same work in PyTorch
  (channels-last, cuDNN) where PyTorch has it;
- the seed's train step (forward, backward, Adam, sparse cross-entropy) and inference at
  batch 64 and 512, in images per second, minires and PyTorch.

Timing: CUDA events around back-to-back calls (enough to last ``MIN_SECONDS``), the median of
``repeats`` samples after warm-up calls (which also compile every kernel, so compilation is
never timed); the end event is synchronized before it is read. An event pair measures the
GPU's timeline, so time the GPU spends idle waiting for the host to launch work (the cost
of many small kernels) is counted, as it should be.

TensorFloat-32 is switched off for both frameworks (``NVIDIA_TF32_OVERRIDE=0`` for every
CUDA library, and PyTorch's own flags), so both compute what float32 asks for; the results
record the settings in force. Without PyTorch (or without its CUDA build) the results hold
minires alone, with a note saying so.

Results go to ``OUT/gpu.json`` and ``OUT/gpu.md``; nothing is written on a machine without
a GPU (the run stops with the reason).
"""

from __future__ import annotations

import json
import os
import statistics
import time
from pathlib import Path
from typing import Callable

import numpy

from .. import backend, ops
from .kernels import BATCH
from .report import _fmt, _write_text, train_table
from .timing import machine_description

MIN_SECONDS = 0.02        # a sample repeats a call until it lasts this long on the GPU
PEAK_N = 8192             # the matrix-product ceiling: (n x n) @ (n x n), float32
COPY_BYTES = 1 << 30      # the bandwidth ceiling: a device-to-device copy of this size
TRAIN_BATCHES = (64, 512)
SEED_PARAMETERS = 270_026


# --- timing -----------------------------------------------------------------------------------

def _event_seconds(fn: Callable[[], object], make_event: Callable, elapsed_ms: Callable,
                   repeats: int, warmup: int) -> float:
    """Median GPU seconds of one call of ``fn``, from pairs of CUDA events."""
    for _ in range(warmup):
        fn()
    start, end = make_event(), make_event()

    def sample(calls: int) -> float:
        start.record()
        for _ in range(calls):
            fn()
        end.record()
        end.synchronize()
        return elapsed_ms(start, end) / 1e3 / calls

    calls = max(1, int(MIN_SECONDS / max(sample(1), 1e-7)))
    return statistics.median(sample(calls) for _ in range(repeats))


def cupy_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
    """Median GPU seconds of ``fn``'s work on CuPy's current stream."""
    import cupy

    return _event_seconds(fn, cupy.cuda.Event, cupy.cuda.get_elapsed_time, repeats, warmup)


def torch_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 2) -> float:
    """Median GPU seconds of ``fn``'s work on PyTorch's current stream."""
    import torch

    return _event_seconds(fn, lambda: torch.cuda.Event(enable_timing=True),
                          lambda a, b: a.elapsed_time(b), repeats, warmup)


# --- the machine and its ceilings -------------------------------------------------------------

def _torch_cuda():
    """PyTorch, when it is installed with CUDA and sees a device; else None."""
    try:
        import torch
    except ImportError:
        return None
    return torch if torch.cuda.is_available() else None


def device_description() -> dict:
    """What a reader needs to compare two result files: the GPU, the libraries, TF32."""
    import cupy

    runtime = cupy.cuda.runtime
    device = cupy.cuda.Device()
    props = runtime.getDeviceProperties(device.id)
    name = props["name"]
    info = {
        "gpu": name.decode() if isinstance(name, bytes) else str(name),
        "compute_capability": device.compute_capability,
        "memory_gib": round(props["totalGlobalMem"] / 2**30, 1),
        "multiprocessors": props["multiProcessorCount"],
        "cuda_runtime": runtime.runtimeGetVersion(),
        "cuda_driver": runtime.driverGetVersion(),
        "cupy": cupy.__version__,
        "env_NVIDIA_TF32_OVERRIDE": os.environ.get("NVIDIA_TF32_OVERRIDE"),
        "env_CUPY_TF32": os.environ.get("CUPY_TF32"),
    }
    torch = _torch_cuda()
    if torch is not None:
        info.update(torch_cuda=torch.version.cuda, cudnn=torch.backends.cudnn.version(),
                    torch_matmul_allow_tf32=torch.backends.cuda.matmul.allow_tf32,
                    torch_cudnn_allow_tf32=torch.backends.cudnn.allow_tf32,
                    torch_cudnn_benchmark=torch.backends.cudnn.benchmark)
    return info


def matmul_peak_gflops(n: int = PEAK_N, repeats: int = 5) -> float:
    """cuBLAS float32 product rate, GFLOP/s: 2 n^3 / time of an (n x n) @ (n x n)."""
    import cupy

    a, b = cupy.asarray(_data((n, n))), cupy.asarray(_data((n, n), 1))
    seconds = cupy_seconds(lambda: a @ b, repeats=repeats, warmup=1)
    return 2.0 * n**3 / seconds / 1e9


def copy_bandwidth_gbs(nbytes: int = COPY_BYTES, repeats: int = 5) -> float:
    """Device memory bandwidth, GB/s: a device-to-device copy reads and writes ``nbytes``."""
    import cupy

    src = cupy.ones(nbytes // 4, dtype=cupy.float32)
    dst = cupy.empty_like(src)
    seconds = cupy_seconds(lambda: dst.data.copy_from_device_async(src.data, src.nbytes),
                           repeats=repeats, warmup=1)
    return 2.0 * src.nbytes / seconds / 1e9


# --- the cases ----------------------------------------------------------------------------------
# Each maker returns (forward, backward) closures over device arrays built once; backward may be
# None for work that has one direction (an Adam step).

def _data(shape, seed: int = 0, dtype=numpy.float32) -> numpy.ndarray:
    return numpy.random.default_rng(seed).standard_normal(shape, dtype=dtype)


def _nchw(torch, x_nhwc: numpy.ndarray, grad: bool = True):
    """An NHWC array as a CUDA tensor in PyTorch's NCHW indexing, stored channels-last."""
    t = torch.from_numpy(numpy.ascontiguousarray(x_nhwc)).cuda().permute(0, 3, 1, 2)
    return t.requires_grad_() if grad else t


def _conv(h: int, c_in: int, c_out: int, k: int, batch: int):
    flops = 2.0 * batch * h * h * k * k * c_in * c_out

    def minires():
        import cupy

        x = cupy.asarray(_data((batch, h, h, c_in)))
        w = cupy.asarray(_data((k, k, c_in, c_out), 1))
        b = cupy.zeros(c_out, cupy.float32)
        y, cache = ops.conv2d_forward(x, w, b, padding="same")
        dy = cupy.asarray(_data(y.shape, 2))
        return (lambda: ops.conv2d_forward(x, w, b, padding="same"),
                lambda: ops.conv2d_backward(dy, cache))

    def torch_pair(torch):
        F = torch.nn.functional
        x = _nchw(torch, _data((batch, h, h, c_in)))
        w_oihw = _data((k, k, c_in, c_out), 1).transpose(3, 2, 0, 1)          # HWIO -> OIHW
        w = torch.tensor(w_oihw, device="cuda").contiguous(memory_format=torch.channels_last)
        w.requires_grad_()
        b = torch.zeros(c_out, device="cuda", requires_grad=True)
        y = F.conv2d(x, w, b, padding=k // 2)
        dy = _nchw(torch, _data((batch, h, h, c_out), 2), grad=False)
        return (lambda: F.conv2d(x, w, b, padding=k // 2),
                lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True))

    return f"conv {k}x{k} {h}x{h}x{c_in}->{c_out}", "conv2d", flops, minires, torch_pair


def _pool(h: int, c: int, batch: int):
    def minires():
        import cupy

        x = cupy.asarray(_data((batch, h, h, c)))
        y, cache = ops.maxpool2d_forward(x, 2)
        dy = cupy.asarray(_data(y.shape, 2))
        return lambda: ops.maxpool2d_forward(x, 2), lambda: ops.maxpool2d_backward(dy, cache)

    def torch_pair(torch):
        F = torch.nn.functional
        x = _nchw(torch, _data((batch, h, h, c)))
        y = F.max_pool2d(x, 2)
        dy = _nchw(torch, _data((batch, h // 2, h // 2, c), 2), grad=False)
        return lambda: F.max_pool2d(x, 2), lambda: torch.autograd.grad(y, x, dy, retain_graph=True)

    return f"maxpool 2x2 {h}x{h}x{c}", "maxpool2d", 0.0, minires, torch_pair


def _relu(shape):
    def minires():
        import cupy

        x, dy = cupy.asarray(_data(shape)), cupy.asarray(_data(shape, 2))
        _, cache = ops.relu_forward(x)
        return lambda: ops.relu_forward(x), lambda: ops.relu_backward(dy, cache)

    def torch_pair(torch):
        x = _nchw(torch, _data(shape))
        y = torch.relu(x)
        dy = _nchw(torch, _data(shape, 2), grad=False)
        return lambda: torch.relu(x), lambda: torch.autograd.grad(y, x, dy, retain_graph=True)

    return f"relu {'x'.join(map(str, shape[1:]))}", "relu", 0.0, minires, torch_pair


def _bias_relu(shape):
    """The fused bias + ReLU after a conv's product (forward over a fresh copy, as the op)."""
    def minires():
        import cupy

        z, b = cupy.asarray(_data(shape)), cupy.asarray(_data(shape[-1:], 1))
        dy = cupy.asarray(_data(shape, 2))
        _, cache = ops.bias_relu_forward(z, b)
        return lambda: ops.bias_relu_forward(z, b), lambda: ops.bias_relu_backward(dy, cache)

    def torch_pair(torch):
        x = _nchw(torch, _data(shape))
        b = torch.tensor(_data(shape[-1:], 1), device="cuda", requires_grad=True)
        y = torch.relu(x + b[None, :, None, None])
        dy = _nchw(torch, _data(shape, 2), grad=False)
        return (lambda: torch.relu(x + b[None, :, None, None]),
                lambda: torch.autograd.grad(y, (x, b), dy, retain_graph=True))

    return f"bias+relu {'x'.join(map(str, shape[1:]))}", "bias_relu", 0.0, minires, torch_pair


def _add(shape):
    def minires():
        import cupy

        a, b, dy = (cupy.asarray(_data(shape, s)) for s in (0, 1, 2))
        _, cache = ops.add_forward(a, b)
        return lambda: ops.add_forward(a, b), lambda: ops.add_backward(dy, cache)

    def torch_pair(torch):
        a, b = _nchw(torch, _data(shape)), _nchw(torch, _data(shape, 1))
        y = a + b
        dy = _nchw(torch, _data(shape, 2), grad=False)
        return lambda: a + b, lambda: torch.autograd.grad(y, (a, b), dy, retain_graph=True)

    return f"add {'x'.join(map(str, shape[1:]))}", "add", 0.0, minires, torch_pair


def _dense(d_in: int, d_out: int, batch: int):
    def minires():
        import cupy

        x, w = cupy.asarray(_data((batch, d_in))), cupy.asarray(_data((d_in, d_out), 1))
        b = cupy.zeros(d_out, cupy.float32)
        _, cache = ops.dense_forward(x, w, b)
        dy = cupy.asarray(_data((batch, d_out), 2))
        return lambda: ops.dense_forward(x, w, b), lambda: ops.dense_backward(dy, cache)

    def torch_pair(torch):
        F = torch.nn.functional
        x = torch.tensor(_data((batch, d_in)), device="cuda", requires_grad=True)
        w = torch.tensor(_data((d_in, d_out), 1).T.copy(), device="cuda", requires_grad=True)
        b = torch.zeros(d_out, device="cuda", requires_grad=True)
        y = F.linear(x, w, b)
        dy = torch.tensor(_data((batch, d_out), 2), device="cuda")
        return lambda: F.linear(x, w, b), lambda: torch.autograd.grad(y, (x, w, b), dy, retain_graph=True)

    return f"dense {d_in}->{d_out}", "dense", 2.0 * batch * d_in * d_out, minires, torch_pair


def _loss(batch: int, classes: int = 10):
    labels = numpy.random.default_rng(3).integers(0, classes, batch)

    def minires():
        import cupy

        z, y = cupy.asarray(_data((batch, classes))), cupy.asarray(labels)
        _, cache = ops.softmax_cross_entropy_forward(z, y)
        return (lambda: ops.softmax_cross_entropy_forward(z, y),
                lambda: ops.softmax_cross_entropy_backward(1.0, cache))

    def torch_pair(torch):
        F = torch.nn.functional
        z = torch.tensor(_data((batch, classes)), device="cuda", requires_grad=True)
        y = torch.tensor(labels, device="cuda")
        loss = F.cross_entropy(z, y)
        return lambda: F.cross_entropy(z, y), lambda: torch.autograd.grad(loss, z, retain_graph=True)

    return f"softmax cross-entropy {batch}x{classes}", "softmax_cross_entropy", 0.0, minires, torch_pair


def _im2col_col2im(h: int, c: int, batch: int):
    """The im2col kernel (forward) and its gather adjoint col2im (backward), 3x3 'same'."""
    def minires():
        import cupy

        from ..backend import kernel
        from ..windows import plan_windows

        x = cupy.asarray(_data((batch, h, h, c)))
        im2col, col2im = kernel("im2col", x), kernel("col2im", x)
        window = plan_windows("im2col", (h, h), (3, 3), (1, 1), "same", ("same",))
        cols = im2col(x, window)
        return lambda: im2col(x, window), lambda: col2im(cols, x.shape, window)

    return f"im2col/col2im 3x3 {h}x{h}x{c}", "im2col", 0.0, minires, None


def _adam(size: int = SEED_PARAMETERS):
    """One Adam step over as many float32 values as the seed's model has parameters."""
    def minires():
        import cupy

        from ..optim import Adam

        params = [cupy.asarray(_data(size))]
        grads = [cupy.asarray(_data(size, 1))]
        opt = Adam()
        return lambda: opt.apply(params, grads), None

    def torch_pair(torch):
        p = torch.tensor(_data(size), device="cuda", requires_grad=True)
        p.grad = torch.tensor(_data(size, 1), device="cuda")
        opt = torch.optim.Adam([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
        return opt.step, None

    return f"adam step, {size} parameters", "adam", 0.0, minires, torch_pair


def seed_cases(batch: int = BATCH) -> list[tuple]:
    """(label, op, forward flops, minires maker, torch maker or None) in the model's order:
    the ops of ``minires.bench.kernels.seed_cases``, then the kernels without an op of their own."""
    cases = [_conv(32, 3, 64, 3, batch)]
    for h in (16, 8, 4):
        cases += [_conv(h, 64, 64, 3, batch), _conv(h, 64, 64, 1, batch)]
    cases += [_pool(h, 64, batch) for h in (32, 16, 8, 4)]
    cases += [_relu((batch, 32, 32, 64)), _add((batch, 8, 8, 64))]
    cases += [_dense(256, 128, batch), _dense(128, 10, batch), _loss(batch)]
    cases += [_im2col_col2im(16, 64, batch), _bias_relu((batch, 32, 32, 64)), _adam()]
    return cases


def run_kernels(repeats: int = 7, torch=None, peak_gflops: float | None = None, log=print) -> list[dict]:
    """Time every case; one row per (case, direction, framework), in ``report``'s row format."""
    rows = []
    for label, op, flops_forward, make_minires, make_torch in seed_cases():
        timings = {}
        forward, backward = make_minires()
        timings["cupy"] = (cupy_seconds(forward, repeats),
                           cupy_seconds(backward, repeats) if backward else None)
        if torch is not None and make_torch is not None:
            forward, backward = make_torch(torch)
            timings["torch"] = (torch_seconds(forward, repeats),
                                torch_seconds(backward, repeats) if backward else None)
        for d, direction in enumerate(("forward", "backward")):
            if timings["cupy"][d] is None:
                continue
            flops = flops_forward * (1 if direction == "forward" else 2)
            torch_time = timings.get("torch", (None, None))[d]
            for framework, pair in timings.items():
                seconds = pair[d]
                gflops = flops / seconds / 1e9 if flops else None
                rows.append(dict(case=label, op=op, direction=direction, framework=framework,
                                 seconds=seconds, gflops=gflops,
                                 torch_over_this=(torch_time / seconds) if torch_time else None,
                                 percent_of_peak=(100.0 * gflops / peak_gflops) if gflops and peak_gflops else None))
            log(f"  {label:34s} {direction:8s} " + "  ".join(
                f"{fw} {pair[d] * 1e3:8.4f} ms" for fw, pair in timings.items() if pair[d] is not None))
    return rows


# --- the seed's train step ----------------------------------------------------------------------

def _train_batch(batch: int):
    rng = numpy.random.default_rng(0)
    return rng.random((batch, 32, 32, 3), dtype=numpy.float32), rng.integers(0, 10, batch)


def minires_train_seconds(batch: int, repeats: int) -> dict:
    """Train step and inference of the seed's model on the cupy backend, data already on the GPU."""
    import cupy

    from ..models import build_resnet
    from ..optim import Adam

    x, y = _train_batch(batch)
    with backend.use_backend("cupy"):
        xd, yd = cupy.asarray(x), cupy.asarray(y)
        model = build_resnet(seed=0)
        model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        train = cupy_seconds(lambda: model.train_on_batch(xd, yd), repeats)
        infer = cupy_seconds(lambda: model(xd), repeats)
    return dict(train_seconds=train, inference_seconds=infer)


def torch_train_seconds(torch, batch: int, repeats: int) -> dict:
    """The same for PyTorch + cuDNN (channels-last), with the same model and recipe."""
    from ..frameworks.torch_resnet import build_seed_resnet, step_functions

    x, y = _train_batch(batch)
    model = build_seed_resnet(seed=0, channels_last=True).cuda()
    step, infer = step_functions(model, _nchw(torch, x, grad=False), torch.from_numpy(y).cuda())
    train = torch_seconds(step, repeats)
    model.eval()
    inference = torch_seconds(infer, repeats)
    return dict(train_seconds=train, inference_seconds=inference)


def run_train(repeats: int = 7, torch=None, log=print) -> list[dict]:
    """One row per (batch, framework): images/s for training and inference, ratio to PyTorch."""
    rows = []
    for batch in TRAIN_BATCHES:
        timings = {"cupy": minires_train_seconds(batch, repeats)}
        if torch is not None:
            timings["torch"] = torch_train_seconds(torch, batch, repeats)
        for framework, t in timings.items():
            row = dict(framework=framework, batch_size=batch,
                       train_images_per_second=batch / t["train_seconds"],
                       inference_images_per_second=batch / t["inference_seconds"])
            if "torch" in timings:
                row["train_ratio_to_torch"] = timings["torch"]["train_seconds"] / t["train_seconds"]
                row["inference_ratio_to_torch"] = timings["torch"]["inference_seconds"] / t["inference_seconds"]
            rows.append(row)
            log(f"  batch {batch:4d} {framework:6s} train {row['train_images_per_second']:10.1f} img/s, "
                f"inference {row['inference_images_per_second']:10.1f} img/s")
    return rows


# --- report -------------------------------------------------------------------------------------

def kernels_table(rows: list[dict]) -> str:
    """Ops and kernels: cupy and torch times, cupy's GFLOP/s, torch/cupy, % of the matmul peak."""
    keyed = {(r["case"], r["direction"], r["framework"]): r for r in rows}
    lines = ["| op | pass | cupy ms | torch ms | cupy GFLOP/s | torch/cupy | cupy % peak |",
             "|---|---|---|---|---|---|---|"]
    for case, direction in dict.fromkeys((r["case"], r["direction"]) for r in rows):
        mine, theirs = keyed[(case, direction, "cupy")], keyed.get((case, direction, "torch"))
        lines.append(f"| {case} | {direction} | {mine['seconds'] * 1e3:.4f} | "
                     f"{_fmt(theirs and theirs['seconds'] * 1e3, '.4f')} | {_fmt(mine['gflops'], '.1f')} | "
                     f"{_fmt(mine['torch_over_this'], '.2f')} | {_fmt(mine['percent_of_peak'], '.0f')} |")
    return "\n".join(lines)


def markdown(results: dict) -> str:
    d = results["device"]
    sections = [
        f"Measured {results['date']} on {d['gpu']} (compute capability {d['compute_capability']}, "
        f"{d['memory_gib']} GiB), CUDA runtime {d['cuda_runtime']}, CuPy {d['cupy']}, "
        f"torch {results['machine'].get('torch')}"
        + (f", cuDNN {d['cudnn']}" if d.get("cudnn") else "") + ". float32, TensorFloat-32 off "
        f"(NVIDIA_TF32_OVERRIDE={d['env_NVIDIA_TF32_OVERRIDE']}).",
        f"Ceilings: cuBLAS float32 matmul ({PEAK_N}^3) {results['matmul_peak_gflops']:.0f} GFLOP/s; "
        f"device-to-device copy {results['copy_bandwidth_gbs']:.0f} GB/s (read + write).",
    ]
    sections += [f"Note: {note}" for note in results["notes"]]
    for batch in TRAIN_BATCHES:
        rows = [r for r in results["train"]["rows"] if r["batch_size"] == batch]
        sections.append(f"### The seed's model, batch {batch}, float32\n\n" + train_table(rows))
    sections.append(f"### Ops and kernels at the seed's shapes, batch {BATCH}, float32\n\n"
                    + kernels_table(results["kernels"]["rows"]))
    return "\n\n".join(sections) + "\n"


def run_gpu_benchmarks(out_dir: Path = Path("benchmarks/results"), repeats: int = 7,
                       with_torch: bool = True, log=print) -> dict:
    """Run everything, write ``gpu.json`` and ``gpu.md`` under ``out_dir``; returns the results."""
    # Before any CUDA library starts: cuBLAS and cuDNN read it when they create their handles.
    os.environ.setdefault("NVIDIA_TF32_OVERRIDE", "0")
    backend.set_backend("cupy")             # raises, saying why, where there is no usable GPU
    notes = []
    torch = _torch_cuda() if with_torch else None
    if with_torch and torch is None:
        notes.append("PyTorch with CUDA is not importable here: minires results only, no ratios.")
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cudnn.benchmark = True   # cuDNN picks its fastest algorithm per shape
    results = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "machine": machine_description(),
               "device": device_description(), "notes": notes}
    log(f"minires bench gpu: {results['device']['gpu']}" + (", and PyTorch" if torch else ""))
    results["matmul_peak_gflops"] = matmul_peak_gflops()
    log(f"  cuBLAS float32 matmul peak ({PEAK_N}^3): {results['matmul_peak_gflops']:.0f} GFLOP/s")
    results["copy_bandwidth_gbs"] = copy_bandwidth_gbs()
    log(f"  device-to-device copy: {results['copy_bandwidth_gbs']:.0f} GB/s")
    results["train"] = {"rows": run_train(repeats, torch, log)}
    results["kernels"] = {"rows": run_kernels(repeats, torch, results["matmul_peak_gflops"], log)}

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_text(out_dir / "gpu.json", json.dumps(results, indent=2, default=str) + "\n")
    _write_text(out_dir / "gpu.md", markdown(results))
    log(f"results in {out_dir / 'gpu.json'}, {out_dir / 'gpu.md'}")
    return results

"""Timing helpers for the benchmarks: medians of repeated runs, and the machine's matmul peak.

Absolute times on a shared machine drift from one minute to the next, so every benchmark
reports its figures next to PyTorch's and next to a matrix-multiply peak measured in the same
run; the ratios are what carry from one run to another.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import statistics
import time
from typing import Callable

import numpy


def median_seconds(fn: Callable[[], object], repeats: int = 7, warmup: int = 2,
                   min_seconds: float = 0.05) -> float:
    """Median wall time of one call of ``fn``, after ``warmup`` calls.

    Each sample times enough back-to-back calls to last ``min_seconds``, so that tiny ops are
    not lost in the timer's resolution.
    """
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-7)
    inner = max(1, int(min_seconds / once))
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - start) / inner)
    return statistics.median(samples)


def matmul_peak_gflops(n: int = 2048, repeats: int = 5) -> float:
    """float32 matrix-product rate of NumPy's BLAS on this machine, in GFLOP/s (2 n^3 / time)."""
    rng = numpy.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=numpy.float32)
    b = rng.standard_normal((n, n), dtype=numpy.float32)
    seconds = median_seconds(lambda: a @ b, repeats=repeats, warmup=1, min_seconds=0.0)
    return 2.0 * n**3 / seconds / 1e9


def machine_description() -> dict:
    """What a reader needs to compare two result files."""
    info = {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
        # Other work on the machine: PyTorch's spinning OpenMP workers, and OpenBLAS', lose
        # far more to it than sleeping ones, so a busy machine's ratios mean little.
        "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import numba

        info["numba"] = numba.__version__
    except ImportError:
        info["numba"] = None
    try:   # the version only: importing torch here would put its OpenMP runtime in this process
        info["torch"] = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        info["torch"] = None
    return info

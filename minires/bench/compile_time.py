"""JIT compile time of the numba backend, kept out of every other timing and reported here.

Each measurement runs in a fresh Python process, so nothing compiled earlier is in memory:

- cold: with an empty Numba cache directory, every kernel is compiled from scratch;
- warm: a second process with the same directory loads the kernels from the cache.

The process times the first forward and backward call of every op at the seed's shapes
(compilation plus one run) and, for comparison, a second call (the run alone).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, sys, time
import minires
from minires import backend
from minires.bench.kernels import seed_cases

results = {}
start_all = time.perf_counter()
with backend.use_backend("numba"):
    for case in seed_cases():
        t0 = time.perf_counter()
        calls = case.make_minires()        # a training case runs its forward once here
        calls[-1]()                        # then its backward (an inference case: its one call)
        first = time.perf_counter() - t0
        t0 = time.perf_counter()
        for call in calls:
            call()
        second = time.perf_counter() - t0
        results[case.name] = {"first_call": first, "second_call": second}
print(json.dumps({"per_case": results, "total": time.perf_counter() - start_all}))
"""


def _measure(cache_dir: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    done = subprocess.run([sys.executable, "-c", _CHILD], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise RuntimeError(f"compile-time probe failed: {done.stderr.strip().splitlines()[-1:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(log=print) -> dict:
    """{"cold": ..., "warm": ...}: per-op first/second call seconds and the total."""
    with tempfile.TemporaryDirectory(prefix="minires-numba-cache-") as cache_dir:
        cold = _measure(cache_dir)
        warm = _measure(cache_dir)
    for label, result in (("cold", cold), ("warm", warm)):
        compile_seconds = sum(max(r["first_call"] - r["second_call"], 0.0) for r in result["per_case"].values())
        result["compile_seconds"] = compile_seconds
        log(f"  numba {label} cache: first calls in {result['total']:.2f} s, "
            f"of which about {compile_seconds:.2f} s compiling or loading kernels")
    return {"cold": cold, "warm": warm}

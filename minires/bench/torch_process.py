"""PyTorch's side of the benchmarks, timed in a child process of its own.

Each framework is timed in a process with nothing of the other in it: PyTorch's wheel brings
its own OpenMP runtime (``libgomp.so.1``), one per process, whose settings (read once, when
it loads) then hold for whatever else runs on it; and a notebook that imports both is a case
of its own, measured by ``shared_process`` (``--with-torch-loaded``). PyTorch is fastest with
its workers spinning between parallel regions (libgomp's default), so the child does not
inherit an ``OMP_WAIT_POLICY`` that ``minires.tune_process`` set (it sets one only where
Numba runs on OpenMP; docs/kernels.md).

Both processes keep freed memory for reuse (``minires.memory``), which speeds PyTorch up as
much as minires. The child runs right after minires' measurements, on the same machine, in
the same benchmark run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .. import process

_CHILD = r"""
import json, sys
from minires import memory
memory.reuse_freed_memory()
import torch
from minires.bench import algorithms, kernels, train_step
what, repeats, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if what == "kernels":
    result = kernels.torch_seconds(repeats)
elif what == "algorithms":
    result = algorithms.torch_milliseconds(batch, repeats)
else:
    result = train_step.torch_step_seconds(batch, repeats)
result["_torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
print(json.dumps(result))
"""


def torch_available() -> bool:
    """Whether PyTorch can be imported (checked in a child, so this process never loads it)."""
    done = subprocess.run([sys.executable, "-c", "import torch"], capture_output=True, check=False)
    return done.returncode == 0


def _child_environment() -> dict:
    """This process' environment, less the OMP_WAIT_POLICY that ``tune_process`` set: PyTorch
    reads it too, and runs slower with its workers asleep."""
    env = dict(os.environ)
    if "OMP_WAIT_POLICY" in process.made_settings():
        env.pop("OMP_WAIT_POLICY", None)
    return env


def measure(what: str, repeats: int, batch_size: int = 64) -> dict:
    """PyTorch timings for ``what`` ("kernels", "algorithms" or "train") from a fresh process."""
    done = subprocess.run([sys.executable, "-c", _CHILD, what, str(repeats), str(batch_size)],
                          capture_output=True, text=True, check=False, env=_child_environment())
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"minires bench: the PyTorch process failed ({what}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])

"""minires and PyTorch in one process: the train benchmark with torch imported beside minires.

This is how minires is used to check or compare a framework in a notebook: ``import torch``,
then minires, both running in turns. PyTorch's wheel brings its own OpenMP runtime
(``libgomp.so.1``), one per process, and whatever runs on it shares its settings; the child
here imports torch first, as such a notebook does, then calls ``minires.tune_process()``
(which keeps Numba's kernels off OpenMP, docs/kernels.md) and times minires' backends and
PyTorch in turns, in that one process. ``minires bench train --with-torch-loaded`` runs it
once per round, beside the processes of their own, and reports each figure against the
framework's own-process figure of the same rounds.
"""

from __future__ import annotations

import json
import subprocess
import sys

_CHILD = r"""
import json, sys
import torch
import minires
minires.tune_process()
from minires.bench import train_step
backends, repeats, batch = sys.argv[1].split(","), int(sys.argv[2]), int(sys.argv[3])
for name in backends:           # untimed: a new process runs its first steps slower (see measure)
    train_step.minires_step_seconds(name, batch, repeats)
result = {name: train_step.minires_step_seconds(name, batch, repeats) for name in backends}
result["torch"] = train_step.torch_step_seconds(batch, repeats)
print(json.dumps(result))
"""


def measure(backends: list[str], repeats: int, batch_size: int = 64) -> dict:
    """{framework: {"train_seconds", "inference_seconds"}} for minires' ``backends`` and
    PyTorch, timed in turns in one fresh process that imported torch first.

    minires' own-process figures come from the benchmark's process, which has run every
    earlier round; a new process runs its first steps slower (the numba train step about
    10 % slower over its first ten steps than after twenty, torch or no torch), so each
    backend here first runs one untimed pass of the same measurement. PyTorch's
    own-process figure comes from a new process each round, as its figure here does."""
    done = subprocess.run([sys.executable, "-c", _CHILD, ",".join(backends), str(repeats), str(batch_size)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"minires bench: the process with PyTorch and minires failed: {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])

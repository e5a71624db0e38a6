"""Peak resident memory of the seed's train step: minires (numba, numpy) and PyTorch, each in a
fresh process of its own.

A process' peak resident set (``VmHWM``) counts everything it ever held at once: the
interpreter, the libraries it imported, the model, and the largest step. Each framework gets a
fresh process, so one's peak never hides inside another's, and the same allocator setting as
the timings (freed memory kept for reuse, ``minires.memory``), under which a process keeps its
peak. Reported for each: the peak, the resident memory just before the first step (imports,
model, batch and optimizer built), and their difference, what the steps themselves added.
The peak is read inside the child: the rusage of a child started by a large parent counts the
parent's memory at the fork.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .. import process

STEPS = 3                # train steps per process: the first allocates, the later ones reuse

_CHILD = r"""
import json, sys
from minires.bench import peak_memory
print(json.dumps(peak_memory.measure_here(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))))
"""


def _status_kib(field: str) -> int | None:
    """A ``/proc/self/status`` field in KiB (``VmHWM``, ``VmRSS``), None where there is none."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def measure_here(framework: str, batch_size: int, steps: int = STEPS) -> dict:
    """In this (fresh) process: build the seed's model in ``framework`` ("numba", "numpy" or
    "torch"), run ``steps`` train steps on one batch, and return the resident memory in MiB."""
    from .. import memory
    from .train_step import _batch

    memory.reuse_freed_memory()
    x, y = _batch(batch_size)
    if framework == "torch":
        import torch

        from ..frameworks.torch_resnet import build_seed_resnet, step_functions, to_tensor

        model = build_seed_resnet(seed=0, channels_last=True)
        step, _ = step_functions(model, to_tensor(x), torch.from_numpy(y))
    else:
        from .. import backend
        from ..models import build_resnet
        from ..optim import Adam

        backend.set_backend(framework)
        model = build_resnet(seed=0)
        model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])

        def step():
            model.train_on_batch(x, y)
    before = _status_kib("VmRSS")
    for _ in range(steps):
        step()
    peak = _status_kib("VmHWM")
    if peak is None:                      # no /proc (not Linux): the rusage peak, less exact
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // (1024 if sys.platform == "darwin" else 1)
    mib = 1024.0
    return {"peak_rss_mib": peak / mib,
            "rss_before_steps_mib": None if before is None else before / mib,
            "steps_added_mib": None if before is None else (peak - before) / mib,
            "steps": steps}


def _environment(framework: str) -> dict:
    """This process' environment; PyTorch's child without the wait policy tune_process set
    (as for its timings: ``torch_process``)."""
    env = dict(os.environ)
    if framework == "torch" and "OMP_WAIT_POLICY" in process.made_settings():
        env.pop("OMP_WAIT_POLICY", None)
    return env


def measure(framework: str, batch_size: int = 64, steps: int = STEPS) -> dict:
    """``measure_here`` in a fresh child process; a RuntimeError names the framework if it fails."""
    done = subprocess.run([sys.executable, "-c", _CHILD, framework, str(batch_size), str(steps)],
                          capture_output=True, text=True, check=False, env=_environment(framework))
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"minires bench: the peak-memory process failed ({framework}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])

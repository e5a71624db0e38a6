"""Frameworks' processes: one worker per framework, for all of its cases, started together.

A framework's start-up (importing PyTorch, JAX, Keras) takes longer than its cases, so each
framework gets one process for every case, and all of them start before minires computes its
own opinions, which they overlap. Each worker reads its batch from a directory of its own
and writes its results there (``minires.verify.worker``); its stdout carries one line per case
done, counted here for the progress line, and its stderr is kept for the reason of a failure.
The workers inherit this process' environment, thread settings included: with several
frameworks on few cores, OpenMP workers that sleep between the cases' small ops
(``minires.tune_process``) leave the cores to the other processes.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from pathlib import Path

from .. import frameworks
from .casefile import PROGRESS, read_results, write_batch

_MINIRES_ROOT = str(Path(__file__).resolve().parents[2])


class FrameworkFailed(RuntimeError):
    """A framework's worker could not run (its adapter failed to import, or it crashed)."""


def worker_environment(name: str) -> dict:
    """This process' environment with the framework's registry settings, and this minires
    first on the path, so the worker runs the same code as its parent."""
    env = dict(os.environ)
    env.update(frameworks.FRAMEWORKS[name][1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (_MINIRES_ROOT, env.get("PYTHONPATH")) if p)
    return env


class Worker:
    """One framework's process, started on a batch of cases in ``directory``."""

    def __init__(self, name: str, cases: list, directory: Path, done: queue.Queue):
        self.name = name
        self.directory = directory
        module = frameworks.FRAMEWORKS[name][0]
        write_batch(directory, name, module, cases)
        self._stderr = open(directory / "stderr.txt", "w")
        self.process = subprocess.Popen([sys.executable, "-m", "minires.verify.worker", name, str(directory)],
                                        stdout=subprocess.PIPE, stderr=self._stderr, text=True,
                                        env=worker_environment(name))
        self._reader = threading.Thread(target=self._count, args=(done,), daemon=True)
        self._reader.start()

    def _count(self, done: queue.Queue) -> None:
        for line in self.process.stdout:
            if line.startswith(PROGRESS):
                done.put(self.name)

    def finished(self) -> bool:
        return self.process.poll() is not None and not self._reader.is_alive()

    def results(self) -> tuple[dict, dict]:
        """(versions, results by case id); raises FrameworkFailed with the worker's last line
        of stderr when it did not finish."""
        code = self.process.wait()
        self._reader.join()
        self._stderr.close()
        if code != 0:
            lines = (self.directory / "stderr.txt").read_text(errors="replace").strip().splitlines()
            raise FrameworkFailed(f"{self.name}: its process failed ({lines[-1] if lines else f'exit {code}'})")
        return read_results(self.directory)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()

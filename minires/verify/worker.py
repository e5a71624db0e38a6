"""One framework's side of ``minires verify``, in a process of its own:

    python -m minires.verify.worker FRAMEWORK DIR

DIR holds a batch of cases (``minires.verify.casefile``) and the adapter module to run them
with; the parent started this process with the environment of the framework's registry entry
(``minires.frameworks.FRAMEWORKS``), so Keras finds its backend before it is imported, and no
framework is ever imported in minires' own process. The worker imports the adapter, runs
every case, and writes the outputs back to DIR. A case on which the framework raises becomes
an "error" result with the exception's message (``NotImplementedError``: "unsupported", an
option the adapter cannot express); only a failure to import the adapter ends the process,
with a non-zero exit and the reason on stderr. After each case it prints a line starting with
``PROGRESS`` for the parent's progress line.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path

import numpy as np

from .cases import laid_out
from .casefile import PROGRESS, read_batch, write_results


def load_adapter(module: str):
    """The adapter module: a dotted name, or the path of a .py file."""
    if module.endswith(".py"):
        spec = importlib.util.spec_from_file_location(f"_verify_adapter_{Path(module).stem}", module)
        adapter = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(adapter)
        return adapter
    return importlib.import_module(module)


def run_batch(adapter, cases) -> dict:
    results = {}
    for case in cases:
        try:
            outputs = adapter.run_op(case.op, laid_out(case), dict(case.options), case.dy, case.dtype)
            results[case.id] = {"status": "ok", "outputs": {k: np.asarray(v) for k, v in outputs.items()}}
        except NotImplementedError as exc:
            results[case.id] = {"status": "unsupported", "message": str(exc)}
        except Exception as exc:
            results[case.id] = {"status": "error", "message": f"{type(exc).__name__}: {exc}".strip()}
        print(PROGRESS, case.id, flush=True)
    return results


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m minires.verify.worker FRAMEWORK DIR", file=sys.stderr)
        return 2
    name, directory = argv[0], Path(argv[1])
    framework, module, cases = read_batch(directory)
    if framework != name:
        print(f"{directory} holds cases for {framework}, not {name}", file=sys.stderr)
        return 2
    adapter = load_adapter(module)
    adapter.NAME = name
    versions = dict(adapter.versions())
    write_results(directory, versions, run_batch(adapter, cases))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Cases and results on disk: JSON for what describes them, ``.npz`` for their arrays.

Arrays are saved without pickle and read with ``allow_pickle=False``, so a case file from
anywhere is data, never code. The same format carries a batch of cases to a framework's
worker process and its results back (a directory), and a single reproducer (a ``.json``
beside an ``.npz`` of the same name).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .cases import Case

CASES_JSON, INPUTS_NPZ = "cases.json", "inputs.npz"
RESULTS_JSON, OUTPUTS_NPZ = "results.json", "outputs.npz"
PROGRESS = "PROGRESS"        # a worker's stdout line after each case, for the parent's progress


def describe(case: Case) -> dict:
    """Everything about a case but its arrays, as JSON-ready values."""
    return {"id": case.id, "op": case.op, "dtype": case.dtype, "options": case.options, "note": case.note,
            "exposes": list(case.exposes), "smooth": case.smooth, "noncontiguous": list(case.noncontiguous),
            "inputs": list(case.inputs)}


def arrays_of(case: Case, prefix: str) -> dict:
    out = {f"{prefix}{name}": value for name, value in case.inputs.items()}
    out[f"{prefix}dy"] = case.dy
    return out


def rebuild(meta: dict, arrays, prefix: str) -> Case:
    """The case that ``describe`` and ``arrays_of`` wrote."""
    inputs = {name: arrays[f"{prefix}{name}"] for name in meta["inputs"]}
    return Case(meta["id"], meta["op"], meta["dtype"], inputs, meta["options"], arrays[f"{prefix}dy"],
                meta.get("note", ""), tuple(meta.get("exposes", ())), bool(meta.get("smooth", True)),
                tuple(meta.get("noncontiguous", ())))


def load_npz(path: Path) -> dict:
    with np.load(path, allow_pickle=False) as data:
        return {key: data[key] for key in data.files}


def write_batch(directory: Path, framework: str, module: str, cases: list[Case]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for case in cases:
        arrays.update(arrays_of(case, f"{case.id}."))
    np.savez(directory / INPUTS_NPZ, **arrays)
    text = json.dumps({"framework": framework, "module": module, "cases": [describe(c) for c in cases]})
    (directory / CASES_JSON).write_text(text)


def read_batch(directory: Path) -> tuple[str, str, list[Case]]:
    """(framework, adapter module, cases)."""
    meta = json.loads((directory / CASES_JSON).read_text())
    arrays = load_npz(directory / INPUTS_NPZ)
    return meta["framework"], meta["module"], [rebuild(m, arrays, f"{m['id']}.") for m in meta["cases"]]


def write_results(directory: Path, versions: dict, results: dict) -> None:
    """``results``: case id -> {"status": "ok" | "error" | "unsupported", "message": str,
    "outputs": {name: array}}."""
    arrays, described = {}, {}
    for case_id, result in results.items():
        outputs = result.get("outputs", {})
        for name, value in outputs.items():
            arrays[f"{case_id}.{name}"] = value
        described[case_id] = {"status": result["status"], "message": result.get("message", ""),
                              "outputs": list(outputs)}
    np.savez(directory / OUTPUTS_NPZ, **arrays)
    (directory / RESULTS_JSON).write_text(json.dumps({"versions": versions, "results": described}))


def read_results(directory: Path) -> tuple[dict, dict]:
    """(versions, results) as ``write_results`` took them."""
    meta = json.loads((directory / RESULTS_JSON).read_text())
    arrays = load_npz(directory / OUTPUTS_NPZ)
    results = {}
    for case_id, result in meta["results"].items():
        outputs = {name: arrays[f"{case_id}.{name}"] for name in result["outputs"]}
        results[case_id] = {"status": result["status"], "message": result["message"], "outputs": outputs}
    return meta["versions"], results

"""Reproducers: every disagreement as a case file, and ``minires verify --replay`` to rerun it.

A reproducer is two files of the same name, ``<case>-<framework>.json`` and ``.npz``:

- the JSON: the op, its options, the dtype, the framework, the versions it ran with, the case
  (its note, layout, which conventions it exposes) and, per disagreeing output, the relative
  error, the tolerance, the outlier and any note (a wrong dtype, the framework's exception);
- the ``.npz`` (read with ``allow_pickle=False``): the inputs and the upstream gradient
  (``input.<name>``, ``input.dy``), the framework's outputs (``framework.<output>``) and
  minires' reference in float64 (``minires.<output>``).

``replay`` runs the case again on minires and on the framework, and compares as ``verify``
does: it agrees now, or it does not.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .casefile import arrays_of, describe, load_npz, rebuild
from .compare import TOLERANCES

INPUT = "input."


def save_failures(report, directory) -> list[Path]:
    """Write each of ``report``'s failures to ``directory``; sets each failure's path."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for failure in report.failures:
        case = failure.case
        stem = directory / f"{case.id}-{failure.framework}"
        arrays = arrays_of(case, INPUT)
        arrays.update({f"framework.{k}": np.asarray(v) for k, v in failure.values.items()})
        arrays.update({f"minires.{k}": np.asarray(v) for k, v in failure.expected.items()})
        np.savez(stem.with_suffix(".npz"), **arrays)
        meta = {"op": case.op, "options": case.options, "dtype": case.dtype, "framework": failure.framework,
                "versions": {"minires": report.versions.get("minires"),
                             **report.framework_versions.get(failure.framework, {})},
                "case": describe(case),
                "outputs": {output: {"max_rel_err": j.err, "tol": TOLERANCES[case.dtype], "verdict": j.verdict,
                                     "outlier": ", ".join(j.outliers), "notes": list(j.notes)}
                            for output, j in failure.judgements.items()},
                "errors": [failure.error] if failure.error else []}
        stem.with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
        failure.path = stem.with_suffix(".json")
        paths.append(failure.path)
    return paths


def load_reproducer(path) -> tuple[dict, object]:
    """(the JSON, the case) of a reproducer given by its .json, its .npz or their stem."""
    path = Path(path)
    stem = path.with_suffix("") if path.suffix in (".json", ".npz") else path
    json_path, npz_path = stem.with_suffix(".json"), stem.with_suffix(".npz")
    for needed in (json_path, npz_path):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed}: no such file (a reproducer is a .json and an .npz)")
    try:
        meta = json.loads(json_path.read_text())
        case = rebuild(meta["case"], load_npz(npz_path), INPUT)
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{json_path}: not a minires verify reproducer ({exc})") from None
    return meta, case


def replay(path, stream=None) -> tuple[str, int]:
    """(the comparison as text, 0 when the case agrees now or 1 when it does not)."""
    from .engine import verify

    meta, case = load_reproducer(path)
    framework = meta["framework"]
    report = verify([framework], cases=[case], stream=stream)
    saved = meta.get("outputs", {})
    lines = [f"replay {Path(path).name}: {case.op} {case.dtype} against {framework} "
             f"({case.note or 'a random case'}; options {json.dumps(case.options)})",
             "saved with: " + ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()),
             "now:        " + ", ".join(f"{k} {v}" for k, v in report.versions.items())]
    for error in meta.get("errors", []):
        lines.append(f"saved error: {error}")
    lines.append(f"{'output':<8}{'saved':<12}{'now':<12}verdict now")
    for cell in report.cells:
        before = saved.get(cell["output"], {})
        then = "ok" if not before else (f"{before['max_rel_err']:.1e}" if before.get("max_rel_err") is not None
                                          else "error")
        now = "error" if cell["max_rel_err"] is None else f"{cell['max_rel_err']:.1e}"
        verdict = cell["verdict"] + (f" ({cell['convention']})" if cell["convention"] else "")
        verdict += f" (outlier {cell['outlier']})" if cell["outlier"] else ""
        lines.append(f"{cell['output']:<8}{then:<12}{now:<12}{verdict}")
    notes = [note for failure in report.failures for j in failure.judgements.values() for note in j.notes]
    lines += [f"  {note}" for note in dict.fromkeys(notes)]
    lines += [f"could not run {problem}" for problem in report.problems]
    agrees = not report.disagrees and bool(report.cells)
    lines.append(f"tolerance {TOLERANCES[case.dtype]:.0e}: " + ("agrees now" if agrees else "still disagrees"))
    return "\n".join(lines), 0 if agrees else 1

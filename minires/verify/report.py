"""The report of ``minires verify``: a table on the terminal, a markdown page, a JSON file.

The table has one row per (op, output, dtype) and one column per framework. A cell reads

    ok 2.2e-16      agree: the worst relative error over the cases, within the tolerance
    conv 0.0e+00 [1]   a convention explains the difference (footnote [1] names it); the
                    figure is the error against minires recomputed on the framework's side
    FAIL 1.2e-08    disagree; the disagreements below name the outlier
    FAIL error      the framework raised on a case (the message is listed below)

(A whole-model check may give other verdicts, such as "error"; they count as failures.)

Below it: the sides each framework took on the conventions (measured on the cases built to
expose them), and every disagreement with its outlier and, with ``--save-failures``, the
reproducer to replay.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from .conventions import CONVENTIONS

_SHORT = {"agree": "ok", "convention": "conv", "disagree": "FAIL"}


def _err(value) -> str:
    return "error" if value is None else f"{value:.1e}"


def _frameworks(cells: list) -> list[str]:
    seen = []
    for cell in cells:
        if cell["framework"] not in seen:
            seen.append(cell["framework"])
    return seen


def _rows(cells: list):
    """[((op, output, dtype), {framework: cell})] in the cells' order."""
    rows: dict = {}
    for cell in cells:
        rows.setdefault((cell["op"], cell["output"], cell["dtype"]), {})[cell["framework"]] = cell
    return list(rows.items())


def _footnotes(cells: list) -> list[str]:
    notes = []
    for cell in cells:
        if cell["convention"] and cell["convention"] not in notes:
            notes.append(cell["convention"])
    return notes


def _entry(cell, notes: list[str]) -> str:
    if cell is None:
        return "-"
    text = f"{_SHORT.get(cell['verdict'], cell['verdict'].upper())} {_err(cell['max_rel_err'])}"
    if cell["verdict"] == "convention":
        text += "".join(f" [{notes.index(c) + 1}]" for c in cell["convention"].split("; "))
    return text


def _summary(cells: list) -> str:
    counts = Counter(cell["verdict"] for cell in cells)
    others = "".join(f", {n} {verdict}" for verdict, n in counts.items()
                     if verdict not in ("agree", "convention", "disagree"))
    return (f"{len(cells)} cells: {counts['agree']} agree, {counts['convention']} convention, "
            f"{counts['disagree']} disagree{others}")


def _grid(cells: list, notes: list[str]) -> list[list[str]]:
    frameworks = _frameworks(cells)
    lines = [["op", "output", "dtype", *frameworks]]
    for (op, output, dtype), by_framework in _rows(cells):
        lines.append([op, output, dtype, *(_entry(by_framework.get(f), notes) for f in frameworks)])
    return lines


def _versions(versions: dict) -> str:
    return ", ".join(f"{name} {version}" for name, version in versions.items())


def side_lines(sides: dict) -> list[tuple[str, str, str]]:
    """[(convention, framework, "side (n cases)")] for every side measured."""
    out = []
    for name, convention in CONVENTIONS.items():
        for framework, measured in sides.items():
            if name in measured:
                counts = measured[name]
                text = ", ".join(f"{side} ({n} case{'s' if n != 1 else ''})" for side, n in counts.most_common())
                out.append((name, framework, text))
    return out


def _disagreement_lines(report, cells: list) -> list[str]:
    lines = []
    for cell in cells:
        if cell["verdict"] in ("agree", "convention"):
            continue
        tol = f"{cell['tol']:.0e}" if isinstance(cell.get("tol"), (int, float)) else cell.get("tol")
        lines.append(f"{cell['op']} {cell['output']} {cell['dtype']} against {cell['framework']}: "
                     f"{cell['verdict']}, worst relative error {_err(cell['max_rel_err'])} (tolerance {tol}); "
                     f"outlier: {cell['outlier']}")
        for failure in report.failures:
            where = (failure.case.op, failure.framework, failure.case.dtype)
            if where != (cell["op"], cell["framework"], cell["dtype"]):
                continue
            judgement = failure.judgements.get(cell["output"])
            if judgement is None:
                continue
            where = f", reproducer {failure.path}" if failure.path else ""
            if failure.error:
                what = f"raised {failure.error}"
            else:
                what = ", ".join([f"error {_err(judgement.err)}", *judgement.notes])
            lines.append(f"    case {failure.case.id} ({failure.case.note or 'random'}): {what}{where}")
    return lines


def format_text(report) -> str:
    """The terminal table."""
    cells = report.cells
    notes = _footnotes(cells)
    out = [f"minires verify: {_versions(report.versions)}",
           "relative error max|a - b| / max(max|b|, floor) against minires' reference; "
           "tolerance float64 1e-10, float32 1e-4 (docs/verify.md)", ""]
    grid = _grid(cells, notes)
    widths = [max(len(row[i]) for row in grid) for i in range(len(grid[0]))]
    out += ["  ".join(text.ljust(width) for text, width in zip(row, widths)).rstrip() for row in grid]
    out += [f"[{i + 1}] {note}" for i, note in enumerate(notes)]
    measured = side_lines(report.sides)
    if measured:
        out += ["", "conventions (the side each framework took, on the cases built to expose it):"]
        out += [f"  {name}: minires {CONVENTIONS[name].minires}; {framework} {text}"
                for name, framework, text in measured]
    for problem in report.problems:
        out.append(f"could not run {problem}")
    disagreements = _disagreement_lines(report, cells)
    if disagreements:
        out += ["", "disagreements:"] + [f"  {line}" for line in disagreements]
        if not any(f.path for f in report.failures):
            out.append("  (--save-failures DIR writes each case as a reproducer for --replay)")
    out += ["", _summary(cells)]
    return "\n".join(out)


def format_markdown(report) -> str:
    """The same report as a markdown page."""
    cells = report.cells
    notes = _footnotes(cells)
    grid = _grid(cells, notes)
    out = ["# minires verify", "", f"Versions: {_versions(report.versions)}.", "",
           "Relative error `max|a - b| / max(max|b|, floor)` against minires' loop reference; "
           "tolerance 1e-10 in float64, 1e-4 in float32 (docs/verify.md explains both).", "",
           "| " + " | ".join(grid[0]) + " |", "|" + "---|" * len(grid[0])]
    out += ["| " + " | ".join(row) + " |" for row in grid[1:]]
    if notes:
        out += [""] + [f"[{i + 1}] {note}  " for i, note in enumerate(notes)]
    measured = side_lines(report.sides)
    if measured:
        out += ["", "## Conventions", "", "| convention | minires | framework | side taken |", "|---|---|---|---|"]
        out += [f"| {name} | {CONVENTIONS[name].minires} | {framework} | {text} |"
                for name, framework, text in measured]
    disagreements = _disagreement_lines(report, cells)
    if disagreements or report.problems:
        out += ["", "## Disagreements", ""]
        out += [f"    - {line.strip()}" if line.startswith("    ") else f"- {line}" for line in disagreements]
        out += [f"- could not run {problem}" for problem in report.problems]
    out += ["", _summary(cells), ""]
    return "\n".join(out)


def write_json(report, path: Path) -> None:
    Path(path).write_text(json.dumps(report.to_json(), indent=1) + "\n")

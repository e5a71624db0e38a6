"""The engine of ``minires verify``: run every case everywhere, judge, and gather the cells.

    report = verify(["torch"], ops=["conv2d"], dtypes=["float64"], random_cases=2, seed=0)
    report.disagrees          # True when any cell's verdict is "disagree"
    report.to_json()          # {"versions": {...}, "cells": [...]}

The frameworks' workers start first and run while minires computes its opinions of every
case (``minires.verify.opinions``); then each output of each case is judged
(``minires.verify.verdicts``) and the judgements are gathered into one cell per
(op, output, framework, dtype): the cases judged, the worst relative error, the tolerance,
the verdict, the convention and the outlier.
"""

from __future__ import annotations

import functools
import queue
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from ..progress import Progress
from .cases import DEFAULT_RANDOM_CASES, DTYPES, Case, build_cases
from .compare import TOLERANCES
from .conventions import CONVENTIONS, alternatives
from .opinions import Opinions
from .runner import FrameworkFailed, Worker
from .specs import OPS, SPECS
from .verdicts import Judgement, judge, side_taken


@dataclass
class Failure:
    """One case on which a framework disagrees: the outputs that do, and the arrays."""
    case: Case
    framework: str
    judgements: dict                 # output -> Judgement, the disagreeing ones
    values: dict                     # the framework's outputs
    expected: dict                   # minires' reference, float64 from the case's values
    error: str | None = None         # the framework's exception on this case
    path: Path | None = None         # where it was saved as a reproducer


@dataclass
class Report:
    versions: dict
    cells: list                       # the JSON cells, in order
    failures: list = field(default_factory=list)
    sides: dict = field(default_factory=dict)       # framework -> convention -> Counter(side)
    problems: list = field(default_factory=list)    # frameworks that could not run, why
    framework_versions: dict = field(default_factory=dict)    # framework -> its versions()

    @property
    def disagrees(self) -> bool:
        return bool(self.problems) or any(cell["verdict"] not in ("agree", "convention") for cell in self.cells)

    def to_json(self) -> dict:
        return {"versions": self.versions, "cells": self.cells}


class _Cell:
    def __init__(self):
        self.cases = 0
        self.worst = None
        self.unmeasured = False
        self.verdicts = Counter()
        self.conventions = []
        self.outliers = []

    def add(self, j: Judgement) -> None:
        self.cases += 1
        self.verdicts[j.verdict] += 1
        if j.err is None:
            self.unmeasured = True
        elif self.worst is None or j.err > self.worst:
            self.worst = j.err
        if j.convention and j.convention not in self.conventions:
            self.conventions.append(j.convention)
        for name in j.outliers:
            if name not in self.outliers:
                self.outliers.append(name)

    def as_json(self, op, output, framework, dtype) -> dict:
        verdict = ("disagree" if self.verdicts["disagree"] else
                   "convention" if self.verdicts["convention"] else "agree")
        return {"op": op, "output": output, "framework": framework, "dtype": dtype, "cases": self.cases,
                "max_rel_err": None if self.unmeasured else self.worst, "tol": TOLERANCES[dtype],
                "verdict": verdict,
                "convention": "; ".join(self.conventions) if self.conventions and verdict != "disagree" else None,
                "outlier": ", ".join(self.outliers) if verdict == "disagree" else None}


def _drain(done: queue.Queue) -> int:
    count = 0
    while True:
        try:
            done.get_nowait()
        except queue.Empty:
            return count
        count += 1


def run_frameworks(cases: list[Case], frameworks: list[str], stream=None) -> tuple[dict, dict, list, dict]:
    """(minires' opinions by case id, results by framework, problems, versions by framework)."""
    stream = sys.stderr if stream is None else stream
    done: queue.Queue = queue.Queue()
    opinions, results, problems, versions = {}, {}, [], {}
    bar = Progress(len(cases) * (1 + len(frameworks)),
                   f"verify ({', '.join(['minires', *frameworks])})", unit="results", mode="line",
                   rate=False, stream=stream, delay=0.5)
    with tempfile.TemporaryDirectory(prefix="minires-verify-") as tmp:
        workers = []
        try:
            for name in frameworks:
                workers.append(Worker(name, cases, Path(tmp) / name, done))
            for case in cases:
                opinions[case.id] = Opinions(case)
                bar.update(1 + _drain(done))
            while not all(w.finished() for w in workers):
                try:
                    done.get(timeout=0.2)
                    bar.update(1)
                except queue.Empty:
                    pass
            bar.update(_drain(done))
            for worker in workers:
                try:
                    versions[worker.name], results[worker.name] = worker.results()
                except FrameworkFailed as exc:
                    problems.append(str(exc))
        finally:
            for worker in workers:
                worker.stop()
    bar.close()
    return opinions, results, problems, versions


def _outputs_given(cases: list[Case], results: dict):
    """A function (framework, case) -> the outputs that framework gives for that case's op:
    a case it raised on fails those. (ONNX Runtime's exception on a max-pool is no missing
    gradient: it computes none, anywhere.)"""
    given = defaultdict(set)
    for framework, by_case in results.items():
        for case in cases:
            result = by_case.get(case.id)
            if result is not None and result["status"] == "ok":
                given[(framework, case.op)].update(result["outputs"])
                given[framework].update(o for o in result["outputs"] if o != "y")

    def outputs(framework: str, case: Case) -> list[str]:
        known = given[(framework, case.op)]
        if known:
            return [o for o in case.outputs if o in known]
        return case.outputs if given[framework] else ["y"]
    return outputs


def _in_order(cells: dict, frameworks: list[str]) -> list[dict]:
    ordered = []
    for op in OPS:
        for output in SPECS[op].outputs(SPECS[op].inputs):
            for framework in frameworks:
                for dtype in DTYPES:
                    key = (op, output, framework, dtype)
                    if key in cells:
                        ordered.append(cells[key].as_json(*key))
    return ordered


def judge_all(cases: list[Case], opinions: dict, results: dict, frameworks: list[str]) -> tuple[list, list, dict]:
    """(cells, failures, sides) from minires' opinions and the frameworks' results."""
    cells = defaultdict(_Cell)
    failures = []
    sides: dict = {}
    outputs_given = _outputs_given(cases, results)
    for case in cases:
        mine = opinions[case.id]
        others = functools.cache(functools.partial(alternatives, case))     # computed when first asked
        for framework in frameworks:
            result = results.get(framework, {}).get(case.id)
            if result is None or result["status"] == "unsupported":
                continue
            if result["status"] == "error":
                failing = {o: Judgement("disagree", None, outliers=(framework,), notes=(result["message"],))
                           for o in outputs_given(framework, case)}
                for output, j in failing.items():
                    cells[(case.op, output, framework, case.dtype)].add(j)
                failures.append(Failure(case, framework, failing, {}, _expected(mine), result["message"]))
                continue
            values = result["outputs"]
            failing = {}
            for output in case.outputs:
                if output in values:
                    j = judge(mine, output, framework, values[output], others)
                    cells[(case.op, output, framework, case.dtype)].add(j)
                    if j.verdict == "disagree":
                        failing[output] = j
            if failing:
                failures.append(Failure(case, framework, failing, values, _expected(mine)))
            for name in case.exposes:
                side = side_taken(mine, CONVENTIONS[name], values, others)
                if side is not None:
                    sides.setdefault(framework, {}).setdefault(name, Counter())[side] += 1
    return _in_order(cells, frameworks), failures, sides


def _expected(opinions: Opinions) -> dict:
    exact = opinions.exact
    return {} if isinstance(exact, BaseException) else exact


def verify(frameworks: list[str], ops=OPS, dtypes=DTYPES, random_cases: int = DEFAULT_RANDOM_CASES,
           seed: int = 0, cases: list[Case] | None = None, stream=None) -> Report:
    """Check ``frameworks`` (names in ``minires.frameworks.FRAMEWORKS``) on ``ops`` in
    ``dtypes``: the adversarial cases and ``random_cases`` random ones per op and dtype drawn
    from ``seed`` (or exactly ``cases``). Progress goes to ``stream`` (stderr)."""
    from .. import __version__

    if cases is None:
        cases = build_cases(ops, dtypes, random_cases, seed)
    opinions, results, problems, versions = run_frameworks(cases, list(frameworks), stream)
    cells, failures, sides = judge_all(cases, opinions, results, list(frameworks))
    merged = {"minires": __version__}
    for framework_versions in versions.values():
        merged.update(framework_versions)
    return Report(merged, cells, failures, sides, problems, versions)

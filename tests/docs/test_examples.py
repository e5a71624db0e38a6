"""Every Python example in README.md and docs/*.md runs, as written, and its assertions hold.

A block fenced as ```python is run in a fresh namespace, in a temporary working directory,
on the numpy backend. A block that cannot run here (it needs a download or code from
elsewhere) is preceded by the line ``<!-- not run: REASON -->``, which says why; any other
block that fails, fails this test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import minires

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^(?P<indent> *)```python[^\n]*\n(?P<code>.*?)^(?P=indent)```", re.S | re.M)
NOT_RUN = re.compile(r"<!-- not run: (?P<reason>[^>]+?) -->\s*$")


def examples(path: Path):
    """(line number, code, reason it is not run or None) of each Python block of a file."""
    text = path.read_text()
    for match in FENCE.finditer(text):
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = NOT_RUN.search(before)
        indent = len(match.group("indent"))
        code = "\n".join(line[indent:] for line in match.group("code").splitlines())
        yield text.count("\n", 0, match.start()) + 1, code, skip.group("reason") if skip else None


FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CASES = [pytest.param(path, line, code, reason, id=f"{path.name}:{line}")
         for path in FILES for line, code, reason in examples(path)]


@pytest.mark.parametrize("path, line, code, reason", CASES)
def test_example_runs(path, line, code, reason, tmp_path, monkeypatch, capsys):
    if reason:
        pytest.skip(f"{path.name}:{line} is not run: {reason}")
    monkeypatch.chdir(tmp_path)
    with minires.use_backend("numpy"):
        exec(compile(code, f"{path.name}:{line}", "exec"), {"__name__": "__example__"})


def test_the_examples_are_found():
    """The extraction itself: the worked examples of ops.md and README.md are among them."""
    names = {(c.values[0].name, c.values[3] is None) for c in CASES}
    assert ("ops.md", True) in names and ("README.md", True) in names
    assert sum(1 for c in CASES if c.values[3] is None) >= 8

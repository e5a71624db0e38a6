"""Every Python example in README.md and docs/*.md runs, as written, and its assertions hold.

The ```python blocks of one file run in order in one namespace, as one program (a page
may build on its earlier blocks), in a temporary working directory, on the numpy backend. A block that cannot run here (it needs a download or code from
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


FILES = [path for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
         if any(True for _ in examples(path))]


@pytest.mark.parametrize("path", FILES, ids=[path.name for path in FILES])
def test_examples_run(path, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__example__"}
    with minires.use_backend("numpy"):
        for line, code, reason in examples(path):
            if reason is None:
                # Blank lines first, so that a traceback gives the line in the file.
                exec(compile("\n" * line + code, str(path.relative_to(ROOT)), "exec"), namespace)


def test_the_examples_are_found():
    """The extraction itself: README.md's, ops.md's and the training step's are among them,
    and the one block not run says why."""
    found = {path.name: list(examples(path)) for path in FILES}
    assert {"README.md", "ops.md", "winograd.md", "training-step.md"} <= set(found)
    assert sum(len(blocks) for blocks in found.values()) >= 12
    assert [reason for _, _, reason in found["README.md"] if reason] == [
        "it needs the seed article's own build_resnet and CIFAR-10's download"]

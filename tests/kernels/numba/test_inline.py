"""Every file whose kernels compile in ``minires.kernels.numba._inline``'s helpers records that
file's digest: Numba keys its cache by the caller's file alone, so a change to the helpers
must come with a change to each caller (its record brought up to date)."""

import ast
import hashlib
from pathlib import Path

import pytest

pytest.importorskip("numba")
from minires.kernels.numba import _inline  # noqa: E402

_PACKAGE = Path(_inline.__file__).parent


def inline_digest() -> str:
    return hashlib.sha256(Path(_inline.__file__).read_bytes()).hexdigest()[:16]


def _callers() -> list[Path]:
    """The package's files that import from ``._inline``."""
    found = []
    for path in sorted(_PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text())
        if any(isinstance(node, ast.ImportFrom) and node.module == "_inline" and node.level == 1
               for node in ast.walk(tree)):
            found.append(path)
    return found


def _recorded(path: Path) -> str | None:
    for node in ast.parse(path.read_text()).body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and getattr(node.targets[0], "id", None) == "INLINE_DIGEST"):
            return node.value.value
    return None


def test_the_helpers_have_callers():
    assert {p.name for p in _callers()} >= {"_gemm.py", "conv.py", "winograd.py"}


@pytest.mark.parametrize("path", _callers(), ids=lambda p: p.name)
def test_each_caller_records_the_helpers_digest(path):
    assert _recorded(path) == inline_digest(), (
        f"{path.name}: INLINE_DIGEST must be {inline_digest()!r} (the digest of _inline.py): "
        f"its cached kernels were compiled with the helpers as they were then")

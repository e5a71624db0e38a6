"""The declared kernel interface: every kernel module offers only entries of the table, and
kernels are leaves that import nothing above them.

Read from the sources, so these run without Numba or CuPy.
"""

import ast
from pathlib import Path

import pytest

from minires.kernels.interface import KERNELS

_KERNELS_DIR = Path(__file__).resolve().parents[2] / "minires" / "kernels"
# What the backend loads for each backend: a module, or a package whose __init__ gathers its files.
_BACKEND_MODULES = {"numba": _KERNELS_DIR / "numba", "cupy": _KERNELS_DIR / "gpu_cupy.py"}


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"))


def _declared(tree: ast.Module) -> list[str]:
    """The names in a module's ``__all__``."""
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__all__" for t in node.targets):
            return [ast.literal_eval(element) for element in node.value.elts]
    raise AssertionError("no __all__")


def _public_functions(tree: ast.Module) -> set[str]:
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and not node.name.startswith("_")}


def _sources(location: Path) -> list[Path]:
    """A kernel module's files, without the package's private ones (``_launch.py``: helpers)."""
    if not location.is_dir():
        return [location]
    return [path for path in sorted(location.glob("*.py")) if not path.name.startswith("_")]


def test_every_entry_states_its_contract():
    for name, contract in KERNELS.items():
        assert contract.startswith(f"{name}(") and "->" in contract.splitlines()[0], name


@pytest.mark.parametrize("backend", sorted(_BACKEND_MODULES))
def test_each_kernel_module_offers_only_entries_of_the_table(backend):
    """``__all__`` lists what the backend can hand out, all of it in the table, and every
    public function of the module's files is listed (no kernel outside the interface)."""
    location = _BACKEND_MODULES[backend]
    entry = location / "__init__.py" if location.is_dir() else location
    offered = _declared(_tree(entry))
    assert len(offered) == len(set(offered))
    assert set(offered) <= set(KERNELS), f"not in the table: {sorted(set(offered) - set(KERNELS))}"
    public = set().union(*(_public_functions(_tree(path)) for path in _sources(location)))
    assert public == set(offered), f"public but not offered: {sorted(public - set(offered))}"


def test_the_backends_together_offer_every_entry():
    """An entry no backend provides would be dead weight in the table."""
    offered = set()
    for location in _BACKEND_MODULES.values():
        offered |= set(_declared(_tree(location / "__init__.py" if location.is_dir() else location)))
    assert offered == set(KERNELS)


def _minires_imports(path: Path) -> set[str]:
    """What a file imports from minires, as dotted names (``minires.windows.argmax_dtype``),
    relative imports resolved."""
    package = list(path.relative_to(_KERNELS_DIR.parent.parent).with_suffix("").parts)[:-1]
    found = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found |= {f"{module}.{alias.name}" for alias in node.names}
    return {name for name in found if name.split(".")[0] == "minires"}


def test_kernels_are_leaves():
    """Nothing under minires/kernels imports the ops, the backend or anything above: only the
    leaves minires.windows and minires.threads, and other kernel modules."""
    allowed = ("minires.windows.", "minires.threads.", "minires.kernels.")
    for path in sorted(_KERNELS_DIR.rglob("*.py")):
        for name in _minires_imports(path):
            assert name.startswith(allowed), f"{path.relative_to(_KERNELS_DIR.parent.parent)} imports {name}"
    assert "minires.windows.argmax_dtype" in _minires_imports(_KERNELS_DIR / "numba" / "pool.py")


def test_window_geometry_is_a_leaf():
    windows = _KERNELS_DIR.parent / "windows.py"
    assert "numpy" in ast.dump(_tree(windows))
    assert _minires_imports(windows) == set()

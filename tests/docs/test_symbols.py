"""Every name a symbol table of docs/ cites exists in the module the table cites, and every op
section of docs/ops.md has such a table."""

import pytest

from .symbols import ROOT, cited_names, module_names, sections, tables

DOCS = sorted((ROOT / "docs").glob("*.md"))
# Sections of docs/ops.md that describe no single op's equations.
NOT_OPS = {"Conventions", "Non-finite numbers (NaN, inf)", "How the ops are checked"}


def _all_tables():
    for doc in DOCS:
        for line, modules, rows in tables(doc.read_text()):
            yield pytest.param(doc, line, modules, rows, id=f"{doc.name}:{line}")


@pytest.mark.parametrize("doc, line, modules, rows", list(_all_tables()))
def test_every_cited_name_exists_in_its_module(doc, line, modules, rows):
    assert modules, f"{doc.name}:{line}: the table names no module"
    known = set()
    for module in modules:
        path = ROOT / module
        assert path.is_file(), f"{doc.name}:{line}: {module} does not exist"
        known |= module_names(path)
    assert rows, f"{doc.name}:{line}: the table has no rows"
    missing = [(symbol, name) for symbol, code in rows for name in cited_names(code)
               if name not in known]
    assert not missing, f"{doc.name}:{line}: names not in {', '.join(modules)}: {missing}"


def test_every_op_section_of_ops_md_has_a_symbol_table():
    text = (ROOT / "docs" / "ops.md").read_text()
    lacking = []
    for title, body in sections(text):
        if title in NOT_OPS:
            continue
        if not list(tables("## " + title + "\n" + body)):
            lacking.append(title)
    assert not lacking, f"docs/ops.md sections without a symbol table: {lacking}"


def test_a_renamed_name_is_caught(tmp_path):
    """The check itself: a name the module lacks is reported."""
    doc = "| symbol | code (`minires/ops/pool.py`) | shape |\n|---|---|---|\n| $a$ | `argmax`, `arg_max_old` | . |\n"
    (_, modules, rows), = tables(doc)
    known = module_names(ROOT / modules[0])
    assert [n for _, code in rows for n in cited_names(code) if n not in known] == ["arg_max_old"]

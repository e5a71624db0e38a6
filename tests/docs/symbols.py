"""The symbol tables of docs/: every table whose second column is headed
``code (`minires/...py`, ...)`` maps each symbol of its equations to names in those modules."""

from __future__ import annotations

import io
import re
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADER = re.compile(r"^\|\s*symbol\s*\|\s*code \((?P<modules>[^)]*)\)\s*\|")
MODULE = re.compile(r"`(minires/[\w/]+\.py)`")
SPAN = re.compile(r"`([^`]+)`")
IDENT = re.compile(r"[A-Za-z_][A-Za-z_0-9]*")


def module_names(path: Path) -> set[str]:
    """Every identifier in a module's code (comments and strings left out)."""
    tokens = tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
    return {t.string for t in tokens if t.type == tokenize.NAME}


def tables(markdown: str):
    """(line number, [module paths], [(symbol cell, code cell)]) for each symbol table."""
    lines = markdown.splitlines()
    for k, line in enumerate(lines):
        match = HEADER.match(line)
        if not match:
            continue
        rows = []
        for row in lines[k + 2:]:
            if not row.startswith("|"):
                break
            cells = [c.strip() for c in row.strip().strip("|").split("|")]
            rows.append((cells[0], cells[1]))
        yield k + 1, MODULE.findall(match.group("modules")), rows


def cited_names(code_cell: str) -> list[str]:
    """The identifiers of every backticked span of a table's code cell; quoted strings
    (option values such as "same") are not names."""
    names = []
    for span in SPAN.findall(code_cell):
        span = re.sub(r"\"[^\"]*\"|'[^']*'", "", span)
        names += IDENT.findall(span)
    return names


def sections(markdown: str):
    """(title, text) of every '## ' section."""
    parts = re.split(r"^## ", markdown, flags=re.M)
    for part in parts[1:]:
        title, _, text = part.partition("\n")
        yield title.strip(), text

"""MkDocs hooks for minires' site: equations typeset at build time, figures generated then.

Equations. The pages write math as ``$...$`` and ``$$...$$`` (what GitHub's Markdown view
renders too). ``pymdownx.arithmatex`` (generic mode) keeps them away from Markdown's own
syntax and wraps each in a span or div; ``on_page_content`` below replaces every wrapper by
MathML, converted by latex2mathml, which the browser lays out natively. So a page needs no
script, no web font and no network to show its equations, and an equation that does not
convert fails the build instead of reaching a reader as raw LaTeX.

Figures. ``on_files`` runs ``docs/figures.py`` into a temporary folder and adds what it
writes as ``figures/*.svg``: the figures are drawn from minires itself on every build and are
not kept in the repository.
"""

from __future__ import annotations

import html
import importlib.util
import re
import shutil
import tempfile
from pathlib import Path

from latex2mathml.converter import convert
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

_INLINE = re.compile(r'<span class="arithmatex">\\\((.*?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.*?)\\\]</div>', re.S)
_HERE = Path(__file__).resolve().parent
_figures_dir: Path | None = None


def to_mathml(latex: str, display: str, where: str) -> str:
    """MathML for one equation; a LaTeX command latex2mathml does not know fails the build."""
    try:
        return convert(latex, display=display)
    except Exception as error:  # latex2mathml raises its own exception types, one per fault
        raise PluginError(f"math: cannot typeset ${latex}$ in {where}: {error}") from error


def on_page_content(content, page, config, files):
    where = page.file.src_uri
    content = _BLOCK.sub(lambda m: '<div class="math-block">'
                         + to_mathml(html.unescape(m.group(1)).strip(), "block", where) + "</div>",
                         content)
    return _INLINE.sub(lambda m: to_mathml(html.unescape(m.group(1)).strip(), "inline", where),
                       content)


def _load_figures():
    spec = importlib.util.spec_from_file_location("minires_doc_figures", _HERE / "figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def on_files(files, config):
    global _figures_dir
    _figures_dir = Path(tempfile.mkdtemp(prefix="minires-figures-"))
    written = _load_figures().generate(_figures_dir)
    for path in written:
        uri = f"figures/{path.name}"
        old = files.get_file_from_path(uri)
        if old is not None:          # a copy left in docs/figures/ by a manual run
            files.remove(old)
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_post_build(config):
    if _figures_dir is not None:
        shutil.rmtree(_figures_dir, ignore_errors=True)

"""The docs site: its figures are drawn from minires, it builds with ``--strict`` (no broken
link, anchor or image, no equation that fails to typeset), and headless Chromium finds the
conv2d page's equations rendered, its figures loaded, no console error and no request
outside the local server."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"minires_docs_{name}", ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_figures_are_drawn(tmp_path):
    pytest.importorskip("matplotlib", reason="the figures need Matplotlib (the test or plot extra)")
    figures = _load("figures")
    written = figures.generate(tmp_path)
    assert sorted(p.name for p in written) == sorted(figures.FIGURES)
    for path in written:
        svg = ET.parse(path).getroot()
        assert svg.tag.endswith("svg") and float(svg.get("width").rstrip("pt")) > 100, path.name


def test_the_residual_figure_shows_the_training_step_page():
    """The residual figure's two gradients are those of docs/training-step.md, and their sum
    is the block input's gradient that Model.backward computes."""
    pytest.importorskip("matplotlib", reason="the figures need Matplotlib (the test or plot extra)")
    import numpy as np

    d_main, d_skip = _load("figures").residual_gradients()
    assert d_main.shape == d_skip.shape == (2, 4, 4, 4)
    norms = [round(float(np.linalg.norm(g)), 4) for g in (d_main, d_skip, d_main + d_skip)]
    assert norms == [0.3116, 0.5106, 0.6512]


def test_the_seed_receptive_fields():
    """Receptive fields of the seed's model grow as (k - 1) * jump per layer."""
    pytest.importorskip("matplotlib", reason="the figures need Matplotlib (the test or plot extra)")
    from minires.models import build_resnet

    rows = {name: (shape, field) for name, _, shape, field, _ in _load("figures").seed_layers(build_resnet(seed=0))}
    assert rows["stem_conv"] == ((None, 32, 32, 64), 3)
    assert rows["stem_pool"] == ((None, 16, 16, 64), 4)
    assert rows["block1_conv2"][1] == 12 and rows["block1_skip_pool"][1] == 6
    assert rows["block3_relu"] == ((None, 2, 2, 64), 74)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    for module in ("mkdocs", "material", "pymdownx", "latex2mathml", "matplotlib"):
        pytest.importorskip(module, reason="the site needs the docs extra: pip install -e '.[docs]'")
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_site_builds_strictly(site):
    for page in ("index.html", "ops.html", "winograd.html", "training-step.html", "exercises.html"):
        assert (site / page).is_file(), page
    assert sorted(p.name for p in (site / "figures").iterdir()) == sorted(_load("figures").FIGURES)
    ops = (site / "ops.html").read_text()
    assert ops.count("<math") > 100 and 'class="arithmatex"' not in ops
    assert "fonts.googleapis" not in ops and "fonts.gstatic" not in ops


def test_conv2d_page_in_chromium(site):
    browser_check = _load("browser_check")
    if not Path(browser_check.CHROMIUM).exists():
        pytest.skip(f"{browser_check.CHROMIUM} is not installed (Debian: apt-get install chromium); "
                    "the browser check runs where it is")
    reports, problems = browser_check.check_site(site, ["ops.html"])
    assert not problems, "\n".join(problems)
    report = reports["ops.html"]
    assert report["maths"] > 100 and report["sized"] == report["maths"]
    assert report["fractions"] > 0 and report["stacked"] == report["fractions"]
    assert len(report["images"]) >= 3 and all(i["loaded"] for i in report["images"])

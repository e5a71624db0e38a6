"""The registry of frameworks: names, what is installed, without importing any framework."""

import subprocess
import sys

import pytest

from minires import frameworks


def test_the_registry_names_every_framework_with_its_environment():
    assert list(frameworks.FRAMEWORKS) == ["torch", "jax", "keras-jax", "keras-torch", "onnxruntime"]
    assert frameworks.FRAMEWORKS["keras-torch"] == ("minires.frameworks.keras_adapter", {"KERAS_BACKEND": "torch"})
    assert set(frameworks.PACKAGES) == set(frameworks.FRAMEWORKS) == set(frameworks.EXTRAS)


def test_installed_imports_nothing():
    code = ("import sys; from minires import frameworks; "
            "[frameworks.installed(n) for n in frameworks.FRAMEWORKS]; "
            "print(sorted(m for m in ('torch', 'jax', 'keras', 'onnxruntime') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_an_adapter_given_by_path_is_installed_when_the_file_is_there(tmp_path, monkeypatch):
    adapter = tmp_path / "mine.py"
    monkeypatch.setitem(frameworks.FRAMEWORKS, "mine", (str(adapter), {}))
    assert not frameworks.installed("mine")
    adapter.write_text("")
    assert frameworks.installed("mine")


def test_an_adapter_whose_module_is_missing_is_not_installed(monkeypatch):
    monkeypatch.setitem(frameworks.FRAMEWORKS, "torch", ("minires.frameworks.no_such_adapter", {}))
    assert not frameworks.installed("torch")


def test_unknown_names_are_refused():
    with pytest.raises(ValueError, match="unknown framework 'tensorflow'"):
        frameworks.installed("tensorflow")
    assert frameworks.install_hint("keras-jax") == 'pip install "minires[keras,jax]"'

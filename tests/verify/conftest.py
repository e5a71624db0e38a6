"""Test frameworks for verify: PyTorch with a fault put in (faulty_adapter.py), registered in
minires.frameworks.FRAMEWORKS for the test that asks, and found by the worker by its path."""

from pathlib import Path

import pytest

from minires import frameworks

FAULTY = str(Path(__file__).with_name("faulty_adapter.py"))


@pytest.fixture
def register(monkeypatch):
    """register(name, fault): a framework ``name`` running faulty_adapter.py with ``fault``."""
    def add(name: str, fault: str) -> str:
        monkeypatch.setitem(frameworks.FRAMEWORKS, name, (FAULTY, {"VERIFY_FAULT": fault}))
        return name
    return add

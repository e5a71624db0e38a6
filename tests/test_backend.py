"""The backend switch: names, the environment variable, the context manager, CuPy's absence."""

import importlib.util

import numpy as np
import pytest

import minires
from minires import backend


@pytest.fixture(autouse=True)
def _restore_backend():
    previous = backend._current
    yield
    backend._current = previous


def test_numpy_is_the_default():
    backend._current = None
    assert minires.get_backend() == "numpy"
    assert minires.xp() is np


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'numpy', 'cupy'"):
        minires.set_backend("tensorflow")


def test_environment_variable_chooses_the_first_backend(monkeypatch):
    backend._current = None
    monkeypatch.setenv("MINIRES_BACKEND", "bogus")
    with pytest.raises(ValueError, match="MINIRES_BACKEND"):
        minires.get_backend()
    backend._current = None
    monkeypatch.setenv("MINIRES_BACKEND", "numpy")
    assert minires.get_backend() == "numpy"


def test_use_backend_restores_the_previous_one():
    minires.set_backend("numpy")
    with minires.use_backend("numpy") as name:
        assert name == "numpy"
    assert minires.get_backend() == "numpy"


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed here")
def test_cupy_without_cupy_says_so():
    with pytest.raises(RuntimeError, match="needs CuPy"):
        minires.set_backend("cupy")
    assert minires.get_backend() == "numpy"


def test_array_module_of_numpy_arrays_is_numpy():
    assert minires.array_module(np.zeros(2), [1.0]) is np
    np.testing.assert_array_equal(minires.to_numpy([1.0, 2.0]), [1.0, 2.0])

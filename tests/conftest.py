"""Shared test settings: Hypothesis profiles, the markers' skip rules, and the backend fixture.

Profiles (choose with HYPOTHESIS_PROFILE or --hypothesis-profile):
- ``ci`` (default): no deadline, since the first call of a JIT kernel or of PyTorch takes
  seconds; a moderate number of examples so the suite stays within minutes on 2 cores.
- ``dev``: fewer examples, for quick edit-test loops.
- ``thorough``: many examples, for a long run before a release.

``on_backend`` runs a test once per backend (numpy, numba, cupy). The test builds its inputs
with NumPy, moves them with ``on_backend.put`` and compares results with ``assert_close``,
which fetches them back: the same assertions check every backend against the reference.
The cupy case carries the ``gpu`` marker (deselected by default) and skips, saying why, where
CuPy or a CUDA device is missing.
"""

import importlib.util
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

import minires
from minires import backend as _backend

# The backend fixture is parametrized, not stateful: reusing it across examples is intended.
_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                                     HealthCheck.function_scoped_fixture])
settings.register_profile("ci", max_examples=100, **_COMMON)
settings.register_profile("dev", max_examples=8, **_COMMON)
settings.register_profile("thorough", max_examples=500, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# The test run is a program of its own, so it tunes its process as the command line does
# (minires.process): Numba's OpenMP workers sleep between kernels instead of spinning against
# the threads that run the products. Tests of the untouched process run in fresh children.
minires.tune_process()
_START_BACKEND = _backend.get_backend()


@pytest.fixture(autouse=True)
def _backend_of_the_run():
    """Each test ends on the backend the run started with: a command run in this process
    (``minires.cli.main``) chooses the backend for the whole process, as a command should."""
    yield
    if _backend._current not in (None, _START_BACKEND):
        _backend.set_backend(_START_BACKEND)


class Backend:
    """A backend under test: its name, and moves of NumPy arrays onto it and back."""

    def __init__(self, name: str):
        self.name = name

    def put(self, array):
        """``array`` (NumPy, or None) as an array of this backend."""
        if array is None or self.name != "cupy" or not isinstance(array, np.ndarray):
            return array
        import cupy
        return cupy.asarray(array)

    def get(self, array):
        """A NumPy copy of a backend array (None stays None)."""
        return None if array is None else minires.to_numpy(array)

    def __repr__(self) -> str:
        return self.name


def _unavailable(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None."""
    if name == "numba" and importlib.util.find_spec("numba") is None:
        return "backend 'numba' needs Numba (pip install numba)"
    if name == "cupy":
        if importlib.util.find_spec("cupy") is None:
            return "backend 'cupy' needs CuPy and a CUDA GPU (pip install minires[cuda])"
        try:
            _backend.set_backend("cupy")
        except RuntimeError as exc:
            return str(exc)
    return None


@pytest.fixture(params=["numpy", "numba", pytest.param("cupy", marks=pytest.mark.gpu)])
def on_backend(request):
    """Run the test with each backend current, restoring the previous one afterwards."""
    previous = _backend.get_backend()
    reason = _unavailable(request.param)
    if reason is not None:
        _backend.set_backend(previous)
        pytest.skip(reason)
    with minires.use_backend(request.param):
        yield Backend(request.param)
    _backend.set_backend(previous)

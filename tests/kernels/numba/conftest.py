"""The kernel tests run every parallel kernel as a parallel loop, however small the test's
arrays: below ``_launch.SMALL`` outputs a kernel runs as its serial twin (the same function
compiled without ``parallel``), which the op tests, whose arrays are small, exercise."""

import pytest

numba_launch = pytest.importorskip("minires.kernels.numba._launch")


@pytest.fixture(autouse=True)
def parallel_loops_at_every_size(monkeypatch):
    monkeypatch.setattr(numba_launch, "SMALL", 0)

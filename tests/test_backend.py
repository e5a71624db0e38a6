"""The backend switch: names, the environment variable, the context manager, the kernel
lookup, the thread setting, and what happens when Numba or CuPy is missing."""

import importlib.util
import sys

import numpy as np
import pytest

import minires
from minires import backend, threads


@pytest.fixture(autouse=True)
def _restore_backend():
    previous = backend._current
    requested = threads._requested
    yield
    backend._current = previous
    backend.set_num_threads(requested)


def test_numpy_is_the_default():
    backend._current = None
    assert minires.get_backend() == "numpy"
    assert minires.xp() is np


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match="'numpy', 'numba', 'cupy'"):
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


def test_numba_backend_computes_with_numpy_arrays_and_numba_kernels():
    minires.set_backend("numba")
    assert minires.xp() is np
    from minires.kernels import numba as numba_kernels
    assert backend.kernel("relu_forward", np.zeros(2)) is numba_kernels.relu_forward


def test_kernels_are_used_only_on_the_numba_backend():
    minires.set_backend("numpy")
    assert backend.kernel("relu_forward", np.zeros(2)) is None
    with minires.use_backend("numba"):
        assert backend.kernel("relu_forward", np.zeros(2), np.ones(3)) is not None
    assert backend.kernel("relu_forward", np.zeros(2)) is None


@pytest.mark.parametrize("name", ["relu", "matmul", "im2col_conv", "", None])
def test_a_kernel_outside_the_table_is_refused(name):
    """Only the declared entry points may be asked for, on every backend, numpy included."""
    for which in ("numpy", "numba"):
        with minires.use_backend(which), pytest.raises(ValueError, match=f"kernel: .*got {name!r}"):
            backend.kernel(name, np.zeros(2))


def test_a_backend_without_the_kernel_gives_none():
    """numba has no im2col kernel (its convolution is one blocked kernel): None, and the op
    runs its array code."""
    pytest.importorskip("numba")
    with minires.use_backend("numba"):
        assert backend.kernel("im2col", np.zeros(2)) is None


@pytest.mark.parametrize("op, kernels", [("relu", ["relu_forward", "relu_backward"]),
                                         ("maxpool2d", ["maxpool2d_forward", "maxpool2d_backward"])])
def test_an_op_runs_its_array_code_where_the_kernel_is_missing_and_agrees(monkeypatch, op, kernels):
    """Each kernel counted while it is there, then taken out of the numba module: the op asks,
    gets None, runs its array code (the kernel is not called again), and gets the same values."""
    pytest.importorskip("numba")
    from minires import ops
    from minires.kernels import numba as numba_kernels

    calls = []
    for name in kernels:
        real = getattr(numba_kernels, name)
        monkeypatch.setattr(numba_kernels, name, lambda *a, real=real, name=name: calls.append(name) or real(*a))
    forward, backward = getattr(ops, f"{op}_forward"), getattr(ops, f"{op}_backward")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 6, 5, 3))
    x[0, 0, 0, 0] = 0.0
    with minires.use_backend("numba"):
        y, cache = forward(x)
        dy = rng.standard_normal(y.shape)
        dx = backward(dy, cache)
        assert calls == kernels
        for name in kernels:
            monkeypatch.delattr(numba_kernels, name)
            assert backend.kernel(name, x) is None
        y_array, cache_array = forward(x)
        dx_array = backward(dy, cache_array)
    assert calls == kernels
    np.testing.assert_array_equal(y_array, y)
    np.testing.assert_array_equal(dx_array, dx)


def test_numba_without_numba_says_so(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)          # import numba now raises ImportError
    monkeypatch.setattr(backend, "_numba_kernels", None)
    with pytest.raises(RuntimeError, match="backend 'numba' needs Numba"):
        minires.set_backend("numba")
    assert minires.get_backend() != "numba"


def test_num_threads_default_environment_and_setter(monkeypatch):
    monkeypatch.delenv("MINIRES_NUM_THREADS", raising=False)
    backend.set_num_threads(None)
    assert backend.get_num_threads() >= 1
    monkeypatch.setenv("MINIRES_NUM_THREADS", "1")
    assert backend.get_num_threads() == 1
    assert minires.set_num_threads(1) == 1
    numba = pytest.importorskip("numba")
    minires.set_backend("numba")
    backend.kernel("relu_forward", np.zeros(1))
    assert numba.get_num_threads() == 1


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "4"])
def test_num_threads_must_be_a_positive_int(bad):
    with pytest.raises(ValueError, match="positive int"):
        minires.set_num_threads(bad)


def test_num_threads_environment_variable_is_checked(monkeypatch):
    backend.set_num_threads(None)
    monkeypatch.setenv("MINIRES_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="MINIRES_NUM_THREADS"):
        backend.get_num_threads()


def test_numba_backend_runs_blas_on_one_thread_and_numpy_on_all(monkeypatch):
    """BLAS threads spinning after a product would steal the cores from Numba's kernels."""
    pytest.importorskip("numba")
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"}

    monkeypatch.setenv("MINIRES_NUM_THREADS", "2")
    backend.set_num_threads(None)
    minires.set_backend("numpy")
    backend._apply_num_threads()
    assert blas_threads() == {2}
    with minires.use_backend("numba"):
        assert blas_threads() == {1}
    assert blas_threads() == {2}
    assert backend.blas_threads_for("numba", 8) == 1 and backend.blas_threads_for("numpy", 8) == 8


def test_freed_memory_is_kept_once_and_can_be_turned_off(monkeypatch):
    from minires import memory

    monkeypatch.setattr(memory, "_applied", None)
    monkeypatch.setenv("MINIRES_REUSE_MEMORY", "0")
    assert memory.reuse_freed_memory() is False
    monkeypatch.setattr(memory, "_applied", True)    # decided once per process
    assert memory.reuse_freed_memory() is True


@pytest.mark.skipif(sys.platform != "linux", reason="glibc's mallopt")
def test_freed_memory_is_kept_on_glibc(monkeypatch):
    import platform

    from minires import memory

    monkeypatch.delenv("MINIRES_REUSE_MEMORY", raising=False)
    assert memory._apply() is (platform.libc_ver()[0] == "glibc")


def test_blas_pool_gets_its_own_size_back_after_numba(monkeypatch):
    """numba holds BLAS at one thread; numpy afterwards must not inherit that (unasked)."""
    pytest.importorskip("numba")
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return {info["num_threads"] for info in threadpoolctl.threadpool_info() if info["user_api"] == "blas"}

    monkeypatch.delenv("MINIRES_NUM_THREADS", raising=False)
    backend.set_num_threads(None)
    minires.set_backend("numpy")
    with threadpoolctl.threadpool_limits(limits=2, user_api="blas"):     # the process' own size
        original = blas_threads()
        with minires.use_backend("numba"):
            assert blas_threads() == {1}
        assert blas_threads() == original


def test_minires_backend_auto_picks_numba_when_it_imports(monkeypatch):
    backend._current = None
    monkeypatch.setenv("MINIRES_BACKEND", "auto")
    expected = "numba" if importlib.util.find_spec("numba") else "numpy"
    assert backend.auto_backend() == expected
    assert minires.get_backend() == expected

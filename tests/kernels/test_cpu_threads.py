"""Matrix products split over threads: every way of cutting gives ``a @ b``."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import threads
from minires.kernels import cpu_threads
from tests.gradcheck import assert_close
from tests.strategies import seeds


@pytest.fixture
def always_split(monkeypatch):
    """Split every product, however small, over 3 threads (more than the pieces of some)."""
    monkeypatch.setattr(cpu_threads, "_SPLIT_MACS", 0)
    monkeypatch.setattr(threads, "_requested", 3)
    yield


@given(stack=st.one_of(st.none(), st.integers(1, 5)), rows=st.integers(1, 9), inner=st.integers(1, 9),
       cols=st.integers(1, 6), seed=seeds, dtype=st.sampled_from([np.float32, np.float64]),
       transpose=st.booleans())
def test_split_products_equal_matmul(always_split, stack, rows, inner, cols, seed, dtype, transpose):
    rng = np.random.default_rng(seed)
    lead = () if stack is None else (stack,)
    a = rng.standard_normal((*lead, rows, inner)).astype(dtype)
    if transpose:                       # a transposed view, as in dW = cols^T @ dy
        a = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    b = rng.standard_normal((*lead, inner, cols)).astype(dtype)
    got = cpu_threads.matmul(a, b)
    assert got.dtype == dtype and got.shape == (*lead, rows, cols)
    assert_close(got, a @ b, 1e-5 if dtype == np.float32 else 1e-13)


def test_each_cut_is_taken(always_split, monkeypatch):
    """Stacks by the stack, tall products by rows, wide-inner ones by the inner dimension."""
    cuts = []
    real_run = cpu_threads._run
    monkeypatch.setattr(cpu_threads, "_run", lambda tasks, threads: cuts.append(tasks) or real_run(tasks, threads))
    rng = np.random.default_rng(0)
    cases = {"stack": ((6, 4, 4), (6, 4, 2)), "rows": ((9, 3), (3, 2)), "inner": ((2, 9), (9, 2))}
    for name, (sa, sb) in cases.items():
        a, b = rng.standard_normal(sa), rng.standard_normal(sb)
        np.testing.assert_allclose(cpu_threads.matmul(a, b), a @ b, rtol=1e-13)
    stack, rows, inner = (tasks[0] for tasks in cuts)
    assert stack[1].shape == (2, 4, 4)          # 6 products over 3 threads
    assert rows[1].shape == (3, 3)              # 9 rows over 3 threads
    assert inner[1].shape == (2, 3)             # 9 inner columns over 3 threads


def test_small_products_and_one_thread_stay_whole(monkeypatch):
    monkeypatch.setattr(cpu_threads, "_run", lambda *args: pytest.fail("a small product was split"))
    a, b = np.ones((8, 8)), np.ones((8, 8))
    np.testing.assert_array_equal(cpu_threads.matmul(a, b), a @ b)
    monkeypatch.setattr(cpu_threads, "_SPLIT_MACS", 0)
    monkeypatch.setattr(threads, "_requested", 1)
    np.testing.assert_array_equal(cpu_threads.matmul(a, b), a @ b)


def test_mismatched_shapes_fail_as_matmul_does(always_split):
    with pytest.raises(ValueError):
        cpu_threads.matmul(np.ones((3, 4)), np.ones((5, 2)))


@pytest.mark.parametrize("length", [1, 2, 7, 100])
def test_run_ranges_covers_every_index_once(always_split, length):
    seen = []
    lock = __import__("threading").Lock()

    def work(lo, hi):
        with lock:
            seen.extend(range(lo, hi))

    cpu_threads.run_ranges(work, length, macs=10**9)
    assert sorted(seen) == list(range(length))


def test_run_ranges_keeps_small_jobs_on_the_calling_thread(monkeypatch):
    import threading

    monkeypatch.setattr(threads, "_requested", 2)
    calls = []
    cpu_threads.run_ranges(lambda lo, hi: calls.append((threading.get_ident(), lo, hi)), 100, macs=1)
    assert calls == [(threading.get_ident(), 0, 100)]


def test_helper_threads_keep_the_callers_floating_point_error_settings(monkeypatch):
    """np.errstate is per thread: a product split over threads warns as the caller's would."""
    import warnings

    monkeypatch.setattr(cpu_threads, "_SPLIT_MACS", 0)
    monkeypatch.setattr(threads, "_requested", 2)
    big = np.full((4, 4), 1e30, dtype=np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="ignore", invalid="ignore"):
            assert np.isinf(cpu_threads.matmul(big, big)).all()
    with np.errstate(over="raise"):
        with pytest.raises(FloatingPointError):
            cpu_threads.matmul(big, big)

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


# --- the team of helper threads -----------------------------------------------------------------

@pytest.fixture
def two_helpers(monkeypatch):
    """Work split over 3 threads: the calling one and two helpers."""
    monkeypatch.setattr(threads, "_requested", 3)
    yield


def _ranges(length=3):
    seen = []
    lock = __import__("threading").Lock()

    def work(lo, hi):
        with lock:
            seen.append((lo, hi))
        return lo

    return seen, work


def test_a_helpers_exception_reaches_the_caller_and_the_team_carries_on(two_helpers):
    def work(lo, hi):
        if lo > 0:
            raise KeyError(f"range {lo}")
        return lo

    for _ in range(3):
        with pytest.raises(KeyError, match="range"):
            cpu_threads._run([(work, 0, 1), (work, 1, 2), (work, 2, 3)], 3)
    assert cpu_threads._run([(max, 0, 1), (max, 5, 2), (max, 7, 9)], 3) == [1, 5, 9]


def test_work_split_from_inside_a_task_runs_on_its_own_thread(two_helpers):
    """A nested split finds the team busy and runs its tasks itself: no deadlock."""
    inner = []

    def outer(lo, hi):
        seen, work = _ranges()
        cpu_threads.run_ranges(work, 4, macs=10**9)
        inner.append(sorted(seen))

    cpu_threads.run_ranges(outer, 3, macs=10**9)
    assert inner == [[(0, 1), (1, 2), (2, 4)]] * 3


def test_two_callers_at_once_each_get_their_own_results(two_helpers):
    import threading

    results = {}

    def caller(name):
        for k in range(50):
            got = cpu_threads._run([(pow, 2, k), (pow, 3, k), (pow, 5, k)], 3)
            assert got == [2 ** k, 3 ** k, 5 ** k]
        results[name] = True

    callers = [threading.Thread(target=caller, args=(n,)) for n in range(3)]
    for c in callers:
        c.start()
    for c in callers:
        c.join(timeout=60)
    assert results == {0: True, 1: True, 2: True}


def test_helpers_that_went_to_sleep_are_woken(monkeypatch):
    """With no time to spin, every hand-over and every result goes through the sleep path."""
    import threading

    monkeypatch.setattr(cpu_threads, "_SPIN_SECONDS", 0.0)
    monkeypatch.setattr(threads, "_requested", 4)          # a team of its own size: made anew
    got = []

    def hand_over():
        got.extend(cpu_threads._run([(abs, -k), (abs, -1), (abs, -2), (abs, -3)], 4) == [k, 1, 2, 3]
                   for k in range(200))

    caller = threading.Thread(target=hand_over, daemon=True)
    caller.start()
    caller.join(timeout=60)
    assert not caller.is_alive(), "a sleeping helper was never woken"
    assert got == [True] * 200
    cpu_threads._take_team(1).busy.release()               # the next tests' team spins again


def test_a_team_in_use_is_left_alone(two_helpers):
    """A caller that finds the team busy, whatever size it asks for, works alone: the team is
    neither stopped nor replaced under its user."""
    team = cpu_threads._take_team(2)
    try:
        for size in (1, 2, 3):
            assert cpu_threads._take_team(size) is None
        assert cpu_threads._run([(abs, -1), (abs, -2)], 2) == [1, 2]
        assert all(helper.thread.is_alive() for helper in team.helpers)
    finally:
        team.busy.release()
    other = cpu_threads._take_team(1)
    other.busy.release()
    for helper in team.helpers:                            # the old team was stopped
        helper.thread.join(timeout=10)
    assert other is not team and not any(helper.thread.is_alive() for helper in team.helpers)


def test_a_forked_child_makes_a_team_of_its_own(two_helpers):
    import multiprocessing

    seen, work = _ranges()
    cpu_threads.run_ranges(work, 3, macs=10**9)           # the parent's team exists
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_split_in_child, args=(queue,))
    child.start()
    child.join(timeout=60)
    if child.exitcode is None:
        child.kill()
    assert child.exitcode == 0, "the child hung or failed splitting work over threads"
    assert queue.get(timeout=5) == [0, 1, 2]


def _split_in_child(queue):
    queue.put(cpu_threads._run([(abs, 0), (abs, -1), (abs, -2)], 3))

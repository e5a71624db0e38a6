"""The bounded spin that cpu_threads' helpers wait with: it sees another thread's write."""

import threading
import time

from minires.kernels import spin_wait


def test_a_write_by_another_thread_ends_the_wait():
    flags = spin_wait.new_flags(2)
    writer = threading.Timer(0.05, lambda: flags.__setitem__(1, 7))
    writer.start()
    start = time.perf_counter()
    seen = spin_wait.wait_while(flags, 1, 0, int(10 * spin_wait.spins_per_second()))
    writer.join()
    assert seen == 7
    assert time.perf_counter() - start < 5       # it stopped at the write, not after 10 s


def test_the_wait_ends_when_the_spins_run_out():
    flags = spin_wait.new_flags(1)
    flags[0] = 3
    assert spin_wait.wait_while(flags, 0, 3, 1000) == 3
    assert spin_wait.wait_while(flags, 0, 5, 1000) == 3      # already different: at once


def test_the_gil_is_free_while_spinning():
    """Another Python thread runs meanwhile: the spin holds no GIL."""
    flags = spin_wait.new_flags(1)
    counted = []

    def count_then_write():
        counted.append(sum(range(100_000)))
        flags[0] = 1

    other = threading.Thread(target=count_then_write)
    other.start()
    assert spin_wait.wait_while(flags, 0, 0, int(30 * spin_wait.spins_per_second())) == 1
    other.join()
    assert counted == [sum(range(100_000))]


def test_spins_per_second_is_a_positive_rate():
    assert spin_wait.spins_per_second() > 1e5

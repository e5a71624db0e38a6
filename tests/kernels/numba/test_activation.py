"""The Numba ReLU and bias + ReLU kernels (minires.kernels.numba.activation) against the
array code, NaN included, and a bias gradient that does not depend on the thread count."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from minires.kernels import numba as k  # noqa: E402
from tests.gradcheck import assert_close  # noqa: E402
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds, shapes  # noqa: E402


@given(shape=shapes(), seed=seeds, dtype=float_dtypes, layout=layouts)
def test_relu_kernels_match_the_array_code(shape, seed, dtype, layout):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.2] = 0.0
    x[rng.random(shape) < 0.05] = np.nan
    x = as_layout(x, layout)
    y, positive = k.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, dtype(0)))
    np.testing.assert_array_equal(positive, x > 0)
    dy = as_layout(normal(rng, shape, dtype), layout)
    dx = k.relu_backward(dy, positive)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, np.where(positive, dy, dtype(0)))


@given(shape=shapes(), seed=seeds, dtype=float_dtypes, layout=layouts, with_bias=st.booleans())
def test_bias_relu_kernels_match_the_array_code(shape, seed, dtype, layout, with_bias):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.05] = np.nan
    b = normal(rng, shape[-1:], dtype) if with_bias else None
    z = x if b is None else x + b
    y, positive = k.bias_relu(np.ascontiguousarray(x), b)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np.maximum(z, dtype(0)))
    np.testing.assert_array_equal(positive, z > 0)
    dy = as_layout(normal(rng, shape, dtype), layout)
    dz, db = k.bias_relu_backward(dy, as_layout(positive, layout))
    expected = np.where(positive, dy, dtype(0))
    np.testing.assert_array_equal(dz, expected)
    assert db.dtype == dtype and db.shape == shape[-1:]
    rows = expected.reshape(-1, shape[-1])
    # Sums may cancel: their rounding error is relative to the terms' magnitudes (floor).
    assert_close(db, rows.sum(axis=0), 1e-5 if dtype == np.float32 else 1e-12, "db",
                 floor=np.abs(rows).sum(axis=0).max())


def test_bias_gradient_does_not_depend_on_the_thread_count():
    """The bias gradient sums fixed blocks of rows, so one thread and two give the same bits."""
    import numba

    rng = np.random.default_rng(0)
    dy = rng.standard_normal((64, 16, 16, 8)).astype(np.float32)
    positive = rng.random(dy.shape) < 0.5
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = k.bias_relu_backward(dy, positive)[1]
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(k.bias_relu_backward(dy, positive)[1], one)


def test_kernel_outputs_are_c_contiguous():
    x = np.asfortranarray(np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32))
    assert all(o.flags.c_contiguous for o in k.relu_forward(x))


def test_a_serial_twin_computes_what_its_parallel_kernel_computes():
    """Below ``_launch.SMALL`` outputs a prange kernel runs as its twin compiled without
    ``parallel``: the same function, so the same results, bit for bit."""
    from minires.kernels.numba import _launch, activation

    rng = np.random.default_rng(0)
    x = rng.standard_normal(1000).astype(np.float32)
    x[::97] = np.nan
    y_parallel, y_serial = np.empty_like(x), np.empty_like(x)
    positive_parallel, positive_serial = np.empty(x.shape, bool), np.empty(x.shape, bool)
    activation._relu_forward(x, y_parallel, positive_parallel)
    twin = _launch._serial_twin(activation._relu_forward)
    assert twin is _launch._serial_twin(activation._relu_forward)      # compiled once
    assert not twin.targetoptions.get("parallel") and twin.py_func.__code__ is activation._relu_forward.py_func.__code__
    twin(x, y_serial, positive_serial)
    np.testing.assert_array_equal(y_serial, y_parallel)
    np.testing.assert_array_equal(positive_serial, positive_parallel)

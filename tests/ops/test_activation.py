"""relu and the fused bias_relu on every backend: against the loop references, central
differences and PyTorch; gradient 0 at 0; NaN kept."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, away_from_zero, float_dtypes, layouts, normal, seeds, shapes


@given(shape=shapes(), seed=seeds, layout=layouts)
def test_relu_matches_reference(on_backend, shape, seed, layout):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape)
    x[rng.random(shape) < 0.2] = 0.0           # exact zeros: the kink itself
    x = as_layout(x, layout)
    y, cache = ops.relu_forward(on_backend.put(x))
    assert_close(y, reference.relu_forward(x), 0.0, "forward")
    dy = normal(rng, shape)
    assert_close(ops.relu_backward(on_backend.put(dy), cache), reference.relu_backward(dy, x), 0.0, "dx")


@given(shape=shapes(), seed=seeds)
def test_relu_gradient_matches_central_differences(on_backend, shape, seed):
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape)
    put = on_backend.put
    y, cache = ops.relu_forward(put(x))
    dy = normal(rng, shape)
    check_gradients(lambda v: ops.relu_forward(put(v))[0], [x], [ops.relu_backward(put(dy), cache)], dy, rng)


@pytest.mark.torch
@given(shape=shapes(), seed=seeds, dtype=float_dtypes)
def test_relu_matches_pytorch(on_backend, shape, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.2] = 0.0
    y, cache = ops.relu_forward(on_backend.put(x))
    dy = normal(rng, shape, dtype)
    dx = ops.relu_backward(on_backend.put(dy), cache)
    ty, tdx = torch_adapter.relu(x, dy)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, ty, 0.0, "y")
    assert_close(dx, tdx, 0.0, "dx")


def test_relu_gradient_at_zero_is_zero(on_backend):
    x = np.array([-1.0, 0.0, -0.0, 2.0])
    _, cache = ops.relu_forward(on_backend.put(x))
    dx = ops.relu_backward(on_backend.put(np.ones(4)), cache)
    np.testing.assert_array_equal(on_backend.get(dx), [0.0, 0.0, 0.0, 1.0])


def test_relu_propagates_nan(on_backend):
    y = on_backend.get(ops.relu_forward(on_backend.put(np.array([np.nan, -1.0, np.inf, -np.inf])))[0])
    assert np.isnan(y[0]) and y[1] == 0.0 and y[2] == np.inf and y[3] == 0.0
    assert np.isnan(reference.relu_forward(np.array([np.nan]))[0])


# --- bias + ReLU, fused -------------------------------------------------------------------

@given(shape=shapes(), seed=seeds, layout=layouts, with_bias=st.booleans())
def test_bias_relu_matches_reference(on_backend, shape, seed, layout, with_bias):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape)
    b = normal(rng, shape[-1:]) if with_bias else None
    if b is not None:
        x[rng.random(shape) < 0.2] = 0.0
        x = x - b                                  # exact zeros after the bias: the kink
    x = as_layout(x, layout)
    before = x.copy()
    y, cache = ops.bias_relu_forward(on_backend.put(x), on_backend.put(b))
    assert_close(y, reference.bias_relu_forward(x, b), 0.0, "forward")
    np.testing.assert_array_equal(on_backend.get(on_backend.put(x)), before)   # x untouched
    dy = as_layout(normal(rng, shape), layout)
    dx, db = ops.bias_relu_backward(on_backend.put(dy), cache)
    rdx, rdb = reference.bias_relu_backward(dy, x, b)
    assert_close(dx, rdx, 0.0, "dx")
    if b is None:
        assert db is None
    else:
        assert_close(db, rdb, 1e-12, "db")


@given(shape=shapes(), seed=seeds)
def test_bias_relu_gradients_match_central_differences(on_backend, shape, seed):
    rng = np.random.default_rng(seed)
    b = normal(rng, shape[-1:])
    x = away_from_zero(rng, shape) - b             # x + b stays away from the kink
    put = on_backend.put
    _, cache = ops.bias_relu_forward(put(x), put(b))
    dy = normal(rng, shape)
    dx, db = ops.bias_relu_backward(put(dy), cache)
    check_gradients(lambda v, c: ops.bias_relu_forward(put(v), put(c))[0], [x, b], [dx, db], dy, rng)


@given(shape=shapes(), seed=seeds, dtype=float_dtypes)
def test_bias_relu_overwrite_reuses_x_and_equals_bias_then_relu(on_backend, shape, seed, dtype):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    b = normal(rng, shape[-1:], dtype)
    expected = ops.relu_forward(x + b)[0]
    owned = on_backend.put(x.copy())
    y, _ = ops.bias_relu_forward(owned, on_backend.put(b), overwrite_x=True)
    assert y.dtype == dtype
    assert_close(y, expected, 0.0, "y")
    assert_close(owned, expected, 0.0, "x, overwritten")


def test_bias_relu_propagates_nan(on_backend):
    x = np.array([[np.nan, -1.0, np.inf, 1.0]])
    y = on_backend.get(ops.bias_relu_forward(on_backend.put(x), on_backend.put(np.zeros(4)))[0])
    assert np.isnan(y[0, 0]) and y[0, 1] == 0.0 and y[0, 2] == np.inf and y[0, 3] == 1.0


@pytest.mark.parametrize("args, error, message", [
    ((np.ones((2, 3)), np.ones(4)), ValueError, "bias_relu: b must have shape \\(3,\\)"),
    ((np.ones((2, 3)), np.ones((1, 3))), ValueError, "bias_relu: b must have 1 dims"),
    ((np.ones((2, 3)), np.ones(3, np.float32)), TypeError, "bias_relu: arrays must share one dtype"),
    ((np.ones((2, 3), np.int64), None), TypeError, "bias_relu: x must be a floating-point array"),
])
def test_bias_relu_rejects_bad_input(args, error, message):
    with pytest.raises(error, match=message):
        ops.bias_relu_forward(*args)


def test_bias_relu_backward_checks_dy():
    _, cache = ops.bias_relu_forward(np.ones((2, 3)), np.ones(3))
    with pytest.raises(ValueError, match="bias_relu_backward: dy must have shape \\(2, 3\\)"):
        ops.bias_relu_backward(np.ones((3, 2)), cache)


# --- sigmoid ----------------------------------------------------------------------------------

@given(shape=shapes(), seed=seeds, layout=layouts, dtype=float_dtypes)
def test_sigmoid_matches_reference(on_backend, shape, seed, layout, dtype):
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, shape, dtype) * 5, layout)
    y, cache = ops.sigmoid_forward(on_backend.put(x))
    dy = normal(rng, shape, dtype)
    dx = ops.sigmoid_backward(on_backend.put(dy), cache)
    assert y.dtype == dx.dtype == dtype
    tol = 1e-15 if dtype == np.float64 else 1e-6
    x64, dy64 = x.astype(np.float64), dy.astype(np.float64)
    assert_close(y, reference.sigmoid_forward(x64), tol, "forward")
    # 1 - y cancels where y is near 1: measure against the derivative's largest scale, |dy| / 4.
    assert_close(dx, reference.sigmoid_backward(dy64, x64), 4 * tol, "dx", floor=float(np.abs(dy64).max()) / 4)


@given(shape=shapes(), seed=seeds)
def test_sigmoid_gradient_matches_central_differences(on_backend, shape, seed):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape) * 3
    put = on_backend.put
    _, cache = ops.sigmoid_forward(put(x))
    dy = normal(rng, shape)
    check_gradients(lambda v: ops.sigmoid_forward(put(v))[0], [x], [ops.sigmoid_backward(put(dy), cache)], dy, rng)


@pytest.mark.torch
@given(shape=shapes(), seed=seeds, dtype=float_dtypes)
def test_sigmoid_matches_pytorch(on_backend, shape, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype) * 5
    x[rng.random(shape) < 0.1] = dtype(1e4)
    y, cache = ops.sigmoid_forward(on_backend.put(x))
    dy = normal(rng, shape, dtype)
    dx = ops.sigmoid_backward(on_backend.put(dy), cache)
    ty, tdx = torch_adapter.sigmoid(x, dy)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert y.dtype == dx.dtype == dtype
    assert_close(y, ty, tol, "y")
    assert_close(dx, tdx, tol, "dx", floor=float(np.abs(dy).max()) / 4)


def test_sigmoid_is_finite_for_huge_inputs(on_backend):
    y = on_backend.get(ops.sigmoid_forward(on_backend.put(np.array([-1e4, 0.0, 1e4])))[0])
    np.testing.assert_array_equal(y, [0.0, 0.5, 1.0])

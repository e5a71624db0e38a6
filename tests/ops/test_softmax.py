"""softmax forward and backward: reference, central differences, the Jacobian, PyTorch, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds, shapes

axis_picks = st.integers(0, 10)


def _axis(shape, pick):
    """Positive and negative axes of ``shape``."""
    return pick % len(shape) - len(shape) * (pick % 2)


@given(shape=shapes(), seed=seeds, layout=layouts, axis_pick=axis_picks)
def test_softmax_matches_reference(on_backend, shape, seed, layout, axis_pick):
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, shape) * 3, layout)
    axis = _axis(shape, axis_pick)
    assert_close(ops.softmax(on_backend.put(x), axis=axis), reference.softmax_forward(x, axis=axis), 1e-14,
                 "softmax")


@given(shape=shapes(), seed=seeds, layout=layouts, axis_pick=axis_picks, dtype=float_dtypes)
def test_softmax_forward_and_backward_match_reference(on_backend, shape, seed, layout, axis_pick, dtype):
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, shape, dtype) * 3, layout)
    dy = as_layout(normal(rng, shape, dtype), layout)
    axis = _axis(shape, axis_pick)
    y, cache = ops.softmax_forward(on_backend.put(x), axis=axis)
    dx = ops.softmax_backward(on_backend.put(dy), cache)
    assert y.dtype == dx.dtype == dtype
    tol = 1e-13 if dtype == np.float64 else 1e-5
    assert_close(y, reference.softmax_forward(x, axis), tol, "y")
    # sum(dy * y) cancels against dy: measure against the scale of dy.
    assert_close(dx, reference.softmax_backward(dy, x, axis), tol, "dx", floor=float(np.abs(dy).max()))


@given(shape=shapes(max_side=4), seed=seeds, axis_pick=axis_picks)
def test_softmax_backward_matches_central_differences(on_backend, shape, seed, axis_pick):
    rng = np.random.default_rng(seed)
    x, dy = normal(rng, shape) * 2, normal(rng, shape)
    axis = _axis(shape, axis_pick)
    put = on_backend.put
    _, cache = ops.softmax_forward(put(x), axis=axis)
    dx = ops.softmax_backward(put(dy), cache)
    check_gradients(lambda v: ops.softmax_forward(put(v), axis=axis)[0], [x], [dx], dy, rng)


@given(seed=seeds, c=st.integers(1, 6))
def test_softmax_backward_is_the_jacobian_product(seed, c):
    """dx = (diag(y) - y y^T) dy, the Jacobian written as a matrix."""
    rng = np.random.default_rng(seed)
    z, dy = rng.standard_normal(c), rng.standard_normal(c)
    y, cache = ops.softmax_forward(z)
    jacobian = np.diag(y) - np.outer(y, y)
    np.testing.assert_allclose(ops.softmax_backward(dy, cache), jacobian @ dy, rtol=1e-12, atol=1e-15)


@pytest.mark.torch
@given(shape=shapes(), seed=seeds, dtype=float_dtypes, axis_pick=axis_picks)
def test_softmax_matches_pytorch(on_backend, shape, seed, dtype, axis_pick):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    x, dy = normal(rng, shape, dtype) * 4, normal(rng, shape, dtype)
    axis = axis_pick % len(shape)
    y, cache = ops.softmax_forward(on_backend.put(x), axis=axis)
    dx = ops.softmax_backward(on_backend.put(dy), cache)
    ty, tdx = torch_adapter.softmax(x, axis, dy)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, ty, 1e-10 if dtype == np.float64 else 1e-5, "softmax")
    assert_close(dx, tdx, 1e-10 if dtype == np.float64 else 1e-5, "dx", floor=float(np.abs(dy).max()))


def test_softmax_backward_checks_dy():
    _, cache = ops.softmax_forward(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"softmax_backward: dy must have shape \(2, 3\), got \(3, 2\)"):
        ops.softmax_backward(np.zeros((3, 2)), cache)
    with pytest.raises(TypeError, match="softmax_backward: dy must have dtype float64"):
        ops.softmax_backward(np.zeros((2, 3), np.float32), cache)

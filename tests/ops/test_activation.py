"""relu: against the loop reference, central differences and PyTorch; gradient 0 at 0."""

import numpy as np
import pytest
from hypothesis import given

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, away_from_zero, float_dtypes, layouts, normal, seeds, shapes


@given(shape=shapes(), seed=seeds, layout=layouts)
def test_relu_matches_reference(shape, seed, layout):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape)
    x[rng.random(shape) < 0.2] = 0.0           # exact zeros: the kink itself
    x = as_layout(x, layout)
    y, cache = ops.relu_forward(x)
    assert_close(y, reference.relu_forward(x), 0.0, "forward")
    dy = normal(rng, shape)
    assert_close(ops.relu_backward(dy, cache), reference.relu_backward(dy, x), 0.0, "dx")


@given(shape=shapes(), seed=seeds)
def test_relu_gradient_matches_central_differences(shape, seed):
    rng = np.random.default_rng(seed)
    x = away_from_zero(rng, shape)
    y, cache = ops.relu_forward(x)
    dy = normal(rng, shape)
    check_gradients(lambda v: ops.relu_forward(v)[0], [x], [ops.relu_backward(dy, cache)], dy, rng)


@pytest.mark.torch
@given(shape=shapes(), seed=seeds, dtype=float_dtypes)
def test_relu_matches_pytorch(shape, seed, dtype):
    from tests import torch_ops

    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.2] = 0.0
    y, cache = ops.relu_forward(x)
    dy = normal(rng, shape, dtype)
    dx = ops.relu_backward(dy, cache)
    ty, tdx = torch_ops.relu(x, dy)
    assert y.dtype == dx.dtype == dtype
    assert_close(y, ty, 0.0, "y")
    assert_close(dx, tdx, 0.0, "dx")


def test_relu_gradient_at_zero_is_zero():
    x = np.array([-1.0, 0.0, -0.0, 2.0])
    _, cache = ops.relu_forward(x)
    np.testing.assert_array_equal(ops.relu_backward(np.ones(4), cache), [0.0, 0.0, 0.0, 1.0])


def test_relu_propagates_nan():
    y, _ = ops.relu_forward(np.array([np.nan, -1.0]))
    assert np.isnan(y[0]) and y[1] == 0.0
    assert np.isnan(reference.relu_forward(np.array([np.nan]))[0])

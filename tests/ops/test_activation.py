"""relu on every backend: against the loop reference, central differences and PyTorch; gradient 0 at 0."""

import numpy as np
import pytest
from hypothesis import given

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
    from tests import torch_ops

    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.2] = 0.0
    y, cache = ops.relu_forward(on_backend.put(x))
    dy = normal(rng, shape, dtype)
    dx = ops.relu_backward(on_backend.put(dy), cache)
    ty, tdx = torch_ops.relu(x, dy)
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

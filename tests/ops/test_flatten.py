"""flatten: reference, central differences, PyTorch, and Keras' (h, w, c) order."""

import numpy as np
import pytest
from hypothesis import given

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds, shapes


@given(shape=shapes(min_dims=2), seed=seeds, layout=layouts)
def test_flatten_matches_reference(on_backend, shape, seed, layout):
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, shape), layout)
    y, cache = ops.flatten_forward(on_backend.put(x))
    assert_close(y, reference.flatten_forward(x), 0.0, "forward")
    dy = as_layout(normal(rng, y.shape), layout)
    assert_close(ops.flatten_backward(on_backend.put(dy), cache), reference.flatten_backward(dy, x),
                 0.0, "dx")


@given(shape=shapes(min_dims=2), seed=seeds)
def test_flatten_gradient_matches_central_differences(on_backend, shape, seed):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape)
    put = on_backend.put
    y, cache = ops.flatten_forward(put(x))
    dy = normal(rng, y.shape)
    check_gradients(lambda v: ops.flatten_forward(put(v))[0], [x], [ops.flatten_backward(put(dy), cache)], dy, rng)


@pytest.mark.torch
@given(shape=shapes(min_dims=2), seed=seeds, dtype=float_dtypes)
def test_flatten_matches_pytorch(on_backend, shape, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    y, cache = ops.flatten_forward(on_backend.put(x))
    dy = normal(rng, y.shape, dtype)
    ty, tdx = torch_adapter.flatten(x, dy)
    assert_close(y, ty, 0.0, "y")
    assert_close(ops.flatten_backward(on_backend.put(dy), cache), tdx, 0.0, "dx")


def test_flatten_lists_channels_fastest():
    x = np.arange(2 * 2 * 3, dtype=np.float64).reshape(1, 2, 2, 3)
    y, _ = ops.flatten_forward(x)
    np.testing.assert_array_equal(y[0, :4], [0.0, 1.0, 2.0, 3.0])   # (h0, w0, c0..c2), (h0, w1, c0)

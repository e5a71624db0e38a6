"""upsample2d (nearest neighbour, integer factors): reference, central differences, PyTorch,
argument errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds

# Batch 1 included, odd and non-square sides, factors an int or a non-square pair.
x_shapes = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3))
factors = st.one_of(st.integers(1, 3), st.tuples(st.integers(1, 3), st.integers(1, 3)))


@given(shape=x_shapes, size=factors, seed=seeds, layout=layouts, dtype=float_dtypes)
def test_upsample2d_matches_reference(on_backend, shape, size, seed, layout, dtype):
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, shape, dtype), layout)
    y, cache = ops.upsample2d_forward(on_backend.put(x), size)
    assert y.dtype == dtype
    assert_close(y, reference.upsample2d_forward(x, size), 0.0, "forward")
    dy = as_layout(normal(rng, tuple(y.shape), dtype), layout)
    dx = ops.upsample2d_backward(on_backend.put(dy), cache)
    assert dx.dtype == dtype
    assert_close(dx, reference.upsample2d_backward(dy, x, size), 1e-6 if dtype == np.float32 else 1e-15, "dx")


@given(shape=x_shapes, size=factors, seed=seeds)
def test_upsample2d_gradient_matches_central_differences(on_backend, shape, size, seed):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape)
    put = on_backend.put
    y, cache = ops.upsample2d_forward(put(x), size)
    dy = normal(rng, tuple(y.shape))
    check_gradients(lambda v: ops.upsample2d_forward(put(v), size)[0], [x],
                    [ops.upsample2d_backward(put(dy), cache)], dy, rng)


@pytest.mark.torch
@given(shape=x_shapes, size=factors, seed=seeds, dtype=float_dtypes)
def test_upsample2d_matches_pytorch(on_backend, shape, size, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    y, cache = ops.upsample2d_forward(on_backend.put(x), size)
    dy = normal(rng, tuple(y.shape), dtype)
    dx = ops.upsample2d_backward(on_backend.put(dy), cache)
    ty, tdx = torch_adapter.upsample2d(x, size, dy)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert y.dtype == dx.dtype == dtype
    assert_close(y, ty, 0.0, "y")
    assert_close(dx, tdx, tol, "dx")


def test_upsample2d_copies_each_pixel_into_its_block():
    x = np.arange(6.0).reshape(1, 2, 3, 1)
    y, cache = ops.upsample2d_forward(x, (2, 1))
    np.testing.assert_array_equal(y[0, :, :, 0], [[0, 1, 2], [0, 1, 2], [3, 4, 5], [3, 4, 5]])
    dx = ops.upsample2d_backward(np.ones((1, 4, 3, 1)), cache)
    np.testing.assert_array_equal(dx, np.full((1, 2, 3, 1), 2.0))


@pytest.mark.parametrize("call, error, words", [
    (lambda: ops.upsample2d_forward(np.ones((2, 3, 4))), ValueError,
     "upsample2d: x must have 4 dims, got shape (2, 3, 4)"),
    (lambda: ops.upsample2d_forward(np.ones((1, 2, 2, 1)), 0), ValueError,
     "upsample2d: size must be an int or a pair of ints >= 1, got 0"),
    (lambda: ops.upsample2d_forward(np.ones((1, 2, 2, 1)), (2, 1.5)), ValueError,
     "upsample2d: size must be an int or a pair of ints >= 1, got (2, 1.5)"),
    (lambda: ops.upsample2d_forward(np.ones((1, 2, 2, 1), np.int64)), TypeError,
     "upsample2d: x must be a floating-point array"),
    (lambda: ops.upsample2d_backward(np.ones((1, 4, 3, 1)), ops.upsample2d_forward(np.ones((1, 2, 2, 1)))[1]),
     ValueError, "upsample2d_backward: dy must have shape (1, 4, 4, 1), got (1, 4, 3, 1)"),
])
def test_upsample2d_argument_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)

"""maxpool2d on every backend: against the loop reference, central differences, PyTorch, ties."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, distinct, float_dtypes, layouts, normal, pool_cases, seeds


def _opts(case):
    return dict(pool_size=case["pool_size"], strides=case["strides"], padding=case["padding"])


def _with_ties(rng, shape, dtype=np.float64):
    """Few distinct values, so most windows hold several maxima."""
    return rng.integers(-2, 3, size=shape).astype(dtype)


@given(case=pool_cases(), seed=seeds, layout=layouts, tied=st.booleans())
def test_maxpool2d_matches_reference(on_backend, case, seed, layout, tied):
    rng = np.random.default_rng(seed)
    x = (_with_ties if tied else normal)(rng, case["x_shape"])
    x = as_layout(x, layout)
    y, cache = ops.maxpool2d_forward(on_backend.put(x), **_opts(case))
    assert_close(y, reference.maxpool2d_forward(x, **_opts(case)), 0.0, "forward")
    dy = normal(rng, y.shape)
    dx = ops.maxpool2d_backward(on_backend.put(dy), cache)
    assert_close(dx, reference.maxpool2d_backward(dy, x, **_opts(case)), 1e-14, "dx")
    # Inference (keep_cache=False): the same values, no cache, no first-maximum index.
    y_only, none = ops.maxpool2d_forward(on_backend.put(x), **_opts(case), keep_cache=False)
    assert none is None
    assert_close(y_only, reference.maxpool2d_forward(x, **_opts(case)), 0.0, "forward, keep_cache=False")


@given(case=pool_cases(max_hw=6), seed=seeds)
def test_maxpool2d_gradient_matches_central_differences(on_backend, case, seed):
    """Tie-free inputs: there the max is differentiable and finite differences are exact."""
    rng = np.random.default_rng(seed)
    x = distinct(rng, case["x_shape"])
    put = on_backend.put
    y, cache = ops.maxpool2d_forward(put(x), **_opts(case))
    dy = normal(rng, y.shape)
    dx = ops.maxpool2d_backward(put(dy), cache)
    check_gradients(lambda v: ops.maxpool2d_forward(put(v), **_opts(case))[0], [x], [dx], dy, rng)


@pytest.mark.torch
@given(case=pool_cases(), seed=seeds, dtype=float_dtypes, tied=st.booleans())
def test_maxpool2d_matches_pytorch(on_backend, case, seed, dtype, tied):
    """Including ties: PyTorch's CPU kernel also sends a window's gradient to its first maximum."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    x = (_with_ties if tied else normal)(rng, case["x_shape"], dtype)
    y, cache = ops.maxpool2d_forward(on_backend.put(x), **_opts(case))
    dy = normal(rng, y.shape, dtype)
    dx = ops.maxpool2d_backward(on_backend.put(dy), cache)
    ty, tdx = torch_adapter.maxpool2d(x, case["pool_size"], case["strides"], case["padding"], dy)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert y.dtype == dx.dtype == dtype
    assert_close(y, ty, tol, "y")
    assert_close(dx, tdx, tol, "dx")


def test_maxpool2d_tie_goes_to_first_maximum_in_row_major_order(on_backend):
    x = np.zeros((1, 2, 2, 1))
    x[0, 0, 1, 0] = x[0, 1, 0, 0] = 5.0      # two maxima: (0, 1) comes first in row-major order
    y, cache = ops.maxpool2d_forward(on_backend.put(x), pool_size=2)
    dx = ops.maxpool2d_backward(on_backend.put(np.full((1, 1, 1, 1), 3.0)), cache)
    assert on_backend.get(y)[0, 0, 0, 0] == 5.0
    expected = np.zeros_like(x)
    expected[0, 0, 1, 0] = 3.0
    np.testing.assert_array_equal(on_backend.get(dx), expected)


def test_maxpool2d_constant_window_sends_gradient_to_its_top_left(on_backend):
    x = np.full((1, 3, 3, 2), 1.5)
    y, cache = ops.maxpool2d_forward(on_backend.put(x), pool_size=3)
    dx = ops.maxpool2d_backward(on_backend.put(np.ones(y.shape)), cache)
    expected = np.zeros_like(x)
    expected[0, 0, 0, :] = 1.0
    np.testing.assert_array_equal(on_backend.get(dx), expected)


def test_maxpool2d_overlapping_windows_accumulate_gradient(on_backend):
    """Pool 3, stride 1: the global maximum wins all 4 windows and collects all 4 gradients."""
    x = np.arange(16, dtype=np.float64).reshape(1, 4, 4, 1) * 0.0
    x[0, 1, 2, 0] = 9.0
    y, cache = ops.maxpool2d_forward(on_backend.put(x), pool_size=3, strides=1)
    dy = np.array([1.0, 2.0, 3.0, 4.0]).reshape(1, 2, 2, 1)
    dx = on_backend.get(ops.maxpool2d_backward(on_backend.put(dy), cache))
    assert dx[0, 1, 2, 0] == 10.0
    assert dx.sum() == 10.0


def test_maxpool2d_same_padding_never_selects_padding(on_backend):
    x = -np.ones((1, 3, 3, 1)) * 7.0        # all negative: a zero pad would win
    y, _ = ops.maxpool2d_forward(on_backend.put(x), pool_size=2, padding="same")
    assert y.shape == (1, 2, 2, 1)
    np.testing.assert_array_equal(on_backend.get(y), -7.0)


def test_maxpool2d_strides_default_to_pool_size():
    x = np.random.default_rng(0).standard_normal((2, 7, 9, 3))
    y, _ = ops.maxpool2d_forward(x, pool_size=(2, 3))
    assert y.shape == (2, 3, 3, 3)


def test_maxpool2d_nan_wins_its_window_on_every_backend(on_backend):
    """NumPy's argmax picks the first NaN; the kernels follow it, so backends agree on NaN."""
    x = np.array([1.0, np.nan, 5.0, np.nan]).reshape(1, 2, 2, 1)
    y, cache = ops.maxpool2d_forward(on_backend.put(x), pool_size=2)
    dx = on_backend.get(ops.maxpool2d_backward(on_backend.put(np.ones((1, 1, 1, 1))), cache))
    assert np.isnan(on_backend.get(y)[0, 0, 0, 0])
    np.testing.assert_array_equal(dx.ravel(), [0.0, 1.0, 0.0, 0.0])
    y_only, _ = ops.maxpool2d_forward(on_backend.put(x), pool_size=2, keep_cache=False)
    assert np.isnan(on_backend.get(y_only)[0, 0, 0, 0])

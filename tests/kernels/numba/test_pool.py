"""The Numba max-pool kernels (minires.kernels.numba.pool) against the array code: values,
first-maximum indices and gradients, ties, NaN and infinity as NumPy's argmax has them."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from minires.kernels import numba as k  # noqa: E402
from minires.windows import plan_windows  # noqa: E402
from tests.strategies import as_layout, float_dtypes, layouts, normal, pool_cases, seeds  # noqa: E402


@given(case=pool_cases(), seed=seeds, dtype=float_dtypes, layout=layouts, tied=st.booleans())
def test_maxpool_kernels_match_the_array_code(case, seed, dtype, layout, tied):
    from minires import backend, ops

    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=case["x_shape"]).astype(dtype) if tied else normal(rng, case["x_shape"], dtype)
    x = as_layout(x, layout)
    opts = dict(pool_size=case["pool_size"], strides=case["strides"], padding=case["padding"])
    with backend.use_backend("numpy"):
        y, cache = ops.maxpool2d_forward(x, **opts)
    y_k, argmax_k = k.maxpool2d_forward(x, cache.window)
    np.testing.assert_array_equal(y_k, y)
    np.testing.assert_array_equal(argmax_k, cache.argmax)
    y_value = k.maxpool2d_forward_value(x, cache.window)          # inference: the value alone
    assert y_value.dtype == dtype and y_value.flags.c_contiguous
    np.testing.assert_array_equal(y_value, y)
    dy = as_layout(normal(rng, y.shape, dtype), layout)
    with backend.use_backend("numpy"):
        dx = ops.maxpool2d_backward(dy, cache)
    dx_k = k.maxpool2d_backward(dy, argmax_k, x.shape, cache.window)
    assert dx_k.dtype == dtype
    np.testing.assert_array_equal(dx_k, dx)


def test_maxpool_forward_treats_nan_and_infinity_like_numpy_argmax():
    x = np.array([[-np.inf, -np.inf], [np.nan, 2.0], [3.0, np.inf], [np.nan, np.nan]])
    x = x.reshape(4, 1, 2, 1).transpose(1, 0, 2, 3).reshape(1, 4, 2, 1)      # four 1x2 windows
    window = plan_windows("maxpool2d", (4, 2), (1, 2), (1, 2), "valid", ("valid",))
    y, argmax = k.maxpool2d_forward(x, window)
    stacked = x[0, :, :, 0]
    np.testing.assert_array_equal(argmax.ravel(), np.argmax(stacked, axis=1))
    np.testing.assert_array_equal(y.ravel(), np.max(stacked, axis=1))
    np.testing.assert_array_equal(k.maxpool2d_forward_value(x, window).ravel(), np.max(stacked, axis=1))


def test_kernel_outputs_are_c_contiguous():
    x = np.asfortranarray(np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32))
    pool = plan_windows("maxpool2d", (5, 4), (2, 2), (2, 2), "valid", ("valid",))
    assert all(o.flags.c_contiguous for o in k.maxpool2d_forward(x, pool))


@given(n=st.integers(1, 2), h=st.integers(2, 9), w=st.integers(2, 9), seed=seeds, dtype=float_dtypes,
       tied=st.booleans(), nans=st.booleans())
def test_the_2x2_kernels_are_the_general_kernels(n, h, w, seed, dtype, tied, nans):
    """The seed's 2x2 windows at stride 2 take kernels of their own: the general kernels'
    y, argmax and dx bit for bit, odd sides (a last row or column no window reads), ties and
    NaN included."""
    from minires.kernels.numba import pool

    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=(n, h, w, 3)).astype(dtype) if tied else normal(rng, (n, h, w, 3), dtype)
    if nans:
        x[rng.random(x.shape) < 0.2] = np.nan
    window = plan_windows("maxpool2d", (h, w), (2, 2), (2, 2), "valid", ("valid",))
    assert pool._is_2x2(window)
    y, argmax = k.maxpool2d_forward(x, window)
    y_general = np.empty_like(y)
    argmax_general = np.empty_like(argmax)
    pool._maxpool_forward(x, y_general, argmax_general, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(y, y_general)
    np.testing.assert_array_equal(argmax, argmax_general)
    dy = normal(rng, y.shape, dtype)
    dx_general = np.empty(x.shape, dtype=dtype)
    pool._maxpool_backward(dy, argmax, dx_general, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(k.maxpool2d_backward(dy, argmax, x.shape, window), dx_general)

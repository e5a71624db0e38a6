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

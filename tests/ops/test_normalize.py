"""instance_norm (per image and channel, over the pixels, no affine): reference, central
differences, PyTorch, the invariance to a per-channel gain and offset, constant channels,
argument errors."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds

# Batch 1 included, odd and non-square sides, single pixels (a constant channel) included.
x_shapes = st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 3))
epsilons = st.sampled_from([1e-3, 1e-5, 0.5])


@given(shape=x_shapes, seed=seeds, layout=layouts, dtype=float_dtypes, epsilon=epsilons)
def test_instance_norm_matches_reference(on_backend, shape, seed, layout, dtype, epsilon):
    rng = np.random.default_rng(seed)
    x = as_layout(3.0 + 2.0 * normal(rng, shape, dtype), layout)      # a mean far from 0
    y, cache = ops.instance_norm_forward(on_backend.put(x), epsilon)
    tol = 1e-5 if dtype == np.float32 else 1e-13
    assert y.dtype == dtype
    assert_close(y, reference.instance_norm_forward(x, epsilon), tol, "forward")
    dy = as_layout(normal(rng, shape, dtype), layout)
    dx = ops.instance_norm_backward(on_backend.put(dy), cache)
    assert dx.dtype == dtype
    # dx is s * dy less two means that can cancel it (two pixels of a channel, say): its
    # float32 rounding is relative to s * |dy|, not to what is left.
    s = 1 / np.sqrt(np.var(x.astype(np.float64), axis=(1, 2)) + epsilon)
    assert_close(dx, reference.instance_norm_backward(dy, x, epsilon), 10 * tol, "dx",
                 floor=float(s.max() * np.abs(dy).max()))


@given(shape=x_shapes, seed=seeds, epsilon=epsilons)
def test_instance_norm_gradient_matches_central_differences(on_backend, shape, seed, epsilon):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape)
    put = on_backend.put
    _, cache = ops.instance_norm_forward(put(x), epsilon)
    dy = normal(rng, shape)
    # The output bends on the scale of its channels' spread, sqrt(var + epsilon): two close
    # pixels in a channel make it small, and a fixed step would then measure the curvature
    # along with the slope. The step is a small fraction of the smallest spread.
    spread = float(np.sqrt(np.var(x, axis=(1, 2)).min() + epsilon))
    check_gradients(lambda v: ops.instance_norm_forward(put(v), epsilon)[0], [x],
                    [ops.instance_norm_backward(put(dy), cache)], dy, rng, eps=min(1e-5, 1e-4 * spread))


@pytest.mark.torch
@given(shape=x_shapes, seed=seeds, dtype=float_dtypes, epsilon=epsilons)
def test_instance_norm_matches_pytorch(on_backend, shape, seed, dtype, epsilon):
    """PyTorch refuses a single pixel per channel (minires gives y = 0 there)."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")
    assume(shape[1] * shape[2] > 1)

    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    dy = normal(rng, shape, dtype)
    y, cache = ops.instance_norm_forward(on_backend.put(x), epsilon)
    dx = ops.instance_norm_backward(on_backend.put(dy), cache)
    ty, tdx = torch_adapter.instance_norm(x, dy, epsilon)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert y.dtype == dx.dtype == dtype
    s = 1 / np.sqrt(np.var(x.astype(np.float64), axis=(1, 2)) + epsilon)
    assert_close(y, ty, tol, "y")
    assert_close(dx, tdx, tol, "dx", floor=float(s.max() * np.abs(dy).max()))


def test_a_gain_and_an_offset_per_channel_cancel():
    """What a change detector wants of it: brightness, contrast and colour casts taken out."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (2, 6, 5, 3))
    gains, offsets = np.array([0.8, 1.1, 1.3]), np.array([0.2, -0.1, 0.05])
    a, _ = ops.instance_norm_forward(x, 1e-12)
    b, _ = ops.instance_norm_forward(x * gains + offsets, 1e-12)
    np.testing.assert_allclose(a, b, atol=1e-9)
    np.testing.assert_allclose(a.mean(axis=(1, 2)), 0.0, atol=1e-12)
    np.testing.assert_allclose(a.var(axis=(1, 2)), 1.0, atol=1e-9)


def test_a_constant_channel_gives_zeros_and_a_finite_gradient(on_backend):
    x = np.full((1, 3, 4, 2), 7.5)
    x[..., 1] = np.arange(12.0).reshape(3, 4)
    y, cache = ops.instance_norm_forward(on_backend.put(x))
    dy = np.arange(24.0).reshape(1, 3, 4, 2)
    dx = on_backend.get(ops.instance_norm_backward(on_backend.put(dy), cache))
    np.testing.assert_array_equal(on_backend.get(y)[..., 0], 0.0)
    scale = 1 / np.sqrt(1e-3)
    np.testing.assert_allclose(dx[..., 0], scale * (dy[..., 0] - dy[..., 0].mean()), rtol=1e-12)
    assert np.isfinite(dx).all()


@pytest.mark.parametrize("call, error, words", [
    (lambda: ops.instance_norm_forward(np.ones((2, 3, 4))), ValueError,
     "instance_norm: x must have 4 dims, got shape (2, 3, 4)"),
    (lambda: ops.instance_norm_forward(np.ones((1, 2, 2, 1)), 0.0), ValueError,
     "instance_norm: epsilon must be a finite number > 0, got 0.0"),
    (lambda: ops.instance_norm_forward(np.ones((1, 2, 2, 1)), float("nan")), ValueError,
     "instance_norm: epsilon must be a finite number > 0, got nan"),
    (lambda: ops.instance_norm_forward(np.ones((1, 2, 2, 1), np.int64)), TypeError,
     "instance_norm: x must be a floating-point array"),
    (lambda: ops.instance_norm_backward(np.ones((1, 2, 3, 1)), ops.instance_norm_forward(np.ones((1, 2, 2, 1)))[1]),
     ValueError, "instance_norm_backward: dy must have shape (1, 2, 2, 1), got (1, 2, 3, 1)"),
    (lambda: ops.instance_norm_backward(np.ones((1, 2, 2, 1), np.float32),
                                        ops.instance_norm_forward(np.ones((1, 2, 2, 1)))[1]),
     TypeError, "instance_norm_backward: dy"),
])
def test_instance_norm_argument_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


def test_the_layer_refuses_a_bad_epsilon_by_its_name():
    from minires.layers import InstanceNormalization

    with pytest.raises(ValueError, match="'norm': epsilon must be a finite number > 0, got -1"):
        InstanceNormalization(epsilon=-1, name="norm")

"""The Numba Winograd kernels (minires.kernels.numba.winograd) against the array stages of
minires.ops.winograd, for any block size, F(2x2, 3x3) and F(4x4, 3x3)."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from minires.kernels import numba as k  # noqa: E402
from minires.kernels.numba import winograd as blocked  # noqa: E402
from minires.ops import winograd  # noqa: E402
from minires.windows import plan_windows  # noqa: E402
from tests.gradcheck import assert_close  # noqa: E402
from tests.kernels.numba.blocks import conv_window, small_blocks  # noqa: E402
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds, winograd_cases  # noqa: E402


def _magnitudes(f):
    """The transform with every coefficient made positive: run on |arrays|, it bounds the
    terms a Winograd sum adds, the scale of its rounding error where the sum cancels."""
    return f._replace(BT=np.abs(f.BT), G=np.abs(f.G), AT=np.abs(f.AT))


@given(case=winograd_cases(max_hw=13, max_batch=3), seed=seeds, dtype=float_dtypes, layout=layouts,
       f=st.sampled_from([winograd.F2X2_3X3, winograd.F4X4_3X3]), block=st.integers(1, 9),
       input_grad=st.booleans())
def test_blocked_winograd_backward_matches_the_array_code(case, seed, dtype, layout, f, block, input_grad):
    """Blocks of any size, images split between threads, tiles of neighbouring rows that
    share pixels, V recomputed from x: the same dx and dU as the array stages."""
    rng = np.random.default_rng(seed)
    n, c_in, c_out = case["x_shape"][0], case["x_shape"][3], case["w_shape"][3]
    window = conv_window(case)
    tiles = winograd.tile_counts(window.out_hw, f.m)
    x = as_layout(normal(rng, case["x_shape"], dtype), layout)
    v = winograd.transform_input(x, window.padding, tiles, f)
    u = normal(rng, (f.alpha ** 2, c_in, c_out), dtype)
    dy = as_layout(normal(rng, (n, *window.out_hw, c_out), dtype), layout)
    dmt = winograd.transform_output_grad(dy, tiles, f)
    expected_du = v.transpose(0, 2, 1) @ dmt
    expected_dx = winograd.transform_input_grad(dmt @ u.transpose(0, 2, 1), case["x_shape"],
                                                window.padding, tiles, f)
    with small_blocks(blocked, _BLOCK_TILES_BACKWARD=block):
        dx, du = k.winograd_backward_blocked(dy, x, u, window.padding, tiles, f, input_grad)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    g = _magnitudes(f)
    v_mag = winograd.transform_input(np.abs(x), window.padding, tiles, g)
    dm_mag = winograd.transform_output_grad(np.abs(dy), tiles, g)
    assert du.dtype == dtype
    assert_close(du, expected_du, tol, "dU", floor=(v_mag.transpose(0, 2, 1) @ dm_mag).max())
    if input_grad:
        dx_mag = winograd.transform_input_grad(dm_mag @ np.abs(u).transpose(0, 2, 1), case["x_shape"],
                                               window.padding, tiles, g)
        assert dx.dtype == dtype
        assert_close(dx, expected_dx, tol, "dx", floor=dx_mag.max())
    else:
        assert dx is None


@given(case=winograd_cases(max_hw=13, max_batch=3), seed=seeds, dtype=float_dtypes,
       f=st.sampled_from([winograd.F2X2_3X3, winograd.F4X4_3X3]), block=st.integers(1, 7))
def test_blocked_winograd_forward_matches_the_array_code(case, seed, dtype, f, block):
    """Blocks of any size (a last block cut short, blocks split between threads) give the
    same y as the three array stages."""
    rng = np.random.default_rng(seed)
    x = normal(rng, case["x_shape"], dtype)
    w = normal(rng, case["w_shape"], dtype)
    bias = normal(rng, case["w_shape"][3:], dtype) if case["bias"] else None
    window = conv_window(case)
    tiles = winograd.tile_counts(window.out_hw, f.m)
    u = winograd.transform_kernel(w, f)
    v = winograd.transform_input(x, window.padding, tiles, f)
    expected = winograd.transform_output(v @ u, bias, x.shape[0], tiles, window.out_hw, f)
    with small_blocks(blocked, _BLOCK_TILES=block):
        y = k.winograd_forward_blocked(x, u, bias, window.padding, tiles, window.out_hw, f)
    g = _magnitudes(f)
    y_mag = winograd.transform_output(winograd.transform_input(np.abs(x), window.padding, tiles, g)
                                      @ np.abs(u), None, x.shape[0], tiles, window.out_hw, g)
    assert y.dtype == dtype
    assert_close(y, expected, 1e-12 if dtype == np.float64 else 1e-5, "y", floor=y_mag.max())
    # With the ReLU fused into the output transform: the ReLU of the same y, bit for bit.
    with small_blocks(blocked, _BLOCK_TILES=block):
        y_relu = k.winograd_forward_blocked(x, u, bias, window.padding, tiles, window.out_hw, f, True)
    np.testing.assert_array_equal(y_relu, np.maximum(y, 0))
    # Inference with the 2x2 max-pool after it, each whole tile pooled as it is made.
    if f.m % 2 == 0 and tuple(window.out_hw) == (tiles[0] * f.m, tiles[1] * f.m):
        with small_blocks(blocked, _BLOCK_TILES=block):
            y_pool = k.winograd_forward_blocked(x, u, bias, window.padding, tiles, window.out_hw, f,
                                                True, True)
        pool = plan_windows("maxpool2d", window.out_hw, (2, 2), (2, 2), "valid", ("valid",))
        # The same tile values (to rounding: fastmath may order the sums of another caller
        # differently), the pool only selecting among them.
        assert_close(y_pool, k.maxpool2d_forward_value(y_relu, pool),
                     1e-12 if dtype == np.float64 else 1e-5, "y pooled", floor=y_mag.max())


def test_the_written_out_f4x4_transforms_are_the_matrices_of_ops_winograd():
    """Each ``_f4_*`` function applied to the unit vectors gives the columns of its matrix in
    ops.winograd.F4X4_3X3, and that transform takes the written-out path."""
    f = winograd.F4X4_3X3
    assert blocked._is_f4x4(f) and not blocked._is_f4x4(winograd.F2X2_3X3)
    for function, matrix in [(blocked._f4_bt, f.BT), (blocked._f4_b, f.BT.T),
                             (blocked._f4_at, f.AT), (blocked._f4_a, f.AT.T)]:
        columns = [function.py_func(*unit) for unit in np.eye(matrix.shape[1])]
        np.testing.assert_array_equal(np.array(columns).T, matrix)


@given(seed=seeds, dtype=float_dtypes, c_in=st.integers(1, 9), c_out=st.integers(1, 70),
       mat=st.sampled_from(["G", "G^T", "odd"]), f=st.sampled_from([winograd.F2X2_3X3, winograd.F4X4_3X3]))
def test_kernel_transform_matches_the_array_code(seed, dtype, c_in, c_out, mat, f):
    """U = G w G^T and dw = G^T dU G (rows of C_in * C_out numbers, in chunks, the last one
    short) as ops.winograd.both_axes computes them; a shape no transform has goes to NumPy."""
    rng = np.random.default_rng(seed)
    m = {"G": f.G, "G^T": f.G.T, "odd": rng.standard_normal((5, 2))}[mat]
    a = normal(rng, (m.shape[1], m.shape[1], c_in, c_out), dtype)
    out = k.winograd_kernel_transform(m, a)
    assert out.dtype == dtype and out.shape == (m.shape[0], m.shape[0], c_in, c_out)
    magnitude = winograd.both_axes(np.abs(m), np.abs(a)).max()
    assert_close(out, winograd.both_axes(m, a), 1e-12 if dtype == np.float64 else 1e-5, "out", floor=magnitude)


def test_kernel_transform_keeps_an_inf_times_zero_a_nan():
    """Every coefficient multiplies, zeros included, as in the matrix products of the array
    code: an inf in the kernel makes NaN where a zero of G meets it."""
    f = winograd.F4X4_3X3
    w = np.ones((3, 3, 1, 1), np.float32)
    w[2, 2] = np.inf
    with np.errstate(invalid="ignore"):
        expected = winograd.both_axes(f.G, w)
    np.testing.assert_array_equal(np.isnan(k.winograd_kernel_transform(f.G, w)), np.isnan(expected))


@given(case=winograd_cases(max_hw=11, max_batch=3), seed=seeds, dtype=float_dtypes,
       f=st.sampled_from([winograd.F2X2_3X3, winograd.F4X4_3X3]), block=st.integers(1, 7),
       value=st.sampled_from([np.nan, np.inf, -np.inf]), data=st.data())
def test_forward_returns_none_for_a_non_finite_input(case, seed, dtype, f, block, value, data):
    """A NaN or inf at any pixel of any image, whichever block and thread reads it: None
    (the caller convolves with im2col instead); finite, the convolution."""
    rng = np.random.default_rng(seed)
    x = normal(rng, case["x_shape"], dtype)
    u = normal(rng, (f.alpha ** 2, case["x_shape"][3], case["w_shape"][3]), dtype)
    window = conv_window(case)
    tiles = winograd.tile_counts(window.out_hw, f.m)
    with small_blocks(blocked, _BLOCK_TILES=block):
        assert k.winograd_forward_blocked(x, u, None, window.padding, tiles, window.out_hw, f) is not None
        x[tuple(data.draw(st.integers(0, n - 1)) for n in x.shape)] = value
        assert k.winograd_forward_blocked(x, u, None, window.padding, tiles, window.out_hw, f) is None

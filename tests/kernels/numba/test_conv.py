"""The Numba im2col convolution kernels (minires.kernels.numba.conv) against the array code:
col2im, and the blocked forward and backward passes for every window geometry, memory layout
and block size, float32 and float64."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from minires.kernels import cpu_threads  # noqa: E402
from minires.kernels import numba as k  # noqa: E402
from minires.kernels.numba import conv  # noqa: E402
from minires.ops.im2col import col2im, im2col, pad_nhwc, unpad_nhwc  # noqa: E402
from minires.windows import plan_windows  # noqa: E402
from tests.gradcheck import assert_close  # noqa: E402
from tests.kernels.numba.blocks import conv_window, small_blocks  # noqa: E402
from tests.strategies import as_layout, conv_cases, float_dtypes, layouts, normal, seeds  # noqa: E402


@given(case=conv_cases(), seed=seeds, dtype=float_dtypes, layout=layouts)
def test_col2im_matches_the_array_code(case, seed, dtype, layout):
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, case["x_shape"], dtype), layout)
    window = conv_window(case)
    cols = im2col(pad_nhwc(x, window.padding), window)
    dcols = as_layout(normal(rng, cols.shape, dtype), layout)
    dx = k.col2im(dcols, x.shape, window)
    (top, bottom), (left, right) = window.padding
    padded = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3])
    expected_dx = unpad_nhwc(col2im(dcols, padded, window), window.padding, x.shape[1:3])
    assert dx.dtype == dtype and dx.shape == x.shape
    # Same additions in the same (i, j) order as the array code: equal to the last bit.
    np.testing.assert_array_equal(dx, expected_dx)


@given(case=conv_cases(), seed=seeds, dtype=float_dtypes, layout=layouts, relu=st.booleans(),
       with_bias=st.booleans(), block_values=st.integers(1, 200), keep_cols=st.booleans())
def test_blocked_im2col_convolution_matches_the_array_code(case, seed, dtype, layout, relu, with_bias,
                                                           block_values, keep_cols):
    """Blocks of any number of pixels (one pixel, a last block cut short, ranges split between
    threads): the array code's y, ReLU mask and cols."""
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, case["x_shape"], dtype), layout)
    w = normal(rng, case["w_shape"], dtype)
    bias = normal(rng, case["w_shape"][3:], dtype) if with_bias else None
    window = conv_window(case)
    k_values, c_out = int(np.prod(case["w_shape"][:3])), case["w_shape"][3]
    cols = im2col(pad_nhwc(x, window.padding), window)
    z = cols.reshape(-1, k_values) @ w.reshape(k_values, c_out) + (0 if bias is None else bias)
    with small_blocks(conv, _BLOCK_VALUES=block_values):
        y, positive, kept = k.im2col_conv_forward(x, w.reshape(k_values, c_out), bias, window, relu,
                                                  keep_cols)
    assert y.dtype == dtype and y.shape == (*cols.shape[:3], c_out)
    magnitude = (np.abs(cols.reshape(-1, k_values)) @ np.abs(w.reshape(k_values, c_out))).max()
    assert_close(y.reshape(-1, c_out), np.maximum(z, 0) if relu else z,
                 1e-12 if dtype == np.float64 else 1e-5, "y", floor=magnitude)
    if relu and keep_cols:
        np.testing.assert_array_equal(positive.reshape(-1, c_out), z > 0)
    else:
        assert positive is None
    if keep_cols:
        np.testing.assert_array_equal(kept, cols)
        pointwise = case["w_shape"][:2] == (1, 1) and window.strides == (1, 1) and window.padding == ((0, 0), (0, 0))
        if pointwise and x.flags.c_contiguous:
            assert np.shares_memory(kept, x)           # a 1x1 window's cols are x itself
    else:
        assert kept is None


@given(case=conv_cases(), seed=seeds, dtype=float_dtypes, layout=layouts, relu=st.booleans(),
       with_bias=st.booleans(), block_values=st.integers(1, 200))
def test_blocked_im2col_convolution_and_maxpool_match_the_two_kernels(case, seed, dtype, layout, relu,
                                                                      with_bias, block_values):
    """Inference's conv + 2x2 max-pool in one pass: blocks of whole pairs of output rows, of
    any number (one pair, a last block cut short, ranges split between threads), give the
    max-pool of the unpooled kernel's y."""
    # An odd output side grows by one when the input grows by a stride, whatever the padding.
    window = conv_window(case)
    (sh, sw), (h_out, w_out) = window.strides, window.out_hw
    n, h, w, c = case["x_shape"]
    case = dict(case, x_shape=(n, h + sh * (h_out % 2), w + sw * (w_out % 2), c))
    window = conv_window(case)
    h_out, w_out = window.out_hw
    assert h_out % 2 == 0 and w_out % 2 == 0
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, case["x_shape"], dtype), layout)
    w = normal(rng, case["w_shape"], dtype)
    bias = normal(rng, case["w_shape"][3:], dtype) if with_bias else None
    k_values, c_out = int(np.prod(case["w_shape"][:3])), case["w_shape"][3]
    w2d = w.reshape(k_values, c_out)
    y_full, _, _ = k.im2col_conv_forward(x, w2d, bias, window, relu, False)
    pool = plan_windows("maxpool2d", (h_out, w_out), (2, 2), (2, 2), "valid", ("valid",))
    expected = k.maxpool2d_forward_value(y_full, pool)
    with small_blocks(conv, _BLOCK_VALUES=block_values):
        y = k.im2col_conv_maxpool_forward(x, w2d, bias, window, relu)
    assert y.dtype == dtype and y.shape == expected.shape and y.flags.c_contiguous
    cols = im2col(pad_nhwc(x, window.padding), window)
    magnitude = (np.abs(cols.reshape(-1, k_values)) @ np.abs(w2d)).max()
    # Other blocks, so other BLAS calls: the same values to rounding (the pool only selects).
    assert_close(y, expected, 1e-12 if dtype == np.float64 else 1e-5, "y", floor=magnitude)


def test_the_fused_maxpool_keeps_a_nan_as_the_max_pool_does():
    x = np.ones((1, 2, 2, 1))
    x[0, 1, 0, 0] = np.nan
    window = plan_windows("conv2d", (2, 2), (1, 1), (1, 1), "valid", ("valid",))
    y = k.im2col_conv_maxpool_forward(x, np.ones((1, 1)), None, window, False)
    assert y.shape == (1, 1, 1, 1) and np.isnan(y[0, 0, 0, 0])


@given(case=conv_cases(), seed=seeds, dtype=float_dtypes, layout=layouts, relu=st.booleans(),
       input_grad=st.booleans(), block_values=st.integers(1, 200))
def test_blocked_im2col_backward_matches_the_array_code(case, seed, dtype, layout, relu, input_grad,
                                                        block_values):
    """Blocks of any size, ranges split between threads: dW and db of the array code's
    products, and dx: for a 1x1 window dz W^T, for others col2im(dz W^T) made from exactly
    the expected dz."""
    rng = np.random.default_rng(seed)
    x = normal(rng, case["x_shape"], dtype)
    w2d = normal(rng, (int(np.prod(case["w_shape"][:3])), case["w_shape"][3]), dtype)
    window = conv_window(case)
    cols = im2col(pad_nhwc(x, window.padding), window)
    c_out = w2d.shape[1]
    dy = as_layout(normal(rng, (*cols.shape[:3], c_out), dtype), layout)
    positive = rng.random(dy.shape) < 0.6 if relu else None
    expected_dz = dy * positive if relu else dy
    with small_blocks(conv, _BLOCK_VALUES=block_values):
        dx, dw, db = k.im2col_conv_backward(dy, cols, positive, w2d, window, x.shape, input_grad)
        # The kernel's last two steps on the expected dz, under the same thread split: the
        # same products of the same values, so the same bits if the kernel's dz is exact.
        dcols = cpu_threads.matmul(np.ascontiguousarray(expected_dz).reshape(-1, c_out), w2d.T)
        dx_of_expected_dz = k.col2im(dcols.reshape(cols.shape), x.shape, window)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert dw.dtype == db.dtype == dtype
    cols2d, dz2d = cols.reshape(-1, w2d.shape[0]), expected_dz.reshape(-1, c_out)
    # Sums may cancel: their rounding error is relative to the terms' magnitudes (floor).
    assert_close(dw, cols2d.T @ dz2d, tol, "dW", floor=(np.abs(cols2d).T @ np.abs(dz2d)).max())
    assert_close(db, dz2d.sum(axis=0), tol, "db", floor=np.abs(dz2d).sum(axis=0).max())
    if not input_grad:
        assert dx is None
    elif window.pointwise:
        assert_close(dx, expected_dz @ w2d.T, tol, "dx")
    else:
        assert_close(dx, dx_of_expected_dz, 0.0, "dx = col2im(dz W^T)")
        (top, bottom), (left, right) = window.padding
        padded = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3])
        dcols_mag = (np.abs(dz2d) @ np.abs(w2d.T)).reshape(cols.shape)
        assert_close(dx, unpad_nhwc(col2im((dz2d @ w2d.T).reshape(cols.shape), padded, window),
                                    window.padding, x.shape[1:3]), tol, "dx, array code",
                     floor=col2im(dcols_mag, padded, window).max())


def test_kernel_outputs_are_c_contiguous():
    x = np.asfortranarray(np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32))
    window = plan_windows("conv2d", (5, 4), (3, 3), (1, 1), "same", ("same",))
    cols = np.asfortranarray(im2col(pad_nhwc(x, window.padding), window))
    outputs = [k.im2col_conv_forward(x, np.ones((3 * 3 * 3, 2), np.float32), None, window, True, True)[0],
               k.col2im(cols, x.shape, window)]
    assert all(o.flags.c_contiguous for o in outputs)


@given(case=conv_cases(max_hw=9, max_kernel=5), seed=seeds, layout=layouts, relu=st.booleans(),
       with_bias=st.booleans(), c_out=st.sampled_from([64, 128]), pool=st.booleans())
def test_inference_at_stride_1_reads_the_windows_in_place(case, seed, layout, relu, with_bias, c_out, pool):
    """float32, stride 1, output columns in whole blocks of the product: inference convolves
    each zero-padded image in place (no cols), the padding's every form, kernels of any
    shape, with or without the 2x2 max-pool after it; the array code's y."""
    case = dict(case, stride=1, w_shape=(*case["w_shape"][:3], c_out))
    window = conv_window(case)
    if pool:             # an even output: grow the image by a pixel where it is odd
        n, h, w, c = case["x_shape"]
        h_out, w_out = window.out_hw
        case = dict(case, x_shape=(n, h + h_out % 2, w + w_out % 2, c))
        window = conv_window(case)
    if window.pointwise or min(window.out_hw) < 1:
        return
    assert conv._runs_direct(window, c_out, np.dtype(np.float32))
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, case["x_shape"], np.float32), layout)
    w = normal(rng, case["w_shape"], np.float32)
    bias = normal(rng, (c_out,), np.float32) if with_bias else None
    k_values = int(np.prod(case["w_shape"][:3]))
    w2d = w.reshape(k_values, c_out)
    cols = im2col(pad_nhwc(x, window.padding), window).reshape(-1, k_values)
    z = (cols @ w2d + (0 if bias is None else bias)).reshape(x.shape[0], *window.out_hw, c_out)
    expected = np.maximum(z, 0) if relu else z
    magnitude = (np.abs(cols) @ np.abs(w2d)).max()
    if pool:
        pooling = plan_windows("maxpool2d", window.out_hw, (2, 2), (2, 2), "valid", ("valid",))
        y = k.im2col_conv_maxpool_forward(x, w2d, bias, window, relu)
        expected = k.maxpool2d_forward_value(np.ascontiguousarray(expected), pooling)
    else:
        y, positive, kept = k.im2col_conv_forward(x, w2d, bias, window, relu, False)
        assert positive is None and kept is None
    assert y.dtype == np.float32 and y.shape == expected.shape and y.flags.c_contiguous
    assert_close(y, expected, 1e-5, "y", floor=magnitude)


def test_inference_in_place_keeps_non_finite_numbers_in_their_windows():
    """A NaN or inf in the image reaches only the outputs whose windows hold it (the padded
    grid's dropped columns read across rows, and must not carry one into the output)."""
    x = np.ones((2, 5, 6, 3), np.float32)
    x[0, 2, 5, 1] = np.nan             # the last column: its row's dropped windows read it
    x[1, 0, 0, 0] = np.inf
    window = plan_windows("conv2d", (5, 6), (3, 3), (1, 1), "same", ("same",))
    w2d = np.ones((27, 64), np.float32)
    y, _, _ = k.im2col_conv_forward(x, w2d, None, window, False, False)
    cols = im2col(pad_nhwc(x, window.padding), window).reshape(-1, 27)
    with np.errstate(invalid="ignore"):
        expected = (cols.astype(np.float64) @ w2d).reshape(2, 5, 6, 64)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(expected))


def _unpooled(dq, argmax):
    """The max-pool's adjoint in NumPy: dq at each 2x2 window's place (0 .. 3), 0 elsewhere."""
    n, h2, w2, c = dq.shape
    dz = np.zeros((n, 2 * h2, 2 * w2, c), dq.dtype)
    for place in range(4):
        dz[:, place // 2::2, place % 2::2] = np.where(argmax == place, dq, 0)
    return dz


@given(case=conv_cases(max_hw=9, max_kernel=5), seed=seeds, layout=layouts, relu=st.booleans(),
       with_bias=st.booleans(), c_out=st.sampled_from([64, 128]), input_grad=st.booleans())
def test_training_convolution_and_maxpool_match_the_ops(case, seed, layout, relu, with_bias, c_out,
                                                         input_grad):
    """float32, stride 1, an even output: training's conv + 2x2 max-pool kernels. The pooled
    values are the max-pool of conv + bias (ReLU'd); each place holds its window's first
    maximum (whole output channels of equal numbers, from zeroed kernels: place 0); the
    mask is y > 0; and the gradients are cols^T dz and col2im(dz W^T) for dz the pooled
    gradient put back at those places."""
    case = dict(case, stride=1, w_shape=(*case["w_shape"][:3], c_out))
    n, h, width, c = case["x_shape"]
    window = conv_window(case)
    case = dict(case, x_shape=(n, h + window.out_hw[0] % 2, width + window.out_hw[1] % 2, c))
    window = conv_window(case)
    n, h, width, c = case["x_shape"]
    if window.pointwise or min(window.out_hw) < 2:
        assert window.pointwise or k.im2col_conv_maxpool_training_forward(
            np.zeros(case["x_shape"], np.float32), np.zeros((int(np.prod(case["w_shape"][:3])), c_out),
                                                            np.float32), None, window, relu) is None
        return
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, case["x_shape"], np.float32), layout)
    w = normal(rng, case["w_shape"], np.float32)
    w[..., ::7] = 0                                      # channels of ties: z = b everywhere
    bias = normal(rng, (c_out,), np.float32) if with_bias else None
    k_values = int(np.prod(case["w_shape"][:3]))
    w2d = w.reshape(k_values, c_out)
    y, argmax, positive = k.im2col_conv_maxpool_training_forward(x, w2d, bias, window, relu)
    cols = im2col(pad_nhwc(x, window.padding), window).reshape(-1, k_values).astype(np.float64)
    z = (cols @ w2d + (0 if bias is None else bias)).reshape(x.shape[0], *window.out_hw, c_out)
    magnitude = (np.abs(cols) @ np.abs(w2d)).max() + 1
    pooled = z.reshape(n, window.out_hw[0] // 2, 2, window.out_hw[1] // 2, 2, c_out).max(axis=(2, 4))
    assert y.dtype == np.float32 and argmax.dtype == np.uint8 and y.shape == pooled.shape
    assert_close(y, np.maximum(pooled, 0) if relu else pooled, 1e-5, "y", floor=magnitude)
    windows = z.reshape(n, window.out_hw[0] // 2, 2, window.out_hw[1] // 2, 2, c_out)
    at_place = np.stack([windows[:, :, p // 2, :, p % 2] for p in range(4)], axis=-1)
    at_place = np.take_along_axis(at_place, argmax[..., None].astype(np.intp), axis=-1)[..., 0]
    assert_close(at_place, pooled, 1e-5, "z at the places", floor=magnitude)
    np.testing.assert_array_equal(argmax[..., ::7], 0)
    if relu:
        np.testing.assert_array_equal(positive, y > 0)
    else:
        assert positive is None
    dq = normal(rng, y.shape, np.float32)
    dx, dw2d = k.im2col_conv_maxpool_training_backward(dq, argmax, x, w2d, window, input_grad)
    dz = _unpooled(dq.astype(np.float64), argmax).reshape(-1, c_out)
    floor = (np.abs(cols).T @ np.abs(dz)).max() + 1
    assert dw2d.dtype == np.float32
    assert_close(dw2d, cols.T @ dz, 1e-5, "dw2d", floor=floor)
    if not input_grad:
        assert dx is None
        return
    dcols = (dz @ w2d.T.astype(np.float64)).reshape(x.shape[0], *window.out_hw, *case["w_shape"][:3])
    expected = unpad_nhwc(col2im(dcols, (n, h + sum(window.padding[0]), width + sum(window.padding[1]), c),
                                 window), window.padding, x.shape[1:3])
    assert dx.shape == x.shape
    assert_close(dx, expected, 1e-5, "dx", floor=(np.abs(dz) @ np.abs(w2d.T)).max() + 1)


def test_training_maxpool_places_the_first_nan_of_a_window():
    """A NaN or inf in the image: the pooled windows whose convolution holds a NaN are NaN,
    their place that of the window's first NaN (ops.maxpool2d_forward's rule), their mask
    False, and the ReLU keeps the NaN."""
    x = np.ones((2, 6, 6, 3), np.float32)
    x[0, 2, 3, 1] = np.nan
    x[1, 4, 0, 2] = np.inf
    w = np.ones((3, 3, 3, 64), np.float32)
    w[0, 0, 2] = -1                     # inf - inf: NaN where the window's corner reads the inf
    window = plan_windows("conv2d", (6, 6), (3, 3), (1, 1), "same", ("same",))
    y, argmax, positive = k.im2col_conv_maxpool_training_forward(x, w.reshape(27, 64), None, window, True)
    cols = im2col(pad_nhwc(x, window.padding), window).reshape(-1, 27)
    with np.errstate(invalid="ignore"):
        z = (cols.astype(np.float64) @ w.reshape(27, 64)).astype(np.float32).reshape(2, 6, 6, 64)
    pooling = plan_windows("maxpool2d", (6, 6), (2, 2), (2, 2), "valid", ("valid",))
    expected, places = k.maxpool2d_forward(z, pooling)
    assert np.isnan(expected).any()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(argmax[np.isnan(expected)], places[np.isnan(expected)])
    assert not positive[np.isnan(y)].any()

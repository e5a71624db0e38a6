"""The Numba kernels against the array code they replace, in float32 and float64.

The op tests (tests/ops) already run every op on the numba backend against the loop
reference; these check each kernel on its own: the same outputs as the array code for
every window geometry and memory layout, float32 in and out, NaN where NumPy has it, Adam's
formula, and the Winograd transforms against minires.ops.winograd's.
"""

import contextlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from minires.kernels import cpu_numba as k  # noqa: E402
from minires.kernels import cpu_threads  # noqa: E402
from minires.ops import update, winograd  # noqa: E402
from minires.ops.im2col import col2im, im2col, pad_nhwc, unpad_nhwc  # noqa: E402
from minires.windows import plan_windows  # noqa: E402
from tests.gradcheck import assert_close  # noqa: E402
from tests.strategies import (as_layout, conv_cases, float_dtypes, layouts, normal, pool_cases,  # noqa: E402
                              seeds, shapes, winograd_cases)


@contextlib.contextmanager
def _small_blocks(**sizes):
    """Set the blocked kernels' block sizes (k._BLOCK_*) and split even the smallest job over
    threads, so that small test shapes take every path: many blocks, a last one cut short,
    ranges on different threads."""
    previous = {name: getattr(k, name) for name in sizes}
    split = cpu_threads._SPLIT_MACS
    try:
        for name, value in sizes.items():
            setattr(k, name, value)
        cpu_threads._SPLIT_MACS = 0
        yield
    finally:
        for name, value in previous.items():
            setattr(k, name, value)
        cpu_threads._SPLIT_MACS = split


def _magnitudes(f):
    """The transform with every coefficient made positive: run on |arrays|, it bounds the
    terms a Winograd sum adds, the scale of its rounding error where the sum cancels."""
    return f._replace(BT=np.abs(f.BT), G=np.abs(f.G), AT=np.abs(f.AT))


def _conv_window(case):
    return plan_windows("conv2d", case["x_shape"][1:3], case["w_shape"][:2],
                        (case["stride"],) * 2 if isinstance(case["stride"], int) else case["stride"],
                        case["padding"], ("same", "valid", "explicit"))


@given(case=conv_cases(), seed=seeds, dtype=float_dtypes, layout=layouts)
def test_col2im_matches_the_array_code(case, seed, dtype, layout):
    rng = np.random.default_rng(seed)
    x = as_layout(normal(rng, case["x_shape"], dtype), layout)
    window = _conv_window(case)
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
    window = _conv_window(case)
    k_values, c_out = int(np.prod(case["w_shape"][:3])), case["w_shape"][3]
    cols = im2col(pad_nhwc(x, window.padding), window)
    z = cols.reshape(-1, k_values) @ w.reshape(k_values, c_out) + (0 if bias is None else bias)
    with _small_blocks(_BLOCK_VALUES=block_values):
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
       input_grad=st.booleans(), block_values=st.integers(1, 200))
def test_blocked_im2col_backward_matches_the_array_code(case, seed, dtype, layout, relu, input_grad,
                                                        block_values):
    """Blocks of any size, ranges split between threads: dz (or, for a 1x1 window, dx), dW and
    db of the array code's products."""
    rng = np.random.default_rng(seed)
    x = normal(rng, case["x_shape"], dtype)
    w2d = normal(rng, (int(np.prod(case["w_shape"][:3])), case["w_shape"][3]), dtype)
    window = _conv_window(case)
    cols = im2col(pad_nhwc(x, window.padding), window)
    c_out = w2d.shape[1]
    dy = as_layout(normal(rng, (*cols.shape[:3], c_out), dtype), layout)
    positive = rng.random(dy.shape) < 0.6 if relu else None
    expected_dz = dy * positive if relu else dy
    with _small_blocks(_BLOCK_VALUES=block_values):
        first, dw, db = k.im2col_conv_backward(dy, cols, positive, w2d, window, input_grad)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert dw.dtype == db.dtype == dtype
    cols2d, dz2d = cols.reshape(-1, w2d.shape[0]), expected_dz.reshape(-1, c_out)
    # Sums may cancel: their rounding error is relative to the terms' magnitudes (floor).
    assert_close(dw, cols2d.T @ dz2d, tol, "dW", floor=(np.abs(cols2d).T @ np.abs(dz2d)).max())
    assert_close(db, dz2d.sum(axis=0), tol, "db", floor=np.abs(dz2d).sum(axis=0).max())
    if not input_grad:
        assert first is None
    elif window.pointwise:
        assert_close(first, expected_dz @ w2d.T, tol, "dx")
    else:
        assert_close(first, expected_dz, 0.0, "dz")


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


@given(shape=shapes(), seed=seeds, dtype=float_dtypes, layout=layouts)
def test_relu_kernels_match_the_array_code(shape, seed, dtype, layout):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.2] = 0.0
    x[rng.random(shape) < 0.05] = np.nan
    x = as_layout(x, layout)
    y, positive = k.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, dtype(0)))
    np.testing.assert_array_equal(positive, x > 0)
    dy = as_layout(normal(rng, shape, dtype), layout)
    dx = k.relu_backward(dy, positive)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, np.where(positive, dy, dtype(0)))


@given(shape=shapes(), seed=seeds, dtype=float_dtypes, layout=layouts, with_bias=st.booleans())
def test_bias_relu_kernels_match_the_array_code(shape, seed, dtype, layout, with_bias):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.05] = np.nan
    b = normal(rng, shape[-1:], dtype) if with_bias else None
    z = x if b is None else x + b
    y, positive = k.bias_relu(np.ascontiguousarray(x), b)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np.maximum(z, dtype(0)))
    np.testing.assert_array_equal(positive, z > 0)
    dy = as_layout(normal(rng, shape, dtype), layout)
    dz, db = k.bias_relu_backward(dy, as_layout(positive, layout))
    expected = np.where(positive, dy, dtype(0))
    np.testing.assert_array_equal(dz, expected)
    assert db.dtype == dtype and db.shape == shape[-1:]
    rows = expected.reshape(-1, shape[-1])
    # Sums may cancel: their rounding error is relative to the terms' magnitudes (floor).
    assert_close(db, rows.sum(axis=0), 1e-5 if dtype == np.float32 else 1e-12, "db",
                 floor=np.abs(rows).sum(axis=0).max())


def test_bias_gradient_does_not_depend_on_the_thread_count():
    """The bias gradient sums fixed blocks of rows, so one thread and two give the same bits."""
    import numba

    rng = np.random.default_rng(0)
    dy = rng.standard_normal((64, 16, 16, 8)).astype(np.float32)
    positive = rng.random(dy.shape) < 0.5
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = k.bias_relu_backward(dy, positive)[1]
    finally:
        numba.set_num_threads(threads)
    np.testing.assert_array_equal(k.bias_relu_backward(dy, positive)[1], one)


@given(n=st.integers(1, 6), c=st.integers(1, 7), seed=seeds, dtype=float_dtypes, sparse=st.booleans(),
       scale=st.sampled_from([1.0, 50.0]))
def test_softmax_cross_entropy_kernels_match_the_array_code(n, c, seed, dtype, sparse, scale):
    from minires import backend, ops

    rng = np.random.default_rng(seed)
    z = (normal(rng, (n, c)) * scale).astype(dtype)
    ids = rng.integers(0, c, n)
    labels = ids if sparse else np.eye(c, dtype=dtype)[ids] * 0.7 + 0.3 / c
    with backend.use_backend("numpy"):
        loss, cache = ops.softmax_cross_entropy_forward(z, labels)
        dz = ops.softmax_cross_entropy_backward(1.5, cache)
    loss_k, probs_k = k.softmax_cross_entropy_forward(z, cache.targets, sparse)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert_close(loss_k, loss, tol, "loss", floor=scale)
    assert_close(probs_k, cache.probs, tol, "probs")
    dz_k = k.softmax_cross_entropy_backward(1.5, probs_k, cache.targets, sparse)
    assert dz_k.dtype == probs_k.dtype == dtype
    assert_close(dz_k, dz, tol, "dlogits", floor=1.5 / n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_follows_keras_formula(dtype):
    rng = np.random.default_rng(5)
    p, g = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal((7, 5)).astype(dtype)
    m, v = rng.standard_normal((7, 5)).astype(dtype), rng.random((7, 5)).astype(dtype)
    lr_t, b1, b2, eps = 3e-3, 0.9, 0.999, 1e-7
    em = b1 * m.astype(np.float64) + (1 - b1) * g
    ev = b2 * v.astype(np.float64) + (1 - b2) * g.astype(np.float64) ** 2
    ep = p - lr_t * em / (np.sqrt(ev) + eps)
    for kernel in (True, False):
        pk, mk, vk = p.copy(), m.copy(), v.copy()
        if kernel:
            k.adam_update(pk, g, mk, vk, lr_t, b1, b2, eps)
        else:
            from minires import backend
            with backend.use_backend("numpy"):
                update.adam_update(pk, g, mk, vk, lr_t, b1, b2, eps)
        tol = 1e-12 if dtype == np.float64 else 1e-6
        assert pk.dtype == mk.dtype == vk.dtype == dtype
        for name, got, want in (("param", pk, ep), ("m", mk, em), ("v", vk, ev)):
            assert_close(got, want, tol, f"{'kernel' if kernel else 'array'} {name}")


def test_adam_update_op_uses_the_array_code_for_non_contiguous_params():
    from minires import backend, ops

    rng = np.random.default_rng(6)
    base = rng.standard_normal((4, 6))
    p, g = base[:, ::2], rng.standard_normal((4, 3))          # p: a strided view into base
    before = p.copy()
    m, v = np.zeros((4, 3)), np.zeros((4, 3))
    with backend.use_backend("numba"):
        ops.adam_update(p, g, m, v, 1e-2, 0.9, 0.999, 1e-7)
    np.testing.assert_allclose(m, 0.1 * g)
    np.testing.assert_allclose(v, 0.001 * g * g)
    # Written in place, through the view: base itself changed.
    np.testing.assert_allclose(base[:, ::2], before - 1e-2 * m / (np.sqrt(v) + 1e-7))


def test_adam_update_op_checks_its_arguments():
    from minires import ops

    with pytest.raises(ValueError, match="adam_update: m must have shape"):
        ops.adam_update(np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(3), 1e-3, 0.9, 0.999, 1e-7)
    with pytest.raises(TypeError, match="adam_update: param must be an array"):
        ops.adam_update([0.0], np.zeros(1), np.zeros(1), np.zeros(1), 1e-3, 0.9, 0.999, 1e-7)


@given(case=winograd_cases(max_hw=13, max_batch=3), seed=seeds, dtype=float_dtypes, layout=layouts,
       f=st.sampled_from([winograd.F2X2_3X3, winograd.F4X4_3X3]), block=st.integers(1, 9),
       input_grad=st.booleans())
def test_blocked_winograd_backward_matches_the_array_code(case, seed, dtype, layout, f, block, input_grad):
    """Blocks of any size, images split between threads, tiles of neighbouring rows that
    share pixels, V recomputed from x: the same dx and dU as the array stages."""
    rng = np.random.default_rng(seed)
    n, c_in, c_out = case["x_shape"][0], case["x_shape"][3], case["w_shape"][3]
    window = _conv_window(case)
    tiles = winograd.tile_counts(window.out_hw, f.m)
    x = as_layout(normal(rng, case["x_shape"], dtype), layout)
    v = winograd.transform_input(x, window.padding, tiles, f)
    u = normal(rng, (f.alpha ** 2, c_in, c_out), dtype)
    dy = as_layout(normal(rng, (n, *window.out_hw, c_out), dtype), layout)
    dmt = winograd.transform_output_grad(dy, tiles, f)
    expected_du = v.transpose(0, 2, 1) @ dmt
    expected_dx = winograd.transform_input_grad(dmt @ u.transpose(0, 2, 1), case["x_shape"],
                                                window.padding, tiles, f)
    with _small_blocks(_BLOCK_TILES_BACKWARD=block):
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
    window = _conv_window(case)
    tiles = winograd.tile_counts(window.out_hw, f.m)
    u = winograd.transform_kernel(w, f)
    v = winograd.transform_input(x, window.padding, tiles, f)
    expected = winograd.transform_output(v @ u, bias, x.shape[0], tiles, window.out_hw, f)
    with _small_blocks(_BLOCK_TILES=block):
        y = k.winograd_forward_blocked(x, u, bias, window.padding, tiles, window.out_hw, f)
    g = _magnitudes(f)
    y_mag = winograd.transform_output(winograd.transform_input(np.abs(x), window.padding, tiles, g)
                                      @ np.abs(u), None, x.shape[0], tiles, window.out_hw, g)
    assert y.dtype == dtype
    assert_close(y, expected, 1e-12 if dtype == np.float64 else 1e-5, "y", floor=y_mag.max())


def test_kernel_outputs_are_c_contiguous():
    x = np.asfortranarray(np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32))
    window = plan_windows("conv2d", (5, 4), (3, 3), (1, 1), "same", ("same",))
    pool = plan_windows("maxpool2d", (5, 4), (2, 2), (2, 2), "valid", ("valid",))
    cols = np.asfortranarray(im2col(pad_nhwc(x, window.padding), window))
    outputs = [k.im2col_conv_forward(x, np.ones((3 * 3 * 3, 2), np.float32), None, window, True, True)[0],
               k.col2im(cols, x.shape, window),
               *k.maxpool2d_forward(x, pool), *k.relu_forward(x)]
    assert all(o.flags.c_contiguous for o in outputs)

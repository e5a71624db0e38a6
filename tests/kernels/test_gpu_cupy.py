"""The CUDA kernels against the array code and the loop reference, in float32 and float64.

The op tests (tests/ops) already run every op on the cupy backend through ``on_backend``;
these check each kernel on its own: the same outputs as the NumPy array code for every window
geometry and memory layout, ties and NaN in max-pool, the fused bias + ReLU pair, the loss,
Adam's formula, both index widths, and a few training steps of the small ResNet on the GPU
against the same steps on NumPy.

Every test carries the ``gpu`` marker (deselected by default; run with ``-m gpu``) and skips,
saying why, where CuPy or a CUDA device is missing. Data moves and gathers (im2col, col2im,
max-pool, ReLU) must agree with NumPy exactly; arithmetic to 1e-10 (float64) or 1e-4
(float32) relative.
"""

import importlib.util

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import backend, ops, reference
from minires.ops.im2col import col2im, im2col, pad_nhwc, unpad_nhwc
from minires.windows import plan_windows
from tests.gradcheck import assert_close
from tests.strategies import (conv_cases, float_dtypes, layouts, normal, pool_cases,
                              seeds, shapes)

pytestmark = pytest.mark.gpu

TOL = {np.float32: 1e-4, np.float64: 1e-10}


def _why_no_gpu() -> str | None:
    """Why these tests cannot run here, or None. Changes no backend setting."""
    if importlib.util.find_spec("cupy") is None:
        return "the CUDA kernels need CuPy and a CUDA GPU (pip install minires[cuda])"
    try:
        import cupy

        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing or broken: CuPy raises its own types
        return f"the CUDA kernels need a usable CUDA device ({exc})"
    return None if count > 0 else "the CUDA kernels need a CUDA device, found none"


@pytest.fixture
def k():
    """The kernel module, imported only where CuPy and a device are there."""
    reason = _why_no_gpu()
    if reason is not None:
        pytest.skip(reason)
    from minires.kernels import gpu_cupy

    return gpu_cupy


def _device(a: np.ndarray, layout: str = "contiguous"):
    """``a`` on the GPU in one of ``tests.strategies``' memory layouts (views included)."""
    import cupy

    a = np.array(a, copy=True)          # a new buffer, whatever the array module does
    if layout == "contiguous":
        return cupy.asarray(np.ascontiguousarray(a))
    if layout == "fortran":
        return cupy.asfortranarray(cupy.asarray(np.ascontiguousarray(a)))
    if layout == "strided":
        wide = cupy.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = cupy.asarray(np.ascontiguousarray(a))
        return wide[..., ::2]
    if layout == "reversed":
        return cupy.ascontiguousarray(cupy.asarray(np.ascontiguousarray(a[::-1])))[::-1]
    raise ValueError(layout)


def _host(a):
    return backend.to_numpy(a)


def _conv_window(case):
    stride = case["stride"]
    return plan_windows("conv2d", case["x_shape"][1:3], case["w_shape"][:2],
                        (stride, stride) if isinstance(stride, int) else tuple(stride),
                        case["padding"], ("same", "valid", "explicit"))


# --- im2col / col2im --------------------------------------------------------------------------

@given(case=conv_cases(), seed=seeds, dtype=float_dtypes, layout=layouts)
def test_im2col_and_col2im_match_the_array_code(k, case, seed, dtype, layout):
    rng = np.random.default_rng(seed)
    x = normal(rng, case["x_shape"], dtype)
    window = _conv_window(case)
    cols = k.im2col(_device(x, layout), window)
    expected = im2col(pad_nhwc(x, window.padding), window)
    assert cols.dtype == dtype and cols.shape == expected.shape
    np.testing.assert_array_equal(_host(cols), expected)

    dcols = normal(rng, expected.shape, dtype)
    dx = k.col2im(_device(dcols, layout), x.shape, window)
    (top, bottom), (left, right) = window.padding
    padded = (x.shape[0], x.shape[1] + top + bottom, x.shape[2] + left + right, x.shape[3])
    expected_dx = unpad_nhwc(col2im(dcols, padded, window), window.padding, x.shape[1:3])
    assert dx.dtype == dtype and dx.shape == x.shape
    # A gather adding in the array code's (i, j) order: equal to the last bit.
    np.testing.assert_array_equal(_host(dx), expected_dx)


def test_pointwise_windows_are_views(k):
    import cupy

    x = cupy.asarray(np.random.default_rng(0).standard_normal((2, 3, 5, 4)))
    window = plan_windows("conv2d", (3, 5), (1, 1), (1, 1), "valid", ("valid",))
    cols = k.im2col(x, window)
    assert cols.shape == (2, 3, 5, 1, 1, 4) and cols.base is not None
    np.testing.assert_array_equal(_host(k.col2im(cols, x.shape, window)), _host(x))


# --- max-pool ---------------------------------------------------------------------------------

@given(case=pool_cases(), seed=seeds, dtype=float_dtypes, layout=layouts, tied=st.booleans())
def test_maxpool_kernels_match_the_array_code(k, case, seed, dtype, layout, tied):
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=case["x_shape"]).astype(dtype) if tied else normal(rng, case["x_shape"], dtype)
    opts = dict(pool_size=case["pool_size"], strides=case["strides"], padding=case["padding"])
    with backend.use_backend("numpy"):
        y, cache = ops.maxpool2d_forward(x, **opts)
    y_k, argmax_k = k.maxpool2d_forward(_device(x, layout), cache.window)
    assert y_k.dtype == dtype and argmax_k.dtype == cache.argmax.dtype
    np.testing.assert_array_equal(_host(y_k), y)
    np.testing.assert_array_equal(_host(argmax_k), cache.argmax)
    dy = normal(rng, y.shape, dtype)
    with backend.use_backend("numpy"):
        dx = ops.maxpool2d_backward(dy, cache)
    dx_k = k.maxpool2d_backward(_device(dy, layout), argmax_k, x.shape, cache.window)
    assert dx_k.dtype == dtype
    np.testing.assert_array_equal(_host(dx_k), dx)
    assert_close(dx_k, reference.maxpool2d_backward(dy, x, **opts), TOL[dtype], "dx against the reference")


def test_maxpool_forward_treats_nan_and_infinity_like_numpy_argmax(k):
    x = np.array([[-np.inf, -np.inf], [np.nan, 2.0], [3.0, np.inf], [np.nan, np.nan], [1.0, np.nan]])
    x = x.reshape(1, 5, 2, 1)                                   # five 1x2 windows
    window = plan_windows("maxpool2d", (5, 2), (1, 2), (1, 2), "valid", ("valid",))
    y, argmax = k.maxpool2d_forward(_device(x), window)
    stacked = x[0, :, :, 0]
    np.testing.assert_array_equal(_host(argmax).ravel(), np.argmax(stacked, axis=1))
    np.testing.assert_array_equal(_host(y).ravel(), np.max(stacked, axis=1))


def test_maxpool_padding_never_wins_a_window(k):
    x = np.full((1, 3, 3, 2), -1e30)
    window = plan_windows("maxpool2d", (3, 3), (2, 2), (2, 2), "same", ("valid", "same"))
    y, argmax = k.maxpool2d_forward(_device(x), window)
    np.testing.assert_array_equal(_host(y), np.full(y.shape, -1e30))
    dx = k.maxpool2d_backward(_device(np.ones(y.shape)), argmax, x.shape, window)
    assert float(_host(dx).sum()) == y.size                     # every window's gradient lands


# --- ReLU and bias + ReLU ---------------------------------------------------------------------

@given(shape=shapes(), seed=seeds, dtype=float_dtypes, layout=layouts)
def test_relu_kernels_match_the_array_code(k, shape, seed, dtype, layout):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.2] = 0.0
    x[rng.random(shape) < 0.05] = np.nan
    y, positive = k.relu_forward(_device(x, layout))
    np.testing.assert_array_equal(_host(y), np.maximum(x, dtype(0)))
    np.testing.assert_array_equal(_host(positive), x > 0)
    dy = normal(rng, shape, dtype)
    dx = k.relu_backward(_device(dy, layout), positive)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(_host(dx), np.where(x > 0, dy, dtype(0)))


@given(shape=shapes(), seed=seeds, dtype=float_dtypes, with_bias=st.booleans(), layout=layouts)
def test_bias_relu_pair_matches_the_reference(k, shape, seed, dtype, with_bias, layout):
    rng = np.random.default_rng(seed)
    x = normal(rng, shape, dtype)
    x[rng.random(shape) < 0.05] = np.nan
    b = normal(rng, shape[-1:], dtype) if with_bias else None
    z = _device(x, layout)
    y, positive = k.bias_relu(z, None if b is None else _device(b))
    assert y.dtype == dtype and positive.dtype == np.bool_ and y.flags.c_contiguous
    if layout == "contiguous":
        assert y is z                                           # written over the caller's array
    # Equal, not close: one addition and one comparison per element, as in the reference.
    np.testing.assert_array_equal(_host(y), reference.bias_relu_forward(x, b))
    np.testing.assert_array_equal(_host(positive), (x if b is None else x + b) > 0)

    dy = normal(rng, shape, dtype)
    dz, db = k.bias_relu_backward(_device(dy, layout), positive)
    expected_dz, expected_db = reference.bias_relu_backward(dy, x, b if b is not None else np.zeros(shape[-1:], dtype))
    assert dz.dtype == db.dtype == dtype and db.shape == shape[-1:]
    np.testing.assert_array_equal(_host(dz), expected_dz)
    assert_close(db, expected_db, TOL[dtype], "db", floor=1.0)


def test_bias_relu_backward_sums_many_rows_in_a_fixed_order(k):
    """More rows than chunks, channels not a warp multiple: the partial sums must cover
    every row once, and the result must not change from one call to the next."""
    rng = np.random.default_rng(3)
    dy = rng.standard_normal((7, 33, 31, 5))
    positive = rng.random(dy.shape) < 0.7
    dz, db = k.bias_relu_backward(_device(dy), _device(positive))
    assert_close(db, (dy * positive).sum(axis=(0, 1, 2)), 1e-12, "db")
    again = k.bias_relu_backward(_device(dy), _device(positive))[1]
    np.testing.assert_array_equal(_host(again), _host(db))


# --- softmax cross-entropy --------------------------------------------------------------------

@given(n=st.integers(1, 9), c=st.integers(1, 11), seed=seeds, dtype=float_dtypes, sparse=st.booleans(),
       scale=st.sampled_from([1.0, 50.0]))
def test_softmax_cross_entropy_kernels_match_the_array_code(k, n, c, seed, dtype, sparse, scale):
    rng = np.random.default_rng(seed)
    z = (normal(rng, (n, c)) * scale).astype(dtype)
    ids = rng.integers(0, c, n)
    labels = ids if sparse else np.eye(c, dtype=dtype)[ids] * 0.7 + 0.3 / c
    with backend.use_backend("numpy"):
        loss, cache = ops.softmax_cross_entropy_forward(z, labels)
        dz = ops.softmax_cross_entropy_backward(1.5, cache)
    targets = _device(np.asarray(cache.targets))
    loss_k, probs_k = k.softmax_cross_entropy_forward(_device(z), targets, sparse)
    assert loss_k.shape == () and probs_k.dtype == dtype
    tol = TOL[dtype]
    assert_close(loss_k, loss, tol, "loss", floor=scale)
    assert_close(probs_k, cache.probs, tol, "probs")
    dz_k = k.softmax_cross_entropy_backward(_device(np.asarray(1.5)), probs_k, targets, sparse)
    assert dz_k.dtype == dtype
    assert_close(dz_k, dz, tol, "dlogits", floor=1.5 / n)
    assert_close(k.softmax_cross_entropy_backward(1.5, probs_k, targets, sparse), dz, tol, "dlogits, float dloss",
                 floor=1.5 / n)


def test_softmax_cross_entropy_handles_huge_logits(k):
    z = np.array([[1e4, 0.0, -1e4], [3.0, 3.0, 3.0]])
    loss, probs = k.softmax_cross_entropy_forward(_device(z), _device(np.array([0, 2])), True)
    assert_close(probs, [[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3]], 1e-14, "probs")
    assert_close(loss, np.log(3.0) / 2, 1e-14, "loss")


# --- Adam -------------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_follows_keras_formula(k, dtype):
    rng = np.random.default_rng(5)
    p, g = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal((7, 5)).astype(dtype)
    m, v = rng.standard_normal((7, 5)).astype(dtype), rng.random((7, 5)).astype(dtype)
    lr_t, b1, b2, eps = 3e-3, 0.9, 0.999, 1e-7
    em = b1 * m.astype(np.float64) + (1 - b1) * g
    ev = b2 * v.astype(np.float64) + (1 - b2) * g.astype(np.float64) ** 2
    ep = p - lr_t * em / (np.sqrt(ev) + eps)
    pk, mk, vk = _device(p), _device(m), _device(v)
    k.adam_update(pk, _device(g, "fortran"), mk, vk, lr_t, b1, b2, eps)
    tol = 1e-12 if dtype == np.float64 else 1e-6
    assert pk.dtype == mk.dtype == vk.dtype == dtype
    for name, got, want in (("param", pk, ep), ("m", mk, em), ("v", vk, ev)):
        assert_close(got, want, tol, name)


def test_adam_kernel_refuses_arrays_it_cannot_update_in_place(k):
    p = _device(np.zeros((4, 6)))[:, ::2]
    z = _device(np.zeros((4, 3)))
    with pytest.raises(TypeError, match="gpu_cupy.adam_update: param is written in place"):
        k.adam_update(p, z, z.copy(), z.copy(), 1e-3, 0.9, 0.999, 1e-7)
    with pytest.raises(TypeError, match="gpu_cupy.adam_update: m is written in place"):
        k.adam_update(z, z, np.zeros((4, 3)), z.copy(), 1e-3, 0.9, 0.999, 1e-7)


# --- index width, layouts, argument checks ----------------------------------------------------

def test_64_bit_index_kernels_give_the_same_results(k, monkeypatch):
    """Arrays past 2^31 elements use the ``long long`` instantiations; force them on small ones."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 7, 6, 3))
    conv = plan_windows("conv2d", (7, 6), (3, 2), (2, 1), "same", ("same",))
    pool = plan_windows("maxpool2d", (7, 6), (3, 3), (2, 2), "same", ("valid", "same"))

    def run():
        cols = k.im2col(_device(x), conv)
        y, argmax = k.maxpool2d_forward(_device(x), pool)
        dz, db = k.bias_relu_backward(_device(x), _device(x > 0))
        return [cols, k.col2im(cols, x.shape, conv), y, argmax, k.maxpool2d_backward(y, argmax, x.shape, pool),
                *k.relu_forward(_device(x)), dz, db]

    narrow = [_host(a) for a in run()]
    monkeypatch.setattr(k, "_INT32_LIMIT", 0)
    wide = [_host(a) for a in run()]
    for a, b in zip(narrow, wide):
        np.testing.assert_array_equal(a, b)


def test_kernel_outputs_are_c_contiguous(k):
    x = _device(np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32), "fortran")
    window = plan_windows("conv2d", (5, 4), (3, 3), (1, 1), "same", ("same",))
    pool = plan_windows("maxpool2d", (5, 4), (2, 2), (2, 2), "valid", ("valid",))
    outputs = [k.im2col(x, window), k.col2im(k.im2col(x, window), x.shape, window),
               *k.maxpool2d_forward(x, pool), *k.relu_forward(x), *k.bias_relu(x.copy(order="F"), None)]
    assert all(o.flags.c_contiguous for o in outputs)


def test_empty_arrays_launch_nothing(k):
    y, positive = k.relu_forward(_device(np.zeros((0, 3))))
    assert y.shape == positive.shape == (0, 3)
    dz, db = k.bias_relu_backward(_device(np.zeros((0, 4))), _device(np.zeros((0, 4), bool)))
    assert dz.shape == (0, 4)
    np.testing.assert_array_equal(_host(db), np.zeros(4))


def test_bad_arguments_name_the_kernel_and_the_argument(k):
    window = plan_windows("conv2d", (4, 4), (3, 3), (1, 1), "same", ("same",))
    with pytest.raises(TypeError, match="gpu_cupy.im2col: x must be float32 or float64, got dtype float16"):
        k.im2col(_device(np.zeros((1, 4, 4, 2), np.float16)), window)
    with pytest.raises(ValueError, match=r"gpu_cupy.col2im: cols must have shape \(1, 4, 4, 3, 3, 2\)"):
        k.col2im(_device(np.zeros((1, 4, 4, 3, 3, 5))), (1, 4, 4, 2), window)
    with pytest.raises(ValueError, match="gpu_cupy.relu_backward: positive must have shape"):
        k.relu_backward(_device(np.zeros((2, 3))), _device(np.zeros((3, 2), bool)))
    with pytest.raises(ValueError, match=r"gpu_cupy.bias_relu: b must have shape \(3,\)"):
        k.bias_relu(_device(np.zeros((2, 3))), _device(np.zeros(4)))
    with pytest.raises(ValueError, match=r"gpu_cupy.softmax_cross_entropy_forward: targets must have shape \(2,\)"):
        k.softmax_cross_entropy_forward(_device(np.zeros((2, 3))), _device(np.zeros(3, np.int64)), True)


# --- end to end -------------------------------------------------------------------------------

def test_training_steps_on_the_gpu_match_numpy_from_the_same_weights(k):
    """The small ResNet, float64, a few Adam steps on cupy and on numpy: the same weights."""
    from minires.models import build_resnet
    from minires.optim import Adam

    rng = np.random.default_rng(0)
    batches = [(rng.random((4, 8, 8, 3)), rng.integers(0, 10, 4)) for _ in range(3)]
    results = {}
    for name in ("numpy", "cupy"):
        with backend.use_backend(name):
            model = build_resnet(input_shape=(8, 8, 3), filters=4, blocks=2, dense_units=8, seed=0,
                                 dtype="float64")
            model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
            if name == "cupy":
                import cupy

                assert all(isinstance(w, cupy.ndarray) for w in model.weights)
            losses = [model.train_on_batch(x, y)[0] for x, y in batches]
            results[name] = (losses, model.get_weights(), model.predict_on_batch(batches[0][0]))
    (cpu_losses, cpu_weights, cpu_out), (gpu_losses, gpu_weights, gpu_out) = results["numpy"], results["cupy"]
    assert_close(np.array(gpu_losses), np.array(cpu_losses), 1e-10, "losses")
    assert len(gpu_weights) == len(cpu_weights)
    for i, (g, c) in enumerate(zip(gpu_weights, cpu_weights)):
        assert isinstance(g, np.ndarray) and g.dtype == np.float64
        assert_close(g, c, 1e-10, f"weight {i}", floor=1e-3)
    assert_close(gpu_out, cpu_out, 1e-10, "predictions")


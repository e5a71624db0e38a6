"""conv2d: im2col on every backend against the loop reference, central differences and PyTorch.

The Winograd path has its own file, test_winograd.py; here ``algorithm="im2col"`` is forced
wherever "auto" could pick Winograd, so that these tests keep covering im2col/col2im.
"""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import backend, ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, conv_cases, float_dtypes, layouts, normal, seeds


def _draw_arrays(case, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = normal(rng, case["x_shape"], dtype)
    w = normal(rng, case["w_shape"], dtype)
    b = normal(rng, case["w_shape"][3:], dtype) if case["bias"] else None
    return rng, x, w, b


@given(case=conv_cases(), seed=seeds, x_layout=layouts, w_layout=layouts)
def test_conv2d_matches_reference(on_backend, case, seed, x_layout, w_layout):
    rng, x, w, b = _draw_arrays(case, seed)
    x, w = as_layout(x, x_layout), as_layout(w, w_layout)
    opts = dict(stride=case["stride"], padding=case["padding"])
    put = on_backend.put
    y, cache = ops.conv2d_forward(put(x), put(w), put(b), algorithm="im2col", **opts)
    assert_close(y, reference.conv2d_forward(x, w, b, **opts), 1e-12, "forward")
    dy = as_layout(normal(rng, y.shape), x_layout)
    dx, dw, db = ops.conv2d_backward(put(dy), cache)
    rdx, rdw, rdb = reference.conv2d_backward(dy, x, w, b, **opts)
    assert_close(dx, rdx, 1e-12, "dx")
    assert_close(dw, rdw, 1e-12, "dw")
    if b is None:
        assert db is None
    else:
        assert_close(db, rdb, 1e-12, "db")


@given(case=conv_cases(max_hw=5, max_channels=3, max_batch=2, max_kernel=3), seed=seeds, pooled=st.booleans())
def test_conv2d_gradients_match_central_differences(on_backend, case, seed, pooled):
    """conv2d alone, or with its ReLU and the 2x2 max-pool after it as training runs them
    (``conv2d_maxpool_forward(..., keep_cache=True)``)."""
    if pooled:
        case = _poolable(case)
    rng, x, w, b = _draw_arrays(case, seed)
    opts = dict(stride=case["stride"], padding=case["padding"], algorithm="im2col")
    if pooled:
        opts["activation"] = "relu"
    forward_op, backward_op = ((ops.conv2d_maxpool_forward, ops.conv2d_maxpool_backward) if pooled
                               else (ops.conv2d_forward, ops.conv2d_backward))
    put = on_backend.put
    y, cache = forward_op(put(x), put(w), put(b), **opts, **(dict(keep_cache=True) if pooled else {}))
    dy = normal(rng, y.shape)
    grads = backward_op(put(dy), cache)
    inputs = [x, w] if b is None else [x, w, b]

    def forward(*values):
        return forward_op(*map(put, values), **opts)[0]

    check_gradients(forward, inputs, grads[: len(inputs)], dy, rng)


@pytest.mark.torch
@given(case=conv_cases(), seed=seeds, dtype=float_dtypes)
def test_conv2d_matches_pytorch(on_backend, case, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng, x, w, b = _draw_arrays(case, seed, dtype)
    opts = dict(stride=case["stride"], padding=case["padding"])
    put = on_backend.put
    y, cache = ops.conv2d_forward(put(x), put(w), put(b), algorithm="im2col", **opts)
    dy = normal(rng, y.shape, dtype)
    ours = (y, *ops.conv2d_backward(put(dy), cache))
    theirs = torch_adapter.conv2d(x, w, b, case["stride"], case["padding"], dy)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for name, a, t in zip(("y", "dx", "dw", "db"), ours, theirs):
        if t is None:
            assert a is None
            continue
        assert a.dtype == dtype, f"{name} dtype {a.dtype}"
        assert_close(a, t, tol, name)


@pytest.mark.torch
@pytest.mark.parametrize("kernel", [(2, 2), (4, 4), (2, 3), (3, 2)])
@pytest.mark.parametrize("stride", [1, 2, (2, 1), 3])
def test_conv2d_keras_same_with_even_kernels_matches_pytorch(on_backend, kernel, stride):
    """Keras puts the odd padding pixel bottom/right; symmetric padding would shift the output."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(7)
    x = normal(rng, (2, 8, 7, 3))
    w = normal(rng, (*kernel, 3, 4))
    y, cache = ops.conv2d_forward(on_backend.put(x), on_backend.put(w), None, stride=stride, padding="same")
    dy = normal(rng, y.shape)
    dx, dw, _ = ops.conv2d_backward(on_backend.put(dy), cache)
    ty, tdx, tdw, _ = torch_adapter.conv2d(x, w, None, stride, "same", dy)
    for name, a, t in (("y", y, ty), ("dx", dx, tdx), ("dw", dw, tdw)):
        assert_close(a, t, 1e-10, name)


@pytest.mark.torch
def test_conv2d_strided_same_case_agrees_with_pytorch_to_1e12(on_backend):
    """(2, 7, 5, 3) input, (3, 2, 3, 4) kernel, stride (2, 1), 'same', float64."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(2024)
    x, w, b = normal(rng, (2, 7, 5, 3)), normal(rng, (3, 2, 3, 4)), normal(rng, (4,))
    put = on_backend.put
    y, cache = ops.conv2d_forward(put(x), put(w), put(b), stride=(2, 1), padding="same")
    assert y.shape == (2, 4, 5, 4)
    dy = normal(rng, y.shape)
    ours = (y, *ops.conv2d_backward(put(dy), cache))
    theirs = torch_adapter.conv2d(x, w, b, (2, 1), "same", dy)
    for name, a, t in zip(("y", "dx", "dw", "db"), ours, theirs):
        assert_close(a, t, 1e-12, name)


@given(case=conv_cases(max_hw=5), seed=seeds, dtype=float_dtypes,
       algorithm=st.sampled_from(["auto", "im2col"]))
def test_conv2d_keeps_dtype(on_backend, case, seed, dtype, algorithm):
    rng, x, w, b = _draw_arrays(case, seed, dtype)
    put = on_backend.put
    y, cache = ops.conv2d_forward(put(x), put(w), put(b), stride=case["stride"], padding=case["padding"],
                                  algorithm=algorithm)
    grads = ops.conv2d_backward(put(normal(rng, y.shape, dtype)), cache)
    assert y.dtype == dtype
    assert all(g.dtype == dtype for g in grads if g is not None)


@pytest.mark.parametrize(
    "n, k, s, expected",
    [(5, 3, 1, (1, 1)), (5, 3, 2, (1, 1)), (6, 3, 2, (0, 1)), (7, 2, 1, (0, 1)),
     (4, 4, 1, (1, 2)), (8, 1, 2, (0, 0)), (3, 5, 1, (2, 2)), (1, 3, 3, (1, 1))],
)
def test_same_padding_follows_tensorflow(n, k, s, expected):
    """Values of TensorFlow's rule: total = max((ceil(n/s)-1)*s + k - n, 0), odd pixel after."""
    assert ops.same_padding(n, k, s) == expected


def test_conv2d_same_keeps_spatial_size_at_stride_one():
    x = np.ones((1, 5, 6, 2))
    for kernel in [(1, 1), (2, 2), (3, 3), (4, 5)]:
        y, _ = ops.conv2d_forward(x, np.ones((*kernel, 2, 3)), padding="same")
        assert y.shape == (1, 5, 6, 3)


@given(st.data())
def test_conv2d_output_size_formula(data):
    case = data.draw(conv_cases())
    x = np.zeros(case["x_shape"])
    w = np.zeros(case["w_shape"])
    y, _ = ops.conv2d_forward(x, w, stride=case["stride"], padding=case["padding"])
    sh, sw = (case["stride"],) * 2 if isinstance(case["stride"], int) else case["stride"]
    if case["padding"] in ("same", "SAME"):
        assert y.shape[1:3] == (-(-x.shape[1] // sh), -(-x.shape[2] // sw))


def test_conv2d_1x1_stride_1_reads_x_without_copying_it():
    """A 1x1 window at stride 1 is the pixel itself: im2col's rows are x's, a view."""
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5))
    _, cache = ops.conv2d_forward(x, np.ones((1, 1, 5, 2)), padding="valid", algorithm="im2col")
    assert np.shares_memory(cache.saved, x)


@pytest.mark.parametrize("algorithm", ["fft", None, "WINOGRAD"])
def test_conv2d_refuses_unknown_algorithms(algorithm):
    expected = "conv2d: algorithm must be one of 'auto', 'im2col', 'winograd', 'winograd4x4'"
    with pytest.raises(ValueError, match=expected):
        ops.conv2d_forward(np.zeros((1, 4, 4, 1)), np.zeros((3, 3, 1, 1)), algorithm=algorithm)


@pytest.mark.torch
def test_conv2d_one_input_channel_stride_1_2_matches_pytorch(on_backend):
    """The case that trips PyTorch 2.13's oneDNN conv when C has stride 1 (see torch_adapter.conv2d)."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(0)
    x, w = normal(rng, (2, 4, 3, 1), np.float32), normal(rng, (2, 3, 1, 3), np.float32)
    y, cache = ops.conv2d_forward(on_backend.put(x), on_backend.put(w), stride=(1, 2), padding="valid")
    dy = normal(rng, y.shape, np.float32)
    ours = (y, *ops.conv2d_backward(on_backend.put(dy), cache)[:2])
    for name, a, t in zip(("y", "dx", "dw"), ours, torch_adapter.conv2d(x, w, None, (1, 2), "valid", dy)):
        assert_close(a, t, 1e-5, name)


def _algorithms_for(case):
    """Every algorithm that computes this case (Winograd: 3x3 kernels at stride 1 only)."""
    winograd_fits = case["w_shape"][:2] == (3, 3) and case["stride"] in (1, (1, 1))
    return [a for a in ops.conv.ALGORITHMS if a != "auto" and (winograd_fits or "winograd" not in a)]


@given(case=conv_cases(max_hw=6, max_channels=3), seed=seeds, data=st.data())
def test_conv2d_with_fused_relu_equals_conv_then_relu(on_backend, case, seed, data):
    """activation="relu" fuses bias and ReLU: the values and gradients of conv then relu."""
    rng, x, w, b = _draw_arrays(case, seed)
    algorithm = data.draw(st.sampled_from(_algorithms_for(case)), label="algorithm")
    opts = dict(stride=case["stride"], padding=case["padding"], algorithm=algorithm)
    put = on_backend.put
    z, plain = ops.conv2d_forward(put(x), put(w), put(b), **opts)
    expected, relu = ops.relu_forward(z)
    y, fused = ops.conv2d_forward(put(x), put(w), put(b), activation="relu", **opts)
    # Rounding only: a kernel may add the bias inside a sum (Winograd's output transform).
    assert_close(y, expected, 1e-12, "forward")
    dy = normal(rng, y.shape)
    for got, want, name in zip(ops.conv2d_backward(put(dy), fused),
                               ops.conv2d_backward(ops.relu_backward(put(dy), relu), plain),
                               ("dx", "dw", "db")):
        if want is None:
            assert got is None, name
        else:
            assert_close(got, want, 1e-12, name)


@given(case=conv_cases(max_hw=6, max_channels=3), seed=seeds, data=st.data())
def test_conv2d_backward_without_input_grad_skips_dx_only(on_backend, case, seed, data):
    rng, x, w, b = _draw_arrays(case, seed)
    algorithm = data.draw(st.sampled_from(_algorithms_for(case)), label="algorithm")
    activation = data.draw(st.sampled_from([None, "relu"]), label="activation")
    y, cache = ops.conv2d_forward(on_backend.put(x), on_backend.put(w), on_backend.put(b),
                                  stride=case["stride"], padding=case["padding"], algorithm=algorithm,
                                  activation=activation)
    dy = on_backend.put(normal(rng, y.shape))
    dx, dw, db = ops.conv2d_backward(dy, cache, input_grad=False)
    _, full_dw, full_db = ops.conv2d_backward(dy, cache)
    assert dx is None
    assert_close(dw, full_dw, 0.0, "dw")
    if b is None:
        assert db is None
    else:
        assert_close(db, full_db, 0.0, "db")


def test_conv2d_refuses_unknown_activations():
    with pytest.raises(ValueError, match="conv2d: activation must be None or 'relu', got 'tanh'"):
        ops.conv2d_forward(np.zeros((1, 4, 4, 1)), np.zeros((3, 3, 1, 1)), activation="tanh")


@given(case=conv_cases(max_hw=9, max_channels=3), seed=seeds, data=st.data(),
       dtype=float_dtypes)
def test_conv2d_without_a_cache_gives_the_same_output(on_backend, case, seed, data, dtype):
    """keep_cache=False (inference) may take another path (numba's blocked Winograd), never
    another result beyond rounding."""
    rng, x, w, b = _draw_arrays(case, seed, dtype)
    algorithm = data.draw(st.sampled_from(_algorithms_for(case)), label="algorithm")
    activation = data.draw(st.sampled_from([None, "relu"]), label="activation")
    opts = dict(stride=case["stride"], padding=case["padding"], algorithm=algorithm, activation=activation)
    put = on_backend.put
    y, cache = ops.conv2d_forward(put(x), put(w), put(b), **opts)
    y_inference, no_cache = ops.conv2d_forward(put(x), put(w), put(b), keep_cache=False, **opts)
    assert no_cache is None and y_inference.dtype == dtype
    assert_close(y_inference, y, 1e-12 if dtype == np.float64 else 1e-5, "y")


def _geometry(case):
    return dict(stride=case["stride"], padding=case["padding"], algorithm="im2col", keep_cache=False)


@given(case=conv_cases(max_hw=9, max_channels=3), seed=seeds, data=st.data(), dtype=float_dtypes)
def test_conv2d_maxpool_is_the_two_ops_in_turn(on_backend, case, seed, data, dtype):
    """Inference's conv + 2x2 max-pool: the max-pool of the conv (to rounding, another path
    may run the convolution), and the loop reference's, for every algorithm and activation."""
    case = _poolable(case)
    rng, x, w, b = _draw_arrays(case, seed, dtype)
    algorithm = data.draw(st.sampled_from(_algorithms_for(case)), label="algorithm")
    activation = data.draw(st.sampled_from([None, "relu"]), label="activation")
    opts = dict(stride=case["stride"], padding=case["padding"], algorithm=algorithm, activation=activation)
    put = on_backend.put
    z, _ = ops.conv2d_forward(put(x), put(w), put(b), keep_cache=False, **opts)
    assert min(z.shape[1:3]) >= 2
    expected, _ = ops.maxpool2d_forward(z, pool_size=2, keep_cache=False)
    y, none = ops.conv2d_maxpool_forward(put(x), put(w), put(b), **opts)
    assert none is None and y.dtype == dtype
    assert_close(y, expected, 1e-12 if dtype == np.float64 else 1e-5, "y")
    if dtype == np.float64 and algorithm == "im2col":
        conv = reference.conv2d_forward(x, w, b, stride=case["stride"], padding=case["padding"])
        conv = np.maximum(conv, 0) if activation == "relu" else conv
        assert_close(y, reference.maxpool2d_forward(conv, pool_size=2), 1e-12, "y against the reference")


def _poolable(case):
    """The case with its input grown until the convolution's output is at least 2x2."""
    # An output side below 2 (no pool window) grows by one each time the input grows by a
    # stride, whatever the padding.
    stride = (case["stride"],) * 2 if isinstance(case["stride"], int) else tuple(case["stride"])
    with backend.use_backend("numpy"):
        side = ops.conv2d_forward(np.zeros(case["x_shape"]), np.zeros(case["w_shape"]), **_geometry(case))[0].shape
    n, h, w_, c = case["x_shape"]
    return dict(case, x_shape=(n, h + stride[0] * max(0, 2 - side[1]), w_ + stride[1] * max(0, 2 - side[2]), c))


@given(case=conv_cases(max_hw=9, max_channels=3), seed=seeds, data=st.data(), dtype=float_dtypes,
       input_grad=st.booleans(), x_layout=layouts)
def test_conv2d_maxpool_training_is_the_two_ops_in_turn(on_backend, case, seed, data, dtype, input_grad,
                                                         x_layout):
    """Training's conv + 2x2 max-pool (the ReLU after the pool on the array code): the two
    ops' output and gradients, the loop reference's in float64; the pooled output's ReLU
    makes ties and non-positive windows common (a third of the weights are zeroed)."""
    case = _poolable(case)
    rng, x, w, b = _draw_arrays(case, seed, dtype)
    x = as_layout(x, x_layout)
    w = w * (rng.random(w.shape) < 0.7)                    # whole windows at 0: ties, and z <= 0
    algorithm = data.draw(st.sampled_from(_algorithms_for(case)), label="algorithm")
    activation = data.draw(st.sampled_from([None, "relu"]), label="activation")
    opts = dict(stride=case["stride"], padding=case["padding"], algorithm=algorithm, activation=activation)
    put = on_backend.put
    y, cache = ops.conv2d_maxpool_forward(put(x), put(w), put(b), keep_cache=True, **opts)
    z, conv_cache = ops.conv2d_forward(put(x), put(w), put(b), **opts)
    expected, pool_cache = ops.maxpool2d_forward(z, pool_size=2)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert y.dtype == dtype
    assert_close(y, expected, tol, "y")
    dy = normal(rng, y.shape, dtype)
    grads = ops.conv2d_maxpool_backward(put(dy), cache, input_grad=input_grad)
    two_ops = ops.conv2d_backward(ops.maxpool2d_backward(put(dy), pool_cache), conv_cache, input_grad=input_grad)
    for name, got, want in zip(("dx", "dw", "db"), grads, two_ops):
        if want is None:
            assert got is None, name
        else:
            assert got.dtype == dtype, name
            assert_close(got, want, tol, name)
    if dtype == np.float64 and algorithm == "im2col":
        conv = reference.conv2d_forward(x, w, b, stride=case["stride"], padding=case["padding"])
        relu = activation == "relu"
        act = reference.relu_forward(conv) if relu else conv
        assert_close(y, reference.maxpool2d_forward(act, pool_size=2), 1e-12, "y against the reference")
        dz = reference.maxpool2d_backward(dy, act, pool_size=2)
        dz = reference.relu_backward(dz, conv) if relu else dz
        rdx, rdw, rdb = reference.conv2d_backward(dz, x, w, b, stride=case["stride"], padding=case["padding"])
        assert_close(grads[1], rdw, 1e-12, "dw against the reference")
        if input_grad:
            assert_close(grads[0], rdx, 1e-12, "dx against the reference")
        if b is not None:
            assert_close(grads[2], rdb, 1e-12, "db against the reference")


def test_conv2d_maxpool_training_applies_the_relu_after_the_pool_on_the_array_code(on_backend):
    """Where the ReLU would be a pass of its own (numpy), it runs on the pooled values; where
    the backend applies it as it writes the convolution's output (numba), the ops run in turn."""
    rng = np.random.default_rng(0)
    x = on_backend.put(rng.standard_normal((2, 8, 8, 3)).astype(np.float32))
    w = on_backend.put(rng.standard_normal((3, 3, 3, 4)).astype(np.float32))
    b = on_backend.put(rng.standard_normal(4).astype(np.float32))
    _, cache = ops.conv2d_maxpool_forward(x, w, b, activation="relu", keep_cache=True)
    after = on_backend.name == "numpy"
    assert (cache.relu is not None) == after
    assert cache.relu is None or cache.relu.positive.shape == (2, 4, 4, 4)
    _, linear = ops.conv2d_maxpool_forward(x, w, b, keep_cache=True)
    assert linear.relu is None and linear.conv.has_bias


@pytest.mark.parametrize("kernel, c_in, algorithm", [(3, 16, "auto"), (3, 3, "auto"), (1, 16, "auto"),
                                                     (3, 4, "winograd"), (3, 4, "im2col")])
def test_conv2d_of_an_empty_batch(on_backend, kernel, c_in, algorithm):
    """A batch of 0 images gives empty outputs and zero weight gradients on every path."""
    x = on_backend.put(np.zeros((0, 8, 8, c_in), np.float32))
    w = on_backend.put(np.ones((kernel, kernel, c_in, 5), np.float32))
    b = on_backend.put(np.zeros(5, np.float32))
    y, cache = ops.conv2d_forward(x, w, b, algorithm=algorithm, activation="relu")
    assert y.shape == (0, 8, 8, 5)
    assert ops.conv2d_forward(x, w, b, algorithm=algorithm, keep_cache=False)[0].shape == (0, 8, 8, 5)
    dx, dw, db = ops.conv2d_backward(on_backend.put(np.zeros(y.shape, np.float32)), cache)
    assert dx.shape == (0, 8, 8, c_in)
    assert_close(dw, np.zeros((kernel, kernel, c_in, 5)), 0.0, "dw")
    assert_close(db, np.zeros(5), 0.0, "db")


@given(case=conv_cases(max_hw=7, max_channels=3), seed=seeds, relu=st.booleans(), input_grad=st.booleans())
def test_conv2d_array_code_asks_for_the_finer_kernels_a_backend_has(monkeypatch, case, seed, relu, input_grad):
    """A backend with no whole-convolution kernel but the steps' kernels (as cupy's: im2col,
    col2im, bias + ReLU): conv2d runs its array code, asks for each step's kernel by name, and
    gets the numpy backend's values. Played on numba, its blocked kernels taken out and an
    im2col kernel put in (the array code's, reading x unpadded, as the CUDA kernel does)."""
    pytest.importorskip("numba")
    import minires
    from minires.kernels import numba as numba_kernels
    from minires.ops.im2col import im2col, pad_nhwc

    rng, x, w, b = _draw_arrays(case, seed)
    opts = dict(stride=case["stride"], padding=case["padding"], algorithm="im2col",
                activation="relu" if relu else None)
    with minires.use_backend("numpy"):
        y, cache = ops.conv2d_forward(x, w, b, **opts)
        dy = normal(rng, y.shape)
        expected = ops.conv2d_backward(dy, cache, input_grad)
    calls = []

    def counted(name, function):
        return lambda *args: calls.append(name) or function(*args)

    with monkeypatch.context() as patch:
        patch.delattr(numba_kernels, "im2col_conv_forward")
        patch.delattr(numba_kernels, "im2col_conv_backward")
        unpadded = lambda x, window: im2col(pad_nhwc(x, window.padding), window)  # noqa: E731
        patch.setattr(numba_kernels, "im2col", counted("im2col", unpadded), raising=False)
        for name in ("col2im", "bias_relu", "bias_relu_backward"):
            patch.setattr(numba_kernels, name, counted(name, getattr(numba_kernels, name)))
        with minires.use_backend("numba"):
            y_steps, cache_steps = ops.conv2d_forward(x, w, b, **opts)
            got = ops.conv2d_backward(dy, cache_steps, input_grad)
    assert calls == (["im2col"] + (["bias_relu", "bias_relu_backward"] if relu else [])
                     + (["col2im"] if input_grad else []))
    assert_close(y_steps, y, 1e-12, "y")
    for name, a, e in zip(("dx", "dw", "db"), got, expected):
        if e is None:
            assert a is None, name
        else:
            assert_close(a, e, 1e-12, name)

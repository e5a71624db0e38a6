"""Winograd conv2d on every backend: against the loop reference (float64 and float32), central
differences and PyTorch; each transform against its transpose; the algorithm choice."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from minires.ops import winograd
from minires.ops.conv import choose_algorithm
from minires.windows import plan_windows
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, layouts, normal, seeds, winograd_cases

ALGORITHMS = st.sampled_from(["winograd", "winograd4x4"])


def _arrays(case, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = normal(rng, case["x_shape"], dtype)
    w = normal(rng, case["w_shape"], dtype)
    b = normal(rng, case["w_shape"][3:], dtype) if case["bias"] else None
    return rng, x, w, b


def _run(on_backend, x, w, b, dy_fn, padding, algorithm):
    put = on_backend.put
    y, cache = ops.conv2d_forward(put(x), put(w), put(b), padding=padding, algorithm=algorithm)
    assert cache.algorithm == algorithm
    dy = dy_fn(y.shape)
    return (y, *ops.conv2d_backward(put(dy), cache)), dy


@given(case=winograd_cases(), seed=seeds, algorithm=ALGORITHMS, layout=layouts)
def test_winograd_matches_reference_in_float64(on_backend, case, seed, algorithm, layout):
    rng, x, w, b = _arrays(case, seed)
    x = as_layout(x, layout)
    (y, dx, dw, db), dy = _run(on_backend, x, w, b, lambda s: normal(rng, s), case["padding"], algorithm)
    ry = reference.conv2d_forward(x, w, b, padding=case["padding"])
    rdx, rdw, rdb = reference.conv2d_backward(dy, x, w, b, padding=case["padding"])
    for name, a, r in (("y", y, ry), ("dx", dx, rdx), ("dw", dw, rdw), ("db", db, rdb)):
        if r is None:
            assert a is None
        else:
            assert a.dtype == np.float64
            assert_close(a, r, 1e-10, f"{algorithm} {name}")


@given(case=winograd_cases(max_channels=8), seed=seeds, algorithm=ALGORITHMS)
def test_winograd_matches_reference_in_float32(on_backend, case, seed, algorithm):
    """float32 in, float32 out, within 1e-4 of the float64 reference (relative to its largest value)."""
    rng, x, w, b = _arrays(case, seed)
    x32, w32 = x.astype(np.float32), w.astype(np.float32)
    b32 = None if b is None else b.astype(np.float32)
    (y, dx, dw, db), dy = _run(on_backend, x32, w32, b32, lambda s: normal(rng, s, np.float32),
                               case["padding"], algorithm)
    # The reference in float64, on the very values the float32 run saw.
    ry = reference.conv2d_forward(x32.astype(np.float64), w32.astype(np.float64),
                                  None if b32 is None else b32.astype(np.float64), padding=case["padding"])
    rdx, rdw, _ = reference.conv2d_backward(dy.astype(np.float64), x32.astype(np.float64),
                                            w32.astype(np.float64), None, padding=case["padding"])
    for name, a, r in (("y", y, ry), ("dx", dx, rdx), ("dw", dw, rdw)):
        assert a.dtype == np.float32, f"{name} dtype {a.dtype}"
        assert_close(a, r, 1e-4, f"{algorithm} float32 {name}")


@given(case=winograd_cases(max_hw=5, max_channels=2), seed=seeds, algorithm=ALGORITHMS)
def test_winograd_gradients_match_central_differences(on_backend, case, seed, algorithm):
    rng, x, w, b = _arrays(case, seed)
    put = on_backend.put
    opts = dict(padding=case["padding"], algorithm=algorithm)
    y, cache = ops.conv2d_forward(put(x), put(w), put(b), **opts)
    dy = normal(rng, y.shape)
    grads = ops.conv2d_backward(put(dy), cache)
    inputs = [x, w] if b is None else [x, w, b]
    check_gradients(lambda *v: ops.conv2d_forward(*map(put, v), **opts)[0], inputs,
                    grads[: len(inputs)], dy, rng)


@given(case=winograd_cases(), seed=seeds, algorithm=ALGORITHMS, part_bytes=st.integers(1, 20000),
       input_grad=st.booleans())
def test_winograd_backward_in_parts_of_the_batch(monkeypatch, case, seed, algorithm, part_bytes, input_grad):
    """The array code's backward pass on the host, a part of the batch at a time (as at the
    seed's 16x16 layers): the whole batch's gradients, and the loop reference's."""
    rng, x, w, b = _arrays(case, seed)
    y, cache = ops.conv2d_forward(x, w, b, padding=case["padding"], algorithm=algorithm)
    dy = normal(rng, y.shape)
    whole = ops.conv2d_backward(dy, cache, input_grad=input_grad)
    monkeypatch.setattr(winograd, "_HOST_PART_BYTES", part_bytes)
    parts = ops.conv2d_backward(dy, cache, input_grad=input_grad)
    monkeypatch.undo()
    rdx, rdw, _ = reference.conv2d_backward(dy, x, w, b, padding=case["padding"])
    assert_close(parts[1], whole[1], 1e-12, "dw")
    assert_close(parts[1], rdw, 1e-10, "dw against the reference")
    if input_grad:
        assert_close(parts[0], whole[0], 1e-12, "dx")
        assert_close(parts[0], rdx, 1e-10, "dx against the reference")
    else:
        assert parts[0] is None


@pytest.mark.torch
@given(case=winograd_cases(max_channels=6), seed=seeds, algorithm=ALGORITHMS,
       dtype=st.sampled_from([np.float32, np.float64]))
def test_winograd_matches_pytorch(on_backend, case, seed, algorithm, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng, x, w, b = _arrays(case, seed, dtype)
    ours, dy = _run(on_backend, x, w, b, lambda s: normal(rng, s, dtype), case["padding"], algorithm)
    theirs = torch_adapter.conv2d(x, w, b, 1, case["padding"], dy)
    # Each result is a sum, and a sum of terms that cancel (db of a few dozen pixels, say)
    # rounds relative to its terms, not to what is left: the same convolution of absolute
    # values gives each sum's terms' size, the floor of its relative error.
    sizes = torch_adapter.conv2d(np.abs(x), np.abs(w), None if b is None else np.abs(b), 1,
                                 case["padding"], np.abs(dy))
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for name, a, t, size in zip(("y", "dx", "dw", "db"), ours, theirs, sizes):
        if t is None:
            assert a is None
            continue
        assert_close(a, t, tol, f"{algorithm} {name}", floor=float(np.max(np.abs(size))))


def test_winograd_at_a_seed_shape_in_float32(on_backend):
    """One 16x16x64 -> 64 layer, batch 2, float32: the seed's case, against float64 im2col."""
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 16, 16, 64))
    w = rng.standard_normal((3, 3, 64, 64)) * np.sqrt(2 / (9 * 64))
    b = rng.standard_normal(64) * 0.1
    y64, c64 = ops.conv2d_forward(x, w, b, algorithm="im2col")
    dy = rng.standard_normal(y64.shape)
    expected = (y64, *ops.conv2d_backward(dy, c64))
    put = on_backend.put
    for algorithm in ("winograd", "winograd4x4"):
        y, cache = ops.conv2d_forward(put(x.astype(np.float32)), put(w.astype(np.float32)),
                                      put(b.astype(np.float32)), algorithm=algorithm)
        got = (y, *ops.conv2d_backward(put(dy.astype(np.float32)), cache))
        for name, a, e in zip(("y", "dx", "dw", "db"), got, expected):
            assert_close(a, e, 1e-4 if algorithm == "winograd4x4" else 1e-5, f"{algorithm} {name}")


# --- the transforms, each against its transpose ---------------------------------------------

@pytest.mark.parametrize("f", [winograd.F2X2_3X3, winograd.F4X4_3X3], ids=["F2x2", "F4x4"])
def test_winograd_matrices_compute_a_1d_correlation(f):
    """A^T [(G g) * (B^T d)] = the m outputs of correlating d (m + 2 values) with g (3)."""
    rng = np.random.default_rng(0)
    d, g = rng.standard_normal(f.alpha), rng.standard_normal(3)
    expected = [d[k:k + 3] @ g for k in range(f.m)]
    np.testing.assert_allclose(f.AT @ ((f.G @ g) * (f.BT @ d)), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("f", [winograd.F2X2_3X3, winograd.F4X4_3X3], ids=["F2x2", "F4x4"])
@pytest.mark.parametrize("padding", ["same", "valid", ((2, 0), (1, 2))])
def test_each_transform_is_the_transpose_of_its_gradient(on_backend, f, padding):
    """<T a, b> = <a, T^T b> for the input and output transforms and their gradients."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 7, 6, 3))
    window = plan_windows("conv2d", (7, 6), (3, 3), (1, 1), padding, ("same", "valid", "explicit"))
    tiles = winograd.tile_counts(window.out_hw, f.m)
    put, get = on_backend.put, on_backend.get

    v = get(winograd.transform_input(put(x), window.padding, tiles, f))
    dv = rng.standard_normal(v.shape)
    dx = get(winograd.transform_input_grad(put(dv), x.shape, window.padding, tiles, f))
    np.testing.assert_allclose(np.vdot(v, dv), np.vdot(x, dx), rtol=1e-12)

    mt = rng.standard_normal(v.shape[:2] + (4,))
    y = get(winograd.transform_output(put(mt), None, 2, tiles, window.out_hw, f))
    dy = rng.standard_normal(y.shape)
    dmt = get(winograd.transform_output_grad(put(dy), tiles, f))
    np.testing.assert_allclose(np.vdot(y, dy), np.vdot(mt, dmt), rtol=1e-12)

    w = rng.standard_normal((3, 3, 3, 4))
    u = get(winograd.transform_kernel(put(w), f))
    du = rng.standard_normal(u.shape)
    dw = get(winograd.transform_kernel_grad(put(du), f))
    np.testing.assert_allclose(np.vdot(u, du), np.vdot(w, dw), rtol=1e-12)


# --- which algorithm "auto" picks -------------------------------------------------------------

def _window(kernel=(3, 3), stride=(1, 1), side=16):
    return plan_windows("conv2d", (side, side), kernel, stride, "same", ("same",))


@pytest.mark.parametrize("backend, side, expected", [
    ("numba", 8, "winograd4x4"), ("numba", 7, "winograd4x4"), ("numba", 4, "winograd4x4"),
    ("numpy", 4, "winograd4x4"), ("numpy", 2, "winograd4x4"),
])
def test_auto_rule_for_small_images(backend, side, expected):
    assert choose_algorithm(_window(side=side), 64, 64, np.dtype(np.float32), backend) == expected


@pytest.mark.parametrize("backend, c_in, dtype, kernel, stride, expected", [
    ("numba", 64, np.float32, (3, 3), (1, 1), "winograd4x4"),
    ("numpy", 16, np.float32, (3, 3), (1, 1), "winograd4x4"),
    ("cupy", 64, np.float32, (3, 3), (1, 1), "im2col"),
    ("numba", 3, np.float32, (3, 3), (1, 1), "im2col"),         # the seed's first layer
    ("numba", 64, np.float64, (3, 3), (1, 1), "im2col"),        # checks keep the exact path
    ("numba", 64, np.float32, (1, 1), (1, 1), "im2col"),
    ("numpy", 64, np.float32, (3, 3), (2, 2), "im2col"),
])
def test_auto_rule(backend, c_in, dtype, kernel, stride, expected):
    assert choose_algorithm(_window(kernel, stride), c_in, 64, np.dtype(dtype), backend) == expected


def test_winograd_refuses_other_kernels_and_strides():
    x = np.zeros((1, 6, 6, 2))
    with pytest.raises(ValueError, match="algorithm 'winograd' needs a 3x3 kernel at stride 1"):
        ops.conv2d_forward(x, np.zeros((3, 3, 2, 2)), stride=2, algorithm="winograd")
    with pytest.raises(ValueError, match="algorithm 'winograd4x4' needs a 3x3 kernel"):
        ops.conv2d_forward(x, np.zeros((3, 2, 2, 2)), algorithm="winograd4x4")


# --- non-finite input ---------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ["auto", "winograd", "winograd4x4"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_a_non_finite_input_pixel_stays_in_its_receptive_field(on_backend, algorithm, value):
    """One NaN or inf pixel in a 16x16x16 float32 input: the outputs it reaches are exactly
    those im2col reaches (its 3x3 neighbourhood in every output channel), not whole tiles."""
    rng = np.random.default_rng(0)
    x = normal(rng, (2, 16, 16, 16), np.float32)
    w = normal(rng, (3, 3, 16, 16), np.float32)
    x[1, 7, 9, 3] = value
    put, get = on_backend.put, on_backend.get
    y, _ = ops.conv2d_forward(put(x), put(w), padding="same", algorithm=algorithm)
    expected, _ = ops.conv2d_forward(x, w, padding="same", algorithm="im2col")
    y = get(y)
    reached = ~np.isfinite(y)
    np.testing.assert_array_equal(reached, ~np.isfinite(expected))
    assert reached[1].sum() == 9 * 16 and not reached[0].any()
    assert_close(np.where(reached, 0, y), np.where(reached, 0, expected), 1e-4, algorithm)


@pytest.mark.parametrize("value", [np.nan, -np.inf])
def test_a_non_finite_pixel_stays_in_its_windows_through_relu_and_pool(on_backend, value):
    """The same through the inference step that pools as it convolves, ReLU included, and
    through a training forward, whose cache then records the im2col convolution."""
    rng = np.random.default_rng(1)
    x = normal(rng, (2, 16, 16, 16), np.float32)
    w = normal(rng, (3, 3, 16, 16), np.float32)
    b = normal(rng, (16,), np.float32)
    x[0, 4, 0, 5] = value
    put, get = on_backend.put, on_backend.get
    z, _ = ops.conv2d_forward(x, w, b, padding="same", algorithm="im2col", activation="relu")
    expected, _ = ops.maxpool2d_forward(z, keep_cache=False)
    pooled, _ = ops.conv2d_maxpool_forward(put(x), put(w), put(b), padding="same", activation="relu")
    pooled = get(pooled)
    reached = ~np.isfinite(pooled)
    np.testing.assert_array_equal(reached, ~np.isfinite(expected))
    assert not reached[1].any() and (reached.any() or value < 0)    # -inf: the ReLU may clear it
    assert_close(np.where(reached, 0, pooled), np.where(reached, 0, expected), 1e-4, "pooled")
    y, cache = ops.conv2d_forward(put(x), put(w), put(b), padding="same", activation="relu")
    np.testing.assert_array_equal(~np.isfinite(get(y)), ~np.isfinite(z))
    assert cache.algorithm == "im2col"


def test_forward_refuses_relu_where_no_kernel_applies_it():
    from minires import backend
    from minires.windows import plan_windows

    x, w = np.zeros((1, 4, 4, 2)), np.zeros((3, 3, 2, 2))
    window = plan_windows("conv2d", (4, 4), (3, 3), (1, 1), "same", ("same",))
    with backend.use_backend("numpy"):
        assert not winograd.fuses_relu(x)
        with pytest.raises(ValueError, match="winograd.forward: relu=True needs a backend"):
            winograd.forward(x, w, None, window, relu=True)

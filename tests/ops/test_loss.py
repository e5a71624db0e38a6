"""The losses: softmax cross-entropy, cross-entropy of probabilities (Keras' clipped form) and
mean squared error, against the reference, central differences and PyTorch; stability and
argument errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds, shapes

logit_shapes = st.tuples(st.integers(1, 6), st.integers(1, 7))     # N, C
label_kinds = st.sampled_from(["ids", "one_hot", "probabilities"])


def _labels(rng, n, c, kind, dtype=np.float64):
    ids = rng.integers(0, c, size=n)
    if kind == "ids":
        return ids
    if kind == "one_hot":
        return np.eye(c, dtype=dtype)[ids]
    p = rng.random((n, c)).astype(dtype) + 0.01
    return p / p.sum(axis=1, keepdims=True)


@given(shape=logit_shapes, seed=seeds, kind=label_kinds, layout=layouts, scale=st.sampled_from([1.0, 30.0]))
def test_softmax_cross_entropy_matches_reference(on_backend, shape, seed, kind, layout, scale):
    n, c = shape
    rng = np.random.default_rng(seed)
    z = as_layout(normal(rng, shape) * scale, layout)
    labels = _labels(rng, n, c, kind)
    loss, cache = ops.softmax_cross_entropy_forward(on_backend.put(z), on_backend.put(labels))
    assert loss.shape == ()
    assert_close(loss, reference.softmax_cross_entropy_forward(z, labels), 1e-13, "loss", floor=scale)
    dloss = rng.standard_normal()
    # p - t cancels where p is near 1: measure against the gradient's natural scale, dloss / N.
    assert_close(ops.softmax_cross_entropy_backward(dloss, cache),
                 reference.softmax_cross_entropy_backward(dloss, z, labels), 1e-13, "dlogits",
                 floor=abs(dloss) / n)


def _check_loss_gradient(on_backend, forward, backward, scores, targets, rng):
    """A mean loss's backward, for a random dloss, against central differences of its forward."""
    put = on_backend.put
    _, cache = forward(put(scores), put(targets))
    dloss = np.asarray(rng.standard_normal())
    grad = backward(put(dloss), cache)
    check_gradients(lambda v: forward(put(v), put(targets))[0], [scores], [grad], dloss, rng)


@given(shape=logit_shapes, seed=seeds, kind=label_kinds)
def test_softmax_cross_entropy_gradient_matches_central_differences(on_backend, shape, seed, kind):
    n, c = shape
    rng = np.random.default_rng(seed)
    z = normal(rng, shape)
    labels = _labels(rng, n, c, kind)
    _check_loss_gradient(on_backend, ops.softmax_cross_entropy_forward, ops.softmax_cross_entropy_backward,
                         z, labels, rng)


@pytest.mark.torch
@given(shape=logit_shapes, seed=seeds, kind=label_kinds, dtype=float_dtypes)
def test_softmax_cross_entropy_matches_pytorch(on_backend, shape, seed, kind, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    n, c = shape
    rng = np.random.default_rng(seed)
    z = normal(rng, shape, dtype) * 5
    labels = _labels(rng, n, c, kind, dtype)
    _check_cross_entropy_against_torch(on_backend, ops.softmax_cross_entropy_forward,
                                       ops.softmax_cross_entropy_backward, torch_adapter.softmax_cross_entropy,
                                       z, labels, rng)


def _check_cross_entropy_against_torch(on_backend, forward, backward, torch_loss, scores, labels, rng):
    """Loss and gradient of a mean cross-entropy against PyTorch's, for a random dloss; returns
    the loss."""
    n, dtype = scores.shape[0], scores.dtype
    loss, cache = forward(on_backend.put(scores), on_backend.put(labels))
    dloss = float(rng.standard_normal())
    grad = backward(dloss, cache)
    tloss, tgrad = torch_loss(scores, labels, dloss)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert loss.dtype == grad.dtype == dtype
    assert_close(loss, tloss, tol, "loss", floor=1.0)
    # (p - t) / N cancels when p is near 1: measure against the gradient's natural scale.
    assert_close(grad, tgrad, tol, "gradient", floor=abs(dloss) / n)
    return loss


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_cross_entropy_is_finite_for_huge_logits(on_backend, dtype):
    z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, 1e4], [5e3, 5e3, -1e4]], dtype=dtype)
    for labels in (np.array([1, 2, 0]), np.eye(3, dtype=dtype)[[1, 2, 0]]):
        loss, cache = ops.softmax_cross_entropy_forward(on_backend.put(z), on_backend.put(labels))
        loss, dz = on_backend.get(loss), on_backend.get(ops.softmax_cross_entropy_backward(1.0, cache))
        assert np.isfinite(loss) and np.all(np.isfinite(dz))
        # Row 0 picks a logit 2e4 below the max, row 1 the max, row 2 a tie at the max:
        # L = (2e4 + 0 + log 2) / 3.
        np.testing.assert_allclose(loss, (2e4 + np.log(2.0)) / 3, rtol=1e-6)
    assert np.all(np.isfinite(ops.softmax(z)))


def test_softmax_cross_entropy_gradient_is_p_minus_t_over_n(on_backend):
    z = np.array([[0.0, np.log(3.0)]])                 # p = (1/4, 3/4)
    _, cache = ops.softmax_cross_entropy_forward(on_backend.put(z), on_backend.put(np.array([0])))
    dz = on_backend.get(ops.softmax_cross_entropy_backward(1.0, cache))
    np.testing.assert_allclose(dz, [[-0.75, 0.75]])


# --- cross-entropy of probabilities ---------------------------------------------------------

prob_kinds = st.sampled_from(["interior", "normalised", "clipped"])
interior_shapes = st.tuples(st.integers(1, 6), st.integers(2, 7))   # one class: q = 1 is clipped


def _probs(rng, shape, kind, dtype=np.float64):
    """Positive rows: "interior" unnormalised and away from the clip, "normalised" summing to 1,
    "clipped" with entries below 1e-7 (zeros among them) and rows dominated by one entry
    (q above 1 - 1e-7), where the clip takes the gradient away."""
    p = rng.random(shape) + 0.05
    if kind == "normalised":
        p /= p.sum(axis=1, keepdims=True)
    elif kind == "clipped":
        tiny = rng.random(shape) < 0.4
        tiny[np.arange(shape[0]), rng.integers(0, shape[1], shape[0])] = False   # no row of zeros
        p[tiny] = rng.choice([0.0, 1e-12, 1e-9], size=int(tiny.sum()))
        p[0] = 1e-10
        p[0, 0] = 1.0
    return p.astype(dtype)


@given(shape=logit_shapes, seed=seeds, labels_kind=label_kinds, kind=prob_kinds, layout=layouts,
       dtype=float_dtypes)
def test_probability_cross_entropy_matches_reference(on_backend, shape, seed, labels_kind, kind, layout, dtype):
    n, c = shape
    rng = np.random.default_rng(seed)
    p = as_layout(_probs(rng, shape, kind, dtype), layout)
    labels = _labels(rng, n, c, labels_kind, dtype)
    put = on_backend.put
    loss, cache = ops.probability_cross_entropy_forward(put(p), put(labels))
    dloss = rng.standard_normal()
    dp = ops.probability_cross_entropy_backward(dloss, cache)
    assert loss.shape == () and loss.dtype == dp.dtype == dtype
    # The reference in float64 on the very values the op saw.
    p64, labels64 = p.astype(np.float64), labels.astype(np.float64) if labels.dtype.kind == "f" else labels
    tol = 1e-13 if dtype == np.float64 else 2e-5
    assert_close(loss, reference.probability_cross_entropy_forward(p64, labels64), tol, "loss", floor=1.0)
    expected = reference.probability_cross_entropy_backward(dloss, p64, labels64)
    assert_close(dp, expected, tol, "dprobs", floor=abs(dloss) / n)


@given(shape=logit_shapes, seed=seeds, labels_kind=label_kinds, kind=st.sampled_from(["interior", "normalised"]))
def test_probability_cross_entropy_gradient_matches_central_differences(on_backend, shape, seed, labels_kind, kind):
    """Away from the clip's corners, where the loss is smooth."""
    n, c = shape
    rng = np.random.default_rng(seed)
    p = _probs(rng, shape, kind)
    labels = _labels(rng, n, c, labels_kind)
    _check_loss_gradient(on_backend, ops.probability_cross_entropy_forward,
                         ops.probability_cross_entropy_backward, p, labels, rng)


def test_probability_cross_entropy_clip_passes_no_gradient(on_backend):
    """A row whose target class has probability 0 costs -log(1e-7) and sends no gradient to
    that entry; an entry clipped at 1 - 1e-7 sends none either."""
    p = np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])
    labels = np.array([0, 0])
    loss, cache = ops.probability_cross_entropy_forward(on_backend.put(p), on_backend.put(labels))
    dp = on_backend.get(ops.probability_cross_entropy_backward(1.0, cache))
    np.testing.assert_allclose(on_backend.get(loss), (-np.log(1e-7) - np.log(1 - 1e-7)) / 2, rtol=1e-14)
    np.testing.assert_array_equal(dp, np.zeros_like(p))


@pytest.mark.torch
@given(shape=interior_shapes, seed=seeds, labels_kind=label_kinds,
       kind=st.sampled_from(["interior", "normalised"]), dtype=float_dtypes)
def test_probability_cross_entropy_matches_pytorch(on_backend, shape, seed, labels_kind, kind, dtype):
    """PyTorch's cross_entropy of log(p) is the renormalised cross-entropy, without the clip:
    the same on interior points. On rows that sum to 1 it is also nll_loss of log(p)."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    n, c = shape
    rng = np.random.default_rng(seed)
    p = _probs(rng, shape, kind, dtype)
    labels = _labels(rng, n, c, labels_kind, dtype)
    loss = _check_cross_entropy_against_torch(on_backend, ops.probability_cross_entropy_forward,
                                              ops.probability_cross_entropy_backward,
                                              torch_adapter.probability_cross_entropy, p, labels, rng)
    if kind == "normalised" and labels_kind == "ids":
        tol = 1e-10 if dtype == np.float64 else 1e-4
        assert_close(loss, torch_adapter.nll_of_log(p, labels), tol, "loss vs nll_loss", floor=1.0)


# --- mean squared error ---------------------------------------------------------------------

@given(shape=shapes(), seed=seeds, layout=layouts, dtype=float_dtypes)
def test_mean_squared_error_matches_reference(on_backend, shape, seed, layout, dtype):
    rng = np.random.default_rng(seed)
    y, t = as_layout(normal(rng, shape, dtype), layout), normal(rng, shape, dtype)
    loss, cache = ops.mean_squared_error_forward(on_backend.put(y), on_backend.put(t))
    dloss = rng.standard_normal()
    dy = ops.mean_squared_error_backward(dloss, cache)
    assert loss.shape == () and loss.dtype == dy.dtype == dtype
    tol = 1e-13 if dtype == np.float64 else 1e-5
    assert_close(loss, reference.mean_squared_error_forward(y, t), tol, "loss")
    assert_close(dy, reference.mean_squared_error_backward(dloss, y, t), tol, "dy")


@given(shape=shapes(max_side=4), seed=seeds)
def test_mean_squared_error_gradient_matches_central_differences(on_backend, shape, seed):
    rng = np.random.default_rng(seed)
    y, t = normal(rng, shape), normal(rng, shape)
    _check_loss_gradient(on_backend, ops.mean_squared_error_forward, ops.mean_squared_error_backward, y, t, rng)


@pytest.mark.torch
@given(shape=shapes(), seed=seeds, dtype=float_dtypes)
def test_mean_squared_error_matches_pytorch(on_backend, shape, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    y, t = normal(rng, shape, dtype), normal(rng, shape, dtype)
    loss, cache = ops.mean_squared_error_forward(on_backend.put(y), on_backend.put(t))
    dloss = float(rng.standard_normal())
    dy = ops.mean_squared_error_backward(dloss, cache)
    tloss, tdy = torch_adapter.mean_squared_error(y, t, dloss)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert_close(loss, tloss, tol, "loss")
    assert_close(dy, tdy, tol, "dy")


# --- the per-example forms ------------------------------------------------------------------

@given(shape=logit_shapes, seed=seeds, labels_kind=label_kinds, kind=prob_kinds)
def test_per_example_losses_are_the_forward_of_each_row(on_backend, shape, seed, labels_kind, kind):
    """Keras' loss functions: row n of each per-example form is the reference's mean loss of
    row n alone."""
    n, c = shape
    rng = np.random.default_rng(seed)
    z, p, t = normal(rng, shape) * 3, _probs(rng, shape, kind), normal(rng, shape)
    labels = _labels(rng, n, c, labels_kind)
    put, get = on_backend.put, on_backend.get
    cases = [
        (ops.softmax_cross_entropy(put(z), put(labels)), reference.softmax_cross_entropy_forward, z, labels),
        (ops.probability_cross_entropy(put(p), put(labels)), reference.probability_cross_entropy_forward, p,
         labels),
        (ops.mean_squared_error(put(z), put(t)), reference.mean_squared_error_forward, z, t),
    ]
    for per_example, forward, scores, targets in cases:
        assert get(per_example).shape == (n,)
        rows = np.array([forward(scores[i:i + 1], targets[i:i + 1]) for i in range(n)])
        assert_close(per_example, rows, 1e-13, forward.__name__, floor=1.0)


# --- argument errors ------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, words", [
    (lambda: ops.probability_cross_entropy_forward(np.full((2, 3), 0.3), np.array([0, 3])), ValueError,
     "probability_cross_entropy: labels must be class ids in [0, 3), got values in [0, 3]"),
    (lambda: ops.probability_cross_entropy_forward(np.full(3, 0.3), np.array([0])), ValueError,
     "probability_cross_entropy: probs must have 2 dims, got shape (3,)"),
    (lambda: ops.probability_cross_entropy_forward(np.full((2, 3), 0.3), np.zeros((2, 4))), ValueError,
     "probability_cross_entropy: float labels must be one-hot or probability rows of shape (2, 3)"),
    (lambda: ops.probability_cross_entropy_backward(
        np.ones(2), ops.probability_cross_entropy_forward(np.full((2, 3), 0.3), np.array([0, 1]))[1]),
     ValueError, "probability_cross_entropy_backward: dloss must be a scalar (0-d), got shape (2,)"),
    (lambda: ops.mean_squared_error_forward(np.zeros((2, 3)), np.zeros((3, 2))), ValueError,
     "mean_squared_error: targets must have shape (2, 3), got (3, 2)"),
    (lambda: ops.mean_squared_error_forward(np.zeros(2), np.zeros(2, np.float32)), TypeError,
     "mean_squared_error: arrays must share one dtype"),
    (lambda: ops.mean_squared_error_forward(np.zeros((0, 2)), np.zeros((0, 2))), ValueError,
     "mean_squared_error: y must have at least one element, got shape (0, 2)"),
    (lambda: ops.mean_squared_error_backward(np.ones(3), ops.mean_squared_error_forward(np.zeros(3),
                                                                                          np.ones(3))[1]),
     ValueError, "mean_squared_error_backward: dloss must be a scalar (0-d), got shape (3,)"),
])
def test_loss_argument_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)


# --- sigmoid binary cross-entropy -----------------------------------------------------------

bce_shapes = st.one_of(st.tuples(st.integers(1, 4), st.integers(1, 5)),
                       st.tuples(st.integers(1, 2), st.integers(1, 5), st.integers(1, 4), st.integers(1, 3)))
weight_kinds = st.sampled_from(["none", "scalar", "per_class"])


def _binary_case(rng, shape, weight_kind, dtype=np.float64, scale=3.0):
    """Logits, targets in [0, 1] (hard 0/1 and soft values), and a positive weight."""
    z = normal(rng, shape, dtype) * scale
    t = rng.random(shape)
    t[rng.random(shape) < 0.5] = 0.0
    t[rng.random(shape) < 0.3] = 1.0
    weight = {"none": None, "scalar": float(rng.uniform(0.2, 8.0)),
              "per_class": rng.uniform(0.2, 8.0, shape[-1]).astype(dtype)}[weight_kind]
    return z, t.astype(dtype), weight


@given(shape=bce_shapes, seed=seeds, kind=weight_kinds, layout=layouts, dtype=float_dtypes,
       scale=st.sampled_from([1.0, 30.0]))
def test_sigmoid_binary_cross_entropy_matches_reference(on_backend, shape, seed, kind, layout, dtype, scale):
    rng = np.random.default_rng(seed)
    z, t, weight = _binary_case(rng, shape, kind, dtype, scale)
    z = as_layout(z, layout)
    put = on_backend.put
    loss, cache = ops.sigmoid_binary_cross_entropy_forward(put(z), put(t), weight)
    dloss = rng.standard_normal()
    dz = ops.sigmoid_binary_cross_entropy_backward(dloss, cache)
    assert loss.shape == () and loss.dtype == dz.dtype == dtype
    z64, t64 = z.astype(np.float64), t.astype(np.float64)
    tol = 1e-13 if dtype == np.float64 else 2e-6
    assert_close(loss, reference.sigmoid_binary_cross_entropy_forward(z64, t64, weight), tol, "loss",
                 floor=scale)
    assert_close(dz, reference.sigmoid_binary_cross_entropy_backward(dloss, z64, t64, weight), tol, "dlogits",
                 floor=abs(dloss) / z.size)


@given(shape=bce_shapes, seed=seeds, kind=weight_kinds)
def test_sigmoid_binary_cross_entropy_gradient_matches_central_differences(on_backend, shape, seed, kind):
    rng = np.random.default_rng(seed)
    z, t, weight = _binary_case(rng, shape, kind)
    put = on_backend.put
    _, cache = ops.sigmoid_binary_cross_entropy_forward(put(z), put(t), weight)
    dloss = np.asarray(rng.standard_normal())
    dz = ops.sigmoid_binary_cross_entropy_backward(put(dloss), cache)
    check_gradients(lambda v, u: ops.sigmoid_binary_cross_entropy_forward(put(v), put(u), weight)[0],
                    [z, t], [dz, None], dloss, rng)


@pytest.mark.torch
@given(shape=bce_shapes, seed=seeds, kind=weight_kinds, dtype=float_dtypes, huge=st.booleans())
def test_sigmoid_binary_cross_entropy_matches_pytorch(on_backend, shape, seed, kind, dtype, huge):
    """Against F.binary_cross_entropy_with_logits(pos_weight=...), logits of +-1e4 included."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    z, t, weight = _binary_case(rng, shape, kind, dtype)
    if huge:
        z[rng.random(shape) < 0.5] = dtype(1e4)
        z[rng.random(shape) < 0.3] = dtype(-1e4)
    put = on_backend.put
    loss, cache = ops.sigmoid_binary_cross_entropy_forward(put(z), put(t), weight)
    dloss = float(rng.standard_normal())
    dz = ops.sigmoid_binary_cross_entropy_backward(dloss, cache)
    tloss, tdz = torch_adapter.sigmoid_binary_cross_entropy(z, t, weight, dloss)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert loss.dtype == dz.dtype == dtype
    assert_close(loss, tloss, tol, "loss", floor=1.0)
    assert_close(dz, tdz, tol, "dlogits", floor=abs(dloss) / z.size)


def test_sigmoid_binary_cross_entropy_of_a_huge_logit_on_its_target_cancels_nothing(on_backend):
    """A logit of 1e4 with target 1 adds 0 to the loss, in float32 too: the loss of the pair
    below is the other element's alone, to float32 rounding (a form with p t z subtracted
    from p softplus(z) left 1e4 - 1e4, rounded apart, parts in ten thousand of the mean)."""
    z = np.array([[1e4], [-0.40171793]], dtype=np.float32)
    t = np.ones((2, 1), dtype=np.float32)
    weight = np.array([0.3269215], dtype=np.float32)
    loss, _ = ops.sigmoid_binary_cross_entropy_forward(on_backend.put(z), on_backend.put(t), weight)
    expected = reference.sigmoid_binary_cross_entropy_forward(z.astype(np.float64), t.astype(np.float64),
                                                              weight.astype(np.float64))
    assert_close(loss, expected, 1e-6, "loss")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_binary_cross_entropy_is_finite_for_huge_logits(on_backend, dtype):
    """l(1e4, 0) = 1e4, l(-1e4, 1) = p * 1e4, l(1e4, 1) = l(-1e4, 0) = 0 (exp(-1e4) underflows)."""
    z = np.array([1e4, -1e4, 1e4, -1e4], dtype=dtype)
    t = np.array([0.0, 1.0, 1.0, 0.0], dtype=dtype)
    loss, cache = ops.sigmoid_binary_cross_entropy_forward(on_backend.put(z), on_backend.put(t), 3.0)
    dz = on_backend.get(ops.sigmoid_binary_cross_entropy_backward(1.0, cache))
    np.testing.assert_allclose(on_backend.get(loss), (1e4 + 3e4) / 4, rtol=1e-6)
    # (1 + (p - 1) t) sigmoid(z) - p t: 1 for (1e4, 0), -p for (-1e4, 1), 0 for the others.
    np.testing.assert_allclose(dz, np.array([1.0, -3.0, 0.0, 0.0]) / 4, atol=1e-12)


def test_sigmoid_binary_cross_entropy_gradient_is_sigmoid_minus_t_over_m(on_backend):
    z = np.array([[0.0, np.log(3.0)]])                 # sigmoid = (1/2, 3/4)
    _, cache = ops.sigmoid_binary_cross_entropy_forward(on_backend.put(z), on_backend.put(np.array([[1.0, 0.0]])))
    dz = on_backend.get(ops.sigmoid_binary_cross_entropy_backward(1.0, cache))
    np.testing.assert_allclose(dz, [[-0.25, 0.375]])


def test_sigmoid_binary_cross_entropy_per_example_is_each_rows_mean(on_backend):
    rng = np.random.default_rng(0)
    z, t, weight = _binary_case(rng, (3, 2, 2, 2), "per_class")
    per_example = on_backend.get(ops.sigmoid_binary_cross_entropy(on_backend.put(z), on_backend.put(t), weight))
    rows = [reference.sigmoid_binary_cross_entropy_forward(z[i], t[i], weight) for i in range(3)]
    assert_close(per_example, np.array(rows), 1e-13, "per example")


@pytest.mark.parametrize("call, error, words", [
    (lambda: ops.sigmoid_binary_cross_entropy_forward(np.zeros((2, 3)), np.zeros((3, 2))), ValueError,
     "sigmoid_binary_cross_entropy: targets must have shape (2, 3), got (3, 2)"),
    (lambda: ops.sigmoid_binary_cross_entropy_forward(np.zeros(2), np.zeros(2, np.float32)), TypeError,
     "sigmoid_binary_cross_entropy: arrays must share one dtype"),
    (lambda: ops.sigmoid_binary_cross_entropy_forward(np.zeros(2), np.zeros(2, np.int64)), TypeError,
     "sigmoid_binary_cross_entropy: targets must be a floating-point array"),
    (lambda: ops.sigmoid_binary_cross_entropy_forward(np.zeros((2, 3)), np.zeros((2, 3)), np.ones(2)),
     ValueError, "sigmoid_binary_cross_entropy: pos_weight must be a number or of shape (3,)"),
    (lambda: ops.sigmoid_binary_cross_entropy_forward(np.zeros((0, 3)), np.zeros((0, 3))), ValueError,
     "sigmoid_binary_cross_entropy: logits must have at least one element, got shape (0, 3)"),
    (lambda: ops.sigmoid_binary_cross_entropy_backward(
        np.ones(2), ops.sigmoid_binary_cross_entropy_forward(np.zeros(2), np.ones(2))[1]),
     ValueError, "sigmoid_binary_cross_entropy_backward: dloss must be a scalar (0-d), got shape (2,)"),
])
def test_sigmoid_binary_cross_entropy_argument_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)

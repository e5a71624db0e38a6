"""Softmax cross-entropy: reference, central differences, PyTorch, stability."""

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


@given(shape=logit_shapes, seed=seeds, kind=label_kinds)
def test_softmax_cross_entropy_gradient_matches_central_differences(on_backend, shape, seed, kind):
    n, c = shape
    rng = np.random.default_rng(seed)
    z = normal(rng, shape)
    labels = _labels(rng, n, c, kind)
    put = on_backend.put
    _, cache = ops.softmax_cross_entropy_forward(put(z), put(labels))
    dloss = np.asarray(rng.standard_normal())
    dz = ops.softmax_cross_entropy_backward(put(dloss), cache)
    check_gradients(lambda v: ops.softmax_cross_entropy_forward(put(v), put(labels))[0], [z], [dz], dloss, rng)


@pytest.mark.torch
@given(shape=logit_shapes, seed=seeds, kind=label_kinds, dtype=float_dtypes)
def test_softmax_cross_entropy_matches_pytorch(on_backend, shape, seed, kind, dtype):
    from tests import torch_ops

    n, c = shape
    rng = np.random.default_rng(seed)
    z = normal(rng, shape, dtype) * 5
    labels = _labels(rng, n, c, kind, dtype)
    loss, cache = ops.softmax_cross_entropy_forward(on_backend.put(z), on_backend.put(labels))
    dloss = float(rng.standard_normal())
    dz = ops.softmax_cross_entropy_backward(dloss, cache)
    tloss, tdz = torch_ops.softmax_cross_entropy(z, labels, dloss)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    assert loss.dtype == dz.dtype == dtype
    assert_close(loss, tloss, tol, "loss", floor=1.0)
    # (p - t) / N cancels when p is near 1: measure against the gradient's natural scale.
    assert_close(dz, tdz, tol, "dlogits", floor=abs(dloss) / n)


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

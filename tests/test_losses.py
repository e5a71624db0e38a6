"""Losses: Keras' values, target checks, and gradients against central differences."""

import numpy as np
import pytest

from minires import losses, ops
from tests.gradcheck import check_gradients


def _probs(rng, n, c):
    return ops.softmax(rng.standard_normal((n, c)))


def test_crossentropy_on_probabilities_is_keras_formula():
    rng = np.random.default_rng(0)
    p = _probs(rng, 4, 3)
    t = np.eye(3)[[0, 2, 1, 1]]
    expected = -np.mean(np.sum(t * np.log(np.clip(p, 1e-7, 1 - 1e-7)), axis=1))
    assert losses.CategoricalCrossentropy()(t, p) == pytest.approx(expected, rel=1e-12)
    assert losses.SparseCategoricalCrossentropy()(np.array([0, 2, 1, 1]), p) == pytest.approx(expected, rel=1e-12)
    np.testing.assert_allclose(losses.categorical_crossentropy(t, p).mean(), expected, rtol=1e-12)
    np.testing.assert_allclose(losses.sparse_categorical_crossentropy([0, 2, 1, 1], p).mean(), expected,
                               rtol=1e-12)


def test_fused_form_equals_the_probability_form():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((5, 4))
    t = np.eye(4)[rng.integers(0, 4, 5)]
    loss = losses.CategoricalCrossentropy()
    fused, cache = loss.fused_forward(z, t)
    plain, _ = loss.forward(ops.softmax(z), t)
    assert float(fused) == pytest.approx(float(plain), rel=1e-12)
    np.testing.assert_allclose(loss.fused_backward(cache), (ops.softmax(z) - t) / 5, rtol=1e-12)
    logits_loss = losses.CategoricalCrossentropy(from_logits=True)
    assert logits_loss(t, z) == pytest.approx(float(fused), rel=1e-14)
    assert losses.categorical_crossentropy(t, z, from_logits=True).mean() == pytest.approx(float(fused))


@pytest.mark.parametrize("loss", [losses.CategoricalCrossentropy(), losses.CategoricalCrossentropy(label_smoothing=0.2),
                                  losses.CategoricalCrossentropy(from_logits=True), losses.MeanSquaredError()])
def test_gradients_match_central_differences(loss):
    rng = np.random.default_rng(2)
    p = _probs(rng, 3, 4)
    t = loss.prepare_targets(np.eye(4)[[1, 3, 0]], (None, 4), "float64")
    value, cache = loss.forward(p, t)
    grad = loss.backward(cache)
    check_gradients(lambda q: loss.forward(q, t)[0], [p], [grad], np.array(1.0), rng)


def test_sparse_targets_and_errors():
    sparse = losses.SparseCategoricalCrossentropy()
    ids = sparse.prepare_targets(np.array([[1], [0]], np.uint8), (None, 3), "float32")
    assert ids.shape == (2,) and ids.dtype == np.int64
    with pytest.raises(ValueError, match="class ids of shape"):
        sparse.prepare_targets(np.eye(3), (None, 3), "float32")
    with pytest.raises(ValueError, match="non-integer"):
        sparse.prepare_targets(np.array([0.5, 1.0]), (None, 3), "float32")
    with pytest.raises(ValueError, match=r"one-hot targets of shape \(N, 3\), got \(2, 1\).*to_categorical"):
        losses.CategoricalCrossentropy().prepare_targets(np.zeros((2, 1)), (None, 3), "float32")
    with pytest.raises(ValueError, match="MeanSquaredError needs targets"):
        losses.MeanSquaredError().prepare_targets(np.zeros((2, 4)), (None, 3), "float32")
    with pytest.raises(ValueError, match="label_smoothing"):
        losses.CategoricalCrossentropy(label_smoothing=2)


def test_get_and_serialize():
    assert isinstance(losses.get("categorical_crossentropy"), losses.CategoricalCrossentropy)
    assert isinstance(losses.get("mse"), losses.MeanSquaredError)
    again = losses.get(losses.serialize(losses.SparseCategoricalCrossentropy(from_logits=True)))
    assert again.from_logits and not again.fusable
    with pytest.raises(ValueError, match="unknown loss"):
        losses.get("hinge")


class _IdsThatMustNotBeReadBack(np.ndarray):
    """Class ids whose min/max would, on a GPU, make the host wait for the device."""

    def min(self, *args, **kwargs):
        raise AssertionError("the class ids were read back")

    max = min


def test_sparse_loss_checks_ids_where_they_live_and_the_ops_do_not_read_them_back():
    loss = losses.SparseCategoricalCrossentropy()
    with pytest.raises(ValueError, match=r"fit: class ids must be in \[0, 3\), got values in \[0, 3\]"):
        loss.prepare_targets(np.array([0, 3]), (None, 3), "float64", "fit")
    with pytest.raises(ValueError, match=r"class ids must be in \[0, 3\), got values in \[-1, 2\]"):
        loss.prepare_targets(np.array([-1, 2]), (None, 3), "float64", "fit")
    ids = loss.prepare_targets(np.array([0, 2, 1]), (None, 3), "float64", "fit").view(_IdsThatMustNotBeReadBack)
    logits = np.random.default_rng(0).standard_normal((3, 3))
    value, cache = loss.fused_forward(logits, ids)
    expected, _ = ops.softmax_cross_entropy_forward(logits, np.asarray(ids))
    assert float(value) == float(expected)
    probs = ops.softmax(logits)
    value, _ = loss.forward(probs, ids)
    assert float(value) == float(ops.probability_cross_entropy_forward(probs, np.asarray(ids))[0])
    with pytest.raises(AssertionError, match="read back"):     # the op's own check reads them
        ops.softmax_cross_entropy_forward(logits, ids)

"""The stateful accuracy metrics, against hand-counted cases."""

import numpy as np
import pytest

from minires.keras.metrics import Accuracy, CategoricalAccuracy, SparseCategoricalAccuracy


def test_accuracy_counts_exact_matches_across_batches():
    m = Accuracy()
    m.update_state(np.array([1, 2, 3, 4]), np.array([1, 2, 0, 0]))
    m.update_state(np.array([5, 6]), np.array([5, 6]))
    assert m.result() == pytest.approx(4 / 6)
    m.reset_state()
    assert m.result() == 0.0 and m([1], [1]) == 1.0


def test_categorical_and_sparse_accuracy_compare_argmax():
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]])
    assert CategoricalAccuracy()(np.eye(2)[[1, 1, 1]], probs) == pytest.approx(2 / 3)
    assert SparseCategoricalAccuracy()(np.array([[1], [0], [0]]), probs) == pytest.approx(2 / 3)


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError, match="Accuracy"):
        Accuracy().update_state(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="SparseCategoricalAccuracy"):
        SparseCategoricalAccuracy().update_state(np.zeros(5), np.zeros((3, 2)))

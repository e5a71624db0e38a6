"""A whole model's gradients against central differences of its loss, in float64: every
weight and every input, the loss itself first, for the model tests."""

from __future__ import annotations

import numpy as np
import pytest


def numeric_gradient(loss, array, h=1e-5):
    """Central differences of ``loss()`` with respect to each element of ``array`` (in place)."""
    grad = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        old = array[idx]
        array[idx] = old + h
        plus = loss()
        array[idx] = old - h
        minus = loss()
        array[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def relative(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


def check_model_gradients(model, x, y, tol: float = 1e-6) -> None:
    """``model.loss_and_gradients`` against central differences of ``model.evaluate``: every
    weight (none may have an all-zero gradient, or the check would prove nothing) and every
    input (x an array, or a list of arrays for a model with several inputs)."""
    value, grads, dx = model.loss_and_gradients(x, y)

    def current_loss():
        return model.evaluate(x, y, batch_size=2, verbose=0)

    assert current_loss() == pytest.approx(value, rel=1e-12)
    for name, param, grad in zip(model.weight_names(), model.weights, grads):
        assert np.any(grad != 0), f"{name}: zero gradient, the check would prove nothing"
        err = relative(grad, numeric_gradient(current_loss, param))
        assert err <= tol, f"{name}: relative error {err:.2e}"
    inputs, input_grads = (x, dx) if isinstance(x, list) else ([x], [dx])
    assert len(input_grads) == len(inputs)
    for k, (array, grad) in enumerate(zip(inputs, input_grads)):
        err = relative(grad, numeric_gradient(current_loss, array))
        assert err <= tol, f"input {k}: relative error {err:.2e}"

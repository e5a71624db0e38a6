"""add (the residual connection): reference, central differences, PyTorch, no broadcasting."""

import numpy as np
import pytest
from hypothesis import given

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds, shapes


@given(shape=shapes(), seed=seeds, layout=layouts)
def test_add_matches_reference(on_backend, shape, seed, layout):
    rng = np.random.default_rng(seed)
    a, b = as_layout(normal(rng, shape), layout), normal(rng, shape)
    y, cache = ops.add_forward(on_backend.put(a), on_backend.put(b))
    assert_close(y, reference.add_forward(a, b), 0.0, "forward")
    dy = normal(rng, shape)
    for name, g, r in zip(("da", "db"), ops.add_backward(on_backend.put(dy), cache),
                          reference.add_backward(dy, a, b)):
        assert_close(g, r, 0.0, name)


@given(shape=shapes(), seed=seeds)
def test_add_gradients_match_central_differences(on_backend, shape, seed):
    rng = np.random.default_rng(seed)
    a, b = normal(rng, shape), normal(rng, shape)
    put = on_backend.put
    _, cache = ops.add_forward(put(a), put(b))
    dy = normal(rng, shape)
    check_gradients(lambda *v: ops.add_forward(*map(put, v))[0], [a, b],
                    ops.add_backward(put(dy), cache), dy, rng)


@pytest.mark.torch
@given(shape=shapes(), seed=seeds, dtype=float_dtypes)
def test_add_matches_pytorch(on_backend, shape, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    a, b, dy = normal(rng, shape, dtype), normal(rng, shape, dtype), normal(rng, shape, dtype)
    put = on_backend.put
    y, cache = ops.add_forward(put(a), put(b))
    for name, ours, theirs in zip(("y", "da", "db"), (y, *ops.add_backward(put(dy), cache)),
                                  torch_adapter.add(a, b, dy)):
        assert ours.dtype == dtype
        assert_close(ours, theirs, 0.0, name)


# --- subtract -------------------------------------------------------------------------------

@given(shape=shapes(), seed=seeds, layout=layouts)
def test_subtract_matches_reference(on_backend, shape, seed, layout):
    rng = np.random.default_rng(seed)
    a, b = as_layout(normal(rng, shape), layout), normal(rng, shape)
    y, cache = ops.subtract_forward(on_backend.put(a), on_backend.put(b))
    assert_close(y, reference.subtract_forward(a, b), 0.0, "forward")
    dy = normal(rng, shape)
    for name, g, r in zip(("da", "db"), ops.subtract_backward(on_backend.put(dy), cache),
                          reference.subtract_backward(dy, a, b)):
        assert_close(g, r, 0.0, name)


@given(shape=shapes(), seed=seeds)
def test_subtract_gradients_match_central_differences(on_backend, shape, seed):
    rng = np.random.default_rng(seed)
    a, b = normal(rng, shape), normal(rng, shape)
    put = on_backend.put
    _, cache = ops.subtract_forward(put(a), put(b))
    dy = normal(rng, shape)
    check_gradients(lambda *v: ops.subtract_forward(*map(put, v))[0], [a, b],
                    ops.subtract_backward(put(dy), cache), dy, rng)


@pytest.mark.torch
@given(shape=shapes(), seed=seeds, dtype=float_dtypes)
def test_subtract_matches_pytorch(on_backend, shape, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    a, b, dy = normal(rng, shape, dtype), normal(rng, shape, dtype), normal(rng, shape, dtype)
    put = on_backend.put
    y, cache = ops.subtract_forward(put(a), put(b))
    for name, ours, theirs in zip(("y", "da", "db"), (y, *ops.subtract_backward(put(dy), cache)),
                                  torch_adapter.subtract(a, b, dy)):
        assert ours.dtype == dtype
        assert_close(ours, theirs, 0.0, name)


def test_subtract_rejects_different_shapes():
    with pytest.raises(ValueError, match=r"subtract: a and b must have the same shape, got a \(2,\) and b \(3,\)"):
        ops.subtract_forward(np.ones(2), np.ones(3))

"""abs_diff (|a - b|): reference, central differences away from a == b, PyTorch, the
subgradient 0 at a == b, argument errors."""

import numpy as np
import pytest
from hypothesis import given

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, away_from_zero, float_dtypes, layouts, normal, seeds, shapes


def _pair_with_ties(rng, shape, dtype=np.float64):
    """a, b with b == a at about a fifth of the positions: the kink itself."""
    a, b = normal(rng, shape, dtype), normal(rng, shape, dtype)
    tie = rng.random(shape) < 0.2
    b[tie] = a[tie]
    return a, b


@given(shape=shapes(), seed=seeds, layout=layouts, dtype=float_dtypes)
def test_abs_diff_matches_reference(on_backend, shape, seed, layout, dtype):
    rng = np.random.default_rng(seed)
    a, b = _pair_with_ties(rng, shape, dtype)
    a = as_layout(a, layout)
    y, cache = ops.abs_diff_forward(on_backend.put(a), on_backend.put(b))
    assert y.dtype == dtype
    assert_close(y, reference.abs_diff_forward(a, b), 0.0, "forward")
    dy = normal(rng, shape, dtype)
    for name, g, r in zip(("da", "db"), ops.abs_diff_backward(on_backend.put(dy), cache),
                          reference.abs_diff_backward(dy, a, b)):
        assert g.dtype == dtype
        assert_close(g, r, 0.0, name)


@given(shape=shapes(), seed=seeds)
def test_abs_diff_gradients_match_central_differences(on_backend, shape, seed):
    rng = np.random.default_rng(seed)
    b = normal(rng, shape)
    a = b + away_from_zero(rng, shape)            # |a - b| >= 0.1: no kink within a step
    put = on_backend.put
    _, cache = ops.abs_diff_forward(put(a), put(b))
    dy = normal(rng, shape)
    check_gradients(lambda *v: ops.abs_diff_forward(*map(put, v))[0], [a, b],
                    ops.abs_diff_backward(put(dy), cache), dy, rng)


@pytest.mark.torch
@given(shape=shapes(), seed=seeds, dtype=float_dtypes)
def test_abs_diff_matches_pytorch(on_backend, shape, seed, dtype):
    """Ties included: PyTorch's abs also has gradient 0 at 0."""
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng = np.random.default_rng(seed)
    a, b = _pair_with_ties(rng, shape, dtype)
    dy = normal(rng, shape, dtype)
    y, cache = ops.abs_diff_forward(on_backend.put(a), on_backend.put(b))
    for name, ours, theirs in zip(("y", "da", "db"), (y, *ops.abs_diff_backward(on_backend.put(dy), cache)),
                                  torch_adapter.abs_diff(a, b, dy)):
        assert ours.dtype == dtype
        assert_close(ours, theirs, 0.0, name)


def test_abs_diff_subgradient_at_a_equal_b_is_zero(on_backend):
    a = np.array([1.0, 2.0, 0.0, -0.0, 3.0])
    b = np.array([1.0, 1.0, -0.0, 0.0, 4.0])
    y, cache = ops.abs_diff_forward(on_backend.put(a), on_backend.put(b))
    da, db = ops.abs_diff_backward(on_backend.put(np.full(5, 2.0)), cache)
    np.testing.assert_array_equal(on_backend.get(y), [0.0, 1.0, 0.0, 0.0, 1.0])
    np.testing.assert_array_equal(on_backend.get(da), [0.0, 2.0, 0.0, 0.0, -2.0])
    np.testing.assert_array_equal(on_backend.get(db), [0.0, -2.0, 0.0, 0.0, 2.0])
    np.testing.assert_array_equal(reference.abs_diff_backward(np.full(5, 2.0), a, b)[0], [0.0, 2.0, 0.0, 0.0, -2.0])


@pytest.mark.parametrize("call, error, words", [
    (lambda: ops.abs_diff_forward(np.ones((2, 3)), np.ones((3, 2))), ValueError,
     "abs_diff: a and b must have the same shape, got a (2, 3) and b (3, 2)"),
    (lambda: ops.abs_diff_forward(np.ones(2), np.ones(2, np.float32)), TypeError,
     "abs_diff: arrays must share one dtype"),
    (lambda: ops.abs_diff_forward(np.ones(2, np.int64), np.ones(2)), TypeError,
     "abs_diff: a must be a floating-point array"),
    (lambda: ops.abs_diff_backward(np.ones(3), ops.abs_diff_forward(np.ones(2), np.zeros(2))[1]), ValueError,
     "abs_diff_backward: dy must have shape (2,), got (3,)"),
])
def test_abs_diff_argument_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)

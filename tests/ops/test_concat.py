"""concat (several inputs along one axis): reference, central differences, PyTorch, errors."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds, shapes


@st.composite
def concat_cases(draw):
    """A common shape, an axis in it (negative ones too) and 1 to 4 sizes along that axis."""
    shape = draw(shapes(max_side=4))
    axis = draw(st.integers(-len(shape), len(shape) - 1))
    sizes = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4))
    inputs = []
    for size in sizes:
        s = list(shape)
        s[axis] = size
        inputs.append(tuple(s))
    return inputs, axis


def _arrays(rng, cases, dtype=np.float64, layout="contiguous"):
    return [as_layout(normal(rng, s, dtype), layout) for s in cases]


@given(case=concat_cases(), seed=seeds, layout=layouts, dtype=float_dtypes)
def test_concat_matches_reference(on_backend, case, seed, layout, dtype):
    shapes_, axis = case
    rng = np.random.default_rng(seed)
    arrays = _arrays(rng, shapes_, dtype, layout)
    y, cache = ops.concat_forward([on_backend.put(a) for a in arrays], axis)
    assert y.dtype == dtype
    assert_close(y, reference.concat_forward(arrays, axis), 0.0, "forward")
    dy = normal(rng, tuple(y.shape), dtype)
    grads = ops.concat_backward(on_backend.put(dy), cache)
    assert len(grads) == len(arrays)
    for k, (g, r) in enumerate(zip(grads, reference.concat_backward(dy, arrays, axis))):
        assert g.dtype == dtype
        assert_close(g, r, 0.0, f"dx_{k}")


@given(case=concat_cases(), seed=seeds)
def test_concat_gradients_match_central_differences(on_backend, case, seed):
    shapes_, axis = case
    rng = np.random.default_rng(seed)
    arrays = _arrays(rng, shapes_)
    put = on_backend.put
    y, cache = ops.concat_forward([put(a) for a in arrays], axis)
    dy = normal(rng, tuple(y.shape))
    check_gradients(lambda *v: ops.concat_forward([put(a) for a in v], axis)[0], arrays,
                    ops.concat_backward(put(dy), cache), dy, rng)


@pytest.mark.torch
@given(case=concat_cases(), seed=seeds, dtype=float_dtypes)
def test_concat_matches_pytorch(on_backend, case, seed, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    shapes_, axis = case
    rng = np.random.default_rng(seed)
    arrays = _arrays(rng, shapes_, dtype)
    y, cache = ops.concat_forward([on_backend.put(a) for a in arrays], axis)
    dy = normal(rng, tuple(y.shape), dtype)
    ours = (y, *ops.concat_backward(on_backend.put(dy), cache))
    for k, (a, b) in enumerate(zip(ours, torch_adapter.concat(arrays, axis, dy))):
        assert a.dtype == dtype
        assert_close(a, b, 0.0, f"output {k}")


@pytest.mark.parametrize("call, error, words", [
    (lambda: ops.concat_forward([]), ValueError, "concat: arrays must be a non-empty list of arrays"),
    (lambda: ops.concat_forward([np.ones((2, 3)), np.ones((3, 3))]), ValueError,
     "concat: arrays[1] must match arrays[0] (2, 3) on every axis but 1, got shape (3, 3)"),
    (lambda: ops.concat_forward([np.ones((2, 3)), np.ones((2, 3, 1))]), ValueError,
     "concat: arrays[1] must match arrays[0] (2, 3) on every axis but 1, got shape (2, 3, 1)"),
    (lambda: ops.concat_forward([np.ones((2, 3)), np.ones((2, 3), np.float32)]), TypeError,
     "concat: arrays must share one dtype"),
    (lambda: ops.concat_forward([np.ones((2, 3))], axis=2), ValueError,
     "concat: axis must be an int in [-2, 2), got 2"),
    (lambda: ops.concat_backward(np.ones((2, 5)), ops.concat_forward([np.ones((2, 3)), np.ones((2, 1))])[1]),
     ValueError, "concat_backward: dy must have shape (2, 4), got (2, 5)"),
])
def test_concat_argument_errors(call, error, words):
    with pytest.raises(error) as info:
        call()
    assert words in str(info.value)

"""dense: against the loop reference, central differences and PyTorch."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops, reference
from tests.gradcheck import assert_close, check_gradients
from tests.strategies import as_layout, float_dtypes, layouts, normal, seeds

dense_shapes = st.tuples(st.integers(1, 6), st.integers(1, 9), st.integers(1, 7))   # N, D_in, D_out


def _arrays(shape, seed, bias, dtype=np.float64):
    n, d_in, d_out = shape
    rng = np.random.default_rng(seed)
    x, w = normal(rng, (n, d_in), dtype), normal(rng, (d_in, d_out), dtype)
    b = normal(rng, (d_out,), dtype) if bias else None
    return rng, x, w, b


@given(shape=dense_shapes, seed=seeds, bias=st.booleans(), x_layout=layouts, w_layout=layouts)
def test_dense_matches_reference(on_backend, shape, seed, bias, x_layout, w_layout):
    rng, x, w, b = _arrays(shape, seed, bias)
    x, w = as_layout(x, x_layout), as_layout(w, w_layout)
    put = on_backend.put
    y, cache = ops.dense_forward(put(x), put(w), put(b))
    assert_close(y, reference.dense_forward(x, w, b), 1e-12, "forward")
    dy = normal(rng, y.shape)
    for name, a, r in zip(("dx", "dw", "db"), ops.dense_backward(put(dy), cache),
                          reference.dense_backward(dy, x, w, b)):
        if r is None:
            assert a is None
        else:
            assert_close(a, r, 1e-12, name)


@given(shape=dense_shapes, seed=seeds, bias=st.booleans())
def test_dense_gradients_match_central_differences(on_backend, shape, seed, bias):
    rng, x, w, b = _arrays(shape, seed, bias)
    put = on_backend.put
    y, cache = ops.dense_forward(put(x), put(w), put(b))
    dy = normal(rng, y.shape)
    inputs = [x, w] if b is None else [x, w, b]
    grads = ops.dense_backward(put(dy), cache)[: len(inputs)]
    check_gradients(lambda *v: ops.dense_forward(*map(put, v))[0], inputs, grads, dy, rng)


@pytest.mark.torch
@given(shape=dense_shapes, seed=seeds, bias=st.booleans(), dtype=float_dtypes)
def test_dense_matches_pytorch(on_backend, shape, seed, bias, dtype):
    torch_adapter = pytest.importorskip("minires.frameworks.torch_adapter")

    rng, x, w, b = _arrays(shape, seed, bias, dtype)
    put = on_backend.put
    y, cache = ops.dense_forward(put(x), put(w), put(b))
    dy = normal(rng, y.shape, dtype)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    for name, a, t in zip(("y", "dx", "dw", "db"), (y, *ops.dense_backward(put(dy), cache)),
                          torch_adapter.dense(x, w, b, dy)):
        if t is None:
            assert a is None
            continue
        assert a.dtype == dtype
        assert_close(a, t, tol, name)

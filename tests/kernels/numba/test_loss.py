"""The Numba softmax cross-entropy kernels (minires.kernels.numba.loss) against the array code."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

pytest.importorskip("numba")

from minires.kernels import numba as k  # noqa: E402
from tests.gradcheck import assert_close  # noqa: E402
from tests.strategies import float_dtypes, normal, seeds  # noqa: E402


@given(n=st.integers(1, 6), c=st.integers(1, 7), seed=seeds, dtype=float_dtypes, sparse=st.booleans(),
       scale=st.sampled_from([1.0, 50.0]))
def test_softmax_cross_entropy_kernels_match_the_array_code(n, c, seed, dtype, sparse, scale):
    from minires import backend, ops

    rng = np.random.default_rng(seed)
    z = (normal(rng, (n, c)) * scale).astype(dtype)
    ids = rng.integers(0, c, n)
    labels = ids if sparse else np.eye(c, dtype=dtype)[ids] * 0.7 + 0.3 / c
    with backend.use_backend("numpy"):
        loss, cache = ops.softmax_cross_entropy_forward(z, labels)
        dz = ops.softmax_cross_entropy_backward(1.5, cache)
    loss_k, probs_k = k.softmax_cross_entropy_forward(z, cache.targets, sparse)
    tol = 1e-12 if dtype == np.float64 else 1e-5
    assert_close(loss_k, loss, tol, "loss", floor=scale)
    assert_close(probs_k, cache.probs, tol, "probs")
    dz_k = k.softmax_cross_entropy_backward(1.5, probs_k, cache.targets, sparse)
    assert dz_k.dtype == probs_k.dtype == dtype
    assert_close(dz_k, dz, tol, "dlogits", floor=1.5 / n)

"""The Numba Adam kernels (minires.kernels.numba.update): Keras' formula, and the op's
choice between kernel and array code."""

import numpy as np
import pytest

pytest.importorskip("numba")

from minires.kernels import numba as k  # noqa: E402
from minires.ops import update  # noqa: E402
from tests.gradcheck import assert_close  # noqa: E402


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_kernel_follows_keras_formula(dtype):
    rng = np.random.default_rng(5)
    p, g = rng.standard_normal((7, 5)).astype(dtype), rng.standard_normal((7, 5)).astype(dtype)
    m, v = rng.standard_normal((7, 5)).astype(dtype), rng.random((7, 5)).astype(dtype)
    lr_t, b1, b2, eps = 3e-3, 0.9, 0.999, 1e-7
    em = b1 * m.astype(np.float64) + (1 - b1) * g
    ev = b2 * v.astype(np.float64) + (1 - b2) * g.astype(np.float64) ** 2
    ep = p - lr_t * em / (np.sqrt(ev) + eps)
    for kernel in (True, False):
        pk, mk, vk = p.copy(), m.copy(), v.copy()
        if kernel:
            k.adam_update(pk, g, mk, vk, lr_t, b1, b2, eps)
        else:
            from minires import backend
            with backend.use_backend("numpy"):
                update.adam_update(pk, g, mk, vk, lr_t, b1, b2, eps)
        tol = 1e-12 if dtype == np.float64 else 1e-6
        assert pk.dtype == mk.dtype == vk.dtype == dtype
        for name, got, want in (("param", pk, ep), ("m", mk, em), ("v", vk, ev)):
            assert_close(got, want, tol, f"{'kernel' if kernel else 'array'} {name}")


def test_adam_update_op_uses_the_array_code_for_non_contiguous_params():
    from minires import backend, ops

    rng = np.random.default_rng(6)
    base = rng.standard_normal((4, 6))
    p, g = base[:, ::2], rng.standard_normal((4, 3))          # p: a strided view into base
    before = p.copy()
    m, v = np.zeros((4, 3)), np.zeros((4, 3))
    with backend.use_backend("numba"):
        ops.adam_update(p, g, m, v, 1e-2, 0.9, 0.999, 1e-7)
    np.testing.assert_allclose(m, 0.1 * g)
    np.testing.assert_allclose(v, 0.001 * g * g)
    # Written in place, through the view: base itself changed.
    np.testing.assert_allclose(base[:, ::2], before - 1e-2 * m / (np.sqrt(v) + 1e-7))


def test_adam_update_op_checks_its_arguments():
    from minires import ops

    with pytest.raises(ValueError, match="adam_update: m must have shape"):
        ops.adam_update(np.zeros(3), np.zeros(3), np.zeros(2), np.zeros(3), 1e-3, 0.9, 0.999, 1e-7)
    with pytest.raises(TypeError, match="adam_update: param must be an array"):
        ops.adam_update([0.0], np.zeros(1), np.zeros(1), np.zeros(1), 1e-3, 0.9, 0.999, 1e-7)

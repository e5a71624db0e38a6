"""Keras 3's adapter on its JAX and PyTorch backends against minires.reference, op by op,
value and gradients, in both dtypes; the conventions Keras takes; and the float64 findings.

Keras picks its backend once per process, so each backend runs every case in a process of
its own (one per backend for the whole module: Keras takes seconds to start).
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.frameworks.adapter_cases import build_cases, check_case, conventions, expected, run_adapter
from tests.gradcheck import relative_error

BACKENDS = ("jax", "torch")

# Keras 3.15.1 on PyTorch with floatx float64 maps every float64 result type to float32
# (keras.src.backend.common.dtypes), and two of its ops cast to that type: matmul, so a
# Dense layer's value and its x and kernel gradients are float32-rounded; and divide_no_nan,
# which divides a loss by the batch size, so the cross-entropy and its gradient are too.
FLOAT32_IN_FLOAT64 = {
    ("torch", "dense"): ("y", "dx", "dw"),
    ("torch", "softmax_cross_entropy"): ("y", "dlogits"),
}


def _missing(backend: str) -> str | None:
    for package in ("keras", backend):
        if importlib.util.find_spec(package) is None:
            return f"keras-{backend} needs {package}"
    return None


@pytest.fixture(scope="module")
def keras_results(tmp_path_factory):
    """results(backend): every case computed by Keras on ``backend``, once per module."""
    done = {}

    def results(backend):
        reason = _missing(backend)
        if reason:
            pytest.skip(reason)
        if backend not in done:
            done[backend] = run_adapter("minires.frameworks.keras_adapter", tmp_path_factory.mktemp(backend),
                                        env={"KERAS_BACKEND": backend})
        return done[backend]
    return results


@pytest.mark.parametrize("case", build_cases(), ids=lambda case: case.id)
@pytest.mark.parametrize("backend", BACKENDS)
def test_agrees_with_the_reference(keras_results, backend, case):
    known = FLOAT32_IN_FLOAT64.get((backend, case.op), ()) if case.dtype == "float64" else ()
    check_case(keras_results(backend), case, float32_accurate=known)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_conventions(keras_results, backend, dtype):
    """'same' pads the odd pixel at the bottom/right (on PyTorch, Keras pads the max-pool input
    by repeating its edge, which moves no maximum), a tied max-pool window's gradient goes to
    its first maximum in row-major order, ReLU'(0) = 0."""
    assert conventions(keras_results(backend).outputs, dtype) == {
        "same_conv": "bottom/right", "same_pool": "bottom/right", "pool_tie": "first", "relu_grad_at_0": 0.0}


def test_float64_dense_is_float32_accurate_on_torch_only(keras_results):
    """With floatx float64, Keras on PyTorch computes Dense in float32
    (relative errors near 1e-8), while Keras on JAX agrees with the reference to 1e-12."""
    on_torch, on_jax = keras_results("torch"), keras_results("jax")
    cases = [case for case in build_cases() if case.op == "dense" and case.dtype == "float64"]
    for case in cases:
        want = expected(case)
        for name in ("y", "dx", "dw"):
            key = f"{case.id}/{name}"
            assert 1e-9 < relative_error(on_torch.outputs[key], want[name]) < 1e-6, key
            assert relative_error(on_jax.outputs[key], want[name]) < 1e-12, key
    # without a bias to add in float64, the float32 product shows in the dtype itself
    assert on_torch.outputs["dense-batch1-nobias-float64/y"].dtype.name == "float32"


@pytest.mark.parametrize("backend", BACKENDS)
def test_versions(keras_results, backend):
    results = keras_results(backend)
    assert results.name == f"keras-{backend}"
    assert set(results.versions) == {"keras", backend}

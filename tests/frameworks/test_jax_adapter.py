"""JAX's adapter against minires.reference, op by op, value and gradients, in both dtypes, and
the conventions JAX takes where definitions differ, measured from its outputs."""

from __future__ import annotations

import importlib.util

import pytest

from tests.frameworks.adapter_cases import build_cases, check_case, conventions, run_adapter

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="the JAX adapter needs jax")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Every case computed by the adapter, in a process of its own (it turns on x64)."""
    return run_adapter("minires.frameworks.jax_adapter", tmp_path_factory.mktemp("jax"))


@pytest.mark.parametrize("case", build_cases(), ids=lambda case: case.id)
def test_agrees_with_the_reference(results, case):
    check_case(results, case)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_conventions(results, dtype):
    """'SAME' pads the odd pixel at the end, a tied max-pool window's gradient goes to its
    first maximum in row-major order, ReLU'(0) = 0: minires' own choices."""
    assert conventions(results.outputs, dtype) == {
        "same_conv": "bottom/right", "same_pool": "bottom/right", "pool_tie": "first", "relu_grad_at_0": 0.0}


def test_versions(results):
    assert results.name == "jax"
    assert set(results.versions) == {"jax", "jaxlib"}

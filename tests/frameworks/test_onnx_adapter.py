"""ONNX Runtime's adapter against minires.reference: forward values only (ONNX Runtime has no
gradients), in both dtypes, and where its 'same' (auto_pad SAME_UPPER) puts the odd pixel."""

from __future__ import annotations

import importlib.util

import pytest

from tests.frameworks.adapter_cases import build_cases, check_case, conventions, run_adapter

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("onnx") is None or importlib.util.find_spec("onnxruntime") is None,
    reason="the ONNX Runtime adapter needs onnx and onnxruntime")

# ONNX Runtime's CPU Conv has a float32 kernel only; every other op runs in float64 too.
UNSUPPORTED = {("conv2d", "float64")}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    return run_adapter("minires.frameworks.onnx_adapter", tmp_path_factory.mktemp("onnxruntime"))


@pytest.mark.parametrize("case", build_cases(), ids=lambda case: case.id)
def test_agrees_with_the_reference(results, case):
    if (case.op, case.dtype) in UNSUPPORTED:
        assert results.errors[case.id].startswith("NotImplementedError: onnxruntime"), results.errors.get(case.id)
        assert "float64" in results.errors[case.id] and "conv2d" in results.errors[case.id]
        return
    check_case(results, case, outputs=("y",))
    assert not any(key.startswith(f"{case.id}/d") for key in results.outputs), "ONNX Runtime has no gradients"


def test_same_puts_the_odd_pixel_at_the_end(results):
    assert conventions(results.outputs, "float32") == {"same_conv": "bottom/right", "same_pool": "bottom/right"}


def test_versions(results):
    assert results.name == "onnxruntime"
    assert set(results.versions) == {"onnxruntime", "onnx"}

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


@pytest.mark.parametrize("op, options", [
    ("maxpool2d", {"pool_size": (3, 1), "strides": (1, 3), "padding": "same"}),
    ("conv2d", {"stride": (1, 3), "padding": "same"}),
])
def test_same_with_a_stride_larger_than_the_window(op, options):
    """ONNX's SAME_UPPER total goes negative there and ONNX Runtime refuses it; the adapter
    passes Keras' pads instead, and the values agree with the reference."""
    import numpy as np

    from minires import reference
    from minires.frameworks import onnx_adapter

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float32)
    if op == "maxpool2d":
        inputs, expected = {"x": x}, reference.maxpool2d_forward(x, **options)
    else:
        w = rng.standard_normal((3, 1, 2, 3)).astype(np.float32)
        b = rng.standard_normal(3).astype(np.float32)
        inputs, expected = {"x": x, "w": w, "b": b}, reference.conv2d_forward(x, w, b, **options)
    y = onnx_adapter.run_op(op, inputs, options, None, "float32")["y"]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)

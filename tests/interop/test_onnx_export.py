"""ONNX export: the graph passes onnx.checker, ONNX Runtime predicts what minires does, and
the file reads back into the same minires model."""

from __future__ import annotations

import numpy as np
import pytest

import minires
from tests.interop.toys import odd_model, tiny_resnet

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx package")
from minires.interop.onnx_export import CONFIG_KEY, export_onnx, load_onnx, to_onnx  # noqa: E402


def _runtime_predictions(path, x):
    ort = pytest.importorskip("onnxruntime", reason="running the export needs onnxruntime")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def _batch(model, n=4, seed=0):
    return np.random.default_rng(seed).random((n, *model.input.shape[1:]), dtype=np.float32)


@pytest.mark.parametrize("build", [odd_model, tiny_resnet], ids=["odd", "tiny_resnet"])
def test_onnx_runtime_predicts_what_minires_does(tmp_path, build):
    model = build("float32")
    path = tmp_path / "model.onnx"
    export_onnx(model, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    x = _batch(model)
    ours, theirs = model.predict(x), _runtime_predictions(path, x)
    assert theirs.shape == ours.shape and theirs.dtype == np.float32
    np.testing.assert_allclose(theirs, ours, rtol=0, atol=1e-5)


def test_the_seed_model_exported_predicts_within_1e_5(tmp_path):
    model = minires.build_resnet(seed=0)
    path = tmp_path / "seed.onnx"
    export_onnx(model, path)
    x = _batch(model, n=8)
    error = np.abs(_runtime_predictions(path, x) - model.predict(x)).max() / np.abs(model.predict(x)).max()
    assert error <= 1e-5


def test_a_float64_model_exports_as_float32_with_its_config(tmp_path):
    model = odd_model("float64")
    proto = to_onnx(model)
    assert {t.data_type for t in proto.graph.initializer if "/shape" not in t.name} == {onnx.TensorProto.FLOAT}
    assert any(p.key == CONFIG_KEY for p in proto.metadata_props)
    path = tmp_path / "odd.onnx"
    export_onnx(model, path)
    x = _batch(model)
    np.testing.assert_allclose(_runtime_predictions(path, x), model.predict(x.astype(np.float64)),
                               rtol=0, atol=1e-5)


@pytest.mark.parametrize("build", [odd_model, tiny_resnet], ids=["odd", "tiny_resnet"])
def test_export_and_reimport_round_trip(tmp_path, build):
    model = build("float32")
    path = tmp_path / "model.onnx"
    export_onnx(model, path)
    back = minires.load_model(path)            # dispatched by the suffix to load_onnx
    assert back.get_config() == model.get_config()
    for ours, theirs in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(theirs, ours)


def test_a_foreign_or_damaged_onnx_file_is_refused_in_one_line(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    foreign = tmp_path / "foreign.onnx"
    foreign.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(ValueError, match="without a minires config") as info:
        load_onnx(foreign)
    assert "\n" not in str(info.value)
    damaged = tmp_path / "damaged.onnx"
    export_onnx(tiny_resnet("float32"), damaged)
    damaged.write_bytes(damaged.read_bytes()[:200])
    with pytest.raises(ValueError, match="damaged.onnx") as info:
        load_onnx(damaged)
    assert "\n" not in str(info.value)


def test_an_initializer_of_the_wrong_shape_is_refused(tmp_path):
    model = tiny_resnet("float32")
    proto = to_onnx(model)
    from onnx import numpy_helper

    for i, tensor in enumerate(proto.graph.initializer):
        if tensor.name == "dense/kernel":
            proto.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.zeros((3, 3), np.float32),
                                                                        "dense/kernel"))
    path = tmp_path / "bad.onnx"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(ValueError, match=r"'dense/kernel' has shape \(3, 3\)"):
        load_onnx(path)

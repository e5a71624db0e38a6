"""``minires export``: ONNX and PyTorch (safetensors) files from a model file, errors in one line."""

from __future__ import annotations

import numpy as np
import pytest

import minires
from minires import cli
from tests.interop.toys import odd_model, tiny_resnet


def test_export_onnx_next_to_the_model(tmp_path, capsys):
    pytest.importorskip("onnx")
    model = tiny_resnet("float32")
    model.save(tmp_path / "model.npz")
    assert cli.main(["export", str(tmp_path / "model.npz"), "--format", "onnx"]) == 0
    assert (tmp_path / "model.onnx").is_file()
    assert "as ONNX, float32" in capsys.readouterr().out
    back = minires.load_model(tmp_path / "model.onnx")
    for ours, theirs in zip(model.get_weights(), back.get_weights()):
        np.testing.assert_array_equal(theirs, ours)


def test_export_torch_to_a_chosen_path(tmp_path):
    pytest.importorskip("safetensors")
    tiny_resnet("float32").save(tmp_path / "model.npz")
    out = tmp_path / "out" / "net.safetensors"
    assert cli.main(["export", str(tmp_path / "model.npz"), "--format", "torch", "--out", str(out)]) == 0
    assert out.is_file()


def test_export_errors_are_one_line(tmp_path, capsys):
    pytest.importorskip("safetensors")
    odd_model().save(tmp_path / "odd.npz")
    assert cli.main(["export", str(tmp_path / "odd.npz"), "--format", "torch"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not the seed's ResNet architecture" in err
    assert cli.main(["export", str(tmp_path / "missing.npz"), "--format", "onnx"]) == 1
    assert "missing.npz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.main(["export", str(tmp_path / "odd.npz"), "--format", "tflite"])
    assert info.value.code == 2

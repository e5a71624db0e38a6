"""``minires.load_model`` and ``load_weights`` hand other frameworks' files to their readers,
and ``import minires`` imports none of the packages those readers need."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

import minires
from minires import interop
from tests.interop.toys import tiny_resnet


def test_minires_archives_are_not_dispatched(tmp_path):
    model = tiny_resnet()
    model.save(tmp_path / "model.npz")
    assert interop.model_reader(tmp_path / "model.npz") is None
    assert interop.model_reader(tmp_path / "missing.npz") is None
    assert minires.load_model(tmp_path / "model.npz").get_config() == model.get_config()


def test_keras_archives_are_recognised_by_suffix_or_content(tmp_path):
    pytest.importorskip("h5py")
    from minires.interop.keras_file import load_keras, load_keras_weights

    renamed = tmp_path / "model.bin"
    with zipfile.ZipFile(renamed, "w") as archive:
        archive.writestr("config.json", json.dumps({}))
    assert interop.model_reader(tmp_path / "x.keras") is load_keras
    assert interop.model_reader(renamed) is load_keras
    hdf5 = tmp_path / "weights.bin"
    hdf5.write_bytes(interop.HDF5_SIGNATURE + b"\0" * 8)
    assert interop.weights_reader(hdf5) is load_keras_weights
    assert interop.weights_reader(tmp_path / "x.weights.h5") is load_keras_weights
    assert interop.weights_reader(tmp_path / "x.npz") is None


def test_import_minires_imports_no_framework_or_file_package():
    heavy = ["h5py", "onnx", "onnxruntime", "safetensors", "torch", "jax", "keras"]
    done = subprocess.run([sys.executable, "-c", "import sys, minires; print(sorted(m for m in sys.modules "
                           f"if m.split('.')[0] in {heavy!r}))"], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_other_formats_hold_to_the_rule_on_non_finite_weights(tmp_path):
    pytest.importorskip("safetensors")
    import numpy as np

    import minires
    from minires.interop.torch_export import export_safetensors
    from tests.interop.toys import tiny_resnet

    model = tiny_resnet()
    weights = model.get_weights()
    weights[-1][0] = np.nan
    model.set_weights(weights)
    path = tmp_path / "nan.safetensors"
    export_safetensors(model, path)
    with pytest.raises(ValueError, match="non-finite values"):
        minires.load_model(path)
    assert np.isnan(minires.load_model(path, allow_nonfinite=True).get_weights()[-1][0])

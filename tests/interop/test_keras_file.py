"""Keras 3 files read as data: real ones written by Keras (the seed's own code, in a process
of its own), and hand-made ones that are foreign, damaged or hold what minires does not have."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

import minires
from minires.interop.keras_file import KerasFileError, load_keras, load_keras_weights
from minires.layers import Dense
from minires.model import Input, Model

h5py = pytest.importorskip("h5py", reason="Keras files need h5py")

ROOT = Path(__file__).resolve().parents[2]

# Keras 3 on JAX (x64 enabled, for float64 models) builds the seed's model with the seed's
# code (minires.frameworks.keras_models), saves it in both dtypes with its predictions,
# and saves a few models minires must read or refuse.
_WRITER = r"""
import sys
import jax
jax.config.update("jax_enable_x64", True)
import keras
import numpy as np
from minires.frameworks.keras_models import build_resnet

out = sys.argv[1]
x = np.random.default_rng(0).random((4, 32, 32, 3))
np.save(f"{out}/x.npy", x)
for dtype in ("float64", "float32"):
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    keras.utils.set_random_seed(0)
    model = build_resnet((32, 32, 3), 10)
    model.compile(optimizer=keras.optimizers.Adam(), loss="categorical_crossentropy", metrics=["accuracy"])
    model.save(f"{out}/seed-{dtype}.keras")
    model.save_weights(f"{out}/seed-{dtype}.weights.h5")
    np.save(f"{out}/seed-{dtype}.npy", keras.ops.convert_to_numpy(model(x.astype(dtype))))
keras.config.set_floatx("float32")
keras.config.set_dtype_policy("float32")
layers = keras.layers
small = np.random.default_rng(1).random((3, 7, 6, 2)).astype("float32")
np.save(f"{out}/small.npy", small)
sequential = keras.Sequential([keras.Input((7, 6, 2)),
                               layers.Conv2D(3, (2, 2), strides=2, padding="same", activation="relu"),
                               layers.MaxPooling2D(2, padding="same"), layers.Flatten(),
                               layers.Dense(4), layers.Activation("softmax")])
sequential.save(f"{out}/sequential.keras")
np.save(f"{out}/sequential.npy", keras.ops.convert_to_numpy(sequential(small)))
inputs = keras.Input((7, 6, 2))
normed = layers.BatchNormalization()(layers.Conv2D(3, 3)(inputs))
keras.Model(inputs, layers.Flatten()(normed)).save(f"{out}/batchnorm.keras")
inputs = keras.Input((7, 6, 2))
keras.Model(inputs, layers.Conv2D(3, 3, dilation_rate=2)(inputs)).save(f"{out}/dilated.keras")
"""


@pytest.fixture(scope="module")
def keras_files(tmp_path_factory):
    # Not imported here: Keras picks its backend on import, and this process has none set.
    if not all(importlib.util.find_spec(p) for p in ("keras", "jax")):
        pytest.skip("writing real Keras files needs Keras 3 and JAX")
    out = tmp_path_factory.mktemp("keras")
    env = {**os.environ, "KERAS_BACKEND": "jax",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", _WRITER, str(out)], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.mark.parametrize("dtype, tol", [("float64", 1e-12), ("float32", 1e-5)])
def test_the_seed_model_saved_by_keras_predicts_the_same_in_minires(keras_files, dtype, tol):
    model = minires.load_model(keras_files / f"seed-{dtype}.keras")
    assert model.dtype == dtype and model.count_params() == 270_026
    x = np.load(keras_files / "x.npy").astype(dtype)
    ours, theirs = model.predict(x), np.load(keras_files / f"seed-{dtype}.npy")
    assert np.abs(ours - theirs).max() / np.abs(theirs).max() <= tol
    # compiled as Keras was: Adam with Keras' defaults, categorical cross-entropy, accuracy
    assert type(model.optimizer).__name__ == "Adam" and model.optimizer.epsilon == 1e-7
    assert type(model.loss).__name__ == "CategoricalCrossentropy" and model.metrics_names == ["loss", "accuracy"]


def test_keras_weights_files_load_into_a_minires_model(keras_files):
    model = minires.build_resnet(seed=5, dtype="float64")
    model.load_weights(keras_files / "seed-float64.weights.h5")
    x = np.load(keras_files / "x.npy")
    np.testing.assert_allclose(model.predict(x), np.load(keras_files / "seed-float64.npy"), rtol=0, atol=1e-12)


def test_a_sequential_model_with_strided_same_padding_loads(keras_files):
    model = minires.load_model(keras_files / "sequential.keras")
    small = np.load(keras_files / "small.npy")
    np.testing.assert_allclose(model.predict(small), np.load(keras_files / "sequential.npy"), rtol=0, atol=1e-6)


@pytest.mark.parametrize("name, message", [("batchnorm", "is a BatchNormalization, which minires does not have"),
                                           ("dilated", "dilation_rate=")])
def test_what_minires_does_not_compute_is_refused_by_name(keras_files, name, message):
    with pytest.raises(ValueError, match=message) as info:
        minires.load_model(keras_files / f"{name}.keras")
    assert "\n" not in str(info.value) and f"{name}.keras" in str(info.value)


# --- hand-made files -------------------------------------------------------------------------

def _tensor(name):
    return {"class_name": "__keras_tensor__", "config": {"shape": [None, 3], "dtype": "float32",
                                                          "keras_history": [name, 0, 0]}}


def _config(dense_class="Dense", **dense_options):
    dense = {"name": "probabilities", "trainable": True, "dtype": "float32", "units": 2,
             "activation": "softmax", "use_bias": True, "kernel_regularizer": None, **dense_options}
    return {"module": "keras.src.models.functional", "class_name": "Functional", "config": {
        "name": "tiny", "trainable": True,
        "layers": [{"class_name": "InputLayer", "name": "features", "inbound_nodes": [],
                    "config": {"batch_shape": [None, 3], "dtype": "float32", "sparse": False,
                               "name": "features"}},
                   {"class_name": dense_class, "name": "probabilities", "config": dense,
                    "inbound_nodes": [{"args": [_tensor("features")], "kwargs": {}}]}],
        "input_layers": [["features", 0, 0]], "output_layers": [["probabilities", 0, 0]]}}


def _weights(path, kernel, bias, unwritten=False):
    with h5py.File(path, "w") as f:
        f.create_group("layers/input_layer/vars")
        group = f.create_group("layers/dense/vars")
        if unwritten:       # declared, never written: HDF5 allocates nothing
            group.create_dataset("0", shape=kernel.shape, dtype=kernel.dtype)
        else:
            group["0"] = kernel
        group["1"] = bias
        f.create_group("vars")


def _archive(path, config, weights_path=None, metadata=None):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata.json", json.dumps(metadata or {"keras_version": "3.15.1"}))
        archive.writestr("config.json", json.dumps(config))
        if weights_path is not None:
            archive.write(weights_path, "model.weights.h5")
    return path


@pytest.fixture
def kernel_and_bias():
    rng = np.random.default_rng(0)
    return rng.standard_normal((3, 2)).astype(np.float32), rng.standard_normal(2).astype(np.float32)


def test_a_hand_made_archive_loads_with_its_weights(tmp_path, kernel_and_bias):
    kernel, bias = kernel_and_bias
    _weights(tmp_path / "w.h5", kernel, bias)
    model = minires.load_model(_archive(tmp_path / "tiny.keras", _config(), tmp_path / "w.h5"))
    x = np.random.default_rng(1).random((5, 3), dtype=np.float32)
    z = x @ kernel + bias
    expected = np.exp(z - z.max(1, keepdims=True))
    np.testing.assert_allclose(model.predict(x), expected / expected.sum(1, keepdims=True), rtol=1e-6)
    assert model.optimizer is None          # no compile_config: ready to predict


def _refusal(path, loader=minires.load_model):
    with pytest.raises(ValueError) as info:
        loader(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def test_foreign_and_damaged_files_are_refused_in_one_line(tmp_path, kernel_and_bias):
    text = tmp_path / "notes.keras"
    text.write_text("not a zip")
    assert "not a .keras archive" in _refusal(text)
    _weights(tmp_path / "w.h5", *kernel_and_bias)
    whole = _archive(tmp_path / "whole.keras", _config(), tmp_path / "w.h5").read_bytes()
    truncated = tmp_path / "truncated.keras"
    truncated.write_bytes(whole[: len(whole) // 2])
    _refusal(truncated)
    no_weights = _archive(tmp_path / "no_weights.keras", _config())
    assert "no model.weights.h5" in _refusal(no_weights)
    old = _archive(tmp_path / "old.keras", _config(), tmp_path / "w.h5", {"keras_version": "2.15.0"})
    assert "Keras 2.15.0" in _refusal(old)


def test_unknown_layers_and_options_are_refused_by_name(tmp_path, kernel_and_bias):
    _weights(tmp_path / "w.h5", *kernel_and_bias)
    lstm = _archive(tmp_path / "lstm.keras", _config("LSTM"), tmp_path / "w.h5")
    assert "'probabilities' is a LSTM, which minires does not have" in _refusal(lstm)
    tanh = _archive(tmp_path / "tanh.keras", _config(activation="tanh"), tmp_path / "w.h5")
    assert "activation 'tanh'" in _refusal(tanh)
    regularized = _archive(tmp_path / "l2.keras", _config(kernel_regularizer={"class_name": "L2"}),
                           tmp_path / "w.h5")
    assert "kernel_regularizer=" in _refusal(regularized)


def test_weights_are_checked_before_they_are_read(tmp_path, kernel_and_bias):
    kernel, bias = kernel_and_bias
    _weights(tmp_path / "wrong.h5", kernel.T.copy(), bias)
    wrong = _archive(tmp_path / "wrong.keras", _config(), tmp_path / "wrong.h5")
    assert "has shape (2, 3); the architecture needs (3, 2)" in _refusal(wrong)
    _weights(tmp_path / "ints.h5", kernel.astype(np.int32), bias)
    assert "not a floating-point array" in _refusal(_archive(tmp_path / "ints.keras", _config(),
                                                             tmp_path / "ints.h5"))
    config = _config()
    config["config"]["layers"][0]["config"]["batch_shape"] = [None, 3_000_000]
    _weights(tmp_path / "hollow.h5", np.zeros((3_000_000, 2), np.float32), bias, unwritten=True)
    hollow = _archive(tmp_path / "hollow.keras", config, tmp_path / "hollow.h5")
    assert "declare 24000008 bytes but the file holds" in _refusal(hollow)


def test_keras_2_files_are_refused_with_a_hint(tmp_path):
    legacy = tmp_path / "legacy.h5"
    with h5py.File(legacy, "w") as f:
        f.attrs["layer_names"] = [b"dense"]
    assert "a Keras 2 weights file?" in _refusal(legacy, lambda p: _tiny().load_weights(p))
    assert "a Keras 2 model?" in _refusal(legacy)


def _tiny():
    inputs = Input((3,))
    return Model(inputs, Dense(2, activation="softmax", name="probabilities")(inputs))


def test_direct_readers_raise_keras_file_errors(tmp_path):
    text = tmp_path / "x.keras"
    text.write_text("no")
    with pytest.raises(KerasFileError):
        load_keras(text)
    with pytest.raises(KerasFileError):
        load_keras_weights(_tiny(), text)

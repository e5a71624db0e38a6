"""The Keras namespace: every name the seed uses resolves, and the small utilities behave
as Keras' do."""

import sys
import types

import numpy as np
import pytest

import minires
import minires.keras as keras
from minires import initializers


def test_names_resolve():
    import minires.keras.layers as L

    for name in ("Input", "Conv2D", "MaxPooling2D", "Flatten", "Dense", "Reshape", "Activation", "add", "Add"):
        assert hasattr(L, name)
    assert minires.keras is keras
    assert keras.models.Model is minires.model.Model
    assert keras.optimizers.Adam is minires.optim.Adam
    assert keras.losses.CategoricalCrossentropy is minires.losses.CategoricalCrossentropy
    assert callable(keras.models.load_model) and callable(keras.datasets.cifar10.load_data)


def test_to_categorical_follows_keras():
    out = keras.utils.to_categorical(np.array([[1], [0], [2]], np.uint8), 4)
    assert out.shape == (3, 4) and out.dtype == np.float32
    np.testing.assert_array_equal(out.argmax(1), [1, 0, 2])
    assert keras.utils.to_categorical([0, 3]).shape == (2, 4)
    assert keras.utils.to_categorical(np.zeros((2, 3), int), 2).shape == (2, 3, 2)
    with pytest.raises(ValueError, match="does not fit num_classes=2"):
        keras.utils.to_categorical([0, 2], 2)
    with pytest.raises(ValueError, match="integer class ids"):
        keras.utils.to_categorical([0.5])


def test_set_floatx_builds_float64_models():
    saved = keras.backend.floatx()
    try:
        keras.backend.set_floatx("float64")
        inputs = keras.layers.Input((4,))
        model = keras.models.Model(inputs, keras.layers.Dense(2)(inputs))
        assert inputs.dtype == "float64" and all(w.dtype == np.float64 for w in model.get_weights())
        assert model.predict(np.ones((1, 4), np.float32)).dtype == np.float64
    finally:
        keras.backend.set_floatx(saved)
    assert keras.backend.floatx() == "float32"


def test_clear_session_restarts_names():
    keras.backend.clear_session()
    first = keras.layers.Dense(1)
    second = keras.layers.Dense(1)
    assert (first.name, second.name) == ("dense", "dense_1")
    keras.backend.clear_session()
    assert keras.layers.Dense(1).name == "dense"


def test_set_random_seed_fixes_initial_weights():
    keras.utils.set_random_seed(1)
    a = keras.layers.Dense(3)(np.ones((1, 2), np.float32))
    keras.utils.set_random_seed(1)
    b = keras.layers.Dense(3)(np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(a, b)
    assert initializers.global_generator() is not None


def test_cifar10_wrapper_forwards_to_minires_data(monkeypatch):
    calls = []
    fake = types.ModuleType("minires.data.cifar10")

    def load_data(path=None, download=True):
        calls.append((path, download))
        x = np.zeros((2, 32, 32, 3), np.uint8)
        y = np.zeros((2, 1), np.uint8)
        return (x, y), (x[:1], y[:1])

    fake.load_data = load_data
    monkeypatch.setitem(sys.modules, "minires.data.cifar10", fake)
    (x_train, y_train), (x_test, _) = keras.datasets.cifar10.load_data()
    assert x_train.shape == (2, 32, 32, 3) and y_train.shape == (2, 1) and x_test.shape[0] == 1
    keras.datasets.cifar10.load_data(path="/tmp/cifar", download=False)
    assert calls == [(None, True), ("/tmp/cifar", False)]

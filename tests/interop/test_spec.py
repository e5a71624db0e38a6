"""A model as plain data for other frameworks, and the recognition of the seed's architecture."""

from __future__ import annotations

import numpy as np
import pytest

import minires
from minires.interop.spec import model_spec, parameter_shapes, resnet_arguments
from minires.layers import Activation, Conv2D, Dense, Flatten, Layer, MaxPooling2D, add
from minires.model import Input, Model
from tests.interop.toys import odd_model, tiny_resnet


def test_the_seed_model_and_its_smaller_versions_are_recognised():
    assert resnet_arguments(minires.build_resnet(seed=0)) == {
        "input_shape": [32, 32, 3], "num_classes": 10, "filters": 64, "blocks": 3, "dense_units": 128}
    assert resnet_arguments(tiny_resnet()) == {
        "input_shape": [8, 8, 3], "num_classes": 4, "filters": 4, "blocks": 1, "dense_units": 8}
    assert resnet_arguments(odd_model()) is None


def test_a_block_wired_differently_is_not_the_seeds():
    """Same layers, same shapes, but the skip path reads the block's first convolution."""
    inputs = Input((8, 8, 3))
    x = MaxPooling2D(2)(Conv2D(4, 3, padding="same", activation="relu")(inputs))
    a = Conv2D(4, 3, padding="same", activation="relu")(x)
    main = MaxPooling2D(2)(Conv2D(4, 3, padding="same")(a))
    skip = MaxPooling2D(2)(Conv2D(4, 1, padding="same")(a))
    x = Activation("relu")(add([main, skip]))
    out = Dense(4, activation="softmax")(Dense(8, activation="relu")(Flatten()(x)))
    assert resnet_arguments(Model(inputs, out)) is None


def test_the_spec_lists_each_layer_with_its_weights_positions():
    model = odd_model()
    spec = model_spec(model)
    assert spec["resnet"] is None and spec["input"] == {"name": "image", "shape": [9, 7, 3]}
    layers = {layer["name"]: layer for layer in spec["layers"]}
    assert layers["even_same"]["kind"] == "conv2d" and layers["even_same"]["padding"] == "same"
    assert layers["even_same"]["output_shape"] == [5, 4, 4]
    assert layers["flatten"]["input_shapes"] == [[3, 2, 4]]
    weights = model.get_weights()
    for layer in spec["layers"]:
        for param, index in layer["weights"].items():
            assert spec["weights"][index] == f"{layer['name']}/{param}"
            assert weights[index].shape == model.get_layer(layer["name"]).params[param].shape


def test_a_layer_no_framework_is_given_is_refused_by_name():
    class Scale(Layer):
        def _forward(self, x, return_logits, training):
            return 2 * x, None

    inputs = Input((3,))
    model = Model(inputs, Scale(name="doubling")(Dense(2)(inputs)))
    with pytest.raises(ValueError, match="'doubling' is a Scale"):
        model_spec(model)


def test_parameter_shapes_come_from_the_config_alone():
    model = odd_model()
    shapes = parameter_shapes(model.get_config())
    for layer in model.layers:
        assert shapes.get(layer.name, []) == [tuple(p.shape) for p in layer.params.values()]
    config = model.get_config()
    config["layers"][1]["inbound"] = ["nowhere"]
    with pytest.raises(ValueError, match="malformed model config"):
        parameter_shapes(config)
    assert np.prod(shapes["hidden"][0]) == 24 * 6

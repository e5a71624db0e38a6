"""The graph: Keras' layer order, and the graphs a model refuses (disconnected, a layer reused,
several inputs)."""

import pytest

from minires.layers import Dense, add
from minires.model import Input, InputLayer, Model
from tests.model.toys import tiny_resnet


# The order comes from map_graph; the model is the simplest way to ask for it.
def test_layer_order_is_keras_order():
    model = tiny_resnet()
    names = [layer.name for layer in model.layers]
    block = ["conv1", "conv2", "skip_conv", "pool", "skip_pool", "add", "relu"]
    expected = (["input", "stem_conv", "stem_pool"] + [f"block1_{n}" for n in block]
                + [f"block2_{n}" for n in block] + ["flatten", "dense", "predictions"])
    assert names == expected
    assert isinstance(model.layers[0], InputLayer)


def test_disconnected_graph_and_reused_layer_are_refused():
    a, b = Input((4,)), Input((4,))
    out = Dense(2)(add([a, b]))
    with pytest.raises(ValueError, match="graph disconnected"):
        Model(a, out)
    dense = Dense(3)
    dense(a)
    with pytest.raises(ValueError, match="used once"):
        dense(b)
    with pytest.raises(ValueError, match="one input and one output"):
        Model([a, b], out)

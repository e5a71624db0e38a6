"""The graph: Keras' layer order, shared layers' nodes, and the graphs a model refuses
(disconnected, a shared layer called on another shape, several outputs)."""

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


def test_disconnected_graph_and_badly_shared_layer_are_refused():
    a, b = Input((4,)), Input((4,))
    out = Dense(2)(add([a, b]))
    with pytest.raises(ValueError, match="graph disconnected"):
        Model(a, out)
    dense = Dense(3)
    dense(a)
    with pytest.raises(ValueError, match=r"was built for inputs of shape \(None, 4\), got \(None, 5\)"):
        dense(Input((5,)))
    with pytest.raises(ValueError, match="one output"):
        Model([a, b], [out, out])


def test_a_shared_layer_has_one_node_per_call_and_appears_once():
    a, b = Input((4,), name="a"), Input((4,), name="b")
    dense = Dense(3, name="shared")
    first, second = dense(a), dense(b)
    assert (first.node_index, second.node_index) == (0, 1)
    model = Model([a, b], add([first, second], name="sum"))
    assert [layer.name for layer in model.layers] == ["a", "b", "shared", "sum"]
    assert model.inputs == [a, b] and model.input == [a, b]

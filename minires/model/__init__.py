"""Functional models: a graph of layers traced from symbolic tensors, and its training.

    inputs = Input(shape=(32, 32, 3))                  # a KerasTensor: a shape, no values
    x = Conv2D(64, 3, padding="same")(inputs)          # records a node of the graph
    outputs = Dense(10, activation="softmax")(Flatten()(x))
    model = Model(inputs, outputs)
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x_train, y_train, batch_size=64, epochs=10)

One idea per module, in the order a reader meets them:

    inputs.py       Input and InputLayer, where a graph starts (the graph itself is
                    minires.graph: KerasTensor, record_call, map_graph)
    functional.py   Model: its layers in order, weights, forward and backward, summary, config
    training.py     compile, fit, evaluate, predict and their one-batch forms
    loop.py         one epoch of training, shared with minires.train; running totals kept on
                    the device
    callbacks.py    Callback and History
    checks.py       checks of the arguments users pass
"""

from ..graph import KerasTensor
from .callbacks import Callback, History
from .functional import Model
from .inputs import Input, InputLayer

__all__ = ["Callback", "History", "Input", "InputLayer", "KerasTensor", "Model"]

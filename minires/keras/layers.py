"""``keras.layers``: the layers minires implements (see ``minires.layers``)."""

from ..layers import (Activation, Add, Conv2D, Dense, Flatten, Layer, MaxPool2D, MaxPooling2D,
                      Reshape, add)
from ..graph import KerasTensor
from ..model import Input, InputLayer

__all__ = ["Activation", "Add", "Conv2D", "Dense", "Flatten", "Input", "InputLayer", "KerasTensor",
           "Layer", "MaxPool2D", "MaxPooling2D", "Reshape", "add"]

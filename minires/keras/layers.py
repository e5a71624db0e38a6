"""``keras.layers``: the layers minires implements (see ``minires.layers``)."""

from ..layers import (AbsoluteDifference, Activation, Add, Concatenate, Conv2D, Dense, Flatten,
                      InstanceNormalization, Layer, MaxPool2D, MaxPooling2D, Reshape, Subtract, UpSampling2D, add, concatenate,
                      subtract)
from ..graph import KerasTensor
from ..model import Input, InputLayer

__all__ = ["AbsoluteDifference", "Activation", "Add", "Concatenate", "Conv2D", "Dense", "Flatten", "Input",
           "InputLayer", "InstanceNormalization", "KerasTensor", "Layer", "MaxPool2D", "MaxPooling2D", "Reshape", "Subtract",
           "UpSampling2D", "add", "concatenate", "subtract"]

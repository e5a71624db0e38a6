"""``keras.initializers`` (see ``minires.initializers``)."""

from ..initializers import (Constant, GlorotNormal, GlorotUniform, HeUniform, Initializer, Ones,
                            RandomNormal, RandomUniform, Zeros, get)

__all__ = ["Constant", "GlorotNormal", "GlorotUniform", "HeUniform", "Initializer", "Ones",
           "RandomNormal", "RandomUniform", "Zeros", "get"]

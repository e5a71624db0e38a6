"""``keras.optimizers``: Adam and SGD in Keras' form (see ``minires.optim``)."""

from ..optim import SGD, Adam, Optimizer, get

__all__ = ["SGD", "Adam", "Optimizer", "get"]

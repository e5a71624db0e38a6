"""``keras.datasets``: CIFAR-10, through ``minires.data``."""

from . import cifar10

__all__ = ["cifar10"]

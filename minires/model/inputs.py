"""The entry of a model's graph: ``Input(shape)`` and the ``InputLayer`` behind it.

``Input`` returns the ``KerasTensor`` that layer calls start from (see ``minires.graph``);
its layer passes its input through, and is the first of a model's ``layers``, as in Keras.
It lives above the layers (it is one) and below the model (which starts from it).
"""

from __future__ import annotations

from .. import initializers
from ..graph import KerasTensor
from ..layers import Layer
from .checks import is_int


class InputLayer(Layer):
    """The entry of a graph: passes its input through."""

    default_name = "input_layer"

    def __init__(self, batch_shape, dtype=None, name=None, trainable=True):
        super().__init__(name=name, dtype=dtype, trainable=trainable)
        self._dtype = initializers.float_dtype(dtype, self._who())
        self.batch_shape = tuple(batch_shape)
        self.input_shape = self.output_shape = self.batch_shape
        self.built = True
        self.output = KerasTensor(self.batch_shape, self.dtype, self)
        self._nodes.append(self.output)

    def _forward(self, x, return_logits, training):
        return x, True

    def _backward(self, dy, cache):
        return dy

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "batch_shape": list(self.batch_shape)}


def Input(shape, batch_size=None, dtype=None, name=None) -> KerasTensor:  # noqa: N802 (Keras' name)
    """A symbolic model input of per-example ``shape`` (dims may be None); dtype floatx()."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"Input: shape must be a tuple of positive ints (or None), "
                         f"got {shape!r}") from None
    if not all(d is None or (is_int(d) and d >= 1) for d in dims):
        raise ValueError(f"Input: shape must be a tuple of positive ints (or None), got {shape!r}")
    if batch_size is not None and (not is_int(batch_size) or batch_size < 1):
        raise ValueError(f"Input: batch_size must be a positive int or None, got {batch_size!r}")
    batch = None if batch_size is None else int(batch_size)
    layer = InputLayer((batch, *(None if d is None else int(d) for d in dims)), dtype=dtype, name=name)
    return layer.output

"""``keras.utils``: one-hot encoding and the global random seed."""

from __future__ import annotations

import numpy

from ..initializers import set_random_seed


def to_categorical(y, num_classes: int | None = None, dtype="float32") -> numpy.ndarray:
    """One-hot rows (N, num_classes) from class ids of shape (N,) or (N, 1) (Keras' rule).

    num_classes defaults to max(y) + 1.
    """
    y = numpy.asarray(y)
    if y.dtype.kind == "f":
        if y.size and not numpy.all(y == numpy.round(y)):
            raise ValueError("to_categorical: y must hold integer class ids, got non-integer values")
    elif y.dtype.kind not in "iub":
        raise ValueError(f"to_categorical: y must hold integer class ids, got dtype {y.dtype}")
    shape = y.shape
    if len(shape) > 1 and shape[-1] == 1:
        shape = shape[:-1]
    ids = y.reshape(-1).astype(numpy.int64)
    if ids.size and ids.min() < 0:
        raise ValueError(f"to_categorical: class ids must be >= 0, got {int(ids.min())}")
    if num_classes is None:
        num_classes = int(ids.max()) + 1 if ids.size else 0
    elif ids.size and ids.max() >= num_classes:
        raise ValueError(f"to_categorical: class id {int(ids.max())} does not fit num_classes={num_classes}")
    out = numpy.zeros((ids.size, num_classes), dtype=dtype)
    out[numpy.arange(ids.size), ids] = 1
    return out.reshape(*shape, num_classes)


__all__ = ["set_random_seed", "to_categorical"]

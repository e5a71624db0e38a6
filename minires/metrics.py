"""Keras' stateful accuracy metrics, for use outside ``compile``/``fit``.

    m = Accuracy()
    m.update_state(y_true, y_pred)       # accumulate over batches
    m.result()                            # the fraction so far, a float
    m.reset_state()

- ``Accuracy``: how often ``y_pred == y_true``, element by element (Keras' exact-match metric:
  for class predictions, not probabilities).
- ``CategoricalAccuracy``: how often ``argmax(y_pred) == argmax(y_true)`` (one-hot targets).
- ``SparseCategoricalAccuracy``: how often ``argmax(y_pred) == y_true`` (class ids).

``Model.compile(metrics=["accuracy"])`` picks the right argmax comparison by itself; these
classes are for custom loops and for Keras code that imports them.
"""

from __future__ import annotations

import numpy

from .backend import to_numpy


class _MeanOfMatches:
    name = "accuracy"

    def __init__(self, name: str | None = None):
        self.name = name or self.name
        self.reset_state()

    def reset_state(self) -> None:
        self.matches = 0
        self.count = 0

    def _compare(self, y_true, y_pred) -> numpy.ndarray:
        raise NotImplementedError

    def update_state(self, y_true, y_pred) -> None:
        matches = numpy.asarray(self._compare(numpy.asarray(to_numpy(y_true)), numpy.asarray(to_numpy(y_pred))))
        self.matches += int(matches.sum())
        self.count += int(matches.size)

    def result(self) -> float:
        return self.matches / self.count if self.count else 0.0

    def __call__(self, y_true, y_pred) -> float:
        """Keras' stand-alone call: update, then the result so far."""
        self.update_state(y_true, y_pred)
        return self.result()


class Accuracy(_MeanOfMatches):
    name = "accuracy"

    def _compare(self, y_true, y_pred):
        if y_true.shape != y_pred.shape:
            raise ValueError(f"Accuracy: y_true and y_pred must have one shape, got {y_true.shape} "
                             f"and {y_pred.shape}")
        return y_true == y_pred


class CategoricalAccuracy(_MeanOfMatches):
    name = "categorical_accuracy"

    def _compare(self, y_true, y_pred):
        if y_true.shape != y_pred.shape or y_pred.ndim < 2:
            raise ValueError(f"CategoricalAccuracy: y_true (one-hot) and y_pred must have one shape "
                             f"(N, C), got {y_true.shape} and {y_pred.shape}")
        return y_true.argmax(axis=-1) == y_pred.argmax(axis=-1)


class SparseCategoricalAccuracy(_MeanOfMatches):
    name = "sparse_categorical_accuracy"

    def _compare(self, y_true, y_pred):
        ids = y_true.reshape(y_pred.shape[:-1]) if y_true.size == numpy.prod(y_pred.shape[:-1]) else None
        if ids is None or y_pred.ndim < 2:
            raise ValueError(f"SparseCategoricalAccuracy: y_true must hold one class id per row of "
                             f"y_pred, got shapes {y_true.shape} and {y_pred.shape}")
        return ids == y_pred.argmax(axis=-1)

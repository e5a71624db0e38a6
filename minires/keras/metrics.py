"""``keras.metrics``: the accuracy metrics (see ``minires.metrics``)."""

from ..metrics import Accuracy, CategoricalAccuracy, SparseCategoricalAccuracy

__all__ = ["Accuracy", "CategoricalAccuracy", "SparseCategoricalAccuracy"]

"""``keras.losses``: cross-entropies and mean squared error (see ``minires.losses``)."""

from ..losses import (CategoricalCrossentropy, Loss, MeanSquaredError, SparseCategoricalCrossentropy,
                      categorical_crossentropy, get, mean_squared_error, sparse_categorical_crossentropy)

__all__ = ["CategoricalCrossentropy", "Loss", "MeanSquaredError", "SparseCategoricalCrossentropy",
           "categorical_crossentropy", "get", "mean_squared_error", "sparse_categorical_crossentropy"]

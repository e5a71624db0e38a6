"""``keras.losses``: cross-entropies, binary cross-entropy and mean squared error (see ``minires.losses``)."""

from ..losses import (BinaryCrossentropy, CategoricalCrossentropy, Loss, MeanSquaredError,
                      SparseCategoricalCrossentropy, binary_crossentropy, categorical_crossentropy, get,
                      mean_squared_error, sparse_categorical_crossentropy)

__all__ = ["BinaryCrossentropy", "CategoricalCrossentropy", "Loss", "MeanSquaredError",
           "SparseCategoricalCrossentropy", "binary_crossentropy", "categorical_crossentropy", "get",
           "mean_squared_error", "sparse_categorical_crossentropy"]

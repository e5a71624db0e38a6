"""Keras' names for minires' pieces, so Keras code runs with its imports changed:

    import minires as tf
    from minires.keras.models import Model
    from minires.keras.layers import Input, Conv2D, MaxPooling2D, Flatten, Dense, Reshape
    from minires.keras.optimizers import Adam
    from minires.keras.losses import CategoricalCrossentropy
    from minires.keras.metrics import Accuracy

Only what minires implements is here; each submodule re-exports the real classes.
"""

from . import backend, datasets, initializers, layers, losses, metrics, models, optimizers, utils
from .layers import Input
from .models import Model, load_model

__all__ = ["Input", "Model", "backend", "datasets", "initializers", "layers", "load_model", "losses",
           "metrics", "models", "optimizers", "utils"]

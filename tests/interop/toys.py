"""Small models for the interop and whole-model tests: the seed's shape, and one that is not."""

from __future__ import annotations

import numpy as np

from minires import initializers
from minires.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D, Reshape, add
from minires.model import Input, Model
from minires.models import build_resnet


def with_random_biases(model: Model, seed: int = 1) -> Model:
    """Zero biases would hide a bias moved to the wrong place: give every weight values."""
    rng = np.random.default_rng(seed)
    model.set_weights([w if w.ndim > 1 else rng.uniform(-0.2, 0.2, w.shape).astype(w.dtype)
                       for w in model.get_weights()])
    return model


def tiny_resnet(dtype: str = "float64", seed: int = 0) -> Model:
    """The seed's architecture, shrunk: 8x8x3 input, 4 filters, 1 block, 8 units, 4 classes."""
    model = build_resnet(input_shape=(8, 8, 3), num_classes=4, filters=4, blocks=1, dense_units=8,
                         seed=seed, dtype=dtype)
    return with_random_biases(model)


def odd_model(dtype: str = "float64", seed: int = 0) -> Model:
    """Not the seed's: an even kernel with stride 2 and 'same' padding (the odd pixel),
    max pooling with 'same', a residual add, a flatten of a 3x2x4 map into a Dense (the
    flatten order), a reshape, and a softmax layer of its own."""
    with initializers.use_generator(np.random.default_rng(seed)):
        inputs = Input((9, 7, 3), dtype=dtype, name="image")
        x = Conv2D(4, (2, 3), strides=2, padding="same", activation="relu", name="even_same")(inputs)
        p = MaxPooling2D(3, strides=2, padding="same", name="pool_same")(x)
        y = Conv2D(4, 1, name="one_by_one")(p)
        s = Activation("relu", name="relu")(add([p, y], name="skip_add"))
        d = Dense(6, activation="relu", name="hidden")(Flatten(name="flatten")(s))
        r = Flatten(name="flatten2")(Reshape((2, 3), name="reshape")(d))
        out = Activation("softmax", name="probabilities")(Dense(5, name="logits")(r))
        model = Model(inputs, out, name="odd")
    return with_random_biases(model)

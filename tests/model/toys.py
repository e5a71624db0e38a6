"""Small models and data sets for the model tests: the seed's structure at toy size, and a
separable problem a few epochs can learn."""

import numpy as np

from minires import initializers
from minires.layers import Conv2D, Dense, Flatten
from minires.model import Input, Model
from minires.models import build_resnet


def tiny_resnet(seed=0, dtype="float64", classes=3):
    """The seed's structure at toy size: 8x8x3 input, 4 filters, 2 blocks, 3 classes."""
    return build_resnet((8, 8, 3), num_classes=classes, filters=4, blocks=2, dense_units=6,
                        seed=seed, dtype=dtype)


def blobs(n=96, seed=0, classes=3, side=4):
    """A separable toy problem: each class is a constant image of its own colour, plus noise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, n)
    centres = rng.standard_normal((classes, 3))
    x = centres[labels][:, None, None, :] + 0.3 * rng.standard_normal((n, side, side, 3))
    return x.astype(np.float32), labels


def small_classifier(seed=0, classes=3, side=4):
    with initializers.use_generator(np.random.default_rng(seed)):
        inputs = Input((side, side, 3))
        x = Conv2D(4, 3, padding="same", activation="relu")(inputs)
        x = Flatten()(x)
        outputs = Dense(classes, activation="softmax")(x)
        return Model(inputs, outputs)

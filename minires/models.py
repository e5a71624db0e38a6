"""The seed's model: a small ResNet for 32x32 colour images, written with minires' own layers.

    Input 32x32x3 -> Conv2D 64 3x3 same + ReLU -> MaxPool 2x2
    -> 3 x residual block -> Flatten -> Dense 128 + ReLU -> Dense 10 + softmax

A residual block (the seed's ``residual_block``)::

    main: Conv2D f 3x3 same + ReLU -> Conv2D f 3x3 same -> MaxPool 2x2
    skip: Conv2D f 1x1 same         -> MaxPool 2x2
    out = ReLU(main + skip)

The skip path's 1x1 convolution lets the block change the channel count; both paths halve
the spatial size, so they can be added. With the defaults the model has 270,026 parameters:

    stem conv 3*3*3*64 + 64                       =   1,792
    per block 2 * (3*3*64*64 + 64) + (64*64 + 64) =  78,016   (x 3 = 234,048)
    dense 2*2*64*128 + 128                        =  32,896
    output 128*10 + 10                            =   1,290

``filters``, ``blocks`` and ``dense_units`` shrink it for tests (e.g. an 8x8 input, 4 filters,
2 blocks).
"""

from __future__ import annotations

import numpy

from . import initializers
from .layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D, add
from .model import Input, Model


def residual_block(inputs, filters: int, block_index: int):
    """One residual block of the seed, its layers named ``block<i>_...``."""
    prefix = f"block{block_index + 1}"
    x = Conv2D(filters, (3, 3), padding="same", activation="relu", name=f"{prefix}_conv1")(inputs)
    x = Conv2D(filters, (3, 3), padding="same", name=f"{prefix}_conv2")(x)
    x = MaxPooling2D(pool_size=(2, 2), name=f"{prefix}_pool")(x)

    skip = Conv2D(filters, (1, 1), padding="same", name=f"{prefix}_skip_conv")(inputs)
    skip = MaxPooling2D(pool_size=(2, 2), name=f"{prefix}_skip_pool")(skip)

    x = add([x, skip], name=f"{prefix}_add")
    return Activation("relu", name=f"{prefix}_relu")(x)


def build_resnet(input_shape=(32, 32, 3), num_classes: int = 10, filters: int = 64, blocks: int = 3,
                 dense_units: int = 128, seed: int | None = None, dtype=None,
                 name: str = "resnet") -> Model:
    """The seed's ResNet (defaults) or a smaller one of the same structure.

    seed: draw the initial weights (and the model's shuffling generator) from
    ``numpy.random.default_rng(seed)`` instead of the global generator.
    dtype: "float32" or "float64" (default: ``floatx()``).
    """
    if seed is None:
        return _build(input_shape, num_classes, filters, blocks, dense_units, dtype, name)
    with initializers.use_generator(numpy.random.default_rng(seed)):
        return _build(input_shape, num_classes, filters, blocks, dense_units, dtype, name)


def _build(input_shape, num_classes, filters, blocks, dense_units, dtype, name):
    if not isinstance(blocks, int) or blocks < 0:
        raise ValueError(f"build_resnet: blocks must be an int >= 0, got {blocks!r}")
    inputs = Input(shape=input_shape, dtype=dtype, name="input")
    x = Conv2D(filters, (3, 3), activation="relu", padding="same", name="stem_conv")(inputs)
    x = MaxPooling2D(pool_size=(2, 2), name="stem_pool")(x)
    for i in range(blocks):
        x = residual_block(x, filters, i)
    x = Flatten(name="flatten")(x)
    x = Dense(dense_units, activation="relu", name="dense")(x)
    outputs = Dense(num_classes, activation="softmax", name="predictions")(x)
    return Model(inputs=inputs, outputs=outputs, name=name)

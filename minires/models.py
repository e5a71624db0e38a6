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
from .layers import (AbsoluteDifference, Activation, Add, Concatenate, Conv2D, Dense, Flatten,
                     InstanceNormalization, MaxPooling2D, UpSampling2D, add)
from .losses import BinaryCrossentropy
from .model import Input, Model
from .optim import Adam


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


# --- change detection ----------------------------------------------------------------------

def build_change_net(input_shape=(32, 32, 3), filters=16, blocks: int = 3, seed: int | None = 0,
                     dtype=None, pos_weight: float | None = 1.5, learning_rate: float = 3e-3,
                     normalize: bool = True, name: str = "change_net") -> Model:
    """FC-Siam-diff (Daudt, Le Saux and Boulch, 2018) with the seed's residual blocks.

    Two inputs, ``before`` and ``after`` (N, H, W, C), both scaled to [0, 1]; one output, the
    per-pixel probability of change (N, H, W, 1)::

        encoder (shared: the same layer objects called on both images)
            InstanceNormalization (with normalize=True)
            stem: Conv2D f0 3x3 same + ReLU                   -> e0 at H x W
            block i (the seed's residual block, f_i filters)  -> e_{i+1} at H/2^(i+1)
        differences d_i = |e_i(before) - e_i(after)| at every scale
        decoder, from the coarsest scale up:
            x = d_blocks
            x = UpSampling2D 2 -> Concatenate [x, d_i] -> Conv2D f_i 3x3 same + ReLU
            Conv2D 1 1x1 + sigmoid

    Each difference is taken after a ReLU: directly after a shared convolution its bias would
    cancel and only the linear part of the kernel would be compared. H and W must be
    divisible by ``2 ** blocks`` (None dims are allowed: a model for any such size).

    normalize: bring each image's channels to mean 0 and variance 1 first, so that a global
    gain and offset per channel (brightness, contrast, colour balance), nuisance that is
    not change, cancels before the images are compared. The defaults are the recipe of
    ``minires changes train`` (docs/changes.md).

    filters: an int (every scale) or one per scale (``blocks + 1`` values, stem first).
    pos_weight: the weight of the rare changed pixels in the binary cross-entropy (None: 1).
    The model comes compiled with Adam(learning_rate); seed and dtype as in ``build_resnet``.
    """
    options = (input_shape, filters, blocks, dtype, pos_weight, learning_rate, normalize, name)
    if seed is None:
        return _build_change(*options)
    with initializers.use_generator(numpy.random.default_rng(seed)):
        return _build_change(*options)


def change_net_pooling(model: Model) -> int:
    """The factor H and W of a ``build_change_net`` model's inputs must be divisible by."""
    pools = sum(1 for layer in model.layers if layer.name.endswith("_pool")
                and not layer.name.endswith("_skip_pool"))
    return 2 ** pools


def _change_filters(filters, blocks):
    if not isinstance(blocks, int) or isinstance(blocks, bool) or blocks < 1:
        raise ValueError(f"build_change_net: blocks must be an int >= 1, got {blocks!r}")
    sizes = [filters] * (blocks + 1) if isinstance(filters, int) else list(filters)
    if len(sizes) != blocks + 1 or not all(isinstance(f, int) and not isinstance(f, bool) and f >= 1
                                           for f in sizes):
        raise ValueError(f"build_change_net: filters must be a positive int or {blocks + 1} of "
                         f"them (one per scale), got {filters!r}")
    return sizes


def _build_change(input_shape, filters, blocks, dtype, pos_weight, learning_rate, normalize, name):
    sizes = _change_filters(filters, blocks)
    shape = tuple(input_shape)
    if len(shape) != 3:
        raise ValueError(f"build_change_net: input_shape must be (H, W, C), got {input_shape!r}")
    factor = 2 ** blocks
    for axis, size in zip(("H", "W"), shape[:2]):
        if size is not None and size % factor:
            raise ValueError(f"build_change_net: input_shape {axis}={size} must be divisible by "
                             f"2**blocks = {factor}")
    before = Input(shape=shape, dtype=dtype, name="before")
    after = Input(shape=shape, dtype=dtype, name="after")

    # The shared encoder: one set of layer objects, each called on both branches.
    if normalize:
        norm = InstanceNormalization(name="normalize")
        before_x, after_x = norm(before), norm(after)
    else:
        before_x, after_x = before, after
    stem = Conv2D(sizes[0], (3, 3), padding="same", activation="relu", name="stem_conv")
    stages = [stem]
    for i in range(blocks):
        stages.append(_shared_residual_block(sizes[i + 1], i))
    differences = []
    x_before, x_after = before_x, after_x
    for k, stage in enumerate(stages):
        x_before, x_after = stage(x_before), stage(x_after)
        differences.append(AbsoluteDifference(name=f"diff{k}")([x_before, x_after]))

    x = differences[-1]
    for k in range(blocks - 1, -1, -1):
        x = UpSampling2D(2, name=f"up{k}")(x)
        x = Concatenate(name=f"skip{k}")([x, differences[k]])
        x = Conv2D(sizes[k], (3, 3), padding="same", activation="relu", name=f"decoder{k}_conv")(x)
    mask = Conv2D(1, (1, 1), activation="sigmoid", name="change")(x)
    model = Model(inputs=[before, after], outputs=mask, name=name)
    model.compile(optimizer=Adam(learning_rate=learning_rate),
                  loss=BinaryCrossentropy(pos_weight=pos_weight))
    return model


def _shared_residual_block(filters: int, block_index: int):
    """The seed's residual block as a function of one tensor whose layers are made once, so
    that calling it on both branches shares its weights."""
    prefix = f"block{block_index + 1}"
    conv1 = Conv2D(filters, (3, 3), padding="same", activation="relu", name=f"{prefix}_conv1")
    conv2 = Conv2D(filters, (3, 3), padding="same", name=f"{prefix}_conv2")
    pool = MaxPooling2D(pool_size=(2, 2), name=f"{prefix}_pool")
    skip_conv = Conv2D(filters, (1, 1), padding="same", name=f"{prefix}_skip_conv")
    skip_pool = MaxPooling2D(pool_size=(2, 2), name=f"{prefix}_skip_pool")
    join = Add(name=f"{prefix}_add")
    relu = Activation("relu", name=f"{prefix}_relu")

    def block(inputs):
        main = pool(conv2(conv1(inputs)))
        skip = skip_pool(skip_conv(inputs))
        return relu(join([main, skip]))

    return block

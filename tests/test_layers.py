"""Layers: lazy building, output shapes, forward/backward against the ops and central
differences, parameters, and argument errors."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from minires import ops
from minires.layers import Activation, Add, Conv2D, Dense, Flatten, MaxPooling2D, Reshape
from minires.model import Input
from tests.gradcheck import check_gradients


def _check_layer_gradients(layer, inputs, seed=0):
    """Input and parameter gradients of ``layer`` vs central differences, float64."""
    rng = np.random.default_rng(seed)
    multi = isinstance(inputs, list)
    out = layer.forward(inputs, training=True)
    dy = rng.standard_normal(out.shape)
    dx = layer.backward(dy)
    names = list(layer.params)
    arrays = (inputs if multi else [inputs]) + [layer.params[n] for n in names]
    grads = (dx if multi else [dx]) + [layer.grads[n] for n in names]
    k = len(arrays) - len(names)

    def forward(*values):
        saved = {n: layer.params[n] for n in names}
        layer.params.update(zip(names, values[k:]))
        try:
            xs = list(values[:k]) if multi else values[0]
            return layer.forward(xs)
        finally:
            layer.params.update(saved)

    check_gradients(forward, arrays, grads, dy, rng)


# --- shapes ---------------------------------------------------------------------------------

@given(h=st.integers(1, 9), w=st.integers(1, 9), kh=st.integers(1, 4), kw=st.integers(1, 4),
       sh=st.integers(1, 3), sw=st.integers(1, 3), padding=st.sampled_from(["same", "valid"]))
def test_conv_and_pool_output_shapes_match_the_ops(h, w, kh, kw, sh, sw, padding):
    x = np.zeros((1, h, w, 2))
    fits = padding == "same" or (kh <= h and kw <= w)
    for layer in (Conv2D(3, (kh, kw), strides=(sh, sw), padding=padding),
                  MaxPooling2D((kh, kw), strides=(sh, sw), padding=padding)):
        if not fits:
            with pytest.raises(ValueError, match=layer.name):
                layer.compute_output_shape((None, h, w, 2))
            continue
        expected = layer.compute_output_shape((None, h, w, 2))
        assert (None, *layer(x).shape[1:]) == expected


def test_symbolic_shapes_and_dtypes():
    inputs = Input((6, 6, 3), dtype="float64")
    x = Conv2D(5, 3, padding="same", activation="relu")(inputs)
    assert x.shape == (None, 6, 6, 5) and x.dtype == "float64"
    assert x.layer.params["kernel"].dtype == np.float64
    x = Reshape((-1, 5))(MaxPooling2D()(x))
    assert x.shape == (None, 9, 5)
    assert Flatten()(x).shape == (None, 45)
    with pytest.raises(ValueError, match="dtype float32 differs from its input's float64"):
        Dense(2, dtype="float32")(Flatten()(x))


def test_lazy_build_on_first_eager_call():
    layer = Dense(4)
    assert not layer.built and layer.params == {}
    out = layer(np.ones((2, 3), np.float32))
    assert layer.built and out.shape == (2, 4) and out.dtype == np.float32
    assert layer.params["kernel"].shape == (3, 4) and layer.count_params() == 16
    with pytest.raises(ValueError, match=r"was built for inputs of shape \(None, 3\), got \(None, 5\)"):
        layer(np.ones((2, 5), np.float32))


# --- forward and backward -------------------------------------------------------------------

@pytest.mark.parametrize("activation", [None, "relu", "softmax"])
@pytest.mark.parametrize("padding, strides", [("same", 1), ("valid", (2, 1)), ("same", 2)])
def test_conv2d_layer(activation, padding, strides):
    rng = np.random.default_rng(1)
    layer = Conv2D(3, (2, 3), strides=strides, padding=padding, activation=activation)
    x = rng.standard_normal((2, 5, 4, 2))
    layer(x)
    layer.params["bias"][...] = rng.standard_normal(3)
    z, _ = ops.conv2d_forward(x, layer.params["kernel"], layer.params["bias"], strides, padding)
    expected = {None: z, "relu": np.maximum(z, 0), "softmax": ops.softmax(z)}[activation]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-13, atol=1e-15)
    _check_layer_gradients(layer, x)


@pytest.mark.parametrize("activation", [None, "relu", "softmax"])
def test_dense_layer(activation):
    rng = np.random.default_rng(2)
    layer = Dense(4, activation=activation, bias_initializer="random_normal")
    x = rng.standard_normal((3, 5))
    layer(x)
    z = x @ layer.params["kernel"] + layer.params["bias"]
    expected = {None: z, "relu": np.maximum(z, 0), "softmax": ops.softmax(z)}[activation]
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-13)
    _check_layer_gradients(layer, x)


def test_layers_without_bias():
    rng = np.random.default_rng(3)
    for layer, x in ((Dense(2, use_bias=False), rng.standard_normal((2, 3))),
                     (Conv2D(2, 1, use_bias=False), rng.standard_normal((1, 2, 2, 3)))):
        layer(x)
        assert list(layer.params) == ["kernel"]
        _check_layer_gradients(layer, x)


def test_parameterless_layers():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 4, 6, 3))
    _check_layer_gradients(MaxPooling2D((2, 3)), x)
    _check_layer_gradients(MaxPooling2D(3, strides=1, padding="same"), x)
    _check_layer_gradients(Flatten(), x)
    _check_layer_gradients(Reshape((8, -1)), x)
    _check_layer_gradients(Activation("relu"), x)
    _check_layer_gradients(Activation("softmax"), x)
    _check_layer_gradients(Activation("linear"), x)
    _check_layer_gradients(Add(), [x, rng.standard_normal(x.shape), rng.standard_normal(x.shape)])


def test_return_logits_stops_before_the_softmax():
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 3))
    layer = Dense(4, activation="softmax")
    probs = layer(x)
    logits = layer.forward(x, return_logits=True)
    np.testing.assert_allclose(ops.softmax(logits), probs, rtol=1e-14)
    assert Activation("softmax").forward(x, return_logits=True) is x
    with pytest.raises(ValueError, match="return_logits=True needs a layer that ends in softmax"):
        Dense(4, activation="relu").forward(x, return_logits=True)


def test_backward_needs_a_training_forward():
    layer = Dense(2)
    x = np.ones((1, 3))
    layer.forward(x)
    with pytest.raises(RuntimeError, match="forward\\(..., training=True\\)"):
        layer.backward(np.ones((1, 2)))


# --- parameters -----------------------------------------------------------------------------

def test_glorot_uniform_kernels_and_zero_biases():
    layer = Conv2D(64, 3)
    layer.build((None, 8, 8, 32))
    limit = math.sqrt(6 / (3 * 3 * 32 + 3 * 3 * 64))
    kernel = layer.params["kernel"]
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.95 * limit
    assert kernel.std() == pytest.approx(limit / math.sqrt(3), rel=0.05)
    assert np.all(layer.params["bias"] == 0)


def test_layer_get_and_set_weights():
    layer = Dense(2)
    layer.build((None, 3))
    kernel, bias = layer.get_weights()
    assert kernel.shape == (3, 2) and bias.shape == (2,)
    kernel[...] = 7        # a copy: the layer is untouched
    assert not np.any(layer.params["kernel"] == 7)
    layer.set_weights([np.ones((3, 2)), np.arange(2)])
    assert layer.params["bias"].dtype == np.float32 and list(layer.params["bias"]) == [0, 1]
    with pytest.raises(ValueError, match=r"expected 2 arrays \(kernel, bias\), got 1"):
        layer.set_weights([np.ones((3, 2))])
    with pytest.raises(ValueError, match=r"kernel: expected shape \(3, 2\), got \(2, 3\)"):
        layer.set_weights([np.ones((2, 3)), np.ones(2)])


def test_config_round_trip():
    for layer in (Conv2D(3, (1, 2), strides=2, padding="same", activation="relu", name="c"),
                  Dense(5, use_bias=False, name="d"), MaxPooling2D((2, 3), name="p"),
                  Reshape((2, -1), name="r"), Activation("softmax", name="a"), Flatten(name="f")):
        again = type(layer).from_config(layer.get_config())
        assert again.get_config() == layer.get_config()


# --- argument errors ------------------------------------------------------------------------

@pytest.mark.parametrize("factory, message", [
    (lambda: Conv2D(0, 3, name="c1"), "Conv2D 'c1': filters must be a positive int, got 0"),
    (lambda: Conv2D(4, (3, 0), name="c2"), "Conv2D 'c2': kernel_size must be a positive int or a pair"),
    (lambda: Conv2D(4, 3, strides=-1, name="c3"), "Conv2D 'c3': strides"),
    (lambda: Conv2D(4, 3, padding="full", name="c4"), "Conv2D 'c4': padding must be 'valid' or 'same'"),
    (lambda: Conv2D(4, 3, activation="tanh", name="c5"), "Conv2D 'c5': activation must be one of"),
    (lambda: Conv2D(4, 3, kernel_initializer="nope", name="c6"), "Conv2D 'c6': kernel_initializer"),
    (lambda: Conv2D(4, 3, data_format="channels_first", name="c7"), "Conv2D 'c7': data_format"),
    (lambda: Dense(2.5, name="d1"), "Dense 'd1': units must be a positive int"),
    (lambda: Dense(2, use_bias="no", name="d2"), "Dense 'd2': use_bias"),
    (lambda: MaxPooling2D(pool_size=(2, 2, 2), name="p1"), "MaxPooling2D 'p1': pool_size"),
    (lambda: Reshape((2, -1, -1), name="r1"), "Reshape 'r1': target_shape"),
    (lambda: Activation("gelu", name="a1"), "Activation 'a1': activation must be one of"),
    (lambda: Dense(2, dtype="int32", name="d3"), "Dense 'd3': dtype must be 'float32' or 'float64'"),
    (lambda: Dense(2, name="a/b"), "name must be a non-empty string without '/'"),
])
def test_argument_errors_name_the_layer_and_the_argument(factory, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        factory()


def test_input_shape_errors_name_the_layer():
    flat = Input((4,))
    image = Input((4, 4, 3))
    with pytest.raises(ValueError, match=r"Conv2D 'conv_x': input must be 4-D"):
        Conv2D(2, 3, name="conv_x")(flat)
    with pytest.raises(ValueError, match=r"Dense 'dense_x': input must be 2-D .* add a Flatten"):
        Dense(2, name="dense_x")(image)
    with pytest.raises(ValueError, match=r"Add 'add_x': inputs must all have the same shape"):
        Add(name="add_x")([image, Conv2D(2, 1)(image)])
    with pytest.raises(ValueError, match=r"Reshape 'r_x': cannot reshape"):
        Reshape((5, 5), name="r_x")(image)
    with pytest.raises(ValueError, match=r"MaxPooling2D 'p_x': pool_size \(5, 5\) is larger"):
        MaxPooling2D(5, name="p_x")(image)
    with pytest.raises(ValueError, match="Input: shape"):
        Input((4, 0))


# --- the layers of a Siamese change detector --------------------------------------------------

def test_siamese_layers_gradients_and_shapes():
    from minires.layers import AbsoluteDifference, Concatenate, Subtract, UpSampling2D

    rng = np.random.default_rng(8)
    x, other = rng.standard_normal((2, 3, 5, 2)), rng.standard_normal((2, 3, 5, 2))
    _check_layer_gradients(UpSampling2D((2, 3)), x)
    _check_layer_gradients(Concatenate(), [x, rng.standard_normal((2, 3, 5, 4)), other])
    _check_layer_gradients(Concatenate(axis=1), [x, rng.standard_normal((2, 1, 5, 2))])
    _check_layer_gradients(Subtract(), [x, other])
    _check_layer_gradients(AbsoluteDifference(), [x, other])
    _check_layer_gradients(Activation("sigmoid"), x)
    _check_layer_gradients(Conv2D(2, 1, activation="sigmoid", bias_initializer="random_normal"), x)
    image, wide = Input((3, None, 2)), Input((3, None, 4))
    assert UpSampling2D(2)(image).shape == (None, 6, None, 2)
    assert Concatenate()([image, wide]).shape == (None, 3, None, 6)
    assert Subtract()([image, image]).shape == AbsoluteDifference()([image, image]).shape == (None, 3, None, 2)
    np.testing.assert_array_equal(AbsoluteDifference()([x, other]), np.abs(x - other))
    np.testing.assert_array_equal(Subtract()([x, other]), x - other)


def test_sigmoid_layers_can_stop_at_their_logits():
    x = np.random.default_rng(9).standard_normal((2, 3))
    layer = Dense(4, activation="sigmoid")
    probs = layer(x)
    np.testing.assert_allclose(ops.sigmoid_forward(layer.forward(x, return_logits=True))[0], probs, rtol=1e-14)


def test_siamese_layers_config_round_trip_and_errors():
    from minires.layers import AbsoluteDifference, Concatenate, Subtract, UpSampling2D

    for layer in (UpSampling2D((2, 3), name="u"), Concatenate(axis=2, name="c"), Subtract(name="s"),
                  AbsoluteDifference(name="a")):
        assert type(layer).from_config(layer.get_config()).get_config() == layer.get_config()
    image = Input((4, 4, 3))
    with pytest.raises(ValueError, match=r"UpSampling2D 'u1': size must be a positive int or a pair"):
        UpSampling2D(0, name="u1")
    with pytest.raises(ValueError, match=r"UpSampling2D 'u2': interpolation must be 'nearest'"):
        UpSampling2D(2, interpolation="bilinear", name="u2")
    with pytest.raises(ValueError, match=r"Concatenate 'c1': inputs must match on every axis but -1"):
        Concatenate(name="c1")([image, Input((4, 5, 3))])
    with pytest.raises(ValueError, match=r"Concatenate 'c2': axis 0 is not a non-batch axis"):
        Concatenate(axis=0, name="c2")([image, image])
    with pytest.raises(ValueError, match=r"Subtract 's1': needs a list of exactly 2 inputs"):
        Subtract(name="s1")([image, image, image])
    with pytest.raises(ValueError, match=r"AbsoluteDifference 'a1': inputs must have the same shape"):
        AbsoluteDifference(name="a1")([image, Input((4, 4, 2))])

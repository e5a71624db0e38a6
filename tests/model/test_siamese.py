"""Models with several inputs and shared layers (a Siamese change detector): gradients by
central differences in float64, the training API on lists of arrays, the fused sigmoid
binary cross-entropy, and a save/load round trip."""

import numpy as np
import pytest

import minires.serialization as ser
from minires import initializers
from minires.layers import AbsoluteDifference, Concatenate, Conv2D, Subtract, UpSampling2D
from minires.losses import BinaryCrossentropy
from minires.model import Input, Model
from tests.model.gradients import check_model_gradients


def siamese(seed=0, dtype="float64", pos_weight=None, decoder=False):
    """before, after -> shared Conv2D on each -> |difference| -> 1x1 Conv2D (sigmoid): a
    change logit per pixel. ``decoder`` adds a strided shared conv, UpSampling2D and a
    Concatenate skip, FC-Siam-diff's shape in miniature."""
    initializers.set_random_seed(seed)
    before = Input((5, 6, 2), dtype=dtype, name="before")
    after = Input((5, 6, 2), dtype=dtype, name="after")
    encoder = Conv2D(3, 3, padding="same", activation="relu", name="encoder")
    features = AbsoluteDifference(name="difference")([encoder(before), encoder(after)])
    if decoder:
        down = Conv2D(2, 2, strides=2, padding="same", activation="relu", name="down")
        coarse = AbsoluteDifference(name="coarse_difference")([down(encoder(before)), down(encoder(after))])
        up = UpSampling2D(2, name="up")(coarse)
        cropped = Conv2D(2, (2, 1), padding="valid", name="crop")(up)          # 6x6 -> 5x6
        features = Concatenate(name="skip")([features, cropped])
    mask = Conv2D(1, 1, activation="sigmoid", name="mask")(features)
    model = Model([before, after], mask, name="siamese")
    model.compile(optimizer="adam", loss=BinaryCrossentropy(pos_weight=pos_weight))
    return model


def _pairs(n=2, seed=1, dtype=np.float64):
    rng = np.random.default_rng(seed)
    before = rng.standard_normal((n, 5, 6, 2)).astype(dtype)
    after = before + rng.standard_normal((n, 5, 6, 2)).astype(dtype) * 0.8
    mask = (rng.random((n, 5, 6, 1)) < 0.3).astype(dtype)
    return [before, after], mask


@pytest.mark.parametrize("pos_weight", [None, 3.0])
@pytest.mark.parametrize("decoder", [False, True])
def test_siamese_gradients_match_central_differences(pos_weight, decoder):
    """Every element of every parameter (the shared encoder's gradient summed over both
    branches) and of both inputs, float64."""
    model = siamese(pos_weight=pos_weight, decoder=decoder)
    assert model._fused
    x, y = _pairs()
    check_model_gradients(model, x, y)


def test_shared_layer_gradient_is_the_sum_over_its_calls():
    """The shared encoder's kernel gradient equals that of two unshared copies, added."""
    model = siamese(seed=2)
    x, y = _pairs(seed=3)
    _, grads, _ = model.loss_and_gradients(x, y)
    shared = dict(zip(model.weight_names(), grads))["encoder/kernel"]

    initializers.set_random_seed(0)
    before, after = Input((5, 6, 2), dtype="float64"), Input((5, 6, 2), dtype="float64")
    first = Conv2D(3, 3, padding="same", activation="relu")
    second = Conv2D(3, 3, padding="same", activation="relu")
    mask = Conv2D(1, 1, activation="sigmoid")(AbsoluteDifference()([first(before), second(after)]))
    copies = Model([before, after], mask)
    copies.compile(optimizer="sgd", loss="binary_crossentropy")
    weights = model.get_weights()
    copies.set_weights([weights[0], weights[1], weights[0], weights[1], *weights[2:]])
    _, copy_grads, _ = copies.loss_and_gradients(x, y)
    np.testing.assert_allclose(shared, copy_grads[0] + copy_grads[2], rtol=1e-13, atol=1e-15)


def test_training_api_takes_lists_of_arrays():
    model = siamese(dtype="float32")
    x, y = _pairs(n=6, dtype=np.float32)
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, batch_size=4, epochs=3, verbose=0, seed=0, validation_data=(x, y))
    assert set(history.history) == {"loss", "val_loss"}
    assert model.evaluate(x, y, verbose=0) < before
    assert np.isfinite(model.train_on_batch(x, y))
    probs = model.predict(x, batch_size=4)
    assert probs.shape == (6, 5, 6, 1) and probs.dtype == np.float32
    assert np.all((probs > 0) & (probs < 1))
    np.testing.assert_allclose(model(x), probs, rtol=1e-6)
    model.fit(x, y, batch_size=4, epochs=1, verbose=0, validation_split=0.5)


def test_several_inputs_errors_name_the_input():
    model = siamese()
    x, y = _pairs()
    with pytest.raises(ValueError, match=r"x must be a list of 2 arrays, one per input \(before, after\)"):
        model.predict(x[0])
    with pytest.raises(ValueError, match=r"x\[1\] must have shape \(N, 5, 6, 2\), got \(2, 5, 5, 2\)"):
        model.predict([x[0], x[1][:, :, :5]])
    with pytest.raises(ValueError, match=r"one number of examples, got \[2, 1\]"):
        model.predict([x[0], x[1][:1]])
    with pytest.raises(ValueError, match=r"targets in \[0, 1\]"):
        model.evaluate(x, y * 2, verbose=0)


def test_binary_crossentropy_from_probabilities_needs_a_sigmoid_output():
    before, after = Input((4,)), Input((4,))
    out = Subtract()([before, after])
    with pytest.raises(ValueError, match="needs an output layer ending in sigmoid"):
        Model([before, after], out).compile(optimizer="sgd", loss="binary_crossentropy")


def test_save_and_load_round_trip_of_a_siamese_model(tmp_path):
    model = siamese(dtype="float32", pos_weight=[2.5], decoder=True)
    x, y = _pairs(n=4, dtype=np.float32)
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, seed=0)
    path = tmp_path / "siamese.npz"
    model.save(path)
    loaded = ser.load_model(path)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    assert [t.name for t in loaded.inputs] == ["before", "after"]
    # The same layers and calls; a rebuilt layer numbers its calls in the order they are replayed.
    assert loaded.get_config()["layers"] == model.get_config()["layers"]
    assert len(loaded.get_config()["nodes"]) == len(model.get_config()["nodes"])
    loaded.save(tmp_path / "again.npz")
    assert ser.load_model(tmp_path / "again.npz").get_config() == loaded.get_config()
    assert loaded.loss.get_config() == {"from_logits": False, "pos_weight": [2.5]}
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    # Training goes on identically from the saved optimizer state.
    model.fit(x, y, batch_size=2, epochs=1, verbose=0, seed=1)
    loaded.fit(x, y, batch_size=2, epochs=1, verbose=0, seed=1)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)

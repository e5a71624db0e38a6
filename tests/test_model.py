"""Model: graph order, whole-model gradients (central differences and PyTorch), and the
Keras-style training API (compile, fit, evaluate, predict, weights)."""

import io

import numpy as np
import pytest

from minires import initializers
from minires.keras.utils import to_categorical
from minires.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D, add
from minires.model import Callback, Input, InputLayer, Model
from minires.models import build_resnet
from minires.optim import SGD, Adam


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


# --- graph ----------------------------------------------------------------------------------

def test_layer_order_is_keras_order():
    model = tiny_resnet()
    names = [layer.name for layer in model.layers]
    block = ["conv1", "conv2", "skip_conv", "pool", "skip_pool", "add", "relu"]
    expected = (["input", "stem_conv", "stem_pool"] + [f"block1_{n}" for n in block]
                + [f"block2_{n}" for n in block] + ["flatten", "dense", "predictions"])
    assert names == expected
    assert isinstance(model.layers[0], InputLayer)


def test_disconnected_graph_and_reused_layer_are_refused():
    a, b = Input((4,)), Input((4,))
    out = Dense(2)(add([a, b]))
    with pytest.raises(ValueError, match="graph disconnected"):
        Model(a, out)
    dense = Dense(3)
    dense(a)
    with pytest.raises(ValueError, match="used once"):
        dense(b)
    with pytest.raises(ValueError, match="one input and one output"):
        Model([a, b], out)


def test_eager_call_matches_predict():
    model = tiny_resnet()
    x = np.random.default_rng(0).standard_normal((5, 8, 8, 3))
    np.testing.assert_array_equal(model(x), model.predict(x, batch_size=2))
    assert model.predict(x).shape == (5, 3)


# --- gradients of the whole model -----------------------------------------------------------

def _numeric_gradient(loss, array, h=1e-5):
    grad = np.zeros_like(array)
    for idx in np.ndindex(array.shape):
        old = array[idx]
        array[idx] = old + h
        plus = loss()
        array[idx] = old - h
        minus = loss()
        array[idx] = old
        grad[idx] = (plus - minus) / (2 * h)
    return grad


def _relative(a, b):
    return np.linalg.norm(a - b) / max(np.linalg.norm(a), np.linalg.norm(b), 1e-300)


@pytest.mark.parametrize("loss", ["categorical_crossentropy", "sparse_categorical_crossentropy"])
def test_whole_model_gradients_match_central_differences(loss):
    """Fused softmax-CE loss of the seed's structure vs central differences, every element of
    every parameter and of the input, float64."""
    model = tiny_resnet(seed=0)
    model.compile(optimizer="sgd", loss=loss)
    assert model._fused
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 8, 8, 3))
    ids = np.array([0, 2])
    y = to_categorical(ids, 3).astype(np.float64) if loss.startswith("categorical") else ids
    value, grads, dx = model.loss_and_gradients(x, y)

    def current_loss():
        return model.evaluate(x, y, batch_size=2, verbose=0)

    assert current_loss() == pytest.approx(value, rel=1e-12)
    for name, param, grad in zip(model.weight_names(), model.weights, grads):
        assert np.any(grad != 0), f"{name}: zero gradient, the check would prove nothing"
        err = _relative(grad, _numeric_gradient(current_loss, param))
        assert err <= 1e-6, f"{name}: relative error {err:.2e}"
    err = _relative(dx, _numeric_gradient(current_loss, x))
    assert err <= 1e-6, f"input: relative error {err:.2e}"


def test_backward_without_input_grad_gives_the_same_parameter_gradients(on_backend):
    """Training's backward pass skips the first layer's input gradient and nothing else."""
    model = tiny_resnet(seed=3)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    x = on_backend.put(np.random.default_rng(2).standard_normal((3, 8, 8, 3)))
    dout = on_backend.put(np.random.default_rng(4).standard_normal((3, 3)))
    model.forward(x, training=True, return_logits=True)
    assert model.backward(dout) is not None
    full = [on_backend.get(layer.grads[name]) for layer in model.layers for name in layer.params]
    model.forward(x, training=True, return_logits=True)
    assert model.backward(dout, input_grad=False) is None
    skipped = [on_backend.get(layer.grads[name]) for layer in model.layers for name in layer.params]
    for a, b in zip(full, skipped):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("case", ["mse_on_softmax", "logits", "probabilities"])
def test_unfused_losses_match_central_differences(case):
    """Losses that do not fuse: MSE through a softmax, from_logits on a linear output, and
    cross-entropy on a probability output that is not a softmax (Keras' clipped form)."""
    from minires.losses import CategoricalCrossentropy, MeanSquaredError

    rng = np.random.default_rng(2)
    initializers.set_random_seed(3)
    inputs = Input((3, 3, 2), dtype="float64")
    h = Flatten()(Conv2D(3, 2, activation="relu")(inputs))
    if case == "mse_on_softmax":
        outputs, loss = Dense(4, activation="softmax")(h), MeanSquaredError()
    elif case == "logits":
        outputs, loss = Dense(4)(h), CategoricalCrossentropy(from_logits=True)
    else:  # a softmax as separate layers the fusion does not see through: relu then renormalise
        outputs, loss = Activation("relu")(Dense(4)(h)), CategoricalCrossentropy()
    model = Model(inputs, outputs)
    model.compile(optimizer="sgd", loss=loss)
    assert not model._fused
    x = rng.standard_normal((3, 3, 3, 2))
    if case == "probabilities":
        for w in model.weights:    # keep every output positive so the clip stays inactive
            w[...] = np.abs(w) + 0.1
        x = np.abs(x)
    y = to_categorical([0, 3, 1], 4).astype(np.float64)
    value, grads, dx = model.loss_and_gradients(x, y)

    def current_loss():
        return model.evaluate(x, y, batch_size=3, verbose=0)

    for name, param, grad in zip(model.weight_names(), model.weights, grads):
        assert _relative(grad, _numeric_gradient(current_loss, param)) <= 1e-6, name
    assert _relative(dx, _numeric_gradient(current_loss, x)) <= 1e-6


@pytest.mark.torch
def test_whole_model_matches_pytorch():
    """Loss, probabilities and every gradient of the tiny ResNet agree with PyTorch autograd
    (weights moved HWIO -> OIHW, (in, out) -> (out, in); Keras 'same' as explicit F.pad)."""
    torch = pytest.importorskip("torch")
    from tests.torch_ops import keras_pads

    F = torch.nn.functional
    model = tiny_resnet(seed=4)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8, 8, 3))
    labels = np.array([2, 0, 1])
    value, grads, dx = model.loss_and_gradients(x, labels)

    params = {name: torch.tensor(w, requires_grad=True)
              for name, w in zip(model.weight_names(), model.get_weights())}
    xt = torch.tensor(x, requires_grad=True)

    def conv(t, layer):
        kernel = params[f"{layer}/kernel"]
        kh, kw = kernel.shape[:2]
        (top, bottom), (left, right) = keras_pads("same", t.shape[2:], (kh, kw), (1, 1))
        t = F.pad(t, (left, right, top, bottom))
        return F.conv2d(t, kernel.permute(3, 2, 0, 1), params[f"{layer}/bias"])

    h = xt.permute(0, 3, 1, 2)                               # NHWC -> NCHW
    h = F.max_pool2d(F.relu(conv(h, "stem_conv")), 2)
    for b in (1, 2):
        main = F.max_pool2d(conv(F.relu(conv(h, f"block{b}_conv1")), f"block{b}_conv2"), 2)
        skip = F.max_pool2d(conv(h, f"block{b}_skip_conv"), 2)
        h = F.relu(main + skip)
    h = torch.flatten(h.permute(0, 2, 3, 1), 1)              # flatten in Keras' (h, w, c) order
    h = F.relu(h @ params["dense/kernel"] + params["dense/bias"])
    logits = h @ params["predictions/kernel"] + params["predictions/bias"]
    loss = F.cross_entropy(logits, torch.tensor(labels))
    loss.backward()

    def rel(a, b):
        return np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300)

    assert abs(value - loss.item()) <= 1e-10 * abs(loss.item())
    assert rel(model.predict(x), torch.softmax(logits, 1).detach().numpy()) <= 1e-10
    for name, grad in zip(model.weight_names(), grads):
        assert rel(grad, params[name].grad.numpy()) <= 1e-10, name
    assert rel(dx, xt.grad.numpy()) <= 1e-10


# --- compile and fit ------------------------------------------------------------------------

def test_compile_validates_and_detects_fusion():
    model = tiny_resnet()
    with pytest.raises(ValueError, match="optimizer is required"):
        model.compile(loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="unknown optimizer 'rmsprop'"):
        model.compile(optimizer="rmsprop", loss="categorical_crossentropy")
    with pytest.raises(ValueError, match="metrics"):
        model.compile(optimizer="adam", loss="mse", metrics=["auc"])
    with pytest.raises(RuntimeError, match="compile the model first"):
        model.fit(np.zeros((2, 8, 8, 3)), np.zeros((2, 3)))
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    assert model._fused and isinstance(model.optimizer, Adam)
    model.compile(optimizer=SGD(0.1), loss="mse")
    assert not model._fused


def test_fit_reduces_loss_and_reports_keras_history():
    x, labels = blobs()
    y = to_categorical(labels, 3)
    model = small_classifier()
    model.compile(optimizer=Adam(0.01), loss="categorical_crossentropy", metrics=["accuracy"])
    before = model.evaluate(x, y, verbose=0)
    history = model.fit(x, y, batch_size=16, epochs=8, validation_split=0.25, verbose=0, seed=0)
    after = model.evaluate(x, y, verbose=0)
    assert set(history.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert history.epoch == list(range(8))
    assert all(len(v) == 8 for v in history.history.values())
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert after[0] < 0.5 * before[0] and after[1] > 0.9
    assert history.params["samples"] == 72          # the last 25% held out


def test_validation_split_takes_the_last_examples_before_shuffling():
    x, labels = blobs(n=40)
    model = small_classifier()
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=1, validation_split=0.25, verbose=0, seed=0)
    # The validation metrics of the epoch are those of the last 10 examples after training.
    loss, acc = model.evaluate(x[30:], labels[30:], verbose=0)
    assert history.history["val_loss"] == [pytest.approx(loss, rel=1e-6)]
    assert history.history["val_accuracy"] == [pytest.approx(acc)]
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, labels, validation_split=1.5, verbose=0)


def test_fit_with_validation_data_and_sparse_labels():
    x, labels = blobs(n=48)
    model = small_classifier()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["acc"])
    history = model.fit(x, labels[:, None], batch_size=8, epochs=2,
                        validation_data=(x[:10], labels[:10]), verbose=0)
    assert set(history.history) == {"loss", "acc", "val_loss", "val_acc"}


def test_fit_is_deterministic_with_a_seed():
    x, labels = blobs(n=50)

    def run():
        model = small_classifier(seed=1)
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        history = model.fit(x, labels, batch_size=8, epochs=3, verbose=0, seed=123)
        return history.history, model.get_weights()

    (h1, w1), (h2, w2) = run(), run()
    assert h1 == h2
    for a, b in zip(w1, w2):
        np.testing.assert_array_equal(a, b)
    # A different shuffling seed gives a different run.
    model = small_classifier(seed=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    assert model.fit(x, labels, batch_size=8, epochs=3, verbose=0, seed=7).history != h1


def test_set_random_seed_makes_weights_and_training_reproducible():
    x, labels = blobs(n=32)
    runs = []
    for _ in range(2):
        initializers.set_random_seed(11)
        model = tiny_resnet(seed=None, dtype="float32")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        model.fit(np.resize(x, (32, 8, 8, 3)), labels, batch_size=8, epochs=1, verbose=0)
        runs.append(model.get_weights())
    for a, b in zip(*runs):
        np.testing.assert_array_equal(a, b)


def test_fit_without_shuffle_equals_train_on_batch_loop():
    x, labels = blobs(n=20)
    a, b = small_classifier(seed=2), small_classifier(seed=2)
    for m in (a, b):
        m.compile(optimizer=SGD(0.05, momentum=0.9), loss="sparse_categorical_crossentropy")
    a.fit(x, labels, batch_size=8, epochs=1, shuffle=False, verbose=0)
    for start in range(0, 20, 8):
        b.train_on_batch(x[start:start + 8], labels[start:start + 8])
    for wa, wb in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)


def test_evaluate_predict_and_batch_methods_shapes():
    x, labels = blobs(n=10)
    y = to_categorical(labels, 3)
    model = small_classifier()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    loss, acc = model.evaluate(x, y, batch_size=4, verbose=0)
    assert isinstance(loss, float) and 0.0 <= acc <= 1.0
    probs = model.predict(x, batch_size=3)
    assert probs.shape == (10, 3) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    assert acc == pytest.approx(np.mean(probs.argmax(1) == labels))
    result = model.train_on_batch(x, y)
    assert len(result) == 2
    assert model.evaluate(x, y, verbose=0, return_dict=True).keys() == {"loss", "accuracy"}
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    assert isinstance(model.evaluate(x, y, verbose=0), float)
    assert isinstance(model.train_on_batch(x, y), float)


def test_data_errors_are_clear():
    model = small_classifier()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x = np.zeros((4, 4, 4, 3), np.float32)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 4, 4, 3\), got \(4, 4, 4, 1, 3\)"):
        model.predict(x[..., None, :])
    with pytest.raises(ValueError, match="use to_categorical"):
        model.fit(x, np.zeros((4, 1), np.uint8), verbose=0)
    with pytest.raises(ValueError, match="x has 4 examples but y has 3"):
        model.fit(x, np.zeros((3, 3)), verbose=0)
    with pytest.raises(ValueError, match="batch_size"):
        model.fit(x, np.zeros((4, 3)), batch_size=0, verbose=0)


def test_set_weights_validation_and_keras_order():
    model = tiny_resnet(dtype="float32")
    weights = model.get_weights()
    assert [w.shape for w in weights[:4]] == [(3, 3, 3, 4), (4,), (3, 3, 4, 4), (4,)]
    assert model.weight_names()[:3] == ["stem_conv/kernel", "stem_conv/bias", "block1_conv1/kernel"]
    with pytest.raises(ValueError, match="expected 18 arrays, got 17"):
        model.set_weights(weights[:-1])
    bad = list(weights)
    bad[1] = np.zeros(5)
    with pytest.raises(ValueError, match=r"stem_conv/bias: expected shape \(4,\), got \(5,\)"):
        model.set_weights(bad)
    new = [np.full(w.shape, i, dtype=np.float64) for i, w in enumerate(weights)]
    model.set_weights(new)
    got = model.get_weights()
    assert all(g.dtype == np.float32 for g in got)
    assert all(np.all(g == i) for i, g in enumerate(got))


def test_callbacks_and_early_stop():
    x, labels = blobs(n=16)
    events = []

    class Recorder(Callback):
        def on_epoch_end(self, epoch, logs=None):
            events.append((epoch, sorted(logs)))
            if epoch == 1:
                self.model.stop_training = True

    model = small_classifier()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, epochs=5, verbose=0, callbacks=[Recorder()])
    assert events == [(0, ["accuracy", "loss"]), (1, ["accuracy", "loss"])]
    assert history.epoch == [0, 1]


def test_fit_progress_lines_when_not_a_terminal(capsys):
    x, labels = blobs(n=40)
    model = small_classifier()
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, labels, batch_size=4, epochs=2, verbose=1, validation_split=0.2)
    lines = capsys.readouterr().out.splitlines()
    finals = [line for line in lines if "val_loss" in line]
    assert len(finals) == 2 and finals[0].startswith("Epoch 1/2") and "img/s" in finals[0]
    assert 2 < len(lines) <= 2 * 11
    model.fit(x, labels, epochs=2, verbose=2)
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_summary_lists_layers_connections_and_totals():
    model = tiny_resnet(dtype="float32")
    out = io.StringIO()
    model.summary(print_fn=lambda line: out.write(line + "\n"))
    text = out.getvalue()
    assert f"Total params: {model.count_params():,}" in text
    assert "block1_add (Add)" in text and "block1_pool[0][0], block1_skip_pool[0][0]" in text
    assert "(None, 2, 2, 4)" in text


def test_maxpool_padding_and_layer_stacking_shapes():
    inputs = Input((7, 5, 2))
    x = MaxPooling2D(2, padding="same")(inputs)
    assert x.shape == (None, 4, 3, 2)
    x = Conv2D(3, (2, 3), strides=2)(x)
    assert x.shape == (None, 2, 1, 3)
    model = Model(inputs, Flatten()(x))
    assert model.predict(np.zeros((2, 7, 5, 2))).shape == (2, 6)


@pytest.mark.slow
def test_seed_size_model_directional_gradients():
    """The full 270,026-parameter model in float64: one random direction per parameter
    tensor and one for the input, against central differences."""
    model = build_resnet(seed=6, dtype="float64")
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    rng = np.random.default_rng(7)
    x = rng.random((2, 32, 32, 3))
    y = to_categorical([3, 8], 10).astype(np.float64)
    _, grads, dx = model.loss_and_gradients(x, y)
    h = 1e-5
    for name, array, grad in [*zip(model.weight_names(), model.weights, grads), ("input", x, dx)]:
        v = rng.standard_normal(array.shape)
        v /= np.linalg.norm(v)
        array += h * v
        plus = model.evaluate(x, y, batch_size=2, verbose=0)
        array -= 2 * h * v
        minus = model.evaluate(x, y, batch_size=2, verbose=0)
        array += h * v
        numeric, analytic = (plus - minus) / (2 * h), float(np.sum(grad * v))
        assert abs(numeric - analytic) <= 1e-6 * max(np.linalg.norm(grad), 1e-12), name


@pytest.mark.slow
def test_seed_model_learns_a_separable_problem():
    rng = np.random.default_rng(8)
    labels = rng.integers(0, 10, 640)
    colours = rng.random((10, 3))
    x = (colours[labels][:, None, None, :] + 0.2 * rng.standard_normal((640, 32, 32, 3))).astype(np.float32)
    model = build_resnet(seed=9)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, labels, batch_size=64, epochs=3, validation_split=0.2, verbose=0, seed=0)
    # The best epoch, not the last: Adam at the seed's learning rate can spike for an epoch on
    # this model (here, rounding differences of 1e-6 decide whether epoch 3 is such an epoch;
    # the run recovers to 100 % by epoch 6), and learning is what this test is about.
    assert min(history.history["val_loss"][1:]) < 0.5 * history.history["val_loss"][0]
    assert max(history.history["val_accuracy"]) > 0.6          # chance is 0.1

"""Model: eager calls, whole-model gradients (central differences and PyTorch), weights in
Keras' order, the summary, shapes through stacked layers."""

import io

import numpy as np
import pytest

from minires import initializers
from minires.keras.utils import to_categorical
from minires.layers import Activation, Conv2D, Dense, Flatten, MaxPooling2D
from minires.model import Input, Model
from minires.models import build_resnet
from tests.model.gradients import check_model_gradients, numeric_gradient, relative
from tests.model.toys import tiny_resnet


def test_eager_call_matches_predict():
    model = tiny_resnet()
    x = np.random.default_rng(0).standard_normal((5, 8, 8, 3))
    np.testing.assert_array_equal(model(x), model.predict(x, batch_size=2))
    assert model.predict(x).shape == (5, 3)


# --- gradients of the whole model -----------------------------------------------------------

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
    check_model_gradients(model, x, y)


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
        assert relative(grad, numeric_gradient(current_loss, param)) <= 1e-6, name
    assert relative(dx, numeric_gradient(current_loss, x)) <= 1e-6


@pytest.mark.torch
def test_whole_model_matches_pytorch():
    """Loss, probabilities and every gradient of the tiny ResNet agree with PyTorch autograd
    (weights moved HWIO -> OIHW, (in, out) -> (out, in); Keras 'same' as explicit F.pad)."""
    torch = pytest.importorskip("torch")
    from minires.frameworks.torch_adapter import keras_pads

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


def test_training_runs_each_relu_conv_and_its_max_pool_as_one_step(on_backend, monkeypatch):
    """In training, a ReLU conv read only by a 2x2 max-pool (the seed's stem) runs with it as
    one step, whose backward the pool's gradient reaches: the gradients are those of the two
    layers run one after the other."""
    from minires import ops

    model = build_resnet(seed=0)
    assert list(model._conv_pool_pairs(training=True)) == [
        id(n) for n in model._nodes if n.layer.name == "stem_conv"]
    rng = np.random.default_rng(0)
    x = on_backend.put(rng.standard_normal((3, 32, 32, 3)).astype(np.float32))
    dout = on_backend.put(rng.standard_normal((3, 10)).astype(np.float32))

    def gradients():
        out = on_backend.get(model.forward(x, training=True, return_logits=True))
        model.backward(dout, input_grad=False)
        return out, {f"{layer.name}/{k}": on_backend.get(g) for layer in model.layers
                     for k, g in (getattr(layer, "grads", None) or {}).items()}

    calls = []
    fused = ops.conv2d_maxpool_backward
    monkeypatch.setattr(ops, "conv2d_maxpool_backward", lambda *a, **k: calls.append(1) or fused(*a, **k))
    out, paired = gradients()
    assert calls == [1]
    monkeypatch.setattr(Model, "_conv_pool_pairs", lambda self, training=False: {})
    out_apart, apart = gradients()
    np.testing.assert_allclose(out, out_apart, rtol=1e-5, atol=1e-6)
    assert paired.keys() == apart.keys() and "stem_conv/bias" in paired
    for name in paired:
        scale = max(float(np.abs(apart[name]).max()), 1e-6)
        np.testing.assert_allclose(paired[name], apart[name], rtol=1e-4, atol=1e-5 * scale, err_msg=name)


def test_inference_runs_each_conv_and_its_max_pool_as_one_step(on_backend, monkeypatch):
    """Outside training, a conv read only by a 2x2 max-pool runs fused with it: the seed's
    model has seven such pairs, and predict gives the training forward's output."""
    from minires import ops
    from minires.layers import Add

    model = build_resnet(seed=0)
    x = on_backend.put(np.random.default_rng(0).random((3, 32, 32, 3)).astype(np.float32))
    calls = []
    fused = ops.conv2d_maxpool_forward
    monkeypatch.setattr(ops, "conv2d_maxpool_forward", lambda *a, **k: calls.append(1) or fused(*a, **k))
    predicted = on_backend.get(model.forward(x))
    assert len(calls) == 7
    trained = on_backend.get(model.forward(x, training=True))
    np.testing.assert_allclose(predicted, trained, rtol=1e-5, atol=1e-6)
    # A conv whose output something else reads too is not fused.
    inputs = Input((8, 8, 2))
    conv = Conv2D(4, 3, padding="same", activation="relu")(inputs)
    both = Add()([MaxPooling2D()(conv), MaxPooling2D()(conv)])
    small = Model(inputs, both)
    assert small._conv_pool_pairs() == {}

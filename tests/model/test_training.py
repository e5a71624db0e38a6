"""The Keras training API: compile, fit (validation, shuffling, seeds, callbacks, progress),
evaluate, predict and the one-batch methods."""

import numpy as np
import pytest

from minires import initializers
from minires.keras.utils import to_categorical
from minires.model import Callback
from minires.models import build_resnet
from minires.optim import SGD, Adam
from tests.model.toys import blobs, small_classifier, tiny_resnet


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


@pytest.mark.parametrize("bad", [3, -1, 1.5])
def test_fit_checks_every_label_before_the_first_update(bad):
    x, labels = blobs(n=32)
    y = labels.astype(np.float64)
    y[-1] = bad                                   # in the last batch, not the first
    model = small_classifier()
    model.compile(optimizer=Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    before = model.get_weights()
    with pytest.raises(ValueError, match="class ids"):
        model.fit(x, y, batch_size=8, epochs=1, shuffle=False, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.optimizer.iterations == 0


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

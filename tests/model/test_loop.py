"""The epoch loop: running totals that stay on the device and are read back only when a line
is written, a callback asks, or the epoch ends; a pass stopped after a batch and resumed."""

import io

import numpy as np
import pytest

from minires.model import Callback
from minires.model.loop import EpochLoop, RunningTotals
from minires.progress import Progress
from tests.model.toys import blobs, small_classifier


class CountingTotals(RunningTotals):
    """RunningTotals that count how often the sums are read back from the device."""

    fetches = 0

    def fetch(self):
        self.fetches += 1
        return super().fetch()


def _compiled(metrics=("accuracy",)):
    model = small_classifier(seed=1)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=list(metrics))
    return model


def test_a_training_batch_leaves_its_loss_and_count_as_arrays():
    x, labels = blobs(n=8)
    model = _compiled()
    loss, correct = model._train_batch(model._to_backend(x), model._targets(labels, "test"))
    assert hasattr(loss, "dtype") and loss.shape == () and loss.dtype == np.float32
    assert hasattr(correct, "dtype") and correct.shape == () and correct.dtype.kind in "iu"


def test_running_totals_add_on_the_device_as_python_floats_did():
    rng = np.random.default_rng(0)
    losses = rng.random(7).astype(np.float32)
    counts = rng.integers(1, 65, 7)
    totals, loss_sum, correct_sum = RunningTotals(), 0.0, 0
    for loss, n in zip(losses, counts):
        totals.add(np.asarray(loss), np.int64(n // 2), int(n))
        loss_sum += float(loss) * int(n)
        correct_sum += int(n // 2)
    assert isinstance(totals.loss_sum, np.floating) and totals.loss_sum.dtype == np.float64
    assert isinstance(totals.correct, np.integer)
    assert totals.fetch() == (int(counts.sum()), loss_sum, correct_sum)      # bit for bit
    logs = totals.logs(["accuracy"], prefix="val_")
    assert logs == {"val_loss": loss_sum / counts.sum(), "val_accuracy": correct_sum / counts.sum()}
    assert all(type(v) is float for v in logs.values())


def test_a_silent_epoch_reads_the_totals_once_at_its_end():
    x, labels = blobs(n=40)
    model, totals = _compiled(), CountingTotals()
    loop = EpochLoop(model, x, labels, batch_size=4, totals=totals)
    assert loop.run(Progress(40, mode="silent"))
    assert totals.fetches == 0 and loop.next_batch == 10 and totals.samples == 40
    loop.logs()
    assert totals.fetches == 1


def test_a_logged_epoch_reads_the_totals_once_per_line():
    x, labels = blobs(n=40)
    model, totals = _compiled(), CountingTotals()
    stream = io.StringIO()
    loop = EpochLoop(model, x, labels, batch_size=2, totals=totals)
    loop.run(Progress(40, "Epoch 1/1", stream=stream, interactive=False))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 9 and all("loss: " in line for line in lines)      # 10 %, ..., 90 %
    assert totals.fetches == 9                                               # of 20 batches


def test_batch_end_callbacks_get_logs_and_only_they_cost_a_read():
    x, labels = blobs(n=12)
    seen = []

    class Quiet(Callback):
        def on_epoch_end(self, epoch, logs=None):
            pass

    class Batches(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append((batch, sorted(logs)))

    model, totals = _compiled(), CountingTotals()
    EpochLoop(model, x, labels, batch_size=4, totals=totals).run(Progress(12, mode="silent"), [Quiet()])
    assert totals.fetches == 0
    EpochLoop(model, x, labels, batch_size=4, totals=totals).run(Progress(12, mode="silent"),
                                                                 [Quiet(), Batches()])
    assert totals.fetches == 3
    assert seen == [(0, ["accuracy", "loss"]), (1, ["accuracy", "loss"]), (2, ["accuracy", "loss"])]


def test_a_pass_stopped_after_a_batch_goes_on_to_the_same_result():
    x, labels = blobs(n=30)
    order = np.random.default_rng(3).permutation(30)
    straight = _compiled()
    whole = EpochLoop(straight, x, labels, batch_size=4, order=order)
    assert whole.run(Progress(30, mode="silent"))

    stopped = _compiled()
    asked = []
    loop = EpochLoop(stopped, x, labels, batch_size=4, order=order)
    assert not loop.run(Progress(30, mode="silent"), stop=lambda: asked.append(1) or len(asked) == 3)
    assert loop.next_batch == 3 and len(asked) == 3          # asked once per batch
    samples, loss_sum, correct = loop.totals.fetch()
    resumed = EpochLoop(stopped, x, labels, batch_size=4, order=order, next_batch=3,
                        totals=RunningTotals(samples, loss_sum, correct))
    assert resumed.run(Progress(30, mode="silent"))
    assert resumed.logs() == whole.logs()
    for a, b in zip(straight.get_weights(), stopped.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_without_metrics_only_the_loss_is_kept():
    x, labels = blobs(n=8)
    model = _compiled(metrics=())
    loop = EpochLoop(model, x, labels, batch_size=4)
    loop.run(Progress(8, mode="silent"))
    assert list(loop.logs()) == ["loss"] and loop.totals.correct == 0


def test_the_loop_checks_its_model_and_data_like_fit():
    with pytest.raises(RuntimeError, match="fit: compile the model first"):
        EpochLoop(small_classifier(), np.zeros((4, 4, 4, 3)), np.zeros(4, int), batch_size=2)
    model = _compiled()
    with pytest.raises(ValueError, match=r"fit: x must have shape \(N, 4, 4, 3\)"):
        EpochLoop(model, np.zeros((4, 4, 4)), np.zeros(4, int), batch_size=2)
    with pytest.raises(ValueError, match="x has 4 examples but y has 3"):
        EpochLoop(model, np.zeros((4, 4, 4, 3)), np.zeros(3, int), batch_size=2)

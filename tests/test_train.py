"""The training loop: exact resume, Ctrl-C, atomic and validated checkpoints, run files."""

import json

import numpy as np
import pytest

from minires import train as train_module
from minires.models import build_resnet
from minires.optim import Adam
from minires.train import CHECKPOINT, Dataset, Recipe, RunDirectoryError, Trainer, check_fresh_run_dir


def _data(n=72, n_val=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n + n_val, 8, 8, 3), dtype=np.uint8)
    y = rng.integers(0, 3, n + n_val)
    x[y == 1, :4] //= 4           # something to learn
    return Dataset(x[:n], y[:n], x[n:], y[n:], ["a", "b", "c"], "test-data")


def _model(seed=0):
    model = build_resnet(input_shape=(8, 8, 3), num_classes=3, filters=4, blocks=1, dense_units=8, seed=seed)
    model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _recipe(epochs, augment=False):
    return Recipe(epochs=epochs, batch_size=16, seed=3, augment=augment)


def _weights_equal(a, b):
    return all(np.array_equal(u, v) for u, v in zip(a.get_weights(), b.get_weights()))


class _StopAfter:
    """Stands in for the Ctrl-C handler: 'pressed' after ``batches`` batches."""

    def __init__(self, batches):
        self.left = batches

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @property
    def requested(self):
        self.left -= 1
        return self.left < 0


@pytest.mark.parametrize("augment", [False, True])
def test_resume_after_an_epoch_ends_bit_for_bit_like_an_uninterrupted_run(tmp_path, augment):
    data = _data()
    straight = Trainer(_model(), data, tmp_path / "straight", _recipe(3, augment), progress_mode="silent")
    straight.fit()

    first = Trainer(_model(), data, tmp_path / "split", _recipe(1, augment), progress_mode="silent")
    first.fit()
    resumed = Trainer.resume(tmp_path / "split", data, _recipe(3, augment), progress_mode="silent")
    assert resumed.epoch == 1
    resumed.fit()
    assert _weights_equal(straight.model, resumed.model)
    for key in ("loss", "accuracy", "val_loss", "val_accuracy"):     # "seconds" differ, of course
        assert straight.history[key] == resumed.history[key]


def test_ctrl_c_mid_epoch_saves_a_checkpoint_that_resumes_exactly(tmp_path, monkeypatch):
    data = _data()
    straight = Trainer(_model(), data, tmp_path / "straight", _recipe(2), progress_mode="silent")
    straight.fit()

    monkeypatch.setattr(train_module, "_Interrupt", lambda: _StopAfter(6))   # 5 batches per epoch
    stopped = Trainer(_model(), data, tmp_path / "stopped", _recipe(2), progress_mode="silent")
    stopped.fit()
    assert stopped.stopped_early and stopped.epoch == 1 and stopped.next_batch == 2
    assert not (tmp_path / "stopped" / "model.npz").exists()
    monkeypatch.undo()

    resumed = Trainer.resume(tmp_path / "stopped", data, _recipe(2), progress_mode="silent")
    assert (resumed.epoch, resumed.next_batch) == (1, 2)
    resumed.fit()
    assert _weights_equal(straight.model, resumed.model)
    np.testing.assert_array_equal(straight.history["loss"], resumed.history["loss"])


def test_run_directory_holds_history_png_and_model(tmp_path):
    trainer = Trainer(_model(), _data(), tmp_path, _recipe(2), progress_mode="silent")
    history = trainer.fit()
    assert set(history) == {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"}
    saved = json.loads((tmp_path / "history.json").read_text())
    assert saved["epochs"] == 2 and saved["history"]["val_accuracy"] == history["val_accuracy"]
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from minires.serialization import load_model_with_metadata

    _, best = load_model_with_metadata(tmp_path / "best.npz")
    assert best["val_accuracy"] == max(history["val_accuracy"])
    assert history["val_accuracy"][best["epoch"] - 1] == best["val_accuracy"]
    from minires import load_model

    model = load_model(tmp_path / "model.npz")
    assert _weights_equal(model, trainer.model)


def test_corrupt_checkpoint_is_refused_and_left_alone(tmp_path):
    Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    path = tmp_path / CHECKPOINT
    damaged = path.read_bytes()[: path.stat().st_size // 2]
    path.write_bytes(damaged)
    with pytest.raises(ValueError, match="checkpoint.npz"):
        Trainer.resume(tmp_path, _data(), _recipe(2), progress_mode="silent")
    assert path.read_bytes() == damaged


def test_resume_refuses_other_data_or_recipe(tmp_path):
    Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    with pytest.raises(RunDirectoryError, match="same data"):
        Trainer.resume(tmp_path, _data(n=64), _recipe(2), progress_mode="silent")
    with pytest.raises(RunDirectoryError, match="batch_size"):
        Trainer.resume(tmp_path, _data(), Recipe(epochs=2, batch_size=8, seed=3), progress_mode="silent")


def test_a_new_run_never_overwrites_an_existing_one(tmp_path):
    check_fresh_run_dir(tmp_path)
    Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    with pytest.raises(RunDirectoryError, match="--resume"):
        check_fresh_run_dir(tmp_path)


def test_a_failed_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    trainer = Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent")
    trainer.fit()
    before = (tmp_path / CHECKPOINT).read_bytes()

    def broken_savez(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        trainer.save_checkpoint()
    assert (tmp_path / CHECKPOINT).read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []

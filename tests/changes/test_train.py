"""ChangeTrainer: a change net trained in a run directory on generated pairs, its history's
validation scores, best.npz by F1, and an exact --resume."""

import json

import numpy as np
import pytest

import minires.serialization as ser
from minires.changes.train import ChangeTrainer, change_dataset, map_scores
from minires.data.synthetic import make_synthetic
from minires.models import build_change_net
from minires.train import Recipe, RunDirectoryError


def _data():
    images, _ = make_synthetic(24, seed=0, image_size=16)
    return change_dataset(images[:16], images[16:], seed=0, nuisance=False, description="toy")


def _trainer(run_dir, data, epochs=2, **kwargs):
    model = build_change_net((16, 16, 3), filters=4, blocks=2, seed=0)
    return ChangeTrainer(model, data, run_dir, Recipe(epochs=epochs, batch_size=8), progress_mode="silent",
                         **kwargs)


def test_training_writes_a_run_with_pixel_scores(tmp_path):
    data = _data()
    trainer = _trainer(tmp_path / "run", data)
    history = trainer.fit()
    for key in ("loss", "val_loss", "val_f1", "val_precision", "val_recall", "val_iou",
                "val_pixel_accuracy", "val_auc", "seconds"):
        assert len(history[key]) == 2, key
    assert all(0.0 <= v <= 1.0 for v in history["val_f1"])
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["epochs"] == 2 and saved["history"]["val_f1"] == history["val_f1"]
    best = ser.load_model(tmp_path / "run" / "best.npz")
    assert [t.name for t in best.inputs] == ["before", "after"]
    assert (tmp_path / "run" / "model.npz").is_file()
    with pytest.raises(RunDirectoryError, match="already holds a run"):
        _trainer(tmp_path / "run", data).fit()


def test_resume_ends_with_the_weights_of_an_unbroken_run(tmp_path):
    data = _data()
    whole = _trainer(tmp_path / "whole", data)
    whole.fit()
    _trainer(tmp_path / "part", data, epochs=1).fit()
    resumed = ChangeTrainer.resume(tmp_path / "part", _data(), Recipe(epochs=2, batch_size=8),
                                   progress_mode="silent")
    resumed.fit()
    for a, b in zip(whole.model.get_weights(), resumed.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert resumed.history["val_f1"] == whole.history["val_f1"]


def test_map_scores():
    mask = np.zeros((2, 2, 2), dtype=bool)
    mask[0, 0, 0] = True
    probs = np.where(mask, 0.9, 0.1)
    probs[1, 1, 1] = 0.4
    scores = map_scores(probs, mask)
    assert scores["f1"] == 1.0 and scores["pixel_accuracy"] == 1.0 and scores["auc"] == 1.0
    assert map_scores(probs, mask, threshold=0.95)["recall"] == 0.0


def test_pairs_made_in_chunks_are_the_pairs_of_one_call(monkeypatch):
    """change_dataset makes its pairs a chunk at a time (for its progress line)."""
    import minires.changes.train as change_train
    from minires.data.changes import make_change_pairs

    images, _ = make_synthetic(24, seed=0, image_size=16)
    monkeypatch.setattr(change_train, "_CHUNK", 7)
    data = change_dataset(images[:16], images[16:], seed=4, nuisance=False)
    whole = make_change_pairs(images[:16], seed=4, nuisance=False)
    held = make_change_pairs(images[16:], seed=5, nuisance=False)
    np.testing.assert_array_equal(data.x_train.arrays[0], whole.before)
    np.testing.assert_array_equal(data.x_train.arrays[1], whole.after)
    np.testing.assert_array_equal(data.y_train[..., 0], whole.mask)
    np.testing.assert_array_equal(data.x_val.arrays[1], held.after)
    np.testing.assert_array_equal(data.y_val[..., 0], held.mask)

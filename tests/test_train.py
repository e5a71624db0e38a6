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


# --- a run directory belongs to one run --------------------------------------------------------

@pytest.mark.parametrize("name", ["model.npz", "best.npz", "history.json", "history.png", "run.json"])
def test_a_new_run_refuses_a_directory_holding_any_run_file(tmp_path, name):
    (tmp_path / name).write_bytes(b"another run's file")
    with pytest.raises(RunDirectoryError, match=name):
        check_fresh_run_dir(tmp_path)
    with pytest.raises(RunDirectoryError, match=name):
        Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    assert (tmp_path / name).read_bytes() == b"another run's file"
    assert not (tmp_path / CHECKPOINT).exists()


_HOLD_LOCK = """
import sys, time
from minires.train import run_lock
with run_lock(sys.argv[1]):
    print("locked", flush=True)
    time.sleep(120)
"""


def test_a_run_directory_is_locked_while_a_run_writes(tmp_path):
    import subprocess
    import sys

    Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    before = (tmp_path / CHECKPOINT).read_bytes()
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, str(tmp_path)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        resumed = Trainer.resume(tmp_path, _data(), _recipe(2), progress_mode="silent")
        with pytest.raises(RunDirectoryError, match="in use by another run"):
            resumed.fit()
        with pytest.raises(RunDirectoryError, match="in use"):
            with train_module.run_lock(tmp_path):
                pass
        assert (tmp_path / CHECKPOINT).read_bytes() == before
    finally:
        holder.kill()
        holder.wait()
    # A killed holder leaves no lock behind: the kernel drops it with the process.
    Trainer.resume(tmp_path, _data(), _recipe(2), progress_mode="silent").fit()
    assert json.loads((tmp_path / "history.json").read_text())["epochs"] == 2


def test_the_lock_is_reentrant_in_one_process_and_released_after(tmp_path):
    with train_module.run_lock(tmp_path):
        with train_module.run_lock(tmp_path):
            pass
        Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    with train_module.run_lock(tmp_path):
        pass


def test_stale_part_files_of_a_killed_write_are_removed(tmp_path):
    Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    stale = [tmp_path / ".checkpoint.npz.k2j4x.part", tmp_path / ".best.npz.a8b1c.part"]
    for path in stale:
        path.write_bytes(b"half a file")
    mine = tmp_path / ".notes.part"          # not a name minires writes: left alone
    mine.write_bytes(b"the user's")
    Trainer.resume(tmp_path, _data(), _recipe(2), progress_mode="silent").fit()
    assert not any(path.exists() for path in stale)
    assert mine.exists()


# Kills a run at once (os._exit: no cleanup, no atexit, buffers lost) at the Nth rename of a
# file into its directory: "after" the rename, or "during" the write (the temporary file left
# behind). One process imports minires once and forks a run per kill point; it prints, per
# run, the kill point and the exit code ("none": a run never killed, and how many writes it made).
_KILL_AT_WRITES = """
import os, sys
sys.path.insert(0, sys.argv[2])
from tests.test_train import _data, _model, _quick_plot, _recipe
from minires import plots
from minires.train import Trainer

plots.plot_history = _quick_plot
base = sys.argv[1]

def run(target, mode, run_dir):
    pid = os.fork()
    if pid:
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    real_replace, count = os.replace, [0]

    def replace(src, dst):
        count[0] += 1
        if count[0] == target and mode == "during":
            os._exit(9)
        real_replace(src, dst)
        if count[0] == target and mode == "after":
            os._exit(9)

    os.replace = replace
    try:
        Trainer(_model(), _data(), run_dir, _recipe(3), progress_mode="silent", stream=open(os.devnull, "w")).fit()
    except BaseException as exc:
        print(exc, file=sys.stderr, flush=True)
        os._exit(1)
    os._exit(100 + count[0])      # a run never killed says how many writes it made

writes = run(0, "none", os.path.join(base, "straight")) - 100
print("none", writes, flush=True)
for target in range(1, writes + 1):
    for mode in ("after", "during"):
        print(mode, target, run(target, mode, os.path.join(base, f"{mode}-{target}")), flush=True)
"""


def _quick_plot(history, path, metric="accuracy"):
    """Stands in for the learning-curve plot, whose drawing would take most of the test's
    time: the same atomic write at the same moment, of the numbers it would draw."""
    from minires.data.atomic import atomic_write

    with atomic_write(path) as handle:
        handle.write(json.dumps({k: v for k, v in history.items() if k != "seconds"}).encode())


def _run_files(run_dir):
    from minires.serialization import load_model_with_metadata

    history = json.loads((run_dir / "history.json").read_text())
    for values in (history["history"],):
        values.pop("seconds")
    best, best_meta = load_model_with_metadata(run_dir / "best.npz")
    model = load_model_with_metadata(run_dir / "model.npz")[0]
    return history, best, best_meta, model


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_a_kill_at_any_write_then_resume_gives_the_run_never_killed(tmp_path, monkeypatch):
    """Every write of a 3-epoch run, killed after it and during it, then --resume: the run
    directory ends as that of a run never stopped, with no temporary files left over."""
    import subprocess
    import sys
    from pathlib import Path

    from minires import plots

    monkeypatch.setattr(plots, "plot_history", _quick_plot)
    repo = str(Path(__file__).resolve().parents[1])
    done = subprocess.run([sys.executable, "-c", _KILL_AT_WRITES, str(tmp_path), repo],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = [line.split() for line in done.stdout.splitlines()]
    assert lines[0][0] == "none"
    writes = int(lines[0][1])
    # run.json, then per epoch: checkpoint, history.png, history.json, best.npz (when best); model.npz
    assert writes >= 3 * 3 + 2 and len(lines) == 1 + 2 * writes, done.stdout
    history, best, best_meta, model = _run_files(tmp_path / "straight")
    scores = history["history"]["val_accuracy"]
    assert best_meta["epoch"] == max(range(len(scores)), key=lambda i: (scores[i], i)) + 1

    for mode, target, code in lines[1:]:
        run_dir = tmp_path / f"{mode}-{target}"
        where = f"killed {mode} write {target} of {writes}"
        assert code == "9", (where, done.stderr)
        if (run_dir / CHECKPOINT).exists():
            Trainer.resume(run_dir, _data(), _recipe(3), progress_mode="silent").fit()
        else:               # killed before the first checkpoint: the directory is still fresh
            Trainer(_model(), _data(), run_dir, _recipe(3), progress_mode="silent").fit()
        r_history, r_best, r_best_meta, r_model = _run_files(run_dir)
        assert r_history == history, where
        assert r_best_meta == best_meta, where
        assert _weights_equal(r_best, best) and _weights_equal(r_model, model), where
        assert not [p.name for p in run_dir.iterdir() if p.name.endswith(".part")], where
        assert (run_dir / "run.json").is_file() and (run_dir / "history.png").is_file(), where


def test_a_checkpoint_without_the_trainer_state_is_refused_clearly(tmp_path):
    from minires.serialization import read_archive, write_archive

    Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    arrays, meta = read_archive(tmp_path / CHECKPOINT)
    for key in ("run", "history", "rng_state"):
        damaged = json.loads(json.dumps(meta))
        del damaged["metadata"]["trainer"][key]
        del damaged["format"], damaged["version"]
        write_archive(tmp_path / CHECKPOINT, arrays, damaged)
        with pytest.raises(RunDirectoryError, match=f"checkpoint.npz.*{key}"):
            Trainer.resume(tmp_path, _data(), _recipe(2), progress_mode="silent")


def test_a_checkpoint_with_a_foreign_epoch_order_is_refused(tmp_path, monkeypatch):
    from minires.serialization import read_archive, write_archive

    monkeypatch.setattr(train_module, "_Interrupt", lambda: _StopAfter(2))
    Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent").fit()
    arrays, meta = read_archive(tmp_path / CHECKPOINT)
    del meta["format"], meta["version"]
    arrays["trainer/epoch_order"] = np.full_like(arrays["trainer/epoch_order"], 10 ** 6)
    write_archive(tmp_path / CHECKPOINT, arrays, meta)
    with pytest.raises(RunDirectoryError, match="order"):
        Trainer.resume(tmp_path, _data(), _recipe(1), progress_mode="silent")


# --- non-finite numbers --------------------------------------------------------------------

def test_a_diverging_run_stops_and_keeps_the_last_finite_checkpoint(tmp_path):
    trainer = Trainer(_model(), _data(), tmp_path, _recipe(1), progress_mode="silent")
    trainer.fit()
    before = {name: (tmp_path / name).read_bytes() for name in (CHECKPOINT, "best.npz", "history.json")}
    trainer.recipe.epochs = 3
    trainer.model.optimizer.learning_rate = 1e30
    with pytest.raises(train_module.TrainingDiverged, match=r"epoch 2.*non-finite.*checkpoint.npz"):
        trainer.fit()
    for name, content in before.items():
        assert (tmp_path / name).read_bytes() == content, name
    from minires.serialization import load_model

    assert all(np.isfinite(w).all() for w in load_model(tmp_path / CHECKPOINT).get_weights())


def test_a_weight_that_overflows_in_the_last_batch_is_caught_before_the_checkpoint(tmp_path):
    model = _model()
    real = model._train_batch
    calls = []

    def overflowing(xb, targets):
        loss, correct = real(xb, targets)      # a finite loss, then an update that overflows
        calls.append(1)
        if len(calls) == 5:                     # the last batch of the epoch (72 / 16)
            model.layers[-1].params["bias"][...] = np.inf
        return loss, correct

    model._train_batch = overflowing
    trainer = Trainer(model, _data(), tmp_path, _recipe(2), progress_mode="silent")
    with pytest.raises(train_module.TrainingDiverged, match="non-finite"):
        trainer.fit()
    assert not (tmp_path / CHECKPOINT).exists() and not (tmp_path / "best.npz").exists()


def test_a_cosine_schedule_sets_each_epochs_rate_and_resumes_exactly(tmp_path, monkeypatch):
    """The rate is a function of the epoch: a run stopped in epoch 3 and resumed trains at
    the rates of an unbroken run, and ends with its weights."""
    import math

    def recipe(epochs):
        return Recipe(epochs=epochs, batch_size=16, seed=3, learning_rate=0.01, schedule="cosine")

    data = _data()
    straight = Trainer(_model(), data, tmp_path / "straight", recipe(3), progress_mode="silent")
    straight.fit()
    assert straight.model.optimizer.learning_rate == pytest.approx(recipe(3).learning_rate_at(2))
    monkeypatch.setattr(train_module, "_Interrupt", lambda: _StopAfter(12))   # 5 batches per epoch
    stopped = Trainer(_model(), data, tmp_path / "stopped", recipe(3), progress_mode="silent")
    stopped.fit()
    assert stopped.stopped_early and stopped.epoch == 2 and stopped.next_batch > 0
    monkeypatch.undo()
    resumed = Trainer.resume(tmp_path / "stopped", data, recipe(3), progress_mode="silent")
    resumed.fit()
    assert _weights_equal(straight.model, resumed.model)
    constant = Trainer(_model(), data, tmp_path / "constant", _recipe(3), progress_mode="silent")
    constant.fit()
    assert not _weights_equal(straight.model, constant.model)
    with pytest.raises(RunDirectoryError, match="schedule='cosine'"):
        Trainer.resume(tmp_path / "stopped", data, Recipe(epochs=3, batch_size=16, seed=3, learning_rate=0.01),
                       progress_mode="silent")

    recipe = recipe(3)
    assert [recipe.learning_rate_at(e) for e in range(3)] == pytest.approx(
        [0.01, 0.01 * (1 + math.cos(math.pi / 3)) / 2, 0.01 * (1 + math.cos(2 * math.pi / 3)) / 2])
    assert Recipe(learning_rate=0.01).learning_rate_at(5) == 0.01
    with pytest.raises(ValueError, match="schedule must be one of"):
        Recipe(schedule="step")

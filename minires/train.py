"""The training loop behind ``minires train``: epochs, progress, validation, checkpoints, resume.

A run lives in one directory::

    RUNDIR/run.json         what was asked: data set, recipe, seed, backend
    RUNDIR/checkpoint.npz   the latest state: weights, optimizer, generator, history, position
    RUNDIR/model.npz        the trained model, for ``minires evaluate`` and ``predict``
    RUNDIR/best.npz         the model after the epoch of best validation accuracy so far
    RUNDIR/history.json     loss and accuracy per epoch (Keras' keys), and seconds per epoch
    RUNDIR/history.png      the learning curves

Every file is written atomically (a temporary file, then a rename), so a crash or a full disk
leaves the previous version whole. One generator, seeded once, draws every random number of
the run after the initial weights (the order of each epoch, the augmentation), and its state
goes into each checkpoint with the position inside the epoch. So a run stopped after epoch k
(or by Ctrl-C in the middle of one) and resumed with ``--resume`` ends with exactly the
weights of a run that was never stopped: bit for bit on the numpy backend.

Ctrl-C finishes the batch in progress, writes a checkpoint and stops; a second Ctrl-C stops
at once without one.

An epoch is ``minires.model.loop.EpochLoop``, the loop ``Model.fit`` runs too; the trainer
adds the scaling and augmentation of each batch, the Ctrl-C stop, and keeps the loop's
position and running totals in its checkpoints.
"""

from __future__ import annotations

import json
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy

from .data.atomic import atomic_write
from .data.transforms import Augmenter, scale_pixels
from .model.loop import EpochLoop, RunningTotals
from .progress import Progress, format_duration
from .serialization import (generator_from_state, generator_state, model_from_archive,
                            model_to_archive, read_archive, save_model, write_archive)

CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"
BEST = "best.npz"
HISTORY_JSON = "history.json"
HISTORY_PNG = "history.png"
RUN_JSON = "run.json"
_POSITION_KEY = "trainer/epoch_order"


@dataclass
class Dataset:
    """Images as uint8 NHWC (scaled to [0, 1] batch by batch) with integer labels."""

    x_train: numpy.ndarray
    y_train: numpy.ndarray
    x_val: numpy.ndarray | None
    y_val: numpy.ndarray | None
    class_names: list[str]
    description: str


@dataclass
class Recipe:
    """How to train: the seed's recipe by default (Adam, batch 64, 10 epochs)."""

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    augment: bool = False
    extra: dict = field(default_factory=dict)     # data set and backend, recorded in run.json


class RunDirectoryError(ValueError):
    """The run directory cannot be used as asked (a run is there already, or its files are bad)."""


def scale_batch(x: numpy.ndarray) -> numpy.ndarray:
    """uint8 pixels -> float32 in [0, 1] (the seed's x / 255.0); float input passes through."""
    return scale_pixels(x) if x.dtype == numpy.uint8 else x.astype(numpy.float32, copy=False)


class _Interrupt:
    """Turns the first Ctrl-C into a request to stop after the current batch."""

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self):
        if _in_main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\nInterrupted: finishing this batch and saving a checkpoint "
              "(Ctrl-C again to stop at once).", file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
        return False


def _in_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _write_json(path: Path, value) -> None:
    with atomic_write(path) as handle:
        handle.write(json.dumps(value, indent=2).encode("utf-8") + b"\n")


class Trainer:
    """Trains a compiled model on a Dataset into a run directory."""

    def __init__(self, model, data: Dataset, run_dir, recipe: Recipe, progress_mode: str = "bar",
                 stream=None):
        self.model = model
        self.data = data
        self.run_dir = Path(run_dir)
        self.recipe = recipe
        self.progress_mode = progress_mode
        self.stream = sys.stdout if stream is None else stream
        self.rng = numpy.random.default_rng(recipe.seed)
        self.augmenter = Augmenter.standard() if recipe.augment else None
        self.history: dict[str, list] = {}
        self.epoch = 0                      # completed epochs
        self.loop: EpochLoop | None = None  # the epoch in progress, None between epochs
        self.seconds = 0.0                  # its training time so far
        self.stopped_early = False

    @property
    def next_batch(self) -> int:
        """The first batch of the epoch in progress not yet trained on."""
        return 0 if self.loop is None else self.loop.next_batch

    # -- state on disk ------------------------------------------------------------------------

    def run_config(self) -> dict:
        return {"recipe": asdict(self.recipe), "data": self.data.description,
                "class_names": list(self.data.class_names), "train_size": int(len(self.data.x_train)),
                "val_size": 0 if self.data.x_val is None else int(len(self.data.x_val))}

    def save_checkpoint(self) -> None:
        seen, loss, correct = self.loop.totals.fetch() if self.loop is not None else (0, 0.0, 0)
        arrays, meta = model_to_archive(self.model, include_optimizer=True, metadata={
            "trainer": {
                "epoch": self.epoch,
                "next_batch": self.next_batch,
                "partial": {"loss": loss, "correct": correct, "seen": seen, "seconds": self.seconds},
                "rng_state": generator_state(self.rng),
                "history": self.history,
                "run": self.run_config(),
            }
        })
        if self.loop is not None:
            arrays[_POSITION_KEY] = self.loop.order
        write_archive(self.run_dir / CHECKPOINT, arrays, meta)

    @classmethod
    def resume(cls, run_dir, data: Dataset, recipe: Recipe, **kwargs) -> "Trainer":
        """A trainer restored from ``run_dir/checkpoint.npz``, checked against ``data`` and ``recipe``."""
        path = Path(run_dir) / CHECKPOINT
        if not path.exists():
            raise RunDirectoryError(f"{path}: no checkpoint to resume from")
        arrays, meta = read_archive(path)     # one read: the model and the trainer state both
        model = model_from_archive(arrays, meta, source=str(path))
        state = (meta.get("metadata") or {}).get("trainer")
        if not isinstance(state, dict):
            raise RunDirectoryError(f"{path}: not a training checkpoint (no trainer state)")
        saved = state["run"]
        trainer = cls(model, data, run_dir, recipe, **kwargs)
        mine = trainer.run_config()
        for key in ("data", "train_size", "val_size", "class_names"):
            if saved.get(key) != mine.get(key):
                raise RunDirectoryError(
                    f"{path}: the checkpoint was trained on {key}={saved.get(key)!r}, "
                    f"but this run has {key}={mine.get(key)!r}; resume with the same data")
        for key in ("batch_size", "seed", "augment", "learning_rate"):
            if saved["recipe"].get(key) != mine["recipe"].get(key):
                raise RunDirectoryError(
                    f"{path}: the checkpoint used {key}={saved['recipe'].get(key)!r}, this run asks "
                    f"for {mine['recipe'].get(key)!r}; an exact resume needs the same recipe")
        trainer.epoch = int(state["epoch"])
        trainer.history = {k: list(v) for k, v in state["history"].items()}
        trainer.rng = generator_from_state(state["rng_state"])
        order = arrays.get(_POSITION_KEY)
        if order is not None:
            partial = state["partial"]
            trainer.loop = trainer._epoch_loop(order, int(state["next_batch"]), RunningTotals(
                partial["seen"], partial["loss"], partial["correct"]))
            trainer.seconds = float(partial["seconds"])
        return trainer

    def _write_results(self) -> None:
        _write_json(self.run_dir / HISTORY_JSON, {"epochs": self.epoch, "history": self.history})
        try:
            from .plots import plot_history

            plot_history(self.history, self.run_dir / HISTORY_PNG)
        except ImportError as exc:
            print(f"minires: no learning-curve PNG ({exc})", file=sys.stderr)

    # -- the loop -----------------------------------------------------------------------------

    def _batch(self, x_batch: numpy.ndarray) -> numpy.ndarray:
        """A batch as the model trains on it: scaled to [0, 1], augmented if the recipe says so."""
        x_batch = scale_batch(x_batch)
        return x_batch if self.augmenter is None else self.augmenter(x_batch, self.rng)

    def _epoch_loop(self, order, next_batch: int = 0, totals: RunningTotals | None = None) -> EpochLoop:
        return EpochLoop(self.model, self.data.x_train, self.data.y_train, self.recipe.batch_size,
                         order=order, transform=self._batch, next_batch=next_batch, totals=totals)

    def _epoch(self, interrupt: _Interrupt) -> bool:
        """Train on the rest of the current epoch; False when stopped by Ctrl-C."""
        if self.loop is None:
            self.loop = self._epoch_loop(self.rng.permutation(len(self.data.x_train)))
            self.seconds = 0.0
        n = len(self.data.x_train)
        bar = Progress(n, f"Epoch {self.epoch + 1}/{self.recipe.epochs}", "img", self.progress_mode,
                       stream=self.stream)
        bar.done = self.loop.totals.samples
        start = time.perf_counter()
        seconds_before = self.seconds
        completed = self.loop.run(bar, stop=lambda: interrupt.requested)
        logs = self.loop.logs()           # waits for the device: the time below includes it
        self.seconds = seconds_before + time.perf_counter() - start
        if not completed:
            bar.close(**logs)
            return False
        if self.data.x_val is not None and len(self.data.x_val):
            val_loss, val_acc = self.model.evaluate(scale_batch(self.data.x_val), self.data.y_val,
                                                    batch_size=256, verbose=0)
            logs.update(val_loss=float(val_loss), val_accuracy=float(val_acc))
        bar.close(**logs)
        logs["seconds"] = self.seconds
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        self.epoch += 1
        self.loop = None
        return True

    def _keep_if_best(self) -> None:
        """Save the model as best.npz when the epoch just finished has the best val accuracy."""
        scores = self.history.get("val_accuracy")
        if scores and scores[-1] >= max(scores):
            save_model(self.model, self.run_dir / BEST, include_optimizer=False,
                       metadata={"class_names": list(self.data.class_names), "epoch": self.epoch,
                                 "val_accuracy": scores[-1]})

    def fit(self) -> dict:
        """Train until ``recipe.epochs`` epochs are complete or Ctrl-C; returns the history."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        _write_json(self.run_dir / RUN_JSON, self.run_config())
        started = time.perf_counter()
        with _Interrupt() as interrupt:
            while self.epoch < self.recipe.epochs:
                completed = self._epoch(interrupt)
                self.save_checkpoint()
                if not completed:
                    self.stopped_early = True
                    print(f"Checkpoint saved to {self.run_dir / CHECKPOINT} in epoch {self.epoch + 1}, "
                          f"batch {self.next_batch}; continue with --resume.", file=sys.stderr)
                    break
                self._write_results()
                self._keep_if_best()
        if not self.stopped_early:
            save_model(self.model, self.run_dir / MODEL, include_optimizer=False,
                       metadata={"class_names": list(self.data.class_names)})
            print(f"Trained {self.epoch} epoch{'s' if self.epoch != 1 else ''} in "
                  f"{format_duration(time.perf_counter() - started)}; model saved to {self.run_dir / MODEL}",
                  file=self.stream)
            scores = self.history.get("val_accuracy")
            if scores:
                # The last of equal bests: the epoch _keep_if_best saved in best.npz.
                best = max(range(len(scores)), key=lambda i: (scores[i], i))
                print(f"Validation accuracy {scores[-1]:.4f} after the last epoch, best {scores[best]:.4f} "
                      f"after epoch {best + 1} ({self.run_dir / BEST})", file=self.stream)
        return self.history


def check_fresh_run_dir(run_dir) -> None:
    """Refuse to start a new run over a directory that holds another run's checkpoint."""
    path = Path(run_dir) / CHECKPOINT
    if path.exists():
        raise RunDirectoryError(
            f"{run_dir} already holds a run ({CHECKPOINT}); continue it with --resume, or choose "
            f"another --out")


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


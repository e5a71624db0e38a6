"""The training loop behind ``minires train``: epochs, progress, validation, checkpoints, resume.

A run lives in one directory::

    RUNDIR/run.json         what was asked: data set, recipe, seed, backend
    RUNDIR/checkpoint.npz   the latest state: weights, optimizer, generator, history, position
    RUNDIR/model.npz        the trained model, for ``minires evaluate`` and ``predict``
    RUNDIR/best.npz         the model after the epoch of best validation accuracy so far
    RUNDIR/history.json     loss and accuracy per epoch (Keras' keys), and seconds per epoch
    RUNDIR/history.png      the learning curves

A directory belongs to one run. While a run writes, it holds an exclusive lock on
``RUNDIR/.minires-run.lock`` (``run_lock``; the file is removed when the run ends): a second
run into the same directory, or a ``--resume`` of a run still going, is refused. The
operating system drops the lock with the process, so a run killed by any means leaves no
lock behind (at most the file, which the next run takes over). A new run refuses a directory
that holds any of the files above (``check_fresh_run_dir``); only ``--resume`` continues one.

Every file is written atomically (a temporary file, then a rename), so a crash or a full disk
leaves the previous version whole; the temporary files (``.NAME.*.part``) of a write that a
kill cut short are deleted by the next run that takes the lock. The checkpoint is the record
of the run: the files written after it at an epoch's end (history.png, history.json,
best.npz, model.npz) are made from what it holds, so a run killed between those writes is
repaired by ``--resume`` (``Trainer.fit`` rewrites whichever of them lags behind the
checkpoint), and ends with the files of a run that was never stopped.

Training stops when it stops making sense: a non-finite loss (checked after every batch on
the CPU backends; on cupy, where reading it back waits for the device, whenever a progress
line is written and at the end of each epoch) or a non-finite weight at the end of an epoch
(a gradient that overflowed) raises ``TrainingDiverged``, before anything is written: the
last checkpoint, whose numbers are all finite, stays as it was. One generator, seeded once, draws every random number of
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

import contextlib
import json
import math
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy

from .backend import array_module
from .data.atomic import atomic_write
from .data.transforms import Augmenter, scale_pixels
from .model.loop import EpochLoop, NonFiniteLossError, RunningTotals
from .progress import Progress, format_duration
from .serialization import (generator_from_state, generator_state, model_from_archive,
                            model_to_archive, read_archive, save_model, write_archive)

try:
    import fcntl
except ImportError:          # Windows: msvcrt's byte-range lock instead
    fcntl = None

CHECKPOINT = "checkpoint.npz"
MODEL = "model.npz"
BEST = "best.npz"
HISTORY_JSON = "history.json"
HISTORY_PNG = "history.png"
RUN_JSON = "run.json"
LOCK = ".minires-run.lock"
# Everything a run writes into its directory (the lock aside): a new run refuses a directory
# holding any of them, and the temporary files of their writes are cleaned up.
RUN_FILES = (CHECKPOINT, MODEL, BEST, HISTORY_JSON, HISTORY_PNG, RUN_JSON)
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
    """How to train: the seed's recipe by default (Adam, batch 64, 10 epochs).

    ``schedule``: "constant" (the seed's) keeps ``learning_rate``; "cosine" sets epoch e's
    (from 0) to ``learning_rate * (1 + cos(pi * e / epochs)) / 2``, falling from the full rate
    in the first epoch towards zero in the last. It is a function of the epoch alone, so a
    resumed run uses the rates of an unbroken one.
    """

    epochs: int = 10
    batch_size: int = 64
    learning_rate: float = 1e-3
    seed: int = 0
    augment: bool = False
    schedule: str = "constant"
    extra: dict = field(default_factory=dict)     # data set and backend, recorded in run.json

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"Recipe: schedule must be one of {SCHEDULES}, got {self.schedule!r}")

    def learning_rate_at(self, epoch: int) -> float:
        """The learning rate of epoch ``epoch`` (0 is the first)."""
        if self.schedule == "cosine":
            return self.learning_rate * (1 + math.cos(math.pi * epoch / self.epochs)) / 2
        return self.learning_rate


SCHEDULES = ("constant", "cosine")


class RunDirectoryError(ValueError):
    """The run directory cannot be used as asked (a run is there already, or its files are bad)."""


class TrainingDiverged(RuntimeError):
    """The loss or a weight became NaN or infinite; nothing from that point was saved."""


# --- the lock --------------------------------------------------------------------------------

_held_locks: dict = {}       # resolved run directory -> [file descriptor, depth]


@contextlib.contextmanager
def run_lock(run_dir, create: bool = True):
    """Hold ``run_dir`` for this process: an exclusive lock on ``run_dir/.minires-run.lock``.

    Raises RunDirectoryError at once when another process holds it. Re-entrant within a
    process (the command line holds it around ``Trainer.resume`` and ``fit``, which takes it
    too). On taking it, the temporary files that a killed write left in the directory are
    deleted: nobody else can be writing them. ``create``: make the directory if missing
    (otherwise a missing directory is a RunDirectoryError).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        if not create:
            raise RunDirectoryError(f"{run_dir}: no such run directory")
        run_dir.mkdir(parents=True, exist_ok=True)
    key = run_dir.resolve()
    held = _held_locks.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield run_dir
        finally:
            held[1] -= 1
        return
    fd = _take_lock(run_dir)
    _held_locks[key] = [fd, 1]
    try:
        _remove_stale_parts(run_dir)
        yield run_dir
    finally:
        del _held_locks[key]
        # Removed while still held, so that a run finding the file finds it locked; closing
        # the descriptor releases the lock.
        with contextlib.suppress(OSError):
            os.unlink(run_dir / LOCK)
        os.close(fd)


def _take_lock(run_dir: Path) -> int:
    """The open, exclusively locked lock file (its descriptor)."""
    path = run_dir / LOCK
    for _ in range(100):
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock_exclusive(fd, run_dir)
            try:
                same = os.stat(path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))   # named when another run is refused
                return fd
        except BaseException:
            os.close(fd)
            raise
        # The run that held it removed the file between our open and our lock: take the new one.
        os.close(fd)
    raise RunDirectoryError(f"{run_dir}: cannot lock the run directory (its lock file keeps changing)")


def _lock_exclusive(fd: int, run_dir: Path) -> None:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            import msvcrt

            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as exc:
        if not isinstance(exc, (BlockingIOError, PermissionError)):
            raise RunDirectoryError(f"{run_dir}: cannot lock the run directory ({exc})") from None
        try:
            owner = f" (process {int(os.pread(fd, 32, 0).split()[0])})"
        except (OSError, ValueError, IndexError, AttributeError):
            owner = ""
        raise RunDirectoryError(f"{run_dir} is in use by another run{owner}; wait for it to end, "
                                f"or choose another --out") from None


def _remove_stale_parts(run_dir: Path) -> None:
    """Delete the temporary files of writes that a kill cut short (``atomic_write``'s names)."""
    for name in RUN_FILES:
        for stale in run_dir.glob(f".{name}.*.part"):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()


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
    """Trains a compiled model on a Dataset into a run directory.

    A subclass adapts it to other data: ``_batch`` prepares a batch of ``x_train``,
    ``_validation_logs`` scores the model after an epoch, and ``best_metric`` names the
    validation score (higher is better) that picks best.npz.
    """

    best_metric = "val_accuracy"

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
        self._claimed = False               # the run directory is known to be this run's

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
        state = _trainer_state(meta, path)
        saved = state["run"]
        trainer = cls(model, data, run_dir, recipe, **kwargs)
        mine = trainer.run_config()
        for key in ("data", "train_size", "val_size", "class_names"):
            if saved.get(key) != mine.get(key):
                raise RunDirectoryError(
                    f"{path}: the checkpoint was trained on {key}={saved.get(key)!r}, "
                    f"but this run has {key}={mine.get(key)!r}; resume with the same data")
        # Runs saved before the schedule existed had a constant learning rate.
        before = {"schedule": "constant"}
        for key in ("batch_size", "seed", "augment", "learning_rate", "schedule"):
            if saved["recipe"].get(key, before.get(key)) != mine["recipe"].get(key):
                raise RunDirectoryError(
                    f"{path}: the checkpoint used {key}={saved['recipe'].get(key, before.get(key))!r}, "
                    f"this run asks for {mine['recipe'].get(key)!r}; an exact resume needs the same "
                    f"recipe")
        trainer.epoch = state["epoch"]
        trainer.history = {k: list(v) for k, v in state["history"].items()}
        try:
            trainer.rng = generator_from_state(state["rng_state"])
        except (ValueError, TypeError, KeyError) as exc:
            raise RunDirectoryError(f"{path}: bad trainer state: rng_state ({exc})") from None
        order = arrays.get(_POSITION_KEY)
        if order is not None:
            n = len(data.x_train)
            if (order.ndim != 1 or order.dtype.kind not in "iu" or len(order) != n
                    or not numpy.array_equal(numpy.sort(order), numpy.arange(n))):
                raise RunDirectoryError(f"{path}: bad trainer state: the epoch order is not an order "
                                        f"of the {n} training images")
            partial = state["partial"]
            trainer.loop = trainer._epoch_loop(order, state["next_batch"], RunningTotals(
                partial["seen"], partial["loss"], partial["correct"]))
            trainer.seconds = float(partial["seconds"])
        trainer._claimed = True
        return trainer

    def _write_results(self) -> None:
        # The PNG first: a history.json that is up to date says the PNG is too.
        try:
            from .plots import plot_history

            plot_history(self.history, self.run_dir / HISTORY_PNG,
                         metric=self.best_metric.removeprefix("val_"))
        except ImportError as exc:
            print(f"minires: no learning-curve PNG ({exc})", file=sys.stderr)
        _write_json(self.run_dir / HISTORY_JSON, {"epochs": self.epoch, "history": self.history})

    def _repair_results(self) -> None:
        """Rewrite what a kill after the last checkpoint left behind it: history.json (and its
        PNG), best.npz, run.json. The checkpoint holds everything they are made from."""
        if not (self.run_dir / RUN_JSON).is_file():
            _write_json(self.run_dir / RUN_JSON, self.run_config())
        if self.epoch == 0:
            return
        if _read_json(self.run_dir / HISTORY_JSON) != {"epochs": self.epoch, "history": self.history}:
            self._write_results()
        best = _best_epoch(self.history, self.best_metric)
        if best is None or _saved_epoch(self.run_dir / BEST) == best:
            return
        if best == self.epoch and self.loop is None:
            self._save_best()         # the checkpoint's weights are those of the best epoch
        else:
            print(f"minires: {self.run_dir / BEST} does not hold epoch {best}, the best so far, "
                  f"and the checkpoint has moved past it; it is replaced at the next better epoch",
                  file=sys.stderr)

    # -- the loop -----------------------------------------------------------------------------

    def _batch(self, x_batch: numpy.ndarray) -> numpy.ndarray:
        """A batch as the model trains on it: scaled to [0, 1], augmented if the recipe says so."""
        x_batch = scale_batch(x_batch)
        return x_batch if self.augmenter is None else self.augmenter(x_batch, self.rng)

    def _epoch_loop(self, order, next_batch: int = 0, totals: RunningTotals | None = None) -> EpochLoop:
        return EpochLoop(self.model, self.data.x_train, self.data.y_train, self.recipe.batch_size,
                         order=order, transform=self._batch, next_batch=next_batch, totals=totals,
                         check_finite=True)

    def _epoch(self, interrupt: _Interrupt) -> bool:
        """Train on the rest of the current epoch; False when stopped by Ctrl-C."""
        if self.loop is None:
            self.loop = self._epoch_loop(self.rng.permutation(len(self.data.x_train)))
            self.seconds = 0.0
        if self.recipe.schedule != "constant":     # constant: the rate the model was compiled with
            self.model.optimizer.learning_rate = self.recipe.learning_rate_at(self.epoch)
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
        logs.update(self._validation_logs())
        bar.close(**logs)
        logs["seconds"] = self.seconds
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)
        self.epoch += 1
        self.loop = None
        return True

    def _validation_logs(self) -> dict:
        """The scores on the validation data after an epoch ({} without it)."""
        if self.data.x_val is None or not len(self.data.x_val):
            return {}
        val_loss, val_acc = self.model.evaluate(scale_batch(self.data.x_val), self.data.y_val,
                                                batch_size=256, verbose=0)
        return {"val_loss": float(val_loss), "val_accuracy": float(val_acc)}

    def _keep_if_best(self) -> None:
        """Save the model as best.npz when the epoch just finished has the best val accuracy."""
        if _best_epoch(self.history, self.best_metric) == self.epoch:
            self._save_best()

    def model_metadata(self) -> dict:
        """What model.npz and best.npz carry besides the weights (a subclass may add to it)."""
        return {"class_names": list(self.data.class_names)}

    def _save_best(self) -> None:
        save_model(self.model, self.run_dir / BEST, include_optimizer=False,
                   metadata={**self.model_metadata(), "epoch": self.epoch,
                             self.best_metric: self.history[self.best_metric][self.epoch - 1]})

    def _check_finite_weights(self) -> None:
        xp = array_module(*self.model.weights)
        for name, weight in zip(self.model.weight_names(), self.model.weights):
            if not bool(xp.isfinite(weight).all()):
                raise NonFiniteLossError(f"the weight {name} became non-finite (a gradient overflowed)")

    def _diverged(self, exc: Exception) -> TrainingDiverged:
        kept = (f"{self.run_dir / CHECKPOINT} still holds the last finite state"
                if (self.run_dir / CHECKPOINT).exists() else "no checkpoint was written")
        return TrainingDiverged(f"training diverged in epoch {self.epoch + 1}: {exc}; nothing from "
                                f"there on was saved, and {kept}; try a lower learning rate")

    def fit(self) -> dict:
        """Train until ``recipe.epochs`` epochs are complete or Ctrl-C; returns the history.

        Holds the run directory's lock throughout (``run_lock``). A trainer made fresh refuses
        a directory that holds another run's files; a resumed one first repairs the files that
        a kill may have left behind its checkpoint. Raises TrainingDiverged (nothing saved from
        that epoch on) when the loss or a weight becomes non-finite.
        """
        with run_lock(self.run_dir):
            if not self._claimed:
                check_fresh_run_dir(self.run_dir)
                self._claimed = True
            else:
                self._repair_results()
            return self._fit()

    def _fit(self) -> dict:
        started = time.perf_counter()
        config_written = False
        # NumPy's overflow warnings would only repeat, less clearly, what the checks for
        # non-finite numbers report.
        with _Interrupt() as interrupt, numpy.errstate(over="ignore", invalid="ignore", divide="ignore"):
            while self.epoch < self.recipe.epochs:
                try:
                    completed = self._epoch(interrupt)
                    self._check_finite_weights()
                except NonFiniteLossError as exc:
                    raise self._diverged(exc) from None
                self.save_checkpoint()
                if not config_written:      # after the checkpoint: a directory with a run.json
                    _write_json(self.run_dir / RUN_JSON, self.run_config())   # can be resumed
                    config_written = True
                if not completed:
                    self.stopped_early = True
                    print(f"Checkpoint saved to {self.run_dir / CHECKPOINT} in epoch {self.epoch + 1}, "
                          f"batch {self.next_batch}; continue with --resume.", file=sys.stderr)
                    break
                self._write_results()
                self._keep_if_best()
        if not self.stopped_early:
            save_model(self.model, self.run_dir / MODEL, include_optimizer=False,
                       metadata=self.model_metadata())
            print(f"Trained {self.epoch} epoch{'s' if self.epoch != 1 else ''} in "
                  f"{format_duration(time.perf_counter() - started)}; model saved to {self.run_dir / MODEL}",
                  file=self.stream)
            scores = self.history.get(self.best_metric)
            if scores:
                best = _best_epoch(self.history, self.best_metric)
                label = self.best_metric.replace("val_", "Validation ").replace("_", " ")
                print(f"{label} {scores[-1]:.4f} after the last epoch, best {scores[best - 1]:.4f} "
                      f"after epoch {best} ({self.run_dir / BEST})", file=self.stream)
        return self.history


def check_fresh_run_dir(run_dir) -> None:
    """Refuse to start a new run in a directory that holds any file a run writes."""
    found = [name for name in RUN_FILES if (Path(run_dir) / name).exists()]
    if CHECKPOINT in found:
        raise RunDirectoryError(
            f"{run_dir} already holds a run ({', '.join(found)}); continue it with --resume, or "
            f"choose another --out")
    if found:
        raise RunDirectoryError(
            f"{run_dir} holds another run's files ({', '.join(found)}) and no {CHECKPOINT} to "
            f"resume from; choose another --out, or move them away")


def _trainer_state(meta: dict, path: Path) -> dict:
    """The trainer's state in a checkpoint's metadata, its fields checked."""
    state = (meta.get("metadata") or {}).get("trainer") if isinstance(meta.get("metadata"), dict) else None
    if not isinstance(state, dict):
        raise RunDirectoryError(f"{path}: not a training checkpoint (no trainer state)")
    fields = {"epoch": int, "next_batch": int, "partial": dict, "rng_state": dict, "history": dict,
              "run": dict}
    for key, kind in fields.items():
        if not isinstance(state.get(key), kind) or isinstance(state.get(key), bool):
            raise RunDirectoryError(f"{path}: not a checkpoint of minires train: its trainer state "
                                    f"has no valid {key!r}")
    if state["epoch"] < 0 or state["next_batch"] < 0:
        raise RunDirectoryError(f"{path}: bad trainer state: a negative epoch or batch")
    partial, run = state["partial"], state["run"]
    if not all(isinstance(partial.get(k), (int, float)) for k in ("loss", "correct", "seen", "seconds")):
        raise RunDirectoryError(f"{path}: not a checkpoint of minires train: its trainer state "
                                f"has no valid 'partial' totals")
    if not isinstance(run.get("recipe"), dict):
        raise RunDirectoryError(f"{path}: not a checkpoint of minires train: its trainer state "
                                f"has no valid 'run' recipe")
    if not all(isinstance(v, list) for v in state["history"].values()):
        raise RunDirectoryError(f"{path}: not a checkpoint of minires train: its trainer state "
                                f"has no valid 'history'")
    return state


def _best_epoch(history: dict, metric: str = "val_accuracy") -> int | None:
    """The epoch (from 1) of the best ``metric``, the last of equal bests; None without."""
    scores = history.get(metric)
    if not scores:
        return None
    return max(range(len(scores)), key=lambda i: (scores[i], i)) + 1


def _saved_epoch(path: Path) -> int | None:
    """The epoch recorded in a best.npz, None when it is missing or unreadable."""
    try:
        _, meta = read_archive(path)
    except (OSError, ValueError):
        return None
    epoch = (meta.get("metadata") or {}).get("epoch") if isinstance(meta.get("metadata"), dict) else None
    return epoch if isinstance(epoch, int) else None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


"""The command line: ``minires train | evaluate | predict | bench | verify | export``.

Every command fails with one line on stderr and a non-zero exit code (1 for bad input or
files, an error no file should cause, or memory run out; 2 for bad usage; 130 for Ctrl-C),
never with a traceback; ``MINIRES_DEBUG=1`` shows the traceback. ``minires verify`` exits 0
when nothing disagrees and 1 when something does. docs/robustness.md says what the commands
guarantee about files, runs, interrupts and non-finite numbers.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import sys
from pathlib import Path

import numpy

SYNTHETIC_SIZE = 10000
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
PREDICT_BATCH = 256
# evaluate and predict refuse a model whose forward pass would need more than this for one
# image (its input shape is whatever its file says), and run fewer images at a time than
# PREDICT_BATCH when a batch would need more than BATCH_BYTES.
MAX_EXAMPLE_BYTES = 16 * 2 ** 20
BATCH_BYTES = 384 * 2 ** 20


class CommandError(Exception):
    """A problem the user can fix, reported as one line."""


class UsageError(CommandError):
    """A command asked for something that does not exist (exit 2, as argparse's errors)."""


# --- data sources ------------------------------------------------------------------------------

def _is_cifar10_location(path: Path) -> bool:
    if path.is_file():
        return path.name.endswith((".tar.gz", ".tgz"))
    return (path / "data_batch_1").is_file() or (path / "cifar-10-batches-py").is_dir()


def load_source(dataset: str | None, data: str | None, split: str, image_size=(32, 32),
                synthetic_size: int = SYNTHETIC_SIZE):
    """(x uint8 NHWC, y int64, class_names, description) of the named data.

    split: "train" or "test" for CIFAR-10 in its official format (an image folder or the
    synthetic set has one pool of images: "train" is all of it, "test" a fresh synthetic draw).
    """
    if data is None and dataset in (None, "synthetic"):
        from .data.synthetic import SYNTHETIC_CLASSES, make_synthetic

        seed = 0 if split == "train" else 1
        x, y = make_synthetic(synthetic_size, seed=seed)
        return x, y, list(SYNTHETIC_CLASSES), f"synthetic(n={synthetic_size}, seed={seed})"
    if dataset == "synthetic":
        raise CommandError("--dataset synthetic takes no --data (it is generated, not read)")
    location = None if data is None else Path(data).expanduser()
    if location is not None and not location.exists():
        raise CommandError(f"{location}: no such file or directory")
    if dataset == "cifar10" or (location is not None and _is_cifar10_location(location)):
        from .data.cifar10 import CIFAR10_CLASSES, load_data

        (x_train, y_train), (x_test, y_test) = load_data(location)
        x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
        return x, y.reshape(-1).astype(numpy.int64), list(CIFAR10_CLASSES), f"cifar10:{split}"
    if dataset not in (None, "folder"):
        raise CommandError(f"--dataset must be synthetic, cifar10 or folder, got {dataset!r}")
    if location is None:
        raise CommandError("--dataset folder needs --data DIR")
    from .data.folders import load_image_folder

    x, y, names = load_image_folder(location, image_size=image_size)
    # Named by its last two path parts: enough to tell runs apart, and no machine's layout.
    return x, y, names, f"folder:{'/'.join(location.resolve().parts[-2:])}"


# --- commands ----------------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def _set_backend(name: str | None, threads: int | None, command: str | None = None,
                 default: str = "auto", why_default: str = "") -> str:
    """Choose the backend and the thread count; with ``command``, return the line that says
    which backend runs, for the command to print (stderr) as its first line once its inputs
    are read and checked: a command that fails before that still fails with one line.

    Which backend: ``--backend`` when given, else ``MINIRES_BACKEND`` when set, else
    ``default``: ``auto`` (numba when Numba imports, else numpy) for every command but those
    whose work is over before Numba's compiled kernels would be loaded; the command line runs
    the fast path unless told otherwise, where the library's own default stays numpy, the
    reference path.
    """
    from . import backend

    if threads is not None:
        backend.set_num_threads(threads)
    if command is None:                 # bench: the backends it times are its own choice
        if name is not None:
            backend.set_backend(name)
        return backend.get_backend()
    source = "--backend"
    if name is None:
        name, source = backend.requested_backend(), "MINIRES_BACKEND"
    if name is None and default != backend.AUTO:
        name, source = default, f"the default for this command: {why_default}"
    if name is None:
        name, source = backend.AUTO, "the default, auto"
    if name == backend.AUTO:
        chosen = backend.auto_backend()
        how = f"{source}: numba when Numba imports, else numpy"
        how += "" if chosen == "numba" else "; Numba does not import here"
    else:
        chosen, how = name, source
    backend.set_backend(chosen)
    return f"minires {command}: backend {chosen} ({how}), {backend.get_num_threads()} thread(s)"


def cmd_train(args) -> int:
    from .data.split import stratified_split
    from .models import build_resnet
    from .optim import Adam
    from .train import Dataset, Recipe, Trainer, check_fresh_run_dir, default_run_dir, run_lock

    announce = _set_backend(args.backend, args.threads, "train")
    x, y, names, description = load_source(args.dataset, args.data, "train",
                                           synthetic_size=args.synthetic_size)
    train_index, val_index = stratified_split(y, args.val_split, seed=args.seed)
    data = Dataset(x[train_index], y[train_index], x[val_index] if len(val_index) else None,
                   y[val_index] if len(val_index) else None, names,
                   f"{description}; val_split={args.val_split}")
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                    seed=args.seed, augment=args.augment)
    run_dir = Path(args.out) if args.out else default_run_dir()
    mode = "silent" if args.quiet else "bar"
    # The lock is held from the checks to the last write: a second run into the same
    # directory is refused, not interleaved.
    with run_lock(run_dir, create=not args.resume):
        if args.resume:
            trainer = Trainer.resume(run_dir, data, recipe, progress_mode=mode)
            print(announce, file=sys.stderr)
            print(f"Resuming {run_dir} after epoch {trainer.epoch}"
                  + (f", batch {trainer.next_batch}" if trainer.next_batch else ""), file=sys.stderr)
        else:
            check_fresh_run_dir(run_dir)
            model = build_resnet(input_shape=x.shape[1:], num_classes=len(names), seed=args.seed)
            model.compile(optimizer=Adam(learning_rate=args.lr), loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            trainer = Trainer(model, data, run_dir, recipe, progress_mode=mode)
            print(announce, file=sys.stderr)
            print(f"Training on {description}: {len(train_index)} images, {len(val_index)} for "
                  f"validation; run directory {run_dir}", file=sys.stderr)
        trainer.fit()
    return EXIT_INTERRUPTED if trainer.stopped_early else 0


def cmd_changes_train(args) -> int:
    from .changes.train import ChangeTrainer, change_dataset, held_out_split, split_metadata
    from .models import build_change_net
    from .train import (CHECKPOINT, Recipe, RunDirectoryError, check_fresh_run_dir,
                        default_run_dir, run_lock)

    announce = _set_backend(args.backend, args.threads, "changes train")
    size = args.image_size
    x, _, _, description = load_source(args.dataset, args.data, "train", image_size=(size, size),
                                       synthetic_size=args.synthetic_size)
    recipe = Recipe(epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
                    seed=args.seed, schedule=args.schedule)
    run_dir = Path(args.out) if args.out else default_run_dir()
    mode = "silent" if args.quiet else "bar"
    with run_lock(run_dir, create=not args.resume):
        # What can refuse the run is checked before the minute the pairs take to make.
        if args.resume and not (run_dir / CHECKPOINT).is_file():
            raise RunDirectoryError(f"{run_dir / CHECKPOINT}: no checkpoint to resume from")
        if not args.resume:
            check_fresh_run_dir(run_dir)
        print(announce, file=sys.stderr)
        # The validation pairs come from images the model never trains on.
        train_idx, held_idx = held_out_split(len(x), args.val_split, args.seed)
        split = split_metadata(len(x), args.val_split, args.seed, description)
        data = change_dataset(x[train_idx], x[held_idx], seed=args.seed, progress=not args.quiet,
                              description=f"{description}; val_split={args.val_split}")
        if args.resume:
            trainer = ChangeTrainer.resume(run_dir, data, recipe, progress_mode=mode, split=split)
            print(f"Resuming {run_dir} after epoch {trainer.epoch}"
                  + (f", batch {trainer.next_batch}" if trainer.next_batch else ""), file=sys.stderr)
        else:
            model = build_change_net((None, None, 3), filters=args.filters, blocks=args.blocks,
                                     seed=args.seed, learning_rate=args.lr,
                                     pos_weight=args.pos_weight)
            trainer = ChangeTrainer(model, data, run_dir, recipe, progress_mode=mode, split=split)
            print(f"Training a change net on pairs of {description}: {len(train_idx)} pairs, "
                  f"{len(held_idx)} for validation; run directory {run_dir}", file=sys.stderr)
        trainer.fit()
    return EXIT_INTERRUPTED if trainer.stopped_early else 0


def _write_png(path: str, image: numpy.ndarray) -> None:
    """A uint8 image as a PNG at ``path``, complete or not at all (atomic_write)."""
    from PIL import Image

    from .data.atomic import atomic_write

    with atomic_write(path) as handle:
        Image.fromarray(image).save(handle, format="PNG")


def _read_rgb(path: str) -> numpy.ndarray:
    """An image at its own size, through the same checked decoding as training and predict
    (pixel limit before decoding, 16-bit and palette modes, EXIF orientation)."""
    from .data.folders import decode_image

    try:
        return decode_image(path, None)
    except (OSError, ValueError) as exc:
        raise CommandError(f"{path}: not a readable image ({_one_line(exc)})") from None


def cmd_changes_detect(args) -> int:
    import json

    from .changes.detect import change_map, describe

    # One forward pass of one pair: loading Numba and its compiled kernels takes longer than
    # the numpy backend needs for the whole pass, even at 512x512 (docs/changes.md).
    announce = _set_backend(args.backend, args.threads, "changes detect", default="numpy",
                            why_default="one pair is done before Numba's kernels would be loaded")
    model, _, _ = _load_model(args.model)
    before, after = _read_rgb(args.before), _read_rgb(args.after)
    if before.shape != after.shape:
        raise CommandError(f"{args.before} is {before.shape[1]}x{before.shape[0]} but {args.after} "
                           f"is {after.shape[1]}x{after.shape[0]}: a pair must have one size")
    print(announce, file=sys.stderr)
    probs = change_map(model, before, after)
    result = describe(probs, args.threshold)
    changed = probs > args.threshold
    if args.out_mask:
        _write_png(args.out_mask, (changed * 255).astype(numpy.uint8))
    if args.overlay:
        shown = after.copy()
        shown[changed] = (0.5 * shown[changed] + [127, 0, 0]).astype(numpy.uint8)
        _write_png(args.overlay, shown)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"changed fraction {result['changed_fraction']:.4f}, score {result['score']:.4f}, "
              f"{len(result['regions'])} region(s)")
        for top, left, bottom, right in result["regions"]:
            print(f"  rows {top}-{bottom}, columns {left}-{right}")
    return 0


def cmd_changes_evaluate(args) -> int:
    import json

    from .changes.evaluate import GRID_COLUMNS, evaluate_pairs, example_grid
    from .changes.train import held_out_split
    from .data.changes import make_change_pairs
    from .models import change_net_pooling
    from .serialization import load_model_with_metadata

    announce = _set_backend(args.backend, args.threads, "changes evaluate")
    model, metadata = load_model_with_metadata(args.model)
    if len(model.inputs) != 2 or model.output.shape[-1] != 1:
        raise CommandError(f"{args.model}: not a change net (two image inputs, one change map out)")
    size = args.image_size
    x, _, _, description = load_source(args.dataset, args.data, "train", image_size=(size, size),
                                       synthetic_size=args.synthetic_size)
    factor = change_net_pooling(model)
    if x.shape[1] % factor or x.shape[2] % factor:
        raise CommandError(f"the images are {x.shape[2]}x{x.shape[1]}, but this change net needs "
                           f"sides divisible by {factor}; pick another --image-size")
    split = metadata.get("change_split") if isinstance(metadata, dict) else None
    matches = (isinstance(split, dict) and split.get("images") == len(x)
               and split.get("data") == description)
    if args.images == "held-out" and not matches:
        raise CommandError(f"{args.model} does not say which of these {len(x)} images it was "
                           f"trained on (it was trained on "
                           f"{split.get('data') if isinstance(split, dict) else 'unknown data'}); "
                           f"use --images all")
    use_held = args.images == "held-out" or (args.images == "auto" and matches)
    if use_held:
        _, held_idx = held_out_split(len(x), split["val_split"], split["seed"])
        x = x[held_idx]
    seed = args.seed if args.seed is not None else (int(split["seed"]) + 2 if matches else 2)
    which = "held out of its training" if use_held else "all given (the model may have seen some)"
    print(announce, file=sys.stderr)
    print(f"Evaluating {args.model} on {args.pairs or len(x)} pairs (seed {seed}) of {len(x)} "
          f"images of {description}, {which}", file=sys.stderr)
    pairs = make_change_pairs(x, count=args.pairs, seed=seed)
    report, probs = evaluate_pairs(model, pairs, args.threshold)
    report.update({"data": description, "images": "held-out" if use_held else "all", "seed": seed})
    if args.grid:
        _write_png(args.grid, example_grid(pairs, probs, report, rows=args.grid_rows))
    if args.json:
        print(json.dumps(report))
        return 0
    print(f"{report['pairs']} pairs, {report['changed_pairs']} with a change, "
          f"{100 * report['changed_pixels']:.2f} % of the pixels changed")
    print(f"{'method':<34}{'precision':>10}{'recall':>8}{'F1':>8}{'IoU':>8}{'AUC':>8}")
    labels = {"model": f"change net (threshold {args.threshold:g})",
              "otsu": f"difference, Otsu ({report['otsu']['threshold']:.0f})",
              "best": f"difference, best ({report['best']['threshold']:.0f})*"}
    for method, label in labels.items():
        scores = report[method]
        auc = "-" if scores["auc"] is None else f"{scores['auc']:.4f}"
        print(f"{label:<34}{scores['precision']:>10.4f}{scores['recall']:>8.4f}"
              f"{scores['f1']:>8.4f}{scores['iou']:>8.4f}{auc:>8}")
    print("* its threshold is the one with the best F1 on these very pairs: an upper bound")
    if args.grid:
        print(f"Examples written to {args.grid} (columns: {', '.join(GRID_COLUMNS)})")
    return 0


def _load_model(path: str):
    """(model, the class names saved with it or None, the batch size to predict with)."""
    from .serialization import load_model_with_metadata

    model, metadata = load_model_with_metadata(path)
    metadata = metadata if isinstance(metadata, dict) else {}
    names = metadata.get("class_names")
    trainer = metadata.get("trainer")
    if names is None and isinstance(trainer, dict) and isinstance(trainer.get("run"), dict):
        names = trainer["run"].get("class_names")        # a checkpoint keeps them in its run
    valid = isinstance(names, list) and len(names) == model.output.shape[-1]
    return model, (names if valid else None), _predict_batch(model, path)


def _predict_batch(model, path) -> int:
    """How many images to run at once: PREDICT_BATCH, fewer when one image's forward pass
    (about twice the layers' outputs: the outputs and a workspace such as im2col's columns of
    the same order) needs much memory; a model needing more than MAX_EXAMPLE_BYTES is refused."""
    elements = sum(math.prod(d or 1 for d in layer.output_shape[1:])
                   for layer in model.layers if getattr(layer, "output_shape", None))
    need = 2 * elements * numpy.dtype(model.dtype).itemsize
    if need > MAX_EXAMPLE_BYTES:
        raise CommandError(f"{path}: the model's forward pass needs about {need / 2 ** 20:.0f} MB for "
                           f"one image (input {tuple(model.input.shape[1:])}), more than the "
                           f"{MAX_EXAMPLE_BYTES / 2 ** 20:.0f} MB this command allows")
    return max(1, min(PREDICT_BATCH, BATCH_BYTES // need))


def _predict(model, x, batch: int) -> numpy.ndarray:
    """The model's probabilities for uint8 images x, scaled a batch at a time (never all of x
    in float32 at once)."""
    from .train import scale_batch

    return numpy.concatenate([model.predict(scale_batch(x[i:i + batch]), batch_size=batch)
                              for i in range(0, len(x), batch)])


def _class_names(saved, classes: int, fallback=None) -> list:
    """The model's saved class names, else ``fallback`` (the data's), else "class 0", ..."""
    for names in (saved, fallback):
        if names is not None and len(names) == classes:
            return list(names)
    return [f"class {i}" for i in range(classes)]


def _check_same_classes(model_path: str, saved, names: list, description: str) -> None:
    """Refuse to score data whose classes are not the model's: label i would be compared
    with the model's class i, whatever the two are called."""
    if saved is None or list(saved) == list(names):
        return
    differ = next((i for i, (a, b) in enumerate(zip(saved, names)) if a != b), min(len(saved), len(names)))
    mine = repr(saved[differ]) if differ < len(saved) else "none"
    theirs = repr(names[differ]) if differ < len(names) else "none"
    raise CommandError(f"{model_path} was trained on other classes than {description} holds (class "
                       f"{differ}: {mine} for the model, {theirs} in the data; {len(saved)} and "
                       f"{len(names)} classes); evaluate it on data with the model's classes")


def cmd_evaluate(args) -> int:
    from .data.split import stratified_split

    announce = _set_backend(args.backend, args.threads, "evaluate")
    if args.split == "val" and not args.val_split:
        raise CommandError("--split val needs --val-split > 0: with --val-split 0 nothing is held "
                           "out for validation")
    model, saved_names, batch = _load_model(args.model)
    source_split = "train" if args.split in ("train", "val", "all") else "test"
    x, y, names, description = load_source(args.dataset, args.data, source_split,
                                           image_size=tuple(model.input.shape[1:3]),
                                           synthetic_size=args.synthetic_size)
    _check_same_classes(args.model, saved_names, names, description)
    if args.split in ("train", "val") and args.val_split:
        train_index, val_index = stratified_split(y, args.val_split, seed=args.seed)
        chosen = val_index if args.split == "val" else train_index
        x, y = x[chosen], y[chosen]
    if len(x) == 0:
        raise CommandError(f"no images to evaluate in {description} ({args.split})")
    classes = model.output.shape[-1]
    if int(y.max()) >= classes:
        raise CommandError(f"{description} has {int(y.max()) + 1} classes but the model predicts {classes}")
    model_names = _class_names(saved_names, classes, fallback=names)
    print(announce, file=sys.stderr)
    probs = _predict(model, x, batch)
    eps = numpy.finfo(numpy.float64).tiny
    loss = float(-numpy.mean(numpy.log(numpy.maximum(probs[numpy.arange(len(y)), y].astype(numpy.float64), eps))))
    predicted = probs.argmax(axis=1)
    matrix = numpy.zeros((classes, classes), dtype=numpy.int64)
    numpy.add.at(matrix, (y, predicted), 1)
    print(f"{description} ({args.split}): {len(y)} images")
    print(f"loss {loss:.4f}   accuracy {float((predicted == y).mean()):.4f}")
    print("\nper-class accuracy")
    width = max(len(n) for n in model_names)
    for i, name in enumerate(model_names):
        total = matrix[i].sum()
        text = f"{matrix[i, i] / total:.4f}  ({matrix[i, i]}/{total})" if total else "-"
        print(f"  {name:<{width}}  {text}")
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    cell = max(5, len(str(matrix.max())) + 1)
    print(" " * (width + 2) + "".join(f"{i:>{cell}}" for i in range(classes)))
    for i, name in enumerate(model_names):
        print(f"  {name:<{width}}" + "".join(f"{v:>{cell}}" for v in matrix[i]))
    png = Path(args.confusion_png) if args.confusion_png else Path(args.model).with_name(
        Path(args.model).stem + f"-confusion-{args.split}.png")
    try:
        from .plots import plot_confusion

        plot_confusion(matrix, model_names, png, title=f"{description} ({args.split})")
        print(f"\nconfusion matrix drawn in {png}")
    except ImportError as exc:
        print(f"\nno PNG: {exc}", file=sys.stderr)
    return 0


def cmd_predict(args) -> int:
    from .data.folders import decode_image

    announce = _set_backend(args.backend, args.threads, "predict")
    model, saved_names, batch = _load_model(args.model)
    names = _class_names(saved_names, model.output.shape[-1])
    size = tuple(model.input.shape[1:3])
    images, paths = [], []
    for path in args.images:
        try:
            images.append(decode_image(path, size))
        except (OSError, ValueError) as exc:
            raise CommandError(f"{path}: cannot read this image ({exc})") from None
        paths.append(path)
    print(announce, file=sys.stderr)
    probs = _predict(model, numpy.stack(images), batch)
    top = min(args.top, len(names))
    for path, p in zip(paths, probs):
        order = numpy.argsort(-p, kind="stable")[:top]
        print(f"{path}: " + ", ".join(f"{names[i]} {p[i]:.4f}" for i in order))
    return 0


def cmd_bench(args) -> int:
    if args.what == "gpu":
        # The cupy backend against PyTorch + cuDNN; it chooses its backend itself.
        from .bench.gpu import run_gpu_benchmarks

        run_gpu_benchmarks(out_dir=Path(args.out), repeats=args.repeats, with_torch=not args.no_torch)
        return 0
    from .bench.report import run_benchmarks

    _set_backend(None, args.threads)
    run_benchmarks(args.what, out_dir=Path(args.out), repeats=args.repeats, with_torch=not args.no_torch,
                   rounds=args.rounds, with_torch_loaded=args.with_torch_loaded)
    return 0


def _listed(text: str | None, known, what: str) -> list[str] | None:
    """The names of a comma-separated option, checked against ``known``; None when omitted."""
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return list(known)
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        raise UsageError(f"{what}: unknown {', '.join(map(repr, unknown)) or 'empty list'}; "
                         f"choose from {', '.join(known)} or all")
    return list(dict.fromkeys(names))


def _frameworks_to_check(against: str | None, what: str = "--against") -> list[str]:
    from .frameworks import FRAMEWORKS, install_hint, installed

    asked = _listed(against, list(FRAMEWORKS), what)
    if asked is not None and against.strip() != "all":
        missing = [name for name in asked if not installed(name)]
        if missing:
            raise UsageError("not installed: " + ", ".join(f"{name} ({install_hint(name)})" for name in missing))
        return asked
    chosen = [name for name in (asked or FRAMEWORKS) if installed(name)]
    skipped = [name for name in (asked or FRAMEWORKS) if not installed(name)]
    if not chosen:
        raise UsageError("no framework to verify against is installed; " +
                         ", ".join(f"{name}: {install_hint(name)}" for name in FRAMEWORKS))
    if skipped:
        print("minires verify: not installed, skipped: " +
              ", ".join(f"{name} ({install_hint(name)})" for name in skipped), file=sys.stderr)
    return chosen


def _model_cells(model: str, frameworks: list[str], dtypes: list[str], steps: int) -> dict:
    """The whole-model cells of ``minires.verify.models`` for each dtype, merged."""
    from .verify import models

    merged = {"versions": {}, "cells": []}
    for dtype in dtypes:
        result = models.run(None if model == "seed" else model, frameworks, dtype, steps,
                            lambda line: print(line, file=sys.stderr))
        merged["versions"].update(result.get("versions", {}))
        merged["cells"] += result.get("cells", [])
    return merged


def cmd_verify(args) -> int:
    from .verify import format_markdown, format_text, replay, save_failures, verify, write_json
    from .verify.cases import DTYPES
    from .verify.engine import Report
    from .verify.specs import OPS

    model = args.model or args.model_option
    if args.model and args.model_option:
        raise UsageError("give the model once: MODEL or --model")
    if args.replay:
        if model or args.against or args.ops:
            raise UsageError("--replay runs the saved case against its own framework; it takes no "
                             "MODEL, --against or --ops")
        from .verify.replay import load_reproducer

        try:
            meta, _ = load_reproducer(args.replay)
        except (OSError, ValueError) as exc:
            raise UsageError(str(exc)) from None
        _frameworks_to_check(str(meta.get("framework")), f"{args.replay}: framework")
        text, code = replay(args.replay)
        print(text)
        return code
    ops = _listed(args.ops, OPS, "--ops")
    dtypes = _listed(args.dtype, DTYPES, "--dtype") or list(DTYPES)
    if model is not None and model != "seed" and not Path(model).is_file():
        raise UsageError(f"{model}: no such file")
    frameworks = _frameworks_to_check(args.against)
    if model is None or ops is not None:
        more = {} if args.cases is None else {"random_cases": args.cases}
        report = verify(frameworks, ops or OPS, dtypes, seed=args.seed, **more)
    else:
        report = Report({}, [])
    if model is not None:
        from . import __version__

        whole = _model_cells(model, frameworks, dtypes, args.steps)
        report.versions = {"minires": __version__, **report.versions, **whole["versions"]}
        report.cells += whole["cells"]
    if args.save_failures:
        save_failures(report, args.save_failures)
    print(format_text(report))
    if args.json:
        write_json(report, Path(args.json))
    if args.markdown:
        Path(args.markdown).write_text(format_markdown(report))
    return 1 if report.disagrees else 0


EXPORTS = {"onnx": (".onnx", "onnx", "export_onnx"),
           "torch": (".safetensors", "torch", "export_safetensors")}


def cmd_export(args) -> int:
    from .serialization import load_model

    suffix, module_name, function = EXPORTS[args.format]
    try:
        module = importlib.import_module(f"minires.interop.{module_name}_export")
    except ImportError as exc:
        raise CommandError(f"--format {args.format} needs the {exc.name} package "
                           f"(pip install minires[frameworks])") from None
    model = load_model(args.model, compile=False)
    out = Path(args.out) if args.out else Path(args.model).with_suffix(suffix)
    getattr(module, function)(model, out)
    print(f"{out}: {model.name} ({model.count_params():,} parameters) as "
          + ("ONNX, float32, NHWC input 'input', output 'output'" if args.format == "onnx"
             else "a PyTorch state dict for minires.frameworks.torch_resnet.SeedResNet (safetensors)"))
    return 0


# --- the parser --------------------------------------------------------------------------------

def _add_runtime_options(p, default_backend: str = "auto") -> None:
    p.add_argument("--backend", choices=("auto", "numpy", "numba", "cupy"),
                   help="array backend; auto: numba when Numba imports, else numpy (default: "
                        f"MINIRES_BACKEND when set, else {default_backend})")
    p.add_argument("--threads", type=_positive_int,
                   help="CPU threads for BLAS and Numba (default: MINIRES_NUM_THREADS or all cores)")


def _add_run_directory_options(p) -> None:
    """The options of a command that trains into a run directory (train, changes train)."""
    p.add_argument("--out", metavar="RUNDIR", help="run directory (default runs/<date-time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress output")


def _add_data_options(p, required: bool = False) -> None:
    p.add_argument("--data", metavar="DIR|ARCHIVE", required=required,
                   help="an image folder (one subfolder per class), a cifar-10-batches-py "
                        "directory or the cifar-10-python.tar.gz archive")
    p.add_argument("--dataset", choices=("synthetic", "cifar10", "folder"),
                   help="what --data is (guessed when omitted); without --data: synthetic, or "
                        "cifar10 from the usual caches (downloaded if missing)")
    p.add_argument("--synthetic-size", type=_positive_int, default=SYNTHETIC_SIZE,
                   help=f"images in the synthetic set (default {SYNTHETIC_SIZE})")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="minires", description="A small ResNet, and every op under it, written by hand.")
    parser.add_argument("--version", action="version", version=f"minires {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("train", help="train the seed's model",
                       description="Train the seed's ResNet with its recipe (Adam, batch 64) into a "
                                   "run directory: checkpoints, history.json/png, model.npz.")
    _add_data_options(p)
    p.add_argument("--epochs", type=_positive_int, default=10, help="epochs in all (default 10)")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="default 64")
    p.add_argument("--lr", type=float, default=1e-3, help="Adam's learning rate (default 1e-3)")
    p.add_argument("--val-split", type=_fraction, default=0.1,
                   help="fraction of each class held out for validation (default 0.1)")
    p.add_argument("--augment", action="store_true", help="random flips, crops, rotations, scaling")
    p.add_argument("--seed", type=int, default=0, help="initial weights, split, order (default 0)")
    _add_run_directory_options(p)
    _add_runtime_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="loss, accuracy, per-class accuracy, confusion matrix",
                       description="Evaluate a saved model: loss, accuracy, per-class accuracy and "
                                   "a confusion matrix (text, and a PNG).")
    p.add_argument("model", help="a model file (RUNDIR/model.npz or a checkpoint)")
    _add_data_options(p)
    p.add_argument("--split", choices=("test", "val", "train", "all"), default=None,
                   help="CIFAR-10 and synthetic: test (default; for synthetic a fresh draw) or "
                        "train; image folders: all (default); val/train: the two sides of "
                        "--val-split with --seed, as in training")
    p.add_argument("--val-split", type=_fraction, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--confusion-png", metavar="PATH", help="where to draw the confusion matrix")
    _add_runtime_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify image files",
                       description="Each image's most likely classes, with probabilities.")
    p.add_argument("model", help="a model file (RUNDIR/model.npz)")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top", type=_positive_int, default=3, help="classes to list (default 3)")
    _add_runtime_options(p)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("bench", help="benchmarks against PyTorch",
                       description="Time minires against PyTorch on this machine, in one run.")
    p.add_argument("what", choices=("kernels", "train", "compile", "all", "algorithms", "gpu"), nargs="?",
                   default="all",
                   help="all (default): kernels, train and compile on the CPU; algorithms: each seed "
                        "conv layer by im2col and Winograd on each backend; gpu: the cupy backend "
                        "against PyTorch + cuDNN (needs CuPy and a CUDA GPU; writes gpu.json, gpu.md)")
    p.add_argument("--out", default="benchmarks/results", help="results directory")
    p.add_argument("--repeats", type=_positive_int, default=7)
    p.add_argument("--rounds", type=_positive_int, default=3,
                   help="train benchmark: turns the frameworks take, each figure the median (default 3)")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch (no ratios)")
    p.add_argument("--with-torch-loaded", action="store_true",
                   help="train benchmark: also time every framework in one process with PyTorch "
                        "imported first, against its own process")
    p.add_argument("--threads", type=_positive_int)
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("verify", help="check PyTorch, JAX, Keras, ONNX Runtime against minires",
                       description="Check other frameworks' ops (forward values and gradients) against "
                                   "minires' array code, loop reference and central differences, on "
                                   "adversarial and random cases; with MODEL, whole models too. Exit "
                                   "0: nothing disagrees; 1: something does; 2: bad usage. "
                                   "docs/verify.md explains the table.")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="a model file (.npz) to check whole, or 'seed' for the seed's model with fresh weights")
    p.add_argument("--model", dest="model_option", metavar="MODEL", help="the same as MODEL")
    p.add_argument("--against", metavar="NAMES",
                   help="frameworks, comma-separated: torch, jax, keras-jax, keras-torch, onnxruntime, "
                        "or all (default: every one installed)")
    p.add_argument("--ops", metavar="NAMES", help="ops, comma-separated (default: all; with MODEL: none)")
    p.add_argument("--dtype", metavar="NAMES", help="float64,float32 (default: both)")
    p.add_argument("--cases", type=_positive_int,
                   help="random cases per op and dtype, besides the fixed adversarial ones (default 2)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random cases (default 0)")
    p.add_argument("--steps", type=_positive_int, default=5, help="optimizer steps of a whole model (default 5)")
    p.add_argument("--json", metavar="FILE", help="write the cells as JSON")
    p.add_argument("--markdown", metavar="FILE", help="write the report as markdown")
    p.add_argument("--save-failures", metavar="DIR", help="write each disagreeing case as a reproducer")
    p.add_argument("--replay", metavar="CASE_FILE", help="rerun a saved reproducer (.json) against its framework")
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("export", help="write a model for ONNX Runtime or PyTorch",
                       description="Export a model file (minires .npz or Keras .keras) to ONNX "
                                   "(float32, checked by onnx.checker) or, for the seed's ResNet, "
                                   "to a PyTorch state dict in safetensors.")
    p.add_argument("model", help="a model file (RUNDIR/model.npz, a .keras file)")
    p.add_argument("--format", choices=tuple(EXPORTS), required=True,
                   help="onnx: an ONNX graph; torch: SeedResNet's state dict (safetensors)")
    p.add_argument("--out", metavar="PATH",
                   help="where to write (default: the model's path with .onnx or .safetensors)")
    p.set_defaults(func=cmd_export)
    p = sub.add_parser("changes", help="change detection: train, detect, evaluate",
                       description="Detect small changes between two images of one scene with a "
                                   "Siamese residual network (FC-Siam-diff).")
    changes = p.add_subparsers(dest="changes_command", metavar="SUBCOMMAND")
    changes.required = True
    p = changes.add_parser("train", help="train a change net on generated pairs",
                           description="Train a change net on (before, after, mask) pairs "
                                       "generated from the images into a run directory.")
    _add_data_options(p)
    # The defaults are the recipe docs/changes.md measures.
    p.add_argument("--epochs", type=_positive_int, default=4, help="epochs in all (default 4)")
    p.add_argument("--image-size", type=_positive_int, default=32,
                   help="side of the images of an image folder (default 32)")
    p.add_argument("--batch-size", type=_positive_int, default=64, help="default 64")
    p.add_argument("--lr", type=_positive_float, default=3e-3,
                   help="Adam's learning rate, the first epoch's (default 3e-3)")
    p.add_argument("--schedule", choices=("constant", "cosine"), default="cosine",
                   help="learning rate over the epochs (default cosine: down towards 0)")
    p.add_argument("--pos-weight", type=_positive_float, default=1.5,
                   help="weight of the changed pixels in the loss (default 1.5)")
    p.add_argument("--filters", type=_positive_int, default=16, help="filters per scale (default 16)")
    p.add_argument("--blocks", type=_positive_int, default=3, help="residual blocks (default 3)")
    p.add_argument("--val-split", type=_fraction, default=0.1,
                   help="fraction of the images held out for validation pairs (default 0.1)")
    p.add_argument("--seed", type=int, default=0, help="weights, pairs, order (default 0)")
    _add_run_directory_options(p)
    _add_runtime_options(p)
    p.set_defaults(func=cmd_changes_train)
    p = changes.add_parser("detect", help="the change map of a pair of images",
                           description="Changed fraction, score and changed regions of a pair.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("before", metavar="BEFORE")
    p.add_argument("after", metavar="AFTER")
    p.add_argument("--threshold", type=float, default=0.5, help="default 0.5")
    p.add_argument("--out-mask", metavar="MASK.png", help="binary mask PNG (changed = 255)")
    p.add_argument("--overlay", metavar="OVERLAY.png", help="the after image, changes in red")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    _add_runtime_options(p, default_backend="numpy")
    p.set_defaults(func=cmd_changes_detect)
    p = changes.add_parser("evaluate", help="a change net against pixel-difference baselines",
                           description="Pixel precision, recall, F1 and IoU and image-level ROC "
                                       "AUC of a change net and of thresholded pixel differences "
                                       "on the same generated pairs.")
    p.add_argument("model", metavar="MODEL")
    _add_data_options(p)
    p.add_argument("--images", choices=("auto", "held-out", "all"), default="auto",
                   help="held-out: the images the model's training held out (the model says "
                        "which); all: every image; auto (default): held-out when the model "
                        "says, else all")
    p.add_argument("--pairs", type=_positive_int,
                   help="pairs to generate (default: one per image, cycling through them)")
    p.add_argument("--seed", type=int,
                   help="seed of the pairs (default: the training seed + 2, unlike the "
                        "validation pairs')")
    p.add_argument("--image-size", type=_positive_int, default=32,
                   help="side of the images of an image folder (default 32)")
    p.add_argument("--threshold", type=float, default=0.5, help="the model's (default 0.5)")
    p.add_argument("--grid", metavar="GRID.png", help="write a PNG grid of examples")
    p.add_argument("--grid-rows", type=_positive_int, default=8, help="examples in the grid (default 8)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    _add_runtime_options(p)
    p.set_defaults(func=cmd_changes_evaluate)

    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "evaluate" and args.split is None:
        cifar = args.dataset == "cifar10" or (args.data and _is_cifar10_location(Path(args.data).expanduser()))
        synthetic = args.data is None and args.dataset in (None, "synthetic")
        args.split = "test" if cifar or synthetic else "all"
    try:
        # The command line owns its process, so it takes the process-wide speed settings
        # that the library never makes unasked (minires.process).
        from .process import tune_process

        tune_process(threads=getattr(args, "threads", None))
        return args.func(args)
    except KeyboardInterrupt:
        print("minires: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CommandError, ValueError, TypeError, OSError, ImportError, RuntimeError) as exc:
        if os.environ.get("MINIRES_DEBUG"):
            raise
        print(f"minires {args.command}: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, UsageError) else EXIT_ERROR
    except MemoryError as exc:
        if os.environ.get("MINIRES_DEBUG"):
            raise
        print(f"minires {args.command}: out of memory ({_one_line(exc) or 'MemoryError'})", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a case no check above foresaw: still one line, never a traceback
        if os.environ.get("MINIRES_DEBUG"):
            raise
        print(f"minires {args.command}: unexpected {type(exc).__name__}: {_one_line(exc)} "
              f"(MINIRES_DEBUG=1 shows where)", file=sys.stderr)
        return EXIT_ERROR


def _one_line(exc: BaseException) -> str:
    """An error message on one line (some carry a list of files, one per line)."""
    return "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

"""The seed's model end to end: train step (forward, backward, Adam) and inference, batch 64.

minires and PyTorch get the same model (the seed's ResNet, Glorot-uniform kernels, zero
biases), the same batch of images and Adam with Keras' settings; PyTorch runs in its faster
CPU memory format (channels-last), in a process of its own (``torch_process`` says why).
The figure is images per second; the ratio is minires' over PyTorch's (above 1: minires is
faster).
"""

from __future__ import annotations

import statistics

import numpy

from .. import backend
from .timing import median_seconds

BATCH = 64


def _batch(batch_size: int):
    rng = numpy.random.default_rng(0)
    x = rng.random((batch_size, 32, 32, 3), dtype=numpy.float32)
    y = rng.integers(0, 10, batch_size)
    return x, y


def minires_step_seconds(backend_name: str, batch_size: int = BATCH, repeats: int = 7) -> dict:
    """Median seconds of one train step and of one inference batch on ``backend_name``."""
    from ..models import build_resnet
    from ..optim import Adam

    x, y = _batch(batch_size)
    with backend.use_backend(backend_name):
        model = build_resnet(seed=0)
        model.compile(optimizer=Adam(), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        train = median_seconds(lambda: model.train_on_batch(x, y), repeats=repeats, warmup=2, min_seconds=0.0)
        infer = median_seconds(lambda: model.predict_on_batch(x), repeats=repeats, warmup=2, min_seconds=0.0)
    return dict(train_seconds=train, inference_seconds=infer)


def torch_step_seconds(batch_size: int = BATCH, repeats: int = 7) -> dict:
    """The same for PyTorch (channels-last), with the same model and recipe."""
    import torch

    from ..frameworks.torch_resnet import build_seed_resnet, step_functions, to_tensor

    x, y = _batch(batch_size)
    model = build_seed_resnet(seed=0, channels_last=True)
    step, infer = step_functions(model, to_tensor(x), torch.from_numpy(y))
    train = median_seconds(step, repeats=repeats, warmup=2, min_seconds=0.0)
    model.eval()
    inference = median_seconds(infer, repeats=repeats, warmup=2, min_seconds=0.0)
    return dict(train_seconds=train, inference_seconds=inference)


ROUNDS = 3


def run(backends: list[str], batch_size: int = BATCH, repeats: int = 7, with_torch: bool = True,
        rounds: int = ROUNDS, log=print, with_torch_loaded: bool = False) -> list[dict]:
    """One row per framework: images/s for training and inference, and the ratio to PyTorch.

    The frameworks take turns, ``rounds`` times (minires' backends, then PyTorch's process,
    then again), and each figure is the median over the rounds: on a shared machine the
    speed of both drifts by several percent from one minute to the next, and taking turns
    puts every framework through the same drift. Each row keeps the rounds' figures too.
    With ``with_torch_loaded`` (and ``with_torch``), each round also times every framework in
    one process with PyTorch imported first (``shared_process``), and each row gets those
    figures and their ratio to its own-process figures.
    """
    samples: dict[str, list[dict]] = {name: [] for name in backends}
    shared: dict[str, list[dict]] = {}
    if with_torch:
        from . import torch_process

        samples["torch"] = []
    with_torch_loaded = with_torch_loaded and with_torch
    if with_torch_loaded:
        from . import shared_process

        shared = {name: [] for name in samples}
    for round_index in range(rounds):
        for name in backends:
            samples[name].append(minires_step_seconds(name, batch_size, repeats))
        if with_torch:
            samples["torch"].append(torch_process.measure("train", repeats, batch_size))
        if with_torch_loaded:
            together = shared_process.measure(backends, repeats, batch_size)
            for name in shared:
                shared[name].append(together[name])
        log(f"  round {round_index + 1}/{rounds}: " + ", ".join(
            f"{name} {batch_size / s[-1]['train_seconds']:.0f} / {batch_size / s[-1]['inference_seconds']:.0f}"
            for name, s in samples.items()) + " img/s (train / inference)" + ("; one process: " + ", ".join(
                f"{name} {batch_size / s[-1]['train_seconds']:.0f} / {batch_size / s[-1]['inference_seconds']:.0f}"
                for name, s in shared.items()) if shared else ""))
    keys = ("train_seconds", "inference_seconds")
    timings = {name: {key: statistics.median(sample[key] for sample in s) for key in keys}
               for name, s in samples.items()}
    rows = []
    for framework, t in timings.items():
        row = dict(framework=framework, batch_size=batch_size, rounds=rounds,
                   train_images_per_second=batch_size / t["train_seconds"],
                   inference_images_per_second=batch_size / t["inference_seconds"],
                   train_images_per_second_by_round=[batch_size / s["train_seconds"] for s in samples[framework]],
                   inference_images_per_second_by_round=[batch_size / s["inference_seconds"]
                                                         for s in samples[framework]])
        if "torch" in timings:
            row["train_ratio_to_torch"] = timings["torch"]["train_seconds"] / t["train_seconds"]
            row["inference_ratio_to_torch"] = timings["torch"]["inference_seconds"] / t["inference_seconds"]
        if shared:
            for key, kind in zip(keys, ("train", "inference")):
                together = statistics.median(sample[key] for sample in shared[framework])
                row[f"{kind}_images_per_second_torch_loaded"] = batch_size / together
                row[f"{kind}_images_per_second_torch_loaded_by_round"] = [batch_size / s[key]
                                                                         for s in shared[framework]]
                row[f"{kind}_torch_loaded_to_own_process"] = t[key] / together
        rows.append(row)
    for row in rows:
        log(f"  {row['framework']:7s} train {row['train_images_per_second']:8.1f} img/s, "
            f"inference {row['inference_images_per_second']:8.1f} img/s (median of {rounds} rounds)"
            + (f"; with torch loaded {row['train_torch_loaded_to_own_process']:.2f}x / "
               f"{row['inference_torch_loaded_to_own_process']:.2f}x of that" if shared else ""))
    return rows

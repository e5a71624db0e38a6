"""Training a change detector with ``minires.train.Trainer``: the same run directory,
progress bar, history, atomic checkpoints, lock and ``--resume``.

    data = change_dataset(train_images, val_images, seed=0)
    trainer = ChangeTrainer(build_change_net(...), data, "RUN", Recipe(epochs=2))
    trainer.fit()

The pairs come from ``minires.data.changes.make_change_pairs``, generated once from the
images (deterministic in the seed, so a resumed run regenerates exactly the same ones); the
validation pairs come from other images, with another seed, so the scores are those of
scenes the model never trained on. ``x_train`` holds both images of every pair as uint8
(``InputArrays``), the targets are the masks (N, H, W, 1); each batch is scaled to [0, 1].

After each epoch the history gets the validation loss and the pooled pixel scores at the
threshold 0.5 (``val_pixel_accuracy``, ``val_precision``, ``val_recall``, ``val_f1``,
``val_iou``) and the image-level ROC AUC (``val_auc``, the map's maximum as the pair's score).
best.npz keeps the model of the best ``val_f1``.
"""

from __future__ import annotations

import sys

import numpy

from ..data.change_baselines import pixel_scores, roc_auc
from ..data.changes import ChangePairs, iter_change_pairs
from ..model.arrays import InputArrays
from ..progress import Progress
from ..train import Dataset, Trainer, scale_batch

CLASS_NAMES = ["unchanged", "changed"]


def held_out_split(count: int, val_split: float, seed: int) -> tuple[numpy.ndarray, numpy.ndarray]:
    """``(train, held_out)``: indices of ``count`` images, ``round(count * val_split)`` of them
    (at least one when there are two or more) held out of training, chosen by ``seed``.

    ``minires changes train`` draws its validation pairs from the held-out images, and
    ``minires changes evaluate`` finds the same images again from the seed and fraction that
    the saved model carries (``split_metadata``).
    """
    order = numpy.random.default_rng(seed).permutation(count)
    held = max(1, int(round(count * val_split))) if count > 1 else 0
    return order[held:], order[:held]


def split_metadata(count: int, val_split: float, seed: int, description: str) -> dict:
    """What a change net's saved files say about the images it did not train on."""
    return {"images": int(count), "val_split": float(val_split), "seed": int(seed),
            "data": description}


def pairs_arrays(pairs):
    """(x, y) of ``ChangePairs`` as a change net trains on them: [before, after] uint8 and the
    mask as uint8 (N, H, W, 1)."""
    return InputArrays([pairs.before, pairs.after]), pairs.mask[..., None].astype(numpy.uint8)


def change_dataset(train_images, val_images=None, seed: int = 0, description: str = "",
                   progress: bool = False, **options) -> Dataset:
    """A Dataset of one generated pair per training image (and per validation image).

    ``options`` go to ``make_change_pairs`` (nuisance, kinds, ...). The validation pairs use
    ``seed + 1``: other changes and nuisance even where the images were alike. ``progress``:
    a progress line on stderr while the pairs are made (a minute for CIFAR-10's 50,000).
    """
    total = len(train_images) + (0 if val_images is None else len(val_images))
    meter = Progress(total, "generating change pairs", "pairs", "line" if progress else "silent",
                     rate=False, delay=1.0, stream=sys.stderr)
    x_train, y_train = pairs_arrays(_pairs_in_chunks(train_images, seed, meter, options))
    x_val = y_val = None
    if val_images is not None and len(val_images):
        x_val, y_val = pairs_arrays(_pairs_in_chunks(val_images, seed + 1, meter, options))
    meter.close()
    return Dataset(x_train, y_train, x_val, y_val, list(CLASS_NAMES),
                   f"change pairs (seed {seed}) of {description or 'images'}")


_CHUNK = 1000


def _pairs_in_chunks(images, seed, meter, options) -> ChangePairs:
    """``make_change_pairs(images, seed=seed, **options)``, made a chunk at a time for the
    progress line (``iter_change_pairs``' batches of epoch 0 join into the one call's pairs)."""
    chunks = []
    for chunk in iter_change_pairs(images, _CHUNK, seed, **options):
        chunks.append(chunk)
        meter.update(len(chunk))
    return ChangePairs(*(numpy.concatenate([getattr(c, f) for c in chunks])
                         for f in ("before", "after", "mask")),
                       sum((c.kinds for c in chunks), ()))


def predict_scaled(model, x, batch_size: int = 256) -> numpy.ndarray:
    """The change probabilities (N, H, W) of uint8 pairs ``x`` (InputArrays or a list)."""
    x = x if isinstance(x, InputArrays) else InputArrays(x)
    return model.predict(InputArrays([scale_batch(a) for a in x]), batch_size=batch_size)[..., 0]


def map_scores(probs, mask, threshold: float = 0.5) -> dict:
    """Pixel scores of ``probs > threshold`` against bool ``mask`` (N, H, W), pixel accuracy,
    and the image-level AUC of each map's maximum (None unless both kinds of pair are there)."""
    mask = numpy.asarray(mask, dtype=bool)
    predicted = probs > threshold
    scores = pixel_scores(predicted, mask)
    scores["pixel_accuracy"] = float((predicted == mask).mean())
    changed = mask.reshape(len(mask), -1).any(axis=1)
    both = changed.any() and not changed.all()
    scores["auc"] = roc_auc(probs.reshape(len(probs), -1).max(axis=1), changed) if both else None
    return scores


class ChangeTrainer(Trainer):
    """A Trainer for two-input change nets on a ``change_dataset``."""

    best_metric = "val_f1"

    def __init__(self, *args, split: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.split = split

    def model_metadata(self) -> dict:
        metadata = super().model_metadata()
        if self.split is not None:
            metadata["change_split"] = dict(self.split)
        return metadata

    def _batch(self, x_batch):
        return InputArrays([scale_batch(a) for a in x_batch])

    def _validation_logs(self) -> dict:
        if self.data.x_val is None or not len(self.data.x_val):
            return {}
        x_val = self._batch(self.data.x_val)
        val_loss = self.model.evaluate(x_val, self.data.y_val, batch_size=256, verbose=0)
        probs = self.model.predict(x_val, batch_size=256)[..., 0]
        scores = map_scores(probs, self.data.y_val[..., 0])
        logs = {"val_loss": float(val_loss)}
        for key in ("pixel_accuracy", "precision", "recall", "f1", "iou", "auc"):
            if scores[key] is not None:
                logs[f"val_{key}"] = float(scores[key])
        return logs

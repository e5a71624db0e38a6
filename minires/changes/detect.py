"""Change maps of image pairs of any size with a trained change net, and what a person reads
from them: the changed fraction, a score for the pair, the boxes of the changed regions.

The net is fully convolutional but its H and W must be multiples of its pooling factor: the
pair is padded (edge pixels repeated) up to the next multiple and the map cropped back.
"""

from __future__ import annotations

import numpy

from ..models import change_net_pooling
from ..train import scale_batch


def change_map(model, before, after) -> numpy.ndarray:
    """float (H, W): the change probability of each pixel of uint8 images (H, W, C)."""
    before, after = numpy.asarray(before), numpy.asarray(after)
    if before.shape != after.shape:
        raise ValueError(f"change_map: the images must have one size, got {before.shape[1]}x"
                         f"{before.shape[0]} and {after.shape[1]}x{after.shape[0]} (width x height)")
    if before.ndim != 3:
        raise ValueError(f"change_map: images must be (H, W, C), got shape {before.shape}")
    h, w = before.shape[:2]
    factor = change_net_pooling(model)
    pad = ((0, -h % factor), (0, -w % factor), (0, 0))
    x = [scale_batch(numpy.pad(image, pad, mode="edge"))[None] for image in (before, after)]
    return model.predict(x, batch_size=1)[0, :h, :w, 0]


def regions(mask) -> list[list[int]]:
    """[top, left, bottom, right] (inclusive) of each 8-connected region of a bool mask (H, W),
    in the order of their first pixel (row by row)."""
    mask = numpy.asarray(mask, dtype=bool)
    seen = numpy.zeros_like(mask)
    h, w = mask.shape
    boxes = []
    for y0, x0 in zip(*numpy.nonzero(mask)):
        if seen[y0, x0]:
            continue
        seen[y0, x0] = True
        stack, box = [(y0, x0)], [y0, x0, y0, x0]
        while stack:
            y, x = stack.pop()
            box = [min(box[0], y), min(box[1], x), max(box[2], y), max(box[3], x)]
            for ny in range(max(y - 1, 0), min(y + 2, h)):
                for nx in range(max(x - 1, 0), min(x + 2, w)):
                    if mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        boxes.append([int(v) for v in box])
    return boxes


def describe(probs, threshold: float = 0.5) -> dict:
    """{"changed_fraction", "score" (the map's maximum), "regions"} of a change map."""
    changed = probs > threshold
    return {"changed_fraction": float(changed.mean()), "score": float(probs.max()),
            "regions": regions(changed)}

"""Change-detection pairs: (before, after, mask) triples generated from any uint8 image set.

    pairs = make_change_pairs(images, seed=0)          # one pair per image
    pairs.before, pairs.after                          # uint8 (n, H, W, 3)
    pairs.mask                                         # bool (n, H, W): the true changes
    pairs.kinds                                        # per pair, the kinds of its changes

"before" is a source image. "after" is the same image with one to three small *real* changes
and, always, *nuisance* over the whole image that a change detector must learn to ignore:

Changes (``CHANGE_KINDS``), each altering from a few pixels up to ``max_fraction`` (10 %) of
the image:

    paste     a patch (rectangle or ellipse) of another image pasted in
    recolour  a connected region of similar colour (or, where there is none, a blob) turned
              to another hue and made clearly brighter or darker
    add       a disk, rectangle or line of a colour far from its surroundings' mean
    remove    a region with detail filled in from its border (harmonic inpainting: each
              pixel the mean of its neighbours), which erases what was there

Nuisance (``Nuisance``), applied to the whole "after" image in this order: a whole-image
translation of up to one pixel (edge pixels repeated), a contrast change about the image's
mean, per-channel gains (a colour cast), a brightness offset, Gaussian noise, and JPEG
re-encoding (Pillow, quality 60-95). ``before_nuisance`` optionally applies a milder version
(no translation) to "before" too.

The mask marks the pixels a change altered by at least ``CHANGE_LEVEL`` grey levels in some
channel, and only those: it is computed from the changes before any nuisance is applied, and
a change's pixels that it altered by less are put back to their old values, so with the
nuisance off ``after == before`` exactly outside the mask. The mask is in the after image's
coordinates: when the translation moves "after", the mask moves with it (edge rows and
columns repeated the same way), so ``mask[p]`` says whether the after pixel at ``p`` shows
changed content.

Each pair is left without change with probability ``no_change_fraction``: its mask is then all
zero and its "after" differs from "before" by nuisance only. Changes never overlap, so none
undoes another.

Determinism: pair ``i`` is drawn from its own generator, ``numpy.random.default_rng([seed,
i])``, and made from source image ``i % len(images)``. The same seed and images give the same
triples bit for bit, whether made in one call or in batches (``start`` offsets the index), and
``start = epoch * count`` gives fresh pairs of the same images for every epoch.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace

import numpy

CHANGE_KINDS = ("paste", "recolour", "add", "remove")
# A pixel counts as changed when some channel moved by at least this many grey levels: well
# above JPEG's and the sensor noise's usual errors, so a change is something a person sees.
CHANGE_LEVEL = 40
_OP = "make_change_pairs"
_ATTEMPTS = 12           # draws of a change before falling back to a shape that always shows


@dataclass(frozen=True)
class Nuisance:
    """Strengths of the nuisance applied to a whole image; every value drawn per pair.

    ``shift``: translation of up to this many pixels in each direction. ``contrast``: factor
    in ``[1 - c, 1 + c]`` about the image's mean. ``colour``: per-channel gains in
    ``[1 - g, 1 + g]``. ``brightness``: offset in ``[-b, b]`` grey levels. ``noise``: the
    range of the Gaussian noise's standard deviation, in grey levels. ``jpeg_quality``: the
    range of the JPEG re-encoding's quality, or None for no re-encoding (then Pillow is not
    needed).
    """

    shift: int = 1
    contrast: float = 0.15
    colour: float = 0.08
    brightness: float = 20.0
    noise: tuple[float, float] = (1.0, 5.0)
    jpeg_quality: tuple[int, int] | None = (60, 95)

    def milder(self) -> Nuisance:
        """Half the strengths, no translation, JPEG of the upper half of the quality range."""
        quality = None if self.jpeg_quality is None else \
            ((self.jpeg_quality[0] + self.jpeg_quality[1]) // 2, self.jpeg_quality[1])
        return replace(self, shift=0, contrast=self.contrast / 2, colour=self.colour / 2,
                       brightness=self.brightness / 2,
                       noise=(self.noise[0] / 2, self.noise[1] / 2), jpeg_quality=quality)


@dataclass(frozen=True)
class ChangePairs:
    """Generated pairs: ``before``/``after`` uint8 (n, H, W, 3), ``mask`` bool (n, H, W),
    ``kinds`` a tuple with, per pair, the tuple of its changes' kinds (empty: no change)."""

    before: numpy.ndarray
    after: numpy.ndarray
    mask: numpy.ndarray
    kinds: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.before)

    @property
    def changed(self) -> numpy.ndarray:
        """bool (n,): whether each pair has a change."""
        return self.mask.reshape(len(self.mask), -1).any(axis=1)


# --- regions --------------------------------------------------------------------------------

def _grid(h: int, w: int):
    f32 = numpy.float32
    return numpy.arange(h, dtype=f32)[:, None], numpy.arange(w, dtype=f32)[None, :]


def _box_size(rng, area: float, h: int, w: int) -> tuple[int, int]:
    """Height and width of a box of about ``area`` pixels, aspect ratio 1:2 to 2:1."""
    aspect = numpy.exp(rng.uniform(-numpy.log(2.0), numpy.log(2.0)))
    bh = int(numpy.clip(round(numpy.sqrt(area * aspect)), 1, h))
    bw = int(numpy.clip(round(area / bh), 1, w))
    return bh, bw


def _shape_region(rng, area: float, h: int, w: int) -> numpy.ndarray:
    """bool (h, w): a rectangle or an ellipse of about ``area`` pixels at a random place."""
    ellipse = rng.random() < 0.5
    bh, bw = _box_size(rng, area * (4 / numpy.pi if ellipse else 1.0), h, w)
    top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    region = numpy.zeros((h, w), dtype=bool)
    if ellipse:
        y, x = _grid(bh, bw)
        inside = ((y + 0.5 - bh / 2) / (bh / 2)) ** 2 + ((x + 0.5 - bw / 2) / (bw / 2)) ** 2 <= 1.0
        region[top:top + bh, left:left + bw] = inside
    else:
        region[top:top + bh, left:left + bw] = True
    return region


def _dilate(region: numpy.ndarray) -> numpy.ndarray:
    """4-neighbour dilation by one pixel."""
    out = region.copy()
    out[1:] |= region[:-1]
    out[:-1] |= region[1:]
    out[:, 1:] |= region[:, :-1]
    out[:, :-1] |= region[:, 1:]
    return out


def _flood(image: numpy.ndarray, y: int, x: int, tolerance: float, limit: float) -> numpy.ndarray:
    """The 4-connected region of pixels within ``tolerance`` (every channel) of pixel (y, x),
    grown ring by ring until it holds at least ``limit`` pixels (the last ring that keeps it
    at most ``limit`` is where it stops)."""
    similar = (numpy.abs(image - image[y, x]) <= tolerance).all(axis=-1)
    region = numpy.zeros(similar.shape, dtype=bool)
    region[y, x] = True
    while True:
        grown = _dilate(region) & similar
        count = int(grown.sum())
        if count > limit or count == int(region.sum()):
            return region
        region = grown


# --- the changes ------------------------------------------------------------------------------
# Each takes the current float32 image (H, W, 3), the source images and the generator, and
# returns the changed image; the caller keeps it only if it changed an allowed number of pixels.

def _paste(image, rng, area, images, source):
    h, w = image.shape[:2]
    n = len(images)
    other = source if n == 1 else int((source + rng.integers(1, n)) % n)
    region = _shape_region(rng, area, h, w)
    rows, cols = numpy.nonzero(region)
    top, left = rows.min(), cols.min()
    bh, bw = rows.max() - top + 1, cols.max() - left + 1
    sy, sx = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
    out = image.copy()
    out[rows, cols] = images[other][rows - top + sy, cols - left + sx]
    return out


_AXIS = numpy.full(3, 1 / numpy.sqrt(3.0))
_CROSS = numpy.array([[0, -_AXIS[2], _AXIS[1]], [_AXIS[2], 0, -_AXIS[0]], [-_AXIS[1], _AXIS[0], 0]])


def _hue_rotation(angle: float) -> numpy.ndarray:
    """3x3 rotation of RGB colours about the grey axis: a hue change that keeps lightness."""
    return (numpy.cos(angle) * numpy.eye(3) + numpy.sin(angle) * _CROSS
            + (1 - numpy.cos(angle)) * numpy.outer(_AXIS, _AXIS)).astype(numpy.float32)


def _recolour(image, rng, area, images, source):
    h, w = image.shape[:2]
    y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
    region = _flood(image, y, x, tolerance=rng.uniform(12.0, 32.0), limit=area)
    if region.sum() < area / 4:          # no object of one colour here: recolour a blob
        region = _shape_region(rng, area, h, w)
    pixels = image[region]
    turned = pixels @ _hue_rotation(rng.uniform(numpy.pi / 3, 5 * numpy.pi / 3)).T
    # Brighter where it is dark, darker where it is light, so the shift is not clipped away.
    step = rng.uniform(40.0, 90.0)
    turned += step if pixels.mean() < 128 else -step
    out = image.copy()
    out[region] = turned
    return out


def _contrasting_colour(rng, image, region) -> numpy.ndarray:
    """Of a few random colours, the one farthest from the mean colour around ``region``."""
    around = region
    for _ in range(2):
        around = _dilate(around)
    mean = image[around].mean(axis=0)
    candidates = rng.uniform(0.0, 255.0, (8, 3)).astype(numpy.float32)
    return candidates[numpy.argmax(((candidates - mean) ** 2).sum(axis=1))]


def _add(image, rng, area, images, source):
    h, w = image.shape[:2]
    shape = rng.integers(0, 3)
    if shape == 2:                                       # a line, one or two pixels thick
        thickness = float(rng.choice([1.0, 2.0]))
        length = min(area / thickness, float(numpy.hypot(h, w)))
        y0, x0 = rng.uniform(0, h - 1), rng.uniform(0, w - 1)
        angle = rng.uniform(0, 2 * numpy.pi)
        y1, x1 = y0 + length * numpy.sin(angle), x0 + length * numpy.cos(angle)
        y, x = _grid(h, w)
        dy, dx = y1 - y0, x1 - x0
        t = numpy.clip(((y - y0) * dy + (x - x0) * dx) / max(dy * dy + dx * dx, 1e-9), 0, 1)
        region = numpy.hypot(y - y0 - t * dy, x - x0 - t * dx) <= thickness / 2
        if not region.any():
            region[int(round(y0)), int(round(x0))] = True
    else:
        region = _shape_region(rng, area, h, w)          # a disk or ellipse, or a rectangle
    out = image.copy()
    out[region] = _contrasting_colour(rng, image, region)
    return out


def _remove(image, rng, area, images, source):
    h, w = image.shape[:2]
    # Of a few places, the one with the most detail: removing a flat patch changes nothing.
    candidates = [_shape_region(rng, area, h, w) for _ in range(6)]
    region = max(candidates, key=lambda r: float(image[r].std(axis=0).sum()))
    rows, cols = numpy.nonzero(region)
    top, bottom = max(rows.min() - 1, 0), min(rows.max() + 2, h)
    left, right = max(cols.min() - 1, 0), min(cols.max() + 2, w)
    box = image[top:bottom, left:right].astype(numpy.float64)
    inside = region[top:bottom, left:right]
    border = _dilate(inside) & ~inside
    box[inside] = box[border].mean(axis=0) if border.any() else box[inside].mean(axis=0)
    # Jacobi iterations of Laplace's equation: the hole becomes the smoothest surface that
    # meets its border. As many sweeps as the hole is wide lets the border reach its middle.
    for _ in range(2 * max(bottom - top, right - left)):
        p = numpy.pad(box, ((1, 1), (1, 1), (0, 0)), mode="edge")
        mean = (p[:-2, 1:-1] + p[2:, 1:-1] + p[1:-1, :-2] + p[1:-1, 2:]) / 4
        box[inside] = mean[inside]
    out = image.copy()
    out[top:bottom, left:right] = box
    return out


_CHANGES = {"paste": _paste, "recolour": _recolour, "add": _add, "remove": _remove}


def _quantize(image) -> numpy.ndarray:
    return numpy.clip(numpy.rint(image), 0, 255).astype(numpy.uint8)


def _altered(new_u8, old_u8) -> numpy.ndarray:
    """bool (H, W): pixels where some channel moved by at least CHANGE_LEVEL."""
    diff = numpy.abs(new_u8.astype(numpy.int16) - old_u8.astype(numpy.int16)).max(axis=-1)
    return diff >= CHANGE_LEVEL


def _apply_changes(before, images, source, rng, kinds, max_changes, min_pixels, max_fraction):
    """The changed image (uint8), its mask and the kinds of the changes that were made."""
    h, w = before.shape[:2]
    max_pixels = max(min_pixels, int(max_fraction * h * w))
    current = before.copy()
    mask = numpy.zeros((h, w), dtype=bool)
    made = []
    for _ in range(int(rng.integers(1, max_changes + 1))):
        kind = kinds[int(rng.integers(0, len(kinds)))]
        for attempt in range(_ATTEMPTS + 1):
            if attempt == _ATTEMPTS:         # nothing fitted: a shape of a contrasting colour
                kind = "add"
            area = numpy.exp(rng.uniform(numpy.log(min_pixels), numpy.log(max_pixels)))
            candidate = _quantize(_CHANGES[kind](current.astype(numpy.float32), rng, area,
                                                 images, source))
            altered = _altered(candidate, current)
            # Changes do not overlap, so none undoes another and each keeps its size. Pixels
            # a change moved by less than CHANGE_LEVEL keep their old values.
            if min_pixels <= altered.sum() <= max_pixels and not (altered & mask).any():
                current = numpy.where(altered[..., None], candidate, current)
                mask |= altered
                made.append(kind)
                break
    return current, mask, tuple(made)


# --- nuisance ---------------------------------------------------------------------------------

def _translate(x, dy: int, dx: int):
    """x shifted by (dy, dx) pixels along its first two axes, edge pixels repeated."""
    h, w = x.shape[:2]
    rows = numpy.clip(numpy.arange(h) - dy, 0, h - 1)
    cols = numpy.clip(numpy.arange(w) - dx, 0, w - 1)
    return x[rows][:, cols]


def _jpeg(image_u8, quality: int):
    Image = _pillow()
    buffer = io.BytesIO()
    Image.fromarray(image_u8).save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return numpy.asarray(decoded.convert("RGB"), dtype=numpy.uint8)


def _pillow():
    try:
        from PIL import Image
    except ImportError as exc:
        raise ImportError(
            f"{_OP}: the JPEG nuisance needs Pillow, an optional dependency of minires; install "
            f"it with: pip install minires[images], or pass nuisance=Nuisance(jpeg_quality=None)"
        ) from exc
    return Image


def _apply_nuisance(image_u8, mask, rng, nuisance: Nuisance):
    """The image with nuisance applied, and the mask translated the same way."""
    x = image_u8
    if nuisance.shift:
        dy, dx = (int(v) for v in rng.integers(-nuisance.shift, nuisance.shift + 1, 2))
        x = _translate(x, dy, dx)
        if mask is not None:
            mask = _translate(mask, dy, dx)
    x = x.astype(numpy.float32)
    mean = x.mean(axis=(0, 1))
    contrast = rng.uniform(1 - nuisance.contrast, 1 + nuisance.contrast)
    gains = rng.uniform(1 - nuisance.colour, 1 + nuisance.colour, 3).astype(numpy.float32)
    offset = rng.uniform(-nuisance.brightness, nuisance.brightness)
    x = ((x - mean) * contrast + mean) * gains + offset
    std = rng.uniform(*nuisance.noise)
    x += std * rng.standard_normal(x.shape, dtype=numpy.float32)
    x = _quantize(x)
    if nuisance.jpeg_quality is not None:
        x = _jpeg(x, int(rng.integers(nuisance.jpeg_quality[0], nuisance.jpeg_quality[1] + 1)))
    return x, mask


# --- the public functions ---------------------------------------------------------------------

def _as_nuisance(name: str, value, default: Nuisance | None) -> Nuisance | None:
    if value is True:
        return default
    if value is False or value is None:
        return None
    if isinstance(value, Nuisance):
        return value
    raise TypeError(f"{_OP}: {name} must be True, False or a Nuisance, got {value!r}")


def _check_int(name: str, value, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or value < low:
        raise ValueError(f"{_OP}: {name} must be an int >= {low}, got {value!r}")
    return int(value)


def _check_images(images) -> numpy.ndarray:
    if not isinstance(images, numpy.ndarray) or images.dtype != numpy.uint8 or images.ndim != 4 \
            or images.shape[-1] != 3 or len(images) == 0:
        shape = getattr(images, "shape", None)
        dtype = getattr(images, "dtype", type(images).__name__)
        raise ValueError(f"{_OP}: images must be a non-empty uint8 array (N, H, W, 3), got "
                         f"{dtype} of shape {shape}")
    if min(images.shape[1:3]) < 4:
        raise ValueError(f"{_OP}: images must be at least 4x4 pixels, got {images.shape[1:3]}")
    return images


def make_change_pairs(images, count: int | None = None, seed: int = 0, *, start: int = 0,
                      no_change_fraction: float = 0.3, nuisance=True, before_nuisance=False,
                      kinds=CHANGE_KINDS, max_changes: int = 3, min_pixels: int = 4,
                      max_fraction: float = 0.1) -> ChangePairs:
    """``count`` (default: one per image) change pairs made from uint8 ``images`` (N, H, W, 3).

    Pair ``j`` has index ``i = start + j``: source image ``images[i % N]``, generator
    ``default_rng([seed, i])``. ``nuisance``: True (``Nuisance()``), False, or a ``Nuisance``;
    ``before_nuisance``: False, True (the milder ``nuisance.milder()``) or a ``Nuisance``.
    ``kinds``: the change kinds to draw from (``CHANGE_KINDS``); each changed pair gets 1 to
    ``max_changes`` changes of ``min_pixels`` up to ``max_fraction`` of the image's pixels.
    """
    images = _check_images(images)
    n = len(images) if count is None else _check_int("count", count, 0)
    seed = _check_int("seed", seed, 0)
    start = _check_int("start", start, 0)
    max_changes = _check_int("max_changes", max_changes, 1)
    min_pixels = _check_int("min_pixels", min_pixels, 1)
    if not 0.0 <= no_change_fraction <= 1.0:
        raise ValueError(f"{_OP}: no_change_fraction must be in [0, 1], got {no_change_fraction!r}")
    h, w = images.shape[1:3]
    if not 0.0 < max_fraction <= 1.0 or max_fraction * h * w < min_pixels:
        raise ValueError(f"{_OP}: max_fraction must be in (0, 1] and leave room for min_pixels "
                         f"({min_pixels}) in {h}x{w} images, got {max_fraction!r}")
    kinds = tuple(kinds)
    unknown = [k for k in kinds if k not in CHANGE_KINDS]
    if not kinds or unknown:
        raise ValueError(f"{_OP}: kinds must be a non-empty selection of {CHANGE_KINDS}, "
                         f"got {kinds!r}")
    after_nuisance = _as_nuisance("nuisance", nuisance, Nuisance())
    first_nuisance = _as_nuisance("before_nuisance", before_nuisance,
                                  (after_nuisance or Nuisance()).milder())
    if (after_nuisance and after_nuisance.jpeg_quality) or \
            (first_nuisance and first_nuisance.jpeg_quality):
        _pillow()                       # fail before any work when JPEG cannot be written

    before = numpy.empty((n, h, w, 3), dtype=numpy.uint8)
    after = numpy.empty_like(before)
    mask = numpy.zeros((n, h, w), dtype=bool)
    made = []
    for j in range(n):
        index = start + j
        rng = numpy.random.default_rng([seed, index])
        source = index % len(images)
        clean = images[source]
        if rng.random() < no_change_fraction:
            changed, m, k = clean, numpy.zeros((h, w), dtype=bool), ()
        else:
            changed, m, k = _apply_changes(clean, images, source, rng, kinds, max_changes,
                                           min_pixels, max_fraction)
        if after_nuisance is not None:
            changed, m = _apply_nuisance(changed, m, rng, after_nuisance)
        if first_nuisance is not None:
            clean, _ = _apply_nuisance(clean, None, rng, first_nuisance)
        before[j], after[j], mask[j] = clean, changed, m
        made.append(k)
    return ChangePairs(before, after, mask, tuple(made))


def iter_change_pairs(images, batch_size: int, seed: int = 0, *, epoch: int = 0, **options):
    """Batches of ``make_change_pairs`` covering each image once, fresh for every ``epoch``.

    Yields ``ChangePairs`` of ``batch_size`` pairs (the last one may be shorter); the pairs
    of ``epoch`` e have indices ``e * N`` to ``(e + 1) * N - 1``, so every epoch sees every
    image once, with other changes and nuisance, and the batches equal one big call.
    """
    images = _check_images(images)
    batch_size = _check_int("batch_size", batch_size, 1)
    epoch = _check_int("epoch", epoch, 0)
    n = len(images)
    for offset in range(0, n, batch_size):
        yield make_change_pairs(images, min(batch_size, n - offset), seed,
                                start=epoch * n + offset, **options)

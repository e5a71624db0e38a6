"""Pixel scaling, resizing and random augmentation of NHWC image batches, in NumPy.

- ``scale_pixels``: uint8 0..255 to float32 0..1, the seed's ``x / 255.0``.
- ``resize_images``: resize with a triangle (bilinear) filter whose support widens with the
  shrink factor, the way Pillow's ``BILINEAR`` resizes: antialiased when shrinking, plain
  bilinear interpolation (pixel centres at ``i + 0.5``) when enlarging.
- ``Augmenter`` / ``augment``: random horizontal flips, random crops of a padded image, and
  small random rotations and scalings, for float batches during training. Off unless asked
  for: ``Augmenter()`` returns its input untouched; ``Augmenter.standard()`` is the usual
  CIFAR recipe (flip, pad 4 and crop, +-10 degrees, scale 0.9-1.1).

Every random number comes from the ``numpy.random.Generator`` the caller passes, in a fixed
order (flips, then crop offsets, then angles, then scales), so a generator in a given state
always gives the same batch. Rotations and scalings use an inverse affine map: each output
pixel asks where it came from in the input and reads that point by bilinear interpolation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy

_FILLS = ("reflect", "zero")


def _check_nhwc(op: str, name: str, x, floating: bool = False):
    if not isinstance(x, numpy.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy array, got {type(x).__name__}")
    if x.ndim != 4:
        raise ValueError(f"{op}: {name} must be NHWC with 4 dims, got shape {x.shape}")
    if floating and x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be a floating-point batch (scale it with "
                        f"scale_pixels first), got dtype {x.dtype}")


def scale_pixels(x, dtype=numpy.float32):
    """uint8 pixels 0..255 as ``dtype`` values 0..1: ``x / 255``, the seed's preprocessing."""
    x = numpy.asarray(x)
    if x.dtype != numpy.uint8:
        raise TypeError(f"scale_pixels: x must be uint8 pixels 0..255, got dtype {x.dtype}")
    return x.astype(dtype) / numpy.asarray(255.0, dtype=dtype)


# --- resizing ------------------------------------------------------------------------------

def _resize_matrix(n_in: int, n_out: int) -> numpy.ndarray:
    """(n_out, n_in) weights of a triangle filter, widened by the shrink factor (Pillow's rule).

    Output pixel o has its centre at input coordinate c = (o + 0.5) * n_in / n_out; input
    pixel i (centre i + 0.5) gets weight max(0, 1 - |i + 0.5 - c| / f), f = max(1, n_in/n_out),
    and each row is normalised to sum 1.
    """
    ratio = n_in / n_out
    width = max(ratio, 1.0)
    centres = (numpy.arange(n_out) + 0.5) * ratio
    distance = (numpy.arange(n_in)[None, :] + 0.5 - centres[:, None]) / width
    weights = numpy.maximum(0.0, 1.0 - numpy.abs(distance))
    return weights / weights.sum(axis=1, keepdims=True)


def resize_images(x, size):
    """Resize an NHWC batch to ``size`` = (H, W) (or one int for a square), keeping its dtype.

    Integer images are rounded and clipped to their dtype's range.
    """
    _check_nhwc("resize_images", "x", x)
    try:
        h, w = (size, size) if isinstance(size, (int, numpy.integer)) else (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"resize_images: size must be (height, width), got {size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"resize_images: size must be positive, got {size!r}")
    if x.shape[1:3] == (h, w):
        return x.copy()
    work = x.dtype if x.dtype.kind == "f" else numpy.float32
    rows = _resize_matrix(x.shape[1], h).astype(work)
    cols = _resize_matrix(x.shape[2], w).astype(work)
    out = numpy.einsum("oh,nhwc->nowc", rows, x.astype(work, copy=False))
    out = numpy.einsum("pw,nowc->nopc", cols, out)
    if x.dtype.kind == "f":
        return out.astype(x.dtype, copy=False)
    info = numpy.iinfo(x.dtype)
    return numpy.clip(numpy.rint(out), info.min, info.max).astype(x.dtype)


# --- augmentation --------------------------------------------------------------------------

def _reflect_index(i, n: int):
    """Integer indices reflected into 0..n-1 about the edge pixels (numpy.pad's "reflect")."""
    if n == 1:
        return numpy.zeros_like(i)
    period = 2 * (n - 1)
    i = numpy.abs(i) % period
    return numpy.where(i > n - 1, period - i, i)


def _crop(batch, offsets, padding: int, fill: str):
    """Each image padded by ``padding`` on every side, then cut at its (top, left) offset."""
    n, h, w, _ = batch.shape
    mode = "reflect" if fill == "reflect" else "constant"
    padded = numpy.pad(batch, ((0, 0), (padding, padding), (padding, padding), (0, 0)), mode=mode)
    rows = offsets[:, 0, None] + numpy.arange(h)          # (n, h)
    cols = offsets[:, 1, None] + numpy.arange(w)          # (n, w)
    return padded[numpy.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]


def affine_sample(batch, angles, scales, fill: str = "reflect"):
    """Rotate each image by ``angles[k]`` radians and scale it by ``scales[k]`` about its centre.

    Inverse map, c the centre ((H-1)/2, (W-1)/2), R(a) the rotation by a:
        source = c + R(-angle) (target - c) / scale
    sampled bilinearly; points outside the image are reflected back in (``fill="reflect"``)
    or read as 0 (``"zero"``). With angle 0 and scale 1 every source is a pixel centre and
    the image comes back exactly.
    """
    n, h, w, _ = batch.shape
    dtype = batch.dtype
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    ty = (numpy.arange(h, dtype=numpy.float64) - cy)[None, :, None]
    tx = (numpy.arange(w, dtype=numpy.float64) - cx)[None, None, :]
    cos = (numpy.cos(angles) / scales)[:, None, None]
    sin = (numpy.sin(angles) / scales)[:, None, None]
    # Image coordinates (x right, y down): the target point's offset turned back by -angle.
    sx = cx + cos * tx + sin * ty
    sy = cy - sin * tx + cos * ty
    y0, x0 = numpy.floor(sy), numpy.floor(sx)
    wy, wx = (sy - y0).astype(dtype), (sx - x0).astype(dtype)
    y0, x0 = y0.astype(numpy.intp), x0.astype(numpy.intp)
    images = numpy.arange(n)[:, None, None]
    out = numpy.zeros_like(batch)
    for dy, fy in ((0, 1 - wy), (1, wy)):
        for dx, fx in ((0, 1 - wx), (1, wx)):
            yi, xi = y0 + dy, x0 + dx
            weight = fy * fx
            if fill == "reflect":
                yi, xi = _reflect_index(yi, h), _reflect_index(xi, w)
            else:
                inside = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
                weight = weight * inside
                yi, xi = numpy.clip(yi, 0, h - 1), numpy.clip(xi, 0, w - 1)
            out += weight[..., None] * batch[images, yi, xi]
    return out


@dataclass(frozen=True)
class Augmenter:
    """Random augmentation of NHWC float batches; the defaults change nothing.

    flip:          mirror each image left-right with probability 1/2.
    crop_padding:  pad each side by this many pixels, then cut a random H x W window
                   (a random shift of up to +-crop_padding pixels).
    rotation:      rotate by an angle drawn uniformly from [-rotation, rotation] degrees.
    scale:         zoom by a factor drawn uniformly from [scale[0], scale[1]].
    fill:          "reflect" (mirror the image about its edge pixels, as numpy.pad's
                   "reflect") or "zero", for the pixels that padding, rotation or zooming
                   out bring in from outside the image.

    ``augmenter(batch, rng)`` returns a new batch of the same shape and dtype (the input
    itself when every option is off); ``rng`` is a ``numpy.random.Generator``.
    """

    flip: bool = False
    crop_padding: int = 0
    rotation: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    fill: str = "reflect"

    def __post_init__(self):
        padding = self.crop_padding
        if isinstance(padding, bool) or not isinstance(padding, (int, numpy.integer)) or padding < 0:
            raise ValueError(f"Augmenter: crop_padding must be an int >= 0, got {padding!r}")
        if not numpy.isfinite(self.rotation) or self.rotation < 0:
            raise ValueError(f"Augmenter: rotation must be a finite number of degrees >= 0, "
                             f"got {self.rotation!r}")
        try:
            low, high = (float(s) for s in self.scale)
        except (TypeError, ValueError):
            raise ValueError(
                f"Augmenter: scale must be a pair (low, high), got {self.scale!r}") from None
        if not 0 < low <= high or not numpy.isfinite(high):
            raise ValueError(f"Augmenter: scale must satisfy 0 < low <= high, got {self.scale!r}")
        object.__setattr__(self, "scale", (low, high))
        if self.fill not in _FILLS:
            raise ValueError(f"Augmenter: fill must be one of {_FILLS}, got {self.fill!r}")

    @classmethod
    def standard(cls) -> "Augmenter":
        """The usual CIFAR augmentation: flips, pad-4 crops, +-10 degrees, scale 0.9-1.1."""
        return cls(flip=True, crop_padding=4, rotation=10.0, scale=(0.9, 1.1))

    @property
    def is_identity(self) -> bool:
        """True when no option is on, so the augmenter returns its input."""
        return (not self.flip and self.crop_padding == 0 and self.rotation == 0
                and self.scale == (1.0, 1.0))

    def __call__(self, batch, rng: numpy.random.Generator):
        _check_nhwc("Augmenter", "batch", batch, floating=True)
        if not isinstance(rng, numpy.random.Generator):
            raise TypeError(f"Augmenter: rng must be a numpy.random.Generator, "
                            f"got {type(rng).__name__}")
        if self.is_identity:
            return batch
        n = batch.shape[0]
        out = batch
        if self.flip:
            mirrored = rng.random(n) < 0.5
            out = batch.copy()
            out[mirrored] = batch[mirrored, :, ::-1]
        if self.crop_padding:
            offsets = rng.integers(0, 2 * self.crop_padding + 1, size=(n, 2))
            out = _crop(out, offsets, self.crop_padding, self.fill)
        if self.rotation or self.scale != (1.0, 1.0):
            angles = numpy.deg2rad(rng.uniform(-self.rotation, self.rotation, n))
            scales = rng.uniform(self.scale[0], self.scale[1], n)
            out = affine_sample(out, angles, scales, self.fill)
        return out


def augment(batch, rng: numpy.random.Generator, *, flip: bool = False, crop_padding: int = 0,
            rotation: float = 0.0, scale=(1.0, 1.0), fill: str = "reflect"):
    """``Augmenter(flip, crop_padding, rotation, scale, fill)(batch, rng)`` in one call."""
    return Augmenter(flip=flip, crop_padding=crop_padding, rotation=rotation, scale=scale,
                     fill=fill)(batch, rng)

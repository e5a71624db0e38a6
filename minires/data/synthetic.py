"""A synthetic 10-class image dataset: shapes and textures, generated from a seed, no files.

It exists so that training can be checked end to end in minutes, on any machine, without
downloading anything. The seed's model learns it within a few epochs (README.md has the
measured curve), but not at once, because every image varies in

- position, size (radius 8-12 px at S = 32) and rotation of its shape,
- colours: background and foreground drawn per channel, the background from [0, 0.65], the
  foreground from [0.35, 1] (brighter on average, but not always, and of any hue),
- a smooth linear shading of the background and per-pixel Gaussian noise (std 0.02-0.10).

The classes (``SYNTHETIC_CLASSES``, label = index); "patch" means a square region filled
with the texture, its other half left in the background colour:

    0 disk              filled circle
    1 square            filled square, rotated up to +-10 degrees
    2 triangle          filled equilateral triangle, apex up, rotated up to +-20 degrees
    3 h_stripes         patch of horizontal stripes (period 5-9 px, random phase), +-10 deg
    4 v_stripes         patch of vertical stripes, +-10 deg
    5 checkerboard      patch of a checkerboard (cells 4-6.5 px), +-10 deg
    6 cross             plus sign, rotated up to +-20 degrees
    7 ring              circle outline
    8 diagonal_stripes  patch of stripes at 45 or 135 degrees, +-10 deg
    9 blob              Gaussian blob: a disk with a soft edge

Images are uint8 (n, S, S, 3), like CIFAR-10 from ``load_data`` and folders from
``load_image_folder``, so every source goes through the same ``scale_pixels`` and the same
rounding; labels are int64 (n,) and balanced (each class ``n // 10`` or one more, shuffled).
Everything is drawn from ``numpy.random.default_rng(seed)``: a seed gives the same images
on every run. (Across machines, NumPy's vectorized float32 ``sin``/``exp`` may round
differently, which can move a rare pixel by one level.)
"""

from __future__ import annotations

import numpy

SYNTHETIC_CLASSES = ("disk", "square", "triangle", "h_stripes", "v_stripes", "checkerboard",
                     "cross", "ring", "diagonal_stripes", "blob")

_OP = "make_synthetic"
_MAX_TILT = numpy.deg2rad(20.0)
# Textures and the square turn less, so that stripes of different directions (and a square
# and a diamond) stay apart.
_SMALL_TILT_CLASSES = (1, 3, 4, 5, 8)
_BACKGROUND_RANGE = (0.0, 0.65)
_FOREGROUND_RANGE = (0.35, 1.0)
_NOISE_STD = (0.02, 0.10)       # per-image std of the pixel noise, on the [0, 1] scale
_CHUNK = 500                    # images rendered at a time


def _soft(distance):
    """Coverage of a pixel whose centre is ``distance`` pixels outside an edge (antialiasing)."""
    return numpy.clip(0.5 - distance, 0.0, 1.0)


def _square_wave(t, period, phase):
    """1 on half of each period of ``t``, 0 on the other half, edges softened over a pixel."""
    s = numpy.sin(2 * numpy.pi * t / period + phase)
    # sin crosses zero with slope 2*pi/period per pixel: dividing by it makes the ramp ~1 px.
    return numpy.clip(0.5 + s * period / (2 * numpy.pi), 0.0, 1.0)


def _masks(label: int, u, v, r, size, p):
    """Foreground coverage in [0, 1] for the images of class ``label`` in a chunk.

    ``u, v`` are each image's pixel coordinates relative to its shape's centre, rotated by
    its tilt (u to the right, v down), ``r`` the distance to the centre, ``size`` (m, 1, 1)
    the shape's radius in pixels, ``p`` (m, 3, 1, 1) three numbers in [0, 1) per image that
    each class maps to its own parameters (period, phase, line width, ...).
    """
    def between(k, lo, hi):
        return lo + (hi - lo) * p[:, k]

    def patch(t):   # texture inside a square patch of half-width `size`
        return t * _soft(numpy.maximum(abs(u), abs(v)) - size)

    if label == 0:
        return _soft(r - size)
    if label == 1:
        return _soft(numpy.maximum(abs(u), abs(v)) - 0.9 * size)
    if label == 2:
        # Equilateral triangle, apex up: inside all three half-planes at distance size/2.
        a = size / 2
        d = numpy.maximum.reduce([v - a,
                                  -0.5 * v + 0.8660254 * u - a,
                                  -0.5 * v - 0.8660254 * u - a])
        return _soft(d)
    if label in (3, 4, 8):
        period, phase = between(0, 5.0, 9.0), between(1, 0.0, 2 * numpy.pi)
        if label == 3:
            t = v
        elif label == 4:
            t = u
        else:
            direction = numpy.where(p[:, 2] < 0.5, 1.0, -1.0)     # 45 or 135 degrees
            t = (u + direction * v) / numpy.sqrt(2.0)
        return patch(_square_wave(t, period, phase))
    if label == 5:
        cell = between(0, 4.0, 6.5)
        pu, pv = between(1, 0.0, 2 * numpy.pi), between(2, 0.0, 2 * numpy.pi)
        s = numpy.sin(numpy.pi * u / cell + pu) * numpy.sin(numpy.pi * v / cell + pv)
        return patch(numpy.clip(0.5 + 2.0 * s, 0.0, 1.0))
    if label == 6:
        half_width = numpy.maximum(size * between(0, 0.18, 0.3), 1.2)
        bar = lambda a, b: numpy.maximum(abs(a) - size, abs(b) - half_width)  # noqa: E731
        return _soft(numpy.minimum(bar(u, v), bar(v, u)))
    if label == 7:
        width = numpy.maximum(size * between(0, 0.15, 0.3), 1.2)
        return _soft(abs(r - size + width) - width)
    if label == 9:
        sigma = size * between(0, 0.45, 0.6)
        return numpy.exp(-0.5 * (r / sigma) ** 2)
    raise AssertionError(label)


def _render(s: int, y, size, cx, cy, tilt, shape, background, foreground, slope, noise_std, rng):
    """uint8 images (m, s, s, 3) of one chunk from its per-image parameters (see make_synthetic)."""
    m = len(y)
    grid = numpy.arange(s, dtype=numpy.float32)
    mask = numpy.empty((m, s, s), dtype=numpy.float32)
    for label in range(len(SYNTHETIC_CLASSES)):
        idx = numpy.flatnonzero(y == label)
        if idx.size == 0:
            continue
        dx = grid[None, None, :] - cx[idx, None, None]
        dy = grid[None, :, None] - cy[idx, None, None]
        c, t = numpy.cos(tilt[idx])[:, None, None], numpy.sin(tilt[idx])[:, None, None]
        u, v = c * dx + t * dy, -t * dx + c * dy
        mask[idx] = _masks(label, u, v, numpy.hypot(dx, dy), size[idx, None, None],
                           shape[idx, :, None, None])

    centred = grid - s / 2
    image = (slope[:, 0, None, None] * centred[None, :, None]
             + slope[:, 1, None, None] * centred[None, None, :])[..., None] \
        + background[:, None, None, :]
    # image = base * (1 - mask) + foreground * mask, in place.
    m4 = mask[..., None]
    image += m4 * (foreground[:, None, None, :] - image)
    noise = rng.standard_normal((m, s, s, 3), dtype=numpy.float32)
    noise *= noise_std[:, None, None, None]
    image += noise
    image *= 255.0
    numpy.rint(image, out=image)
    numpy.clip(image, 0, 255, out=image)
    return image.astype(numpy.uint8)


def make_synthetic(n: int, seed: int = 0, image_size: int = 32):
    """``n`` synthetic images and labels: ``(x uint8 (n, S, S, 3), y int64 (n,))``, S = image_size.

    Deterministic: the same ``(n, seed, image_size)`` always gives the same arrays. Class
    names are in ``SYNTHETIC_CLASSES``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, numpy.integer)) or n < 0:
        raise ValueError(f"{_OP}: n must be a non-negative int, got {n!r}")
    if isinstance(image_size, bool) or not isinstance(image_size, (int, numpy.integer)) \
            or image_size < 16:
        raise ValueError(f"{_OP}: image_size must be an int >= 16, got {image_size!r}")
    rng = numpy.random.default_rng(seed)
    s = int(image_size)
    f32 = numpy.float32

    # Every per-image parameter is drawn first, then the images are rendered in chunks (small
    # enough to stay in the CPU's cache), each drawing its own pixel noise.
    y = rng.permutation(numpy.arange(n) % len(SYNTHETIC_CLASSES)).astype(numpy.int64)
    size = rng.uniform(8.0, 12.0, n) * (s / 32.0)          # radius, pixels
    margin = 0.6 * size
    cx = rng.uniform(margin, s - 1 - margin)
    cy = rng.uniform(margin, s - 1 - margin)
    tilt = rng.uniform(-1.0, 1.0, n) * numpy.where(numpy.isin(y, _SMALL_TILT_CLASSES),
                                                  _MAX_TILT / 2, _MAX_TILT)
    shape = rng.random((n, 3))                             # class-specific, see _masks
    # Colours, each channel on its own: a darker background, a brighter foreground. A shape
    # brighter than its ground keeps the edges' polarity mostly the same, which is what lets
    # a small network learn the shapes in a few epochs; overlapping ranges keep some hard cases.
    background = rng.uniform(*_BACKGROUND_RANGE, (n, 3))
    foreground = rng.uniform(*_FOREGROUND_RANGE, (n, 3))
    # A smooth linear shading of the background, so a flat colour does not give a class away.
    slope = rng.uniform(-0.15, 0.15, (n, 2)) / s
    noise_std = rng.uniform(*_NOISE_STD, n)

    params = [a.astype(f32) for a in (size, cx, cy, tilt, shape, background, foreground, slope,
                                       noise_std)]
    x = numpy.empty((n, s, s, 3), dtype=numpy.uint8)
    for start in range(0, n, _CHUNK):
        part = slice(start, min(n, start + _CHUNK))
        x[part] = _render(s, y[part], *(a[part] for a in params), rng)
    return x, y

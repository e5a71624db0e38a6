"""Image classification data from a folder tree: one subfolder per class, images inside.

    root/
      airplane/0000.jpg 0001.png ...
      automobile/...

Classes are the subfolders sorted by name; a class's label is its index in that order (so
CIFAR-10's folders give the usual labels 0..9). Files are searched recursively inside each
class folder; hidden files and folders (names starting with ".") and files directly in
``root`` are ignored.

Every image, whatever its size and mode (L, LA, P, RGBA, CMYK, 1-bit, 16-bit, ...), is
decoded with Pillow, oriented by its EXIF tag, made RGB (alpha is dropped, 16-bit values are
scaled to 8 bits, in integers: round(v / 257)) and resized to ``image_size`` with Pillow's
bilinear filter, whose support widens with the shrink factor when shrinking (antialiased,
close to area averaging). Files that do not decode are skipped and reported, by name, in one
``SkippedFilesWarning``.

A few hundred bytes of PNG can declare a 100000 x 100000 image. So an image's size is read
from its header and checked before anything is decoded: one with more than ``max_pixels``
pixels (``MINIRES_MAX_IMAGE_PIXELS``, else ``DEFAULT_MAX_PIXELS``) is refused, and so is a
target ``image_size`` beyond it. Pillow's own limit (``Image.MAX_IMAGE_PIXELS``) still
applies on top, and is never changed here.

Decoding is done once. The result is kept in an ``.npz`` file keyed by a fingerprint of the
file list (relative paths, sizes, modification times) and the image size; a later call on an
unchanged folder reads that file (``allow_pickle=False``) and does not need Pillow. The cache
file lives in the minires cache directory (``<minires cache>/images/``, see
``minires.data.cache``), never in the data folder, which may be someone else's; it is
written atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import warnings
import zipfile
from pathlib import Path

import numpy

from ..progress import Progress
from .atomic import atomic_write
from .cache import minires_cache_dir

_OP = "load_image_folder"
# Bumped whenever decoding changes, so caches written by an older decoder are not reused.
_DECODER_VERSION = 1
_MAX_LISTED = 20
# Pixels an image (or a target size) may have: a 40-megapixel photo decodes to 160 MB.
DEFAULT_MAX_PIXELS = 40_000_000
_MAX_PIXELS_VARIABLE = "MINIRES_MAX_IMAGE_PIXELS"
# Rows converted at a time from 16 or 32 bits: the temporary int64 copy stays this small.
_CONVERT_ELEMENTS = 1 << 18


class SkippedFilesWarning(UserWarning):
    """Some files in an image folder could not be decoded and were left out.

    ``skipped`` lists them as ``(relative path, reason)`` pairs, for code that catches the
    warning with ``warnings.catch_warnings(record=True)``.
    """

    def __init__(self, message: str, skipped: list[tuple[str, str]]):
        super().__init__(message)
        self.skipped = skipped


def _pillow():
    """Pillow's Image and ImageOps modules, imported only when an image must be decoded."""
    try:
        from PIL import Image, ImageOps
    except ImportError as exc:
        raise ImportError(
            f"{_OP}: decoding images needs Pillow, an optional dependency of minires; "
            f"install it with: pip install minires[images]") from exc
    return Image, ImageOps


def pixel_limit(max_pixels: int | None = None) -> tuple[int, str]:
    """(the pixel limit, where it comes from): ``max_pixels`` if given, else
    ``$MINIRES_MAX_IMAGE_PIXELS``, else ``DEFAULT_MAX_PIXELS``."""
    if max_pixels is not None:
        return int(max_pixels), "max_pixels"
    text = os.environ.get(_MAX_PIXELS_VARIABLE, "").strip()
    if not text:
        return DEFAULT_MAX_PIXELS, f"the default; set {_MAX_PIXELS_VARIABLE} to change it"
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{_MAX_PIXELS_VARIABLE} must be a positive number of pixels, got {text!r}")
    return value, _MAX_PIXELS_VARIABLE


def _check_size(image_size, max_pixels=None, who: str = _OP) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"{who}: image_size must be (height, width), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{who}: image_size must be positive, got {image_size!r}")
    limit, source = pixel_limit(max_pixels)
    if h * w > limit:
        raise ValueError(f"{who}: image_size {(h, w)} is {h * w} pixels, more than the limit of "
                         f"{limit} ({source})")
    return h, w


# --- the file list and its fingerprint -----------------------------------------------------

def _visible(name: str) -> bool:
    return not name.startswith(".")


def scan_image_folder(root: str | os.PathLike):
    """The classes and files under ``root``: ``(class_names, entries)``.

    ``entries`` is a sorted list of ``(relative path, size, mtime_ns, label)``, one per
    visible file, in class order then path order. Raises ValueError when ``root`` has no
    class folders or a class folder has no files.
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{_OP}: root {root} is not a directory")
    class_names = sorted(e.name for e in os.scandir(root) if e.is_dir() and _visible(e.name))
    if not class_names:
        raise ValueError(f"{_OP}: root {root} has no class folders; expected one subfolder "
                         f"per class with the images inside")
    entries = []
    for label, name in enumerate(class_names):
        found = []
        for folder, dirs, files in os.walk(root / name):
            dirs[:] = sorted(d for d in dirs if _visible(d))
            for file in files:
                if _visible(file):
                    path = Path(folder) / file
                    stat = path.stat()
                    found.append((path.relative_to(root).as_posix(), stat.st_size,
                                  stat.st_mtime_ns, label))
        if not found:
            raise ValueError(f"{_OP}: class folder {root / name} holds no files")
        entries.extend(sorted(found))
    return class_names, entries


def _fingerprint(class_names, entries, size, max_pixels: int) -> str:
    record = json.dumps([_DECODER_VERSION, list(size), max_pixels, class_names,
                         [e[:3] for e in entries]], separators=(",", ":"))
    return hashlib.sha256(record.encode("utf-8")).hexdigest()[:20]


# --- decoding ------------------------------------------------------------------------------

def _to_uint8(values: numpy.ndarray, convert) -> numpy.ndarray:
    """``convert`` (an array -> its 8-bit values) applied a block of rows at a time, so that
    no full-size temporary wider than the image itself is ever made."""
    out = numpy.empty(values.shape, dtype=numpy.uint8)
    rows = max(1, _CONVERT_ELEMENTS // max(1, values.shape[1]))
    for start in range(0, values.shape[0], rows):
        out[start:start + rows] = convert(values[start:start + rows])
    return out


def _sixteen_to_eight(block: numpy.ndarray) -> numpy.ndarray:
    # round(v / 257), in integers: v / 257 is never halfway between two integers (257 is odd),
    # so this is floor((2v + 257) / 514), what numpy.rint gave in float64 before.
    wide = block.astype(numpy.int64)
    wide *= 2
    wide += 257
    wide //= 514
    return numpy.clip(wide, 0, 255, out=wide)


def _float_to_eight(block: numpy.ndarray) -> numpy.ndarray:
    return numpy.clip(numpy.rint(numpy.nan_to_num(block, nan=0.0)), 0, 255)


def _to_rgb(image, Image):
    """Any Pillow mode to 8-bit RGB."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit (or 32-bit int holding 16-bit) grey: 65535 maps to 255, as 255 * v / 65535.
        image = Image.fromarray(_to_uint8(numpy.asarray(image), _sixteen_to_eight), "L")
    elif image.mode == "F":
        image = Image.fromarray(_to_uint8(numpy.asarray(image), _float_to_eight), "L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == "RGB" else image.convert("RGB")


def _open_checked(path, Image, max_pixels):
    """``Image.open(path)`` (header read, nothing decoded), refused beyond the pixel limit."""
    limit, source = pixel_limit(max_pixels)
    with warnings.catch_warnings():
        # Pillow warns about images past its own limit; past ours they are refused below.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
        except Image.DecompressionBombError as exc:
            raise ValueError(f"{path}: {exc}; more pixels than the limit of {limit} ({source})") from None
    w, h = image.size
    if w * h > limit:
        image.close()
        raise ValueError(f"{path}: {w}x{h} = {w * h} pixels, more than the limit of {limit} "
                         f"({source})")
    return image


def decode_image(path: str | os.PathLike, image_size: tuple[int, int] | None,
                 max_pixels: int | None = None) -> numpy.ndarray:
    """One image file as uint8 (H, W, 3), RGB, resized to ``image_size`` = (H, W), or kept at
    its own size when ``image_size`` is None.

    Raises ValueError, before decoding, for an image (or an ``image_size``) of more than
    ``max_pixels`` pixels (default: ``pixel_limit()``).
    """
    Image, ImageOps = _pillow()
    if image_size is not None:
        h, w = _check_size(image_size, max_pixels, "decode_image")
    image = _open_checked(path, Image, max_pixels)
    if image_size is None:
        w, h = image.size
    try:
        if image.format == "JPEG":
            image.draft("RGB", (w, h))   # let libjpeg shrink by 2/4/8 while decoding big files
        # Each step makes a new full-size image; the one before it is closed at once (which
        # frees its pixels), so a large image is held at most twice, never three times.
        for step in (ImageOps.exif_transpose, lambda im: _to_rgb(im, Image),
                     lambda im: im if im.size == (w, h) else im.resize((w, h), Image.Resampling.BILINEAR)):
            result = step(image)
            if result is not image:
                image.close()
                image = result
        return numpy.asarray(image, dtype=numpy.uint8)
    finally:
        image.close()


def _decode_all(root: Path, entries, size, progress: bool, max_pixels):
    _pillow()   # fail at once, naming the extra, rather than once per file
    x = numpy.empty((len(entries), *size, 3), dtype=numpy.uint8)
    y = numpy.empty(len(entries), dtype=numpy.int64)
    kept, skipped = 0, []
    meter = Progress(len(entries), f"decoding images in {root}", "images",
                     "line" if progress else "silent", rate=False, delay=1.0, stream=sys.stderr)
    for relative, _, _, label in entries:
        try:
            x[kept] = decode_image(root / relative, size, max_pixels)
        except (MemoryError, ImportError):
            raise
        except Exception as exc:   # any decoder failure on one file skips that file only
            skipped.append((relative, f"{type(exc).__name__}: {exc}"))
        else:
            y[kept] = label
            kept += 1
        meter.update(1)
    meter.close()
    return x[:kept].copy() if kept < len(entries) else x, y[:kept], skipped


# --- the cache file ------------------------------------------------------------------------

def _cache_path(root: Path, size, fingerprint: str, cache_dir) -> Path:
    """The cache file of ``root`` at ``size``: in the cache directory, named by the folder."""
    h, w = size
    where = Path(cache_dir).expanduser() if cache_dir is not None else minires_cache_dir() / "images"
    root_key = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:12]
    return where / f"{root.resolve().name}-{root_key}-{h}x{w}-{fingerprint}.npz"


def _read_cache(path: Path, fingerprint: str):
    try:
        with numpy.load(path, allow_pickle=False) as saved:
            if str(saved["fingerprint"]) != fingerprint:
                return None
            skipped = list(zip(saved["skipped_paths"].tolist(), saved["skipped_reasons"].tolist()))
            return saved["x"], saved["y"], saved["class_names"].tolist(), skipped
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None   # unreadable or foreign: decode again and overwrite it


def _write_cache(path: Path, fingerprint: str, x, y, class_names, skipped):
    arrays = dict(
        fingerprint=numpy.array(fingerprint), x=x, y=y,
        class_names=numpy.array(class_names, dtype=str),
        skipped_paths=numpy.array([p for p, _ in skipped], dtype=str),
        skipped_reasons=numpy.array([r for _, r in skipped], dtype=str),
    )
    try:
        with atomic_write(path) as handle:
            numpy.savez(handle, **arrays)
    except OSError as exc:
        warnings.warn(f"{_OP}: could not write a cache file in {path.parent} ({exc}); the images "
                      f"will be decoded again next time", stacklevel=3)
        return None
    _remove_stale(path, fingerprint)
    return path


def _remove_stale(path: Path, fingerprint: str) -> None:
    """Delete caches of the same folder and size whose fingerprint is out of date."""
    prefix = path.name[: -len(f"{fingerprint}.npz")]
    for old in path.parent.glob(f"{prefix}*.npz"):
        if old != path and len(old.name) == len(path.name):
            try:
                old.unlink()
            except OSError:
                pass


# --- the loader ----------------------------------------------------------------------------

def _report(root: Path, skipped, total: int) -> None:
    listed = "\n".join(f"  {p} ({r})" for p, r in skipped[:_MAX_LISTED])
    more = f"\n  ... and {len(skipped) - _MAX_LISTED} more" if len(skipped) > _MAX_LISTED else ""
    warnings.warn(SkippedFilesWarning(
        f"{_OP}: skipped {len(skipped)} of {total} files in {root} that are not readable "
        f"images:\n{listed}{more}", skipped), stacklevel=3)


def load_image_folder(root: str | os.PathLike, image_size=(32, 32), cache: bool = True,
                      cache_dir: str | os.PathLike | None = None, progress: bool = True,
                      max_pixels: int | None = None):
    """Images of a class-per-folder tree as ``(x, y, class_names)``.

    x: uint8 (N, H, W, 3) with ``image_size`` = (H, W); y: int64 (N,), the index of the
    image's class in ``class_names`` (the class folders, sorted by name).

    ``cache``: read/write the decoded arrays in a cache file (see the module docstring).
    ``cache_dir``: where to keep it (default: the minires cache directory's ``images/``).
    ``progress``: report on stderr while decoding takes more than a second. ``max_pixels``:
    the pixel limit of an image and of ``image_size`` (default: ``pixel_limit()``). Unreadable
    files, and images over the limit, are skipped and listed in a ``SkippedFilesWarning``; a
    class left with no image raises ValueError.
    """
    root = Path(root).expanduser()
    size = _check_size(image_size, max_pixels)
    class_names, entries = scan_image_folder(root)
    limit = pixel_limit(max_pixels)[0]      # which images are skipped depends on it
    fingerprint = _fingerprint(class_names, entries, size, limit)
    path = _cache_path(root, size, fingerprint, cache_dir)

    loaded = _read_cache(path, fingerprint) if cache and path.is_file() else None
    if loaded is None:
        x, y, skipped = _decode_all(root, entries, size, progress, max_pixels)
        if skipped:
            _report(root, skipped, len(entries))
        empty = [name for label, name in enumerate(class_names) if not numpy.any(y == label)]
        if empty:
            raise ValueError(f"{_OP}: class folder(s) {', '.join(empty)} in {root} hold no "
                             f"readable image")
        if cache:
            _write_cache(path, fingerprint, x, y, class_names, skipped)
    else:
        x, y, class_names, skipped = loaded
        if skipped:
            _report(root, skipped, len(entries))
    return x, y, list(class_names)

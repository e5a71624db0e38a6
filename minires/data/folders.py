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
scaled to 8 bits) and resized to ``image_size`` with Pillow's bilinear filter, whose support
widens with the shrink factor when shrinking (antialiased, close to area averaging). Files
that do not decode are skipped and reported, by name, in one ``SkippedFilesWarning``.

Decoding is done once. The result is kept in an ``.npz`` file keyed by a fingerprint of the
file list (relative paths, sizes, modification times) and the image size; a later call on an
unchanged folder reads that file (``allow_pickle=False``) and does not need Pillow. The cache
file lives next to the data (``root/.minires-images-<H>x<W>-<fingerprint>.npz``) when ``root``
is writable, else in ``<minires cache>/images/``; it is written atomically.
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


def _check_size(image_size) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"{_OP}: image_size must be (height, width), got {image_size!r}") from None
    if h < 1 or w < 1:
        raise ValueError(f"{_OP}: image_size must be positive, got {image_size!r}")
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


def _fingerprint(class_names, entries, size) -> str:
    record = json.dumps([_DECODER_VERSION, list(size), class_names,
                         [e[:3] for e in entries]], separators=(",", ":"))
    return hashlib.sha256(record.encode("utf-8")).hexdigest()[:20]


# --- decoding ------------------------------------------------------------------------------

def _to_rgb(image, Image):
    """Any Pillow mode to 8-bit RGB."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit (or 32-bit int holding 16-bit) grey: 65535 maps to 255, as 255 * v / 65535.
        values = numpy.asarray(image, dtype=numpy.float64) / 257.0
        image = Image.fromarray(numpy.clip(numpy.rint(values), 0, 255).astype(numpy.uint8), "L")
    elif image.mode == "F":
        image = Image.fromarray(numpy.clip(numpy.rint(numpy.asarray(image)), 0, 255)
                                .astype(numpy.uint8), "L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_image(path: str | os.PathLike, image_size: tuple[int, int]) -> numpy.ndarray:
    """One image file as uint8 (H, W, 3), RGB, resized to ``image_size`` = (H, W)."""
    Image, ImageOps = _pillow()
    h, w = image_size
    with Image.open(path) as image:
        if image.format == "JPEG":
            image.draft("RGB", (w, h))   # let libjpeg shrink by 2/4/8 while decoding big files
        image = ImageOps.exif_transpose(image)
        image = _to_rgb(image, Image)
        if image.size != (w, h):
            image = image.resize((w, h), Image.Resampling.BILINEAR)
        return numpy.asarray(image, dtype=numpy.uint8)


def _decode_all(root: Path, entries, size, progress: bool):
    _pillow()   # fail at once, naming the extra, rather than once per file
    x = numpy.empty((len(entries), *size, 3), dtype=numpy.uint8)
    y = numpy.empty(len(entries), dtype=numpy.int64)
    kept, skipped = 0, []
    meter = Progress(len(entries), f"decoding images in {root}", "images",
                     "line" if progress else "silent", rate=False, delay=1.0, stream=sys.stderr)
    for relative, _, _, label in entries:
        try:
            x[kept] = decode_image(root / relative, size)
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

def _writable(directory: Path) -> bool:
    """Writable, and not marked read-only: a directory with no write bit at all is left alone
    even by a user (root) whom the permissions would not stop."""
    try:
        mode = directory.stat().st_mode
    except OSError:
        return False
    return bool(mode & 0o222) and os.access(directory, os.W_OK)


def _cache_candidates(root: Path, size, fingerprint: str, cache_dir) -> list[Path]:
    """Where the cache file may be: next to the data, then in the cache directory."""
    h, w = size
    beside = root / f".minires-images-{h}x{w}-{fingerprint}.npz"
    where = Path(cache_dir).expanduser() if cache_dir is not None else minires_cache_dir() / "images"
    root_key = hashlib.sha256(str(root.resolve()).encode("utf-8")).hexdigest()[:12]
    elsewhere = where / f"{root.resolve().name}-{root_key}-{h}x{w}-{fingerprint}.npz"
    return [beside, elsewhere]


def _read_cache(path: Path, fingerprint: str):
    try:
        with numpy.load(path, allow_pickle=False) as saved:
            if str(saved["fingerprint"]) != fingerprint:
                return None
            skipped = list(zip(saved["skipped_paths"].tolist(), saved["skipped_reasons"].tolist()))
            return saved["x"], saved["y"], saved["class_names"].tolist(), skipped
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        return None   # unreadable or foreign: decode again and overwrite it


def _write_cache(candidates: list[Path], fingerprint: str, x, y, class_names, skipped):
    arrays = dict(
        fingerprint=numpy.array(fingerprint), x=x, y=y,
        class_names=numpy.array(class_names, dtype=str),
        skipped_paths=numpy.array([p for p, _ in skipped], dtype=str),
        skipped_reasons=numpy.array([r for _, r in skipped], dtype=str),
    )
    for path in candidates:
        try:
            with atomic_write(path) as handle:
                numpy.savez(handle, **arrays)
        except OSError:
            continue          # not writable here: try the next place
        _remove_stale(path, fingerprint)
        return path
    places = " or ".join(str(p.parent) for p in candidates)
    warnings.warn(f"{_OP}: could not write a cache file in {places}; the images will be "
                  f"decoded again next time", stacklevel=3)
    return None


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
                      cache_dir: str | os.PathLike | None = None, progress: bool = True):
    """Images of a class-per-folder tree as ``(x, y, class_names)``.

    x: uint8 (N, H, W, 3) with ``image_size`` = (H, W); y: int64 (N,), the index of the
    image's class in ``class_names`` (the class folders, sorted by name).

    ``cache``: read/write the decoded arrays in a cache file (see the module docstring).
    ``cache_dir``: where to keep the cache when ``root`` is not writable (default: the
    minires cache directory's ``images/``). ``progress``: report on stderr while decoding
    takes more than a second. Unreadable files are skipped and listed in a
    ``SkippedFilesWarning``; a class left with no image raises ValueError.
    """
    root = Path(root).expanduser()
    size = _check_size(image_size)
    class_names, entries = scan_image_folder(root)
    fingerprint = _fingerprint(class_names, entries, size)
    candidates = _cache_candidates(root, size, fingerprint, cache_dir)

    loaded = None
    if cache:
        for path in candidates:
            if path.is_file():
                loaded = _read_cache(path, fingerprint)
                if loaded is not None:
                    break
    if loaded is None:
        x, y, skipped = _decode_all(root, entries, size, progress)
        if skipped:
            _report(root, skipped, len(entries))
        empty = [name for label, name in enumerate(class_names) if not numpy.any(y == label)]
        if empty:
            raise ValueError(f"{_OP}: class folder(s) {', '.join(empty)} in {root} hold no "
                             f"readable image")
        if cache:
            writable = [p for p in candidates if p.parent != root or _writable(root)]
            _write_cache(writable, fingerprint, x, y, class_names, skipped)
    else:
        x, y, class_names, skipped = loaded
        if skipped:
            _report(root, skipped, len(entries))
    return x, y, list(class_names)

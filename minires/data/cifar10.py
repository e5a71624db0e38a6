"""CIFAR-10 in its official Python format, read safely, found where Keras and minires keep it.

The official archive ``cifar-10-python.tar.gz`` holds a directory ``cifar-10-batches-py``
with five training batches ``data_batch_1`` .. ``data_batch_5`` (10,000 images each), one
``test_batch`` (10,000) and ``batches.meta``. Each batch is a Python-2 pickle of a dict:

    b"data"        uint8 ndarray (10000, 3072): a row is the red 32x32 plane, then green,
                   then blue, each row-major
    b"labels"      list of 10000 ints in 0..9
    b"batch_label" bytes, b"filenames" list of bytes    (not used here)

and ``batches.meta`` holds ``b"label_names"``, the ten class names. The pickles are read with
``safe_pickle`` (numpy arrays and plain containers only, never code) and checked; then each
row becomes an NHWC image, ``row.reshape(3, 32, 32).transpose(1, 2, 0)``.

``load_data`` returns what ``keras.datasets.cifar10.load_data`` returns:
``((x_train, y_train), (x_test, y_test))``, x uint8 (N, 32, 32, 3), y uint8 (N, 1).

Where it looks, in order (the first hit wins):
1. the ``path`` argument: the ``cifar-10-batches-py`` directory, a directory holding it (or
   holding the archive), or the archive file itself (``.tar.gz``, read without extracting);
2. ``$MINIRES_DATA``, taken the same way;
3. Keras' dataset directory ``$KERAS_HOME/datasets`` or ``~/.keras/datasets``
   (``cifar-10-batches-py/``, Keras 3's ``cifar-10-batches-py-target/cifar-10-batches-py/``,
   ``cifar-10-batches-py.tar.gz``, ``cifar-10-python.tar.gz``);
4. the minires cache directory (``cache_dir``, else ``$MINIRES_CACHE``, else
   ``$XDG_CACHE_HOME/minires``, else ``~/.cache/minires``).
If none has it and downloading is allowed (``download=True`` and ``$MINIRES_NO_DOWNLOAD``
unset), the official archive is downloaded into the cache directory, its MD5 checked, and
kept there as ``cifar-10-python.tar.gz``.
"""

from __future__ import annotations

import os
import tarfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy

from .cache import minires_cache_dir
from .fetch import download as download_file
from .safe_pickle import safe_load

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
BATCHES_DIR = "cifar-10-batches-py"

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"

_IMAGE_SHAPE = (32, 32, 3)
_ROW_LENGTH = 32 * 32 * 3
# Names a local copy may carry: the official archive, and the name Keras 2 saves it under.
_ARCHIVE_NAMES = (ARCHIVE_NAME, f"{BATCHES_DIR}.tar.gz")
_TRUE = {"1", "true", "yes", "on"}


class Cifar10(NamedTuple):
    """The whole dataset: NHWC uint8 images, uint8 labels of shape (N, 1), the class names."""
    x_train: numpy.ndarray
    y_train: numpy.ndarray
    x_test: numpy.ndarray
    y_test: numpy.ndarray
    class_names: tuple[str, ...]


# --- reading one batch ---------------------------------------------------------------------

def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _as_str_keys(obj, source: str) -> dict:
    if not isinstance(obj, dict):
        raise ValueError(f"cifar10: {source} must hold a dict, got {type(obj).__name__}")
    return {_text(key): value for key, value in obj.items()}


def batch_to_arrays(batch: dict, source: str) -> tuple[numpy.ndarray, numpy.ndarray]:
    """Check one unpickled batch dict and return (x uint8 (N, 32, 32, 3), y uint8 (N, 1)).

    ``source`` names the batch in error messages.
    """
    batch = _as_str_keys(batch, source)
    for key in ("data", "labels"):
        if key not in batch:
            raise ValueError(f"cifar10: {source} has no '{key}' entry (keys: {sorted(batch)})")
    data, labels = batch["data"], batch["labels"]
    if not isinstance(data, numpy.ndarray) or data.dtype != numpy.uint8 or data.ndim != 2 \
            or data.shape[1] != _ROW_LENGTH:
        got = (f"{type(data).__name__} {getattr(data, 'dtype', '')} "
               f"{getattr(data, 'shape', '')}").strip()
        raise ValueError(f"cifar10: {source}: 'data' must be a uint8 array of shape "
                         f"(N, {_ROW_LENGTH}), got {got}")
    if not isinstance(labels, (list, tuple)) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in labels):
        raise ValueError(f"cifar10: {source}: 'labels' must be a list of ints")
    if len(labels) != len(data):
        raise ValueError(f"cifar10: {source} has {len(data)} images but {len(labels)} labels")
    y = numpy.asarray(labels, dtype=numpy.int64)
    if y.size and (y.min() < 0 or y.max() > 9):
        raise ValueError(f"cifar10: {source}: labels must lie in 0..9, "
                         f"got values from {y.min()} to {y.max()}")
    # A row is three 32x32 planes (R, G, B): CHW per image, moved to HWC.
    x = numpy.ascontiguousarray(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    return x, y.astype(numpy.uint8).reshape(-1, 1)


def _class_names(meta, source: str) -> tuple[str, ...]:
    meta = _as_str_keys(meta, source)
    names = meta.get("label_names")
    if not isinstance(names, (list, tuple)) or len(names) != 10:
        raise ValueError(f"cifar10: {source}: 'label_names' must be a list of 10 names")
    return tuple(_text(name) for name in names)


# --- reading a directory or an archive -----------------------------------------------------

def _read_directory(directory: Path) -> dict:
    loaded = {}
    for name in (*TRAIN_BATCHES, TEST_BATCH, META_FILE):
        file = directory / name
        if not file.is_file():
            if name == META_FILE:
                continue
            raise FileNotFoundError(f"cifar10: {directory} has no {name}; the official "
                                    f"format has {', '.join(TRAIN_BATCHES)}, {TEST_BATCH}")
        with open(file, "rb") as handle:
            loaded[name] = safe_load(handle, str(file))
    return loaded


def _read_archive(archive: Path) -> dict:
    """Read the batch files straight out of the tar archive, in one pass, nothing extracted."""
    wanted = {*TRAIN_BATCHES, TEST_BATCH, META_FILE}
    loaded = {}
    try:
        with tarfile.open(archive, "r:*") as tar:
            for member in tar:
                name = member.name.rsplit("/", 1)[-1]
                if name not in wanted or name in loaded or not member.isfile():
                    continue
                handle = tar.extractfile(member)
                loaded[name] = safe_load(handle, f"{archive}:{member.name}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise ValueError(f"cifar10: {archive} is not a readable tar archive ({exc})") from exc
    missing = [n for n in (*TRAIN_BATCHES, TEST_BATCH) if n not in loaded]
    if missing:
        raise ValueError(f"cifar10: archive {archive} lacks {', '.join(missing)}")
    return loaded


def read_cifar10(location: str | os.PathLike) -> Cifar10:
    """Read the dataset from a ``cifar-10-batches-py`` directory or an archive of it.

    ``location`` may also be a directory that *holds* either (see ``resolve_location``).
    """
    resolved = resolve_location(location)
    if resolved is None:
        raise FileNotFoundError(f"read_cifar10: no CIFAR-10 batches or archive at {location}")
    loaded = _read_directory(resolved) if resolved.is_dir() else _read_archive(resolved)
    source = str(resolved)
    train = [batch_to_arrays(loaded[n], f"{source}:{n}") for n in TRAIN_BATCHES]
    x_test, y_test = batch_to_arrays(loaded[TEST_BATCH], f"{source}:{TEST_BATCH}")
    names = (_class_names(loaded[META_FILE], f"{source}:{META_FILE}")
             if META_FILE in loaded else CIFAR10_CLASSES)
    return Cifar10(numpy.concatenate([x for x, _ in train]),
                   numpy.concatenate([y for _, y in train]),
                   x_test, y_test, names)


# --- finding it ----------------------------------------------------------------------------

def resolve_location(location: str | os.PathLike) -> Path | None:
    """The batches directory or archive that ``location`` is or holds, or None.

    Accepted: an archive file; a directory with ``data_batch_1`` in it; a directory holding
    ``cifar-10-batches-py/`` (or Keras 3's ``cifar-10-batches-py-target/cifar-10-batches-py/``);
    a directory holding ``cifar-10-python.tar.gz`` or ``cifar-10-batches-py.tar.gz``.
    """
    path = Path(location).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    for directory in (path, path / BATCHES_DIR, path / f"{BATCHES_DIR}-target" / BATCHES_DIR):
        if (directory / TRAIN_BATCHES[0]).is_file():
            return directory
    for name in _ARCHIVE_NAMES:
        if (path / name).is_file():
            return path / name
    return None


def _keras_datasets_dir() -> Path:
    home = os.environ.get("KERAS_HOME")
    return (Path(home).expanduser() if home else Path.home() / ".keras") / "datasets"


def search_locations(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """The places ``load_data`` looks in when no ``path`` is given, in order."""
    places = []
    if os.environ.get("MINIRES_DATA"):
        places.append(Path(os.environ["MINIRES_DATA"]).expanduser())
    places.append(_keras_datasets_dir())
    places.append(Path(cache_dir).expanduser() if cache_dir is not None else minires_cache_dir())
    return places


def find_cifar10(path: str | os.PathLike | None = None,
                 cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The first batches directory or archive in the search order, or None.

    A ``path`` that is given but holds no CIFAR-10 raises FileNotFoundError: the caller said
    where the data is, so looking elsewhere would hide the mistake.
    """
    if path is not None:
        found = resolve_location(path)
        if found is None:
            raise FileNotFoundError(
                f"load_data: path {path} is neither a {BATCHES_DIR} directory, nor a directory "
                f"holding one or the archive {ARCHIVE_NAME}, nor an archive file")
        return found
    for place in search_locations(cache_dir):
        found = resolve_location(place)
        if found is not None:
            return found
    return None


def _downloads_disabled() -> bool:
    return os.environ.get("MINIRES_NO_DOWNLOAD", "").strip().lower() in _TRUE


def load_data(path: str | os.PathLike | None = None, download: bool = True,
              cache_dir: str | os.PathLike | None = None, url: str = OFFICIAL_URL,
              md5: str | None = OFFICIAL_MD5, progress: bool = True):
    """CIFAR-10 as Keras returns it: ``((x_train, y_train), (x_test, y_test))``.

    x: uint8 (N, 32, 32, 3), NHWC, pixel values 0..255 (scale with ``scale_pixels``).
    y: uint8 (N, 1), the class index (names in ``CIFAR10_CLASSES``).

    ``path``: where the data is (see the module docstring for the search when None).
    ``download``: fetch ``url`` into the cache directory when no copy is found (also switched
    off by ``MINIRES_NO_DOWNLOAD=1``). ``cache_dir``: the cache directory to search and
    download into, instead of the minires default. ``md5``: the archive's expected digest.
    ``progress``: report download progress on stderr.
    """
    found = find_cifar10(path, cache_dir)
    if found is None:
        places = [str(p) for p in search_locations(cache_dir)]
        if not download or _downloads_disabled():
            why = "download=False" if not download else "MINIRES_NO_DOWNLOAD is set"
            raise FileNotFoundError(
                f"load_data: CIFAR-10 not found (looked in {', '.join(places)}) and {why}; "
                f"put {BATCHES_DIR}/ or {ARCHIVE_NAME} in one of them, set MINIRES_DATA, or "
                f"pass path=")
        target = (Path(cache_dir).expanduser() if cache_dir is not None
                  else minires_cache_dir()) / ARCHIVE_NAME
        found = download_file(url, target, md5, progress=progress)
    data = read_cifar10(found)
    return (data.x_train, data.y_train), (data.x_test, data.y_test)

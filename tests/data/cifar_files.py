"""Small CIFAR-10 files in the official format, written the way the real ones were.

The real batches were pickled by Python 2 with protocol 2: every string (dict keys, class
names, the array's raw bytes) is a Python 2 ``str``, i.e. a BINSTRING opcode, which Python 3
reads back as ``bytes`` with ``encoding="bytes"``; and the ``data`` array names
``numpy.core.multiarray._reconstruct``. ``Py2Pickler`` writes exactly that from Python 3.
"""

from __future__ import annotations

import io
import pickle
import struct
import tarfile
from pathlib import Path

import numpy

from minires.data.cifar10 import CIFAR10_CLASSES, TEST_BATCH, TRAIN_BATCHES

_reconstruct = numpy.ndarray.__reduce__(numpy.zeros(0))[0]


class Py2Pickler(pickle._Pickler):
    """Protocol 2 with Python 2 ``str`` for both bytes and str, and NumPy 1's module names."""

    dispatch = pickle._Pickler.dispatch.copy()

    def __init__(self, file, numpy_module: str = "numpy.core.multiarray"):
        super().__init__(file, protocol=2)
        self.numpy_module = numpy_module

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str

    def save_global(self, obj, name=None):
        if obj is _reconstruct:
            self.write(pickle.GLOBAL + f"{self.numpy_module}\n_reconstruct\n".encode("ascii"))
            self.memoize(obj)
            return
        super().save_global(obj, name)

    dispatch[type(_reconstruct)] = save_global


def py2_dumps(obj, numpy_module: str = "numpy.core.multiarray") -> bytes:
    buffer = io.BytesIO()
    Py2Pickler(buffer, numpy_module).dump(obj)
    return buffer.getvalue()


def make_images(n: int, seed: int):
    """``n`` random images (uint8 NHWC) and labels 0..9."""
    rng = numpy.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 32, 32, 3), dtype=numpy.uint8),
            rng.integers(0, 10, n).astype(numpy.int64))


def batch_dict(x, y, name: str) -> dict:
    """A batch as the official files hold it: rows of R plane, G plane, B plane."""
    rows = x.transpose(0, 3, 1, 2).reshape(len(x), 3072)
    return {b"batch_label": f"{name} of 5".encode(), b"labels": [int(v) for v in y],
            b"data": numpy.ascontiguousarray(rows),
            b"filenames": [f"img_{i}.png".encode() for i in range(len(x))]}


def write_batches(directory: Path, per_batch: int = 3, numpy_module: str = "numpy.core.multiarray"):
    """Write a ``cifar-10-batches-py``-like directory; return the expected (train, test) arrays."""
    directory.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for k, name in enumerate(TRAIN_BATCHES):
        x, y = make_images(per_batch, seed=k)
        xs.append(x)
        ys.append(y)
        (directory / name).write_bytes(py2_dumps(batch_dict(x, y, name), numpy_module))
    x_test, y_test = make_images(per_batch + 1, seed=99)
    test = batch_dict(x_test, y_test, TEST_BATCH)
    (directory / TEST_BATCH).write_bytes(py2_dumps(test, numpy_module))
    meta = {b"num_cases_per_batch": per_batch, b"label_names": [c.encode() for c in CIFAR10_CLASSES],
            b"num_vis": 3072}
    (directory / "batches.meta").write_bytes(py2_dumps(meta, numpy_module))
    return (numpy.concatenate(xs), numpy.concatenate(ys)), (x_test, y_test)


def write_archive(archive: Path, per_batch: int = 3):
    """Write ``cifar-10-python.tar.gz``-like archive holding ``cifar-10-batches-py/``."""
    source = archive.parent / f".{archive.name}.src"
    expected = write_batches(source / "cifar-10-batches-py", per_batch)
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    for file in (source / "cifar-10-batches-py").iterdir():
        file.unlink()
    (source / "cifar-10-batches-py").rmdir()
    source.rmdir()
    return expected

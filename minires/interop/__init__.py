"""Other frameworks' files: Keras 3 models in; ONNX and PyTorch (safetensors) out, and back.

- ``keras_file``: ``.keras`` archives and ``.weights.h5`` files read as data (JSON, HDF5).
- ``onnx_export``: a minires model as an ONNX graph that ONNX Runtime runs; read back.
- ``torch_export``: the seed's ResNet as a PyTorch state dict in safetensors; read back.
- ``spec``: a model as plain data (layers, options, weight positions) for other frameworks.

``minires.load_model`` and ``Model.load_weights`` hand a file to ``model_reader`` /
``weights_reader`` first: they recognise these formats by suffix or signature and import
the module that reads it only then, so ``import minires`` needs neither h5py nor onnx.
"""

from __future__ import annotations

import os
import zipfile

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _signature(name: str) -> bytes:
    try:
        with open(name, "rb") as handle:
            return handle.read(8)
    except OSError:
        return b""


def _is_keras_archive(name: str) -> bool:
    """A zip holding a Keras config (a minires ``.npz`` is a zip too, of ``.npy`` entries)."""
    try:
        with zipfile.ZipFile(name) as archive:
            return "config.json" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def model_reader(path):
    """The function that loads ``path`` as a model (``reader(path, compile=...)``), or None
    for a minires archive."""
    name = os.fspath(path)
    lower = name.lower()
    if lower.endswith(".onnx"):
        from .onnx_export import load_onnx
        return load_onnx
    if lower.endswith(".safetensors"):
        from .torch_export import load_safetensors
        return load_safetensors
    if lower.endswith((".keras", ".h5", ".hdf5")) or _signature(name) == HDF5_SIGNATURE \
            or _is_keras_archive(name):
        from .keras_file import load_keras
        return load_keras
    return None


def weights_reader(path):
    """The function that loads weights from ``path`` into a model (``reader(model, path)``),
    or None for a minires archive."""
    name = os.fspath(path)
    if name.lower().endswith((".h5", ".hdf5")) or _signature(name) == HDF5_SIGNATURE:
        from .keras_file import load_keras_weights
        return load_keras_weights
    return None

"""Saving and loading: one ``.npz`` file holding arrays and a JSON header, never a pickle.

The archive format (version 1) is a NumPy ``.npz`` (a zip of ``.npy`` arrays):

- ``__minires__``: the header, UTF-8 JSON stored as a uint8 array:
  ``{"format": "minires", "version": 1, "kind": "model" | "weights" | ..., ...}``;
- every other entry is a numeric array named by the writer, e.g. ``weights/0``,
  ``optimizer/m/0``.

It is read with ``numpy.load(..., allow_pickle=False)``, so loading a file runs no code.
Files are written atomically: into a temporary file in the same directory, flushed and
fsynced, then renamed over the target with ``os.replace``; a save that fails leaves the
previous file as it was. A file that is corrupt, truncated, or not a minires archive raises
``ValueError`` naming the file.

Reading allocates only what the file holds. Before any array is read, its zip entry and its
``.npy`` header are checked: numeric dtypes only, the header's shape matching the entry's
size exactly, every entry within the file, a compressed entry (minires never writes one)
expanding at most ``MAX_EXPANSION`` times, and all of them together at most ``max_bytes``
(``MAX_ARCHIVE_BYTES`` by default). A model's architecture is then built with placeholder
parameters (shapes, no memory) and checked against the arrays, count, shapes and dtypes,
before its parameters are made: a small file declaring a huge layer is refused at once. And
a model whose numbers are not all finite (NaN, inf) is refused unless ``allow_nonfinite=True``:
it would predict NaN for every class.

A saved model (``kind: "model"``) holds:

- ``model``: the architecture (``Model.get_config()``: layer classes, configs, connections);
- ``weights``: name, shape and dtype of every ``weights/<i>`` array, in ``get_weights``
  order; each is checked against the rebuilt architecture on loading;
- ``compile`` (optimizer and loss configs, metrics) and ``optimizer_state`` (step count; the
  slots are ``optimizer/<slot>/<i>`` arrays), so training resumes where it stopped;
- ``rng_state``: the state of the model's shuffling generator;
- ``metadata``: anything JSON-able the caller adds (a trainer's epoch, its history, ...).

A trainer writes a checkpoint with the same functions::

    arrays, meta = model_to_archive(model, metadata={"epoch": 3})
    write_archive(path, arrays, meta)
    ...
    model, metadata = load_model_with_metadata(path)
"""

from __future__ import annotations

import json
import math
import os
import zipfile

import numpy

from . import initializers, interop, losses, optim
from .backend import xp
from .data.atomic import atomic_write
from .model import Model
from .model.functional import set_saving

FORMAT_NAME = "minires"
FORMAT_VERSION = 1
META_KEY = "__minires__"
_RESERVED = ("format", "version")
# The most array bytes an archive may hold: far above the checkpoints of the models minires
# trains, far below what would exhaust a machine.
MAX_ARCHIVE_BYTES = 2 ** 31
# How many times its stored size a compressed entry may expand: real weights barely compress,
# and a zip "bomb" expands a thousandfold.
MAX_EXPANSION = 100
_SMALL_ENTRY = 65536         # entries this small may compress better (a bias of zeros)


# --- the archive ----------------------------------------------------------------------------

def write_archive(path, arrays: dict, meta: dict) -> None:
    """Write ``arrays`` (name -> numeric NumPy array) and the JSON-able ``meta`` to ``path``.

    The header gets "format" and "version" added. Atomic: ``path`` is either the complete
    new archive or untouched.
    """
    name = os.fspath(path)
    if not isinstance(meta, dict) or any(k in meta for k in _RESERVED):
        raise ValueError(f"write_archive: meta must be a dict without the keys {_RESERVED}")
    entries = {}
    for key, value in arrays.items():
        if not isinstance(key, str) or not key or key == META_KEY:
            raise ValueError(f"write_archive: array names must be non-empty strings other than "
                             f"{META_KEY!r}, got {key!r}")
        array = numpy.asarray(value)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"write_archive: array {key!r} must be numeric, got dtype {array.dtype}")
        entries[key] = array
    try:
        text = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, **meta})
    except (TypeError, ValueError) as exc:
        raise ValueError(f"write_archive: meta must be JSON-serializable ({exc})") from None
    header = numpy.frombuffer(text.encode("utf-8"), dtype=numpy.uint8)
    with atomic_write(name) as handle:
        numpy.savez(handle, **{META_KEY: header}, **entries)


def _is_npy(name: str) -> bool:
    with open(name, "rb") as handle:
        return handle.read(6) == b"\x93NUMPY"


def read_archive(path, max_bytes: int = MAX_ARCHIVE_BYTES) -> tuple[dict, dict]:
    """(arrays, meta) of an archive written by ``write_archive``, checked on the way.

    Raises FileNotFoundError for a missing file and ValueError, naming the file, for one that
    is corrupt, truncated, foreign, from a newer format version, or whose arrays would take
    more than ``max_bytes`` (checked before any is read; see the module docstring).
    """
    name = os.fspath(path)
    if os.path.isfile(name) and not zipfile.is_zipfile(name) and not _is_npy(name):
        # numpy.load would take any other file for a pickle and refuse it as one, a message
        # about pickles for what is just not an archive.
        raise ValueError(f"{name}: not a readable minires archive (not an .npz zip file)")
    try:
        loaded = numpy.load(name, allow_pickle=False)
    except (FileNotFoundError, IsADirectoryError, PermissionError):
        raise
    except Exception as exc:  # a foreign or damaged file fails in many ways (zip, npy, pickle)
        raise ValueError(f"{name}: not a readable minires archive ({type(exc).__name__}: {exc})") from None
    if not isinstance(loaded, numpy.lib.npyio.NpzFile):
        raise ValueError(f"{name}: not a minires archive (a single NumPy array, not an .npz archive)")
    with loaded:
        if META_KEY not in loaded.files:
            raise ValueError(f"{name}: not a minires archive (no {META_KEY!r} header entry)")
        try:
            _check_entries(name, loaded.zip, max_bytes)
            arrays = {key: loaded[key] for key in loaded.files}
        except ValueError as exc:
            if str(exc).startswith(name):
                raise
            raise ValueError(f"{name}: corrupt or truncated archive ({type(exc).__name__}: {exc})") from None
        except Exception as exc:  # CRC mismatch, short read, bad .npy header, ...
            raise ValueError(f"{name}: corrupt or truncated archive ({type(exc).__name__}: {exc})") from None
    raw = arrays.pop(META_KEY)
    if raw.dtype != numpy.uint8 or raw.ndim != 1:
        raise ValueError(f"{name}: corrupt archive (the header is not a byte array)")
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{name}: corrupt archive (the header is not JSON: {exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        found = meta.get("format") if isinstance(meta, dict) else None
        raise ValueError(f"{name}: not a minires archive (format {found!r})")
    version = meta.get("version")
    if not isinstance(version, int) or not 1 <= version <= FORMAT_VERSION:
        raise ValueError(f"{name}: archive format version {version!r} is not supported "
                         f"(this minires reads versions 1 to {FORMAT_VERSION})")
    return arrays, meta


def _check_entries(name: str, archive: zipfile.ZipFile, max_bytes: int) -> None:
    """Refuse, before reading them, entries that would allocate more than the file holds."""
    file_size = os.path.getsize(name)
    total = 0
    for info in archive.infolist():
        entry = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if info.compress_size > file_size or info.header_offset + info.compress_size > file_size:
            raise ValueError(f"{name}: truncated archive (entry {entry!r} runs past the end of the file)")
        if info.compress_type == zipfile.ZIP_STORED:
            if info.file_size != info.compress_size:
                raise ValueError(f"{name}: corrupt archive (entry {entry!r} has two sizes)")
        elif info.file_size > MAX_EXPANSION * info.compress_size + _SMALL_ENTRY:
            raise ValueError(f"{name}: entry {entry!r} would expand from {info.compress_size} to "
                             f"{info.file_size} bytes; refused (at most {MAX_EXPANSION} times)")
        total += info.file_size
        if total > max_bytes:
            raise ValueError(f"{name}: holds more than {max_bytes} bytes of arrays, the limit "
                             f"for one archive")
        with archive.open(info) as handle:
            try:
                version = numpy.lib.format.read_magic(handle)
                if version == (1, 0):
                    shape, _, dtype = numpy.lib.format.read_array_header_1_0(handle)
                elif version == (2, 0):
                    shape, _, dtype = numpy.lib.format.read_array_header_2_0(handle)
                else:
                    raise ValueError(f"an .npy version {version} header")
            except ValueError as exc:
                raise ValueError(f"{name}: corrupt archive (entry {entry!r}: {exc})") from None
            header = handle.tell()
        if dtype.hasobject or dtype.kind not in "biuf":
            raise ValueError(f"{name}: entry {entry!r} has dtype {dtype}; minires archives hold numbers only")
        if math.prod(shape) * dtype.itemsize != info.file_size - header:
            raise ValueError(f"{name}: corrupt or truncated archive (entry {entry!r} declares shape "
                             f"{tuple(shape)} {dtype} but holds {info.file_size - header} bytes)")


# --- random generators as JSON ---------------------------------------------------------------

_BIT_GENERATORS = ("PCG64", "PCG64DXSM", "Philox", "SFC64")


def generator_state(rng: numpy.random.Generator) -> dict:
    """The JSON-able state of a NumPy generator (PCG64 and kin: plain, if big, ints)."""
    state = rng.bit_generator.state
    if state.get("bit_generator") not in _BIT_GENERATORS:
        raise ValueError(f"generator_state: cannot store a {state.get('bit_generator')} generator; "
                         f"use numpy.random.default_rng (PCG64)")
    return _jsonable(state)


def generator_from_state(state: dict) -> numpy.random.Generator:
    """A generator that continues exactly where the one ``generator_state`` saw stopped."""
    kind = state.get("bit_generator") if isinstance(state, dict) else None
    if kind not in _BIT_GENERATORS:
        raise ValueError(f"generator_from_state: unknown bit generator {kind!r}")
    bit_generator = getattr(numpy.random, kind)()
    bit_generator.state = _restore_arrays(state)
    return numpy.random.Generator(bit_generator)


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, numpy.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": value.dtype.name}
    if isinstance(value, numpy.integer):
        return int(value)
    return value


def _restore_arrays(value):
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return numpy.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: _restore_arrays(v) for k, v in value.items()}
    return value


# --- models ---------------------------------------------------------------------------------

def _weight_entries(names, weights) -> list[dict]:
    return [{"name": n, "shape": list(w.shape), "dtype": w.dtype.name} for n, w in zip(names, weights)]


def model_to_archive(model: Model, include_optimizer: bool = True, metadata=None) -> tuple[dict, dict]:
    """(arrays, meta) describing ``model`` completely, ready for ``write_archive``."""
    weights = model.get_weights()
    arrays = {f"weights/{i}": w for i, w in enumerate(weights)}
    meta = {"kind": "model", "model": model.get_config(),
            "weights": _weight_entries(model.weight_names(), weights),
            "rng_state": generator_state(model.rng)}
    if model.loss is not None:
        meta["compile"] = {"optimizer": optim.serialize(model.optimizer),
                           "loss": losses.serialize(model.loss), "metrics": list(model.metrics_names_)}
        if include_optimizer:
            scalars = {}
            for key, value in model.optimizer.get_state().items():
                if isinstance(value, numpy.ndarray):
                    arrays[f"optimizer/{key}"] = value
                else:
                    scalars[key] = value
            meta["optimizer_state"] = scalars
    if metadata is not None:
        meta["metadata"] = metadata
    return arrays, meta


def _check_weights(source: str, arrays: dict, meta: dict, names: list[str], params: list) -> list:
    """The archive's weights in order, after checking count, shapes and dtypes against ``params``
    (live arrays or placeholders: only their shapes and dtypes are read)."""
    stored = sorted((k for k in arrays if k.startswith("weights/")),
                    key=lambda k: int(k.split("/", 1)[1]) if k.split("/", 1)[1].isdigit() else -1)
    declared = meta.get("weights", [])
    if len(stored) != len(params) or not isinstance(declared, list) or len(declared) != len(params):
        raise ValueError(f"{source}: holds {len(stored)} weight arrays; the architecture has {len(params)}")
    values = []
    for i, (name, param) in enumerate(zip(names, params)):
        key = f"weights/{i}"
        if key not in arrays:
            raise ValueError(f"{source}: weight array {key!r} ({name}) is missing")
        value = arrays[key]
        entry = declared[i] if isinstance(declared[i], dict) else {}
        if entry.get("shape") != list(value.shape) or entry.get("dtype") != value.dtype.name:
            raise ValueError(f"{source}: weight {i} ({name}) is declared as {entry.get('shape')} "
                             f"{entry.get('dtype')}, but the file holds {list(value.shape)} {value.dtype}")
        if tuple(value.shape) != tuple(param.shape) or value.dtype != param.dtype:
            raise ValueError(f"{source}: weight {i} ({name}) has shape {tuple(value.shape)} and dtype "
                             f"{value.dtype}; the architecture needs {tuple(param.shape)} {param.dtype}")
        values.append(value)
    return values


def _check_finite(source: str, arrays: dict, allow_nonfinite: bool) -> None:
    if allow_nonfinite:
        return
    for key, value in arrays.items():
        if value.dtype.kind == "f" and not numpy.isfinite(value).all():
            raise ValueError(f"{source}: {key} holds non-finite values (NaN or inf): the model would "
                             f"predict NaN; pass allow_nonfinite=True to load it anyway")


def model_from_archive(arrays: dict, meta: dict, source: str = "archive", compile: bool = True,
                       allow_nonfinite: bool = False) -> Model:
    """Rebuild a model from ``read_archive``'s output: architecture, weights, training state.

    The architecture is built with placeholder parameters and checked against the stored
    arrays before any parameter is made. Non-finite weights or optimizer slots raise
    ValueError unless ``allow_nonfinite``.
    """
    if meta.get("kind") != "model":
        raise ValueError(f"{source}: holds {meta.get('kind')!r}, not a model")
    # Placeholders: shapes only, no memory, no values. The model's own generator is made from
    # a throwaway one: loading must not consume the global random stream.
    try:
        with initializers.placeholder_parameters(), initializers.use_generator(numpy.random.default_rng(0)):
            model = Model.from_config(meta["model"])
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"{source}: bad architecture ({exc})") from None
    values = iter(_check_weights(source, arrays, meta, model.weight_names(), model.weights))
    _check_finite(source, {k: v for k, v in arrays.items() if k.startswith(("weights/", "optimizer/"))},
                  allow_nonfinite)
    module = xp()
    for layer in model.layers:
        for name in layer.params:
            layer.params[name] = module.array(next(values))   # a copy: the model's own
    if "rng_state" in meta:
        try:
            model.rng = generator_from_state(meta["rng_state"])
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"{source}: bad rng_state ({exc})") from None
    if compile and "compile" in meta:
        settings = meta["compile"]
        try:
            model.compile(optimizer=optim.get(settings["optimizer"]), loss=losses.get(settings["loss"]),
                          metrics=settings.get("metrics"))
            if "optimizer_state" in meta:
                state = dict(meta["optimizer_state"])
                state.update({k[len("optimizer/"):]: v for k, v in arrays.items()
                              if k.startswith("optimizer/")})
                if len(state) > 1:        # slots exist only once the optimizer has stepped
                    model.optimizer.build(model.trainable_weights)
                model.optimizer.set_state(state)
        except (KeyError, ValueError, TypeError) as exc:
            raise ValueError(f"{source}: bad training state ({exc})") from None
    return model


def save_model(model: Model, path, include_optimizer: bool = True, metadata=None) -> None:
    """``model.save(path)``: architecture, weights, compile settings, optimizer and RNG state."""
    arrays, meta = model_to_archive(model, include_optimizer=include_optimizer, metadata=metadata)
    write_archive(path, arrays, meta)


def load_model_with_metadata(path, compile: bool = True, allow_nonfinite: bool = False) -> tuple[Model, object]:
    """(model, metadata) of a file written by ``save_model`` (metadata None if none was given).

    Other frameworks' files (a Keras 3 ``.keras``, a minires export to ONNX or safetensors)
    go to ``minires.interop``'s reader for their format, and have no metadata; their weights
    are held to the same rule on non-finite values.
    """
    reader = interop.model_reader(path)
    if reader is not None:
        model = reader(path, compile=compile)
        _check_finite(os.fspath(path), {name: w for name, w in zip(model.weight_names(), model.get_weights())},
                      allow_nonfinite)
        return model, None
    arrays, meta = read_archive(path)
    model = model_from_archive(arrays, meta, source=os.fspath(path), compile=compile,
                               allow_nonfinite=allow_nonfinite)
    return model, meta.get("metadata")


def load_model(path, compile: bool = True, allow_nonfinite: bool = False) -> Model:
    """The model saved at ``path``, compiled (with its optimizer state) if it was.

    A file holding NaN or infinite weights is refused unless ``allow_nonfinite=True``.
    """
    return load_model_with_metadata(path, compile=compile, allow_nonfinite=allow_nonfinite)[0]


def save_weights(model: Model, path) -> None:
    """The weights alone, in ``get_weights`` order (loaded by position, shapes checked)."""
    weights = model.get_weights()
    write_archive(path, {f"weights/{i}": w for i, w in enumerate(weights)},
                  {"kind": "weights", "weights": _weight_entries(model.weight_names(), weights)})


def load_weights(model: Model, path, allow_nonfinite: bool = False) -> None:
    """Load ``save_weights``' (or ``save_model``'s) weights into a model of the same structure
    (NaN or infinite weights refused unless ``allow_nonfinite=True``); a Keras 3
    ``.weights.h5`` goes to ``minires.interop``'s reader."""
    reader = interop.weights_reader(path)
    if reader is not None:
        previous = model.get_weights()
        reader(model, path)
        try:
            _check_finite(os.fspath(path), dict(zip(model.weight_names(), model.get_weights())),
                          allow_nonfinite)
        except ValueError:
            model.set_weights(previous)      # refused: the model keeps the weights it had
            raise
        return
    arrays, meta = read_archive(path)
    source = os.fspath(path)
    if meta.get("kind") not in ("weights", "model"):
        raise ValueError(f"{source}: holds {meta.get('kind')!r}, not weights")
    values = _check_weights(source, arrays, meta, model.weight_names(), model.weights)
    _check_finite(source, {f"weights/{i}": v for i, v in enumerate(values)}, allow_nonfinite)
    model.set_weights(values)


# Model.save, save_weights and load_weights call these (the model does not import its file
# format; it is given it here, and ``import minires`` imports this module).
set_saving(save_model, save_weights, load_weights)

"""A restricted unpickler for the CIFAR-10 batch files: data in, never code.

The official CIFAR-10 batches are Python-2 pickles. Plain ``pickle.load`` would call any
function the file names (``os.system``, ``builtins.eval``, ...), so a tampered archive could
run code on the reader's machine. Unpickling is safe only if the set of callables a file may
reach is the set the format needs, and this module admits exactly that set:

- the built-in containers and scalars (dict, list, tuple, bytes, str, int, float, bool,
  None), which pickle builds from opcodes without looking up any global;
- the three globals a pickled NumPy array names: ``numpy.core.multiarray._reconstruct`` (as
  written by NumPy 1, the real files) or ``numpy._core.multiarray._reconstruct`` (NumPy 2),
  ``numpy.ndarray`` and ``numpy.dtype``. ``_reconstruct`` is admitted only for plain
  ``numpy.ndarray`` and ``numpy.dtype`` only for plain numeric dtypes, never ``object``;
- ``_codecs.encode`` with the ``latin1`` codec only, which is how Python 3 writes ``bytes``
  in a protocol-2 pickle (for batches re-saved with Python 3).

Any other global raises ``ForbiddenGlobalError`` naming the file and the global, before the
global is imported, let alone called. It and ``UnreadablePickleError`` (a file that is not a
complete pickle) are both ``pickle.UnpicklingError`` and ``ValueError``: bad input, reported
like any other. What the file loads still has to be checked by its
reader (the CIFAR-10 reader checks the array's dtype and shape and the labels' range).
"""

from __future__ import annotations

import codecs
import io
import pickle
from typing import BinaryIO

import numpy

# ndarray.__reduce__ names this function; take it from there rather than import it under
# either of its module names, which differ between NumPy 1 and NumPy 2.
_reconstruct = numpy.ndarray.__reduce__(numpy.zeros(0))[0]

_NUMERIC_KINDS = "biuf"


class UnreadablePickleError(pickle.UnpicklingError, ValueError):
    """A file that is not a pickle this module can read: malformed, truncated, or refused."""


class ForbiddenGlobalError(UnreadablePickleError):
    """A pickle named a global outside the admitted set; nothing it named was imported."""


def _safe_reconstruct(subtype, shape, dtype_code):
    """``_reconstruct`` for plain ndarrays only (a subclass could run its own code)."""
    if subtype is not numpy.ndarray:
        raise pickle.UnpicklingError(f"_reconstruct is admitted for numpy.ndarray only, got {subtype!r}")
    return _reconstruct(subtype, shape, dtype_code)


def _safe_dtype(spec, align=False, copy=False):
    """``numpy.dtype`` for plain numeric dtypes only: no objects, records or sub-arrays."""
    if isinstance(spec, bytes):
        spec = spec.decode("ascii")
    dtype = numpy.dtype(spec, align, copy)
    if dtype.kind not in _NUMERIC_KINDS or dtype.fields is not None or dtype.subdtype is not None:
        raise pickle.UnpicklingError(f"numpy.dtype is admitted for numeric dtypes only, got {dtype}")
    return dtype


def _latin1_encode(text, encoding="utf-8", errors="strict"):
    """``_codecs.encode`` restricted to latin1: Python 3's protocol-2 spelling of bytes."""
    if codecs.lookup(encoding).name != "iso8859-1":
        raise pickle.UnpicklingError(f"_codecs.encode is admitted for latin1 only, got {encoding!r}")
    return codecs.encode(text, "latin1", errors)


_ADMITTED = {
    ("numpy.core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _safe_reconstruct,
    ("numpy", "ndarray"): numpy.ndarray,
    ("numpy", "dtype"): _safe_dtype,
    ("_codecs", "encode"): _latin1_encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose ``find_class`` admits only the globals listed above.

    ``source`` is the name used in error messages (the file, or the archive member).
    """

    def __init__(self, file: BinaryIO, source: str, *, encoding: str = "bytes"):
        super().__init__(file, encoding=encoding)
        self.source = source

    def find_class(self, module: str, name: str):
        try:
            return _ADMITTED[(module, name)]
        except KeyError:
            raise ForbiddenGlobalError(
                f"safe_pickle: refusing to load {self.source}: it asks for the global "
                f"'{module}.{name}', which the CIFAR-10 format never uses (only numpy arrays, "
                f"dicts, lists, bytes, strings and numbers are admitted); the file may be "
                f"corrupt or malicious"
            ) from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("it holds a persistent id, which the CIFAR-10 format never uses")


def safe_load(file: BinaryIO | bytes, source: str, *, encoding: str = "bytes"):
    """Unpickle ``file`` (a binary file object or bytes) with ``RestrictedUnpickler``.

    ``encoding="bytes"`` (as Keras reads CIFAR-10) keeps Python 2 ``str`` as ``bytes``, the
    form both the dict keys and NumPy's raw array data need. Raises ``ForbiddenGlobalError``
    for a global outside the admitted set and ``pickle.UnpicklingError`` for a malformed or
    refused file (an ``UnreadablePickleError``), both naming ``source``.
    """
    if isinstance(file, (bytes, bytearray)):
        file = io.BytesIO(file)
    try:
        return RestrictedUnpickler(file, source, encoding=encoding).load()
    except ForbiddenGlobalError:
        raise
    except pickle.UnpicklingError as exc:
        raise UnreadablePickleError(f"safe_pickle: refusing to load {source}: {exc}") from exc
    except (EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            OverflowError, MemoryError, UnicodeDecodeError) as exc:
        raise UnreadablePickleError(
            f"safe_pickle: {source} is not a readable pickle ({type(exc).__name__}: {exc})"
        ) from exc

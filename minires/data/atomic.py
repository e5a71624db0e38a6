"""Atomic file writes: a file appears at its final name complete, or not at all.

A loader that is interrupted (Ctrl-C, a full disk, a dropped connection) must not leave a
half-written cache or archive that the next run would trust. Everything is written to a
temporary file in the *same directory* (so the final rename never crosses a filesystem),
flushed to disk, then moved into place with ``os.replace``, which is atomic on POSIX and
Windows. On any error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: int = 0o644) -> Iterator[BinaryIO]:
    """Open a temporary binary file beside ``path``; on a clean exit it becomes ``path``.

        with atomic_write(cache / "images.npz") as f:
            numpy.savez(f, x=x)

    The parent directory is created if needed, and the file gets permissions ``mode`` (the
    temporary file starts private). If the block raises, ``path`` is left as it was (absent,
    or its previous content) and the temporary file is deleted.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise

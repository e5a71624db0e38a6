"""Download one file over HTTP(S), check its MD5, and put it in place only when it is right.

The bytes stream into a temporary file beside the destination while their MD5 is computed;
the file is renamed to its final name only after the whole body has arrived (as many bytes
as the server announced) and the digest matches. A wrong digest, a short body or a dropped
connection raise ``DownloadError`` and leave nothing at the final name, so a later run never
mistakes a broken file for the dataset.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import sys
import urllib.error
import urllib.request
from pathlib import Path

from ..progress import Progress
from .atomic import atomic_write

_CHUNK = 1 << 20


class DownloadError(OSError):
    """A download failed or gave the wrong bytes; no file was left at the destination."""


def download(url: str, destination: str | os.PathLike, md5: str | None, *,
             progress: bool = True, timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``destination`` atomically and return its path.

    ``md5``: the expected hex digest (None skips the check). ``progress``: report bytes on
    stderr (redrawn on a terminal, a line per 10 % otherwise). ``timeout``: seconds a single
    network read may wait.
    """
    destination = Path(destination)
    digest = hashlib.md5()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            meter = Progress(total, f"downloading {destination.name}", "bytes",
                             "line" if progress else "silent", rate=False, delay=0.5, stream=sys.stderr)
            received = 0
            with atomic_write(destination) as out:
                while True:
                    chunk = response.read(_CHUNK)
                    if not chunk:
                        break
                    out.write(chunk)
                    digest.update(chunk)
                    received += len(chunk)
                    meter.update(len(chunk))
                meter.close()
                # http.client returns b"" when the connection closes early instead of
                # raising, so the announced length is checked here.
                if total is not None and received != total:
                    raise DownloadError(
                        f"download: {url} ended after {received} of {total} bytes; "
                        f"nothing was saved at {destination}")
                if md5 is not None and digest.hexdigest() != md5.lower():
                    raise DownloadError(
                        f"download: {url} gave a file with md5 {digest.hexdigest()}, expected "
                        f"{md5.lower()}; it was discarded and nothing was saved at {destination}")
    except DownloadError:
        raise
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as exc:
        raise DownloadError(
            f"download: could not fetch {url} ({exc}); nothing was saved at {destination}"
        ) from exc
    return destination

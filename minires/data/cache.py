"""Where minires keeps files it downloads or derives: one cache directory, found the same way
by every loader.

Order: ``$MINIRES_CACHE``, else ``$XDG_CACHE_HOME/minires``, else ``~/.cache/minires``. The
directory is created only when something is written to it, never just by asking its name.
"""

from __future__ import annotations

import os
from pathlib import Path


def minires_cache_dir() -> Path:
    """The minires cache directory (not created here)."""
    explicit = os.environ.get("MINIRES_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "minires"
    return Path.home() / ".cache" / "minires"

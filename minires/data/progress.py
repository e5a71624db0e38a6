"""Progress lines on stderr for the slow parts of loading (downloads, decoding many images).

On a terminal one line is redrawn in place (``\\r``); in a log file or a CI console a plain
line is written every ``every`` of the total (10 % by default), so logs stay short. Nothing
is written until ``delay`` seconds have passed, so fast operations stay silent. (Training's
per-epoch bar, with losses and rates, is ``minires.progress``.)
"""

from __future__ import annotations

import sys
import time


def _format_bytes(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"  # unreachable; keeps type checkers content


class Progress:
    """Counts work done out of ``total`` (None if unknown) and reports it on ``stream``.

    ``unit="bytes"`` prints sizes (``12.3 MB / 170.5 MB``), anything else prints counts
    (``2000 / 50000 images``).
    """

    def __init__(self, label: str, total: int | None, unit: str = "items", *,
                 enabled: bool = True, delay: float = 0.5, every: float = 0.1, stream=None):
        self.label = label
        self.total = total
        self.unit = unit
        self.enabled = enabled
        self.delay = delay
        self.every = every
        self.stream = sys.stderr if stream is None else stream
        self.done = 0
        self._start = time.monotonic()
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._next_tick = 0           # plain lines: the next multiple of the step to log
        self._logged = -1             # `done` when the last plain line was written
        self._last_draw = 0.0
        self._drawn = False

    def _text(self) -> str:
        if self.unit == "bytes":
            done = _format_bytes(self.done)
            total = f" / {_format_bytes(self.total)}" if self.total else ""
            return f"{self.label}: {done}{total}"
        total = f" / {self.total}" if self.total else ""
        return f"{self.label}: {self.done}{total} {self.unit}"

    def update(self, n: int) -> None:
        """Record ``n`` more units of work, and report if it is time to."""
        self.done += n
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._start < self.delay:
            return
        if self._tty:
            if now - self._last_draw >= 0.1:
                self.stream.write("\r" + self._text())
                self.stream.flush()
                self._last_draw = now
                self._drawn = True
            return
        # Plain lines: one each time another `every` of the total (or, with no total known,
        # another 10 MB or 1000 items) has been done.
        if self.total:
            tick = int(self.done / self.total / self.every + 1e-9)
        else:
            tick = self.done // (10_000_000 if self.unit == "bytes" else 1000)
        if tick >= self._next_tick:
            self.stream.write(self._text() + "\n")
            self.stream.flush()
            self._drawn = True
            self._logged = self.done
            self._next_tick = tick + 1

    def close(self) -> None:
        """Finish the report: end the redrawn line, or log the final count if anything was shown."""
        if not (self.enabled and self._drawn):
            return
        elapsed = time.monotonic() - self._start
        if self._tty:
            self.stream.write(f"\r{self._text()} ({elapsed:.1f} s)\n")
        elif self._logged != self.done:
            self.stream.write(f"{self._text()} ({elapsed:.1f} s)\n")
        self.stream.flush()

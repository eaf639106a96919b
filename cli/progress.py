"""A one-line progress bar on stderr for long work (demo generation, big ingests)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, label: str, total: int, *, stream=None, width: int = 30) -> None:
        self.label = label
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.width = width
        self.start = time.monotonic()
        self.done = 0
        self._last = 0.0
        self._tty = hasattr(self.stream, "isatty") and self.stream.isatty()

    def update(self, done: int, note: str = "", *, force: bool = False) -> None:
        """Redraw at most 5 times a second on a terminal; in logs and CI only the last line."""
        self.done = min(done, self.total)
        now = time.monotonic()
        if not force and (not self._tty or now - self._last < 0.2):
            return
        self._last = now
        frac = self.done / self.total
        bar = "#" * int(frac * self.width)
        elapsed = time.monotonic() - self.start
        lead = "\r" if self._tty else ""
        line = f"{lead}{self.label} [{bar:<{self.width}}] {frac:4.0%} {elapsed:5.1f}s {note}"
        self.stream.write(line[:120].ljust(100))
        self.stream.flush()

    def finish(self, note: str = "") -> float:
        self.update(self.total, note, force=True)
        self.stream.write("\n")
        self.stream.flush()
        return time.monotonic() - self.start

"""A progress line for long work, shown only when standard output is a terminal.

Usage::

    with Progress("replay", total=size) as progress:
        for chunk in work:
            progress.advance(len(chunk))

The line goes to standard error, redrawn in place at most ten times a second and
erased at the end, so piped or redirected output never contains it.
"""

from __future__ import annotations

import sys
import time

from acd.cli.common import is_tty

INTERVAL = 0.1  # s between two redraws at least


class Progress:
    """A redrawn ``label: done/total (pct)`` line; silent when stdout is not a terminal."""

    def __init__(self, label: str, total: float | None = None) -> None:
        self.label = label
        self.total = total
        self.done = 0.0
        self.enabled = is_tty()
        self.stream = sys.stderr
        self._last = -float("inf")
        self._shown = False

    def advance(self, amount: float = 1.0) -> None:
        """Count ``amount`` more units of work done; redraw if it is time."""
        self.done += amount
        if self.enabled and (now := time.monotonic()) - self._last >= INTERVAL:
            self._last = now
            self._draw()

    def _draw(self) -> None:
        if self.total:
            pct = min(100.0, 100.0 * self.done / self.total)
            text = f"{self.label}: {self.done:,.0f}/{self.total:,.0f} ({pct:.0f} %)"
        else:
            text = f"{self.label}: {self.done:,.0f}"
        self.stream.write("\r" + text + "\x1b[K")
        self.stream.flush()
        self._shown = True

    def close(self) -> None:
        """Erase the line (if one was drawn)."""
        if self._shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self._shown = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

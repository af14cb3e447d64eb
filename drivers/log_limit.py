"""Rate-limited log lines, for problems a remote party can repeat at will (a flood of
bad MQTT commands must not fill the disk with identical lines).

The first occurrence is logged at once; later ones within ``interval`` seconds are only
counted, and one summary line with the count and the last message closes the interval.
While the problem goes on, that is one line per interval.
"""

from __future__ import annotations

import asyncio
import logging
import time


class RateLimitedLog:
    """``limited("command refused: %s", why)`` logs like ``logger.log(level, ...)``, at
    most one line per ``interval`` plus a summary of what it held back."""

    def __init__(self, logger: logging.Logger, level: int, interval: float = 10.0) -> None:
        self.logger = logger
        self.level = level
        self.interval = interval
        self.held = 0  # occurrences not logged in the current interval
        self._last = ""
        self._timer: asyncio.TimerHandle | None = None
        self._since = 0.0  # monotonic time the current interval began

    def __call__(self, msg: str, *args: object, exc_info: BaseException | None = None) -> None:
        if self._timer is None:
            self.logger.log(self.level, msg, *args, exc_info=exc_info)
            self._start()
        else:
            self.held += 1
            self._last = msg % args if args else msg

    def flush(self) -> None:
        """Log the summary of what was held back (if anything) and end the interval."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._summarise()

    def _start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a unit test): nothing to hold lines back with
            return
        self._since = time.monotonic()
        self._timer = loop.call_later(self.interval, self._end_interval)

    def _end_interval(self) -> None:
        self._timer = None
        if self._summarise():
            self._start()  # still going on: keep counting into the next summary

    def _summarise(self) -> bool:
        if not self.held:
            return False
        self.logger.log(
            self.level,
            "%s (and %d more like it in %.1f s)",
            self._last,
            self.held,
            time.monotonic() - self._since,
        )
        self.held = 0
        return True

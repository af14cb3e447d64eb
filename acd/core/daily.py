"""Two caches of the engine that change with the date: a queue's counts of the day
(restarted lazily at local midnight) and the calendars' answers (kept until they
change).

A queue's counts are one contiguous ``array('q')`` in ``QueueFigures`` order: no int
object per count to touch, no dict to hash into. The queue object carries them with the
local midnight of their day (``counts``, ``day``); `DailyCounts.of` starts a new array
the first time a queue is counted on a new day.
"""

from __future__ import annotations

from array import array
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from acd.core.calendar import Calendar, midnight
from acd.core.records import Outcome

COUNT_NAMES = (
    "offered",
    "answered",
    "answered_in_sl",
    "abandoned",
    "short_abandoned",
    "overflowed",
    "closed",
    "rejected",
    "failed",
)
"""The counts of the day, in ``QueueFigures`` order."""
OFFERED, ANSWERED, ANSWERED_IN_SL, ABANDONED, SHORT_ABANDONED = range(5)
ENDED = {o: COUNT_NAMES.index(str(o)) for o in Outcome if str(o) in COUNT_NAMES[5:]}
"""The count of each outcome that ends a leg unanswered (abandons apart)."""


def no_counts() -> array:
    """A day's counts before anything happened."""
    return array("q", bytes(8 * len(COUNT_NAMES)))


class Counted(Protocol):
    """What carries a day's counts (the engine's queues)."""

    counts: array
    day: float  # local midnight of the day the counts belong to


class DailyCounts:
    """Today's counts of each queue in the time zone ``tz``."""

    __slots__ = ("day", "day_end", "tz")

    def __init__(self, tz: ZoneInfo) -> None:
        self.tz = tz
        self.day = 0.0  # local midnight today
        self.day_end = 0.0  # local midnight tomorrow

    def of(self, q: Counted, now: float) -> array:
        """The counts of ``q`` for the day of ``now``, restarted at local midnight."""
        if now >= self.day_end or now < self.day:
            day = datetime.fromtimestamp(now, self.tz).date()
            self.day = midnight(day, self.tz)
            self.day_end = midnight(day + timedelta(days=1), self.tz)
        if q.day != self.day:
            q.day = self.day
            q.counts = no_counts()
        return q.counts


class CalendarCache:
    """Whether a calendar is open, each answer kept until the time it changes."""

    __slots__ = ("_cache",)

    def __init__(self) -> None:
        self._cache: dict[int, tuple[bool, float]] = {}  # id(calendar) -> (open, until)

    def is_open(self, calendar: Calendar, now: float) -> bool:
        """Whether ``calendar`` is open at ``now``."""
        cached = self._cache.get(id(calendar))
        if cached is None or now >= cached[1]:
            cached = self._cache[id(calendar)] = calendar.state(now)
        return cached[0]

    def clear(self) -> None:
        """Forget every answer (the calendars were replaced)."""
        self._cache.clear()

"""The engine's date caches on their own (acd.core.daily): counts of the day, calendar answers."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from acd.core.calendar import midnight
from acd.core.daily import OFFERED, CalendarCache, DailyCounts, no_counts

PARIS = ZoneInfo("Europe/Paris")
DST_END = dt.date(2026, 10, 25)  # a 25-hour day in Paris


class Queue:
    def __init__(self) -> None:
        self.counts = no_counts()
        self.day = 0.0


def test_counts_restart_at_local_midnight_a_25_hour_day_included():
    daily, q = DailyCounts(PARIS), Queue()
    start = midnight(DST_END, PARIS)
    daily.of(q, start + 1)[OFFERED] += 1
    daily.of(q, start + 24.5 * 3600)[OFFERED] += 1  # 23:30 local: the same day
    assert daily.of(q, start + 25 * 3600 - 1)[OFFERED] == 2
    assert daily.of(q, start + 25 * 3600)[OFFERED] == 0  # the next local midnight
    other = Queue()  # counted first on the new day: starts from zero too
    assert daily.of(other, start + 26 * 3600)[OFFERED] == 0


class Calendar:
    """Open for 100 s, then closed for 100 s ... counting the questions."""

    def __init__(self) -> None:
        self.asked = 0

    def state(self, at: float) -> tuple[bool, float]:
        self.asked += 1
        return int(at // 100) % 2 == 0, (at // 100 + 1) * 100


def test_a_calendar_is_asked_again_only_once_its_answer_expired():
    cache, cal = CalendarCache(), Calendar()
    assert [cache.is_open(cal, t) for t in (0, 50, 99.9, 100, 150, 200)] == [
        True,
        True,
        True,
        False,
        False,
        True,
    ]
    assert cal.asked == 3
    cache.clear()
    assert cache.is_open(cal, 210) and cal.asked == 4

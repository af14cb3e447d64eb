"""Business hours: weekly opening hours, French public holidays, exceptional days.

Times are epoch seconds; the site time zone turns them into local days and hours, so
opening hours follow daylight-saving changes. ``Calendar.state(at)`` answers whether the
site is open and until when that answer holds, which lets the engine check each call in
O(1) amortised (one local-time conversion per opening-hours boundary, not per call).
"""

from __future__ import annotations

import functools
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from acd.config import CalendarConfig


def midnight(day: date, timezone: str | ZoneInfo) -> float:
    """Epoch seconds of local midnight starting ``day`` in ``timezone``."""
    tz = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    return datetime.combine(day, time(), tz).timestamp()


def easter(year: int) -> date:
    """Easter Sunday of ``year`` (Gregorian calendar, anonymous algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    el = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * el) // 451
    month, day = divmod(h + el - 7 * m + 114, 31)
    return date(year, month, day + 1)


@functools.lru_cache(maxsize=64)
def french_holidays(year: int) -> dict[date, str]:
    """The eleven French public holidays (jours fériés) of ``year``."""
    sunday = easter(year)
    return {
        date(year, 1, 1): "Jour de l'an",
        sunday + timedelta(days=1): "Lundi de Pâques",
        date(year, 5, 1): "Fête du Travail",
        date(year, 5, 8): "Victoire 1945",
        sunday + timedelta(days=39): "Ascension",
        sunday + timedelta(days=50): "Lundi de Pentecôte",
        date(year, 7, 14): "Fête nationale",
        date(year, 8, 15): "Assomption",
        date(year, 11, 1): "Toussaint",
        date(year, 11, 11): "Armistice 1918",
        date(year, 12, 25): "Noël",
    }


class Calendar:
    """Opening hours of one calendar in the site's time zone."""

    def __init__(self, config: CalendarConfig, tz: ZoneInfo) -> None:
        self.config = config
        self.tz = tz

    def spans(self, day: date) -> tuple[tuple[int, int], ...]:
        """Opening spans of a local day, in minutes since midnight."""
        cfg = self.config
        if day in cfg.openings:
            return cfg.openings[day]
        if self.closed_reason(day):
            return ()
        return cfg.hours.get(day.weekday(), ())

    def closed_reason(self, day: date) -> str | None:
        """Why a whole day is closed apart from weekly hours (holiday, closure)."""
        if self.config.holidays == "FR" and (name := french_holidays(day.year).get(day)):
            return name
        for start, end in self.config.closures:
            if start <= day <= end:
                return "exceptional closure"
        return None

    def _local(self, day: date, minute: int) -> float:
        wall = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
        return wall.replace(tzinfo=self.tz).timestamp()

    def state(self, at: float) -> tuple[bool, float]:
        """``(open, until)``: whether the calendar is open at ``at`` and an epoch time
        before which that answer cannot change (the next boundary or local midnight)."""
        local = datetime.fromtimestamp(at, self.tz)
        day = local.date()
        minute = local.hour * 60 + local.minute + (local.second + local.microsecond / 1e6) / 60
        until = self._local(day, 1440)
        is_open = False
        for start, end in self.spans(day):
            if start <= minute < end:
                is_open = True
                until = min(until, self._local(day, end))
                break
            if minute < start:
                until = min(until, self._local(day, start))
                break
        return is_open, max(until, at + 1e-6)

    def is_open(self, at: float) -> bool:
        """True when the calendar is open at ``at``."""
        return self.state(at)[0]

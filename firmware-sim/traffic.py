"""Call traffic: the calendar of the simulated day and Poisson arrivals within it.

Arrivals form a non-homogeneous Poisson process with a piecewise-constant rate: a
day's expected volume spread over the hours by a time-of-day profile (share of the
day's calls per hour). Within each hour the gaps are exponential, which is exact for
a constant rate, so the whole day is exact for the profile.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from acd.core.calendar import french_holidays

WEEKDAY_SHARES = (7.0, 11.0, 12.0, 11.0, 9.0, 7.0, 9.0, 10.0, 9.0, 8.0, 7.0)
"""ASSUMPTION (docs/simulator.md, Traffic): illustrative weekday profile, % of the day's
calls per hour from 08:00 to 19:00, until measured traffic exists."""

SATURDAY_SHARES = (18.0, 24.0, 24.0, 19.0, 15.0)
"""ASSUMPTION: illustrative Saturday profile, % of the day's calls per hour 08:00–13:00
(a morning peak like the weekday's, scaled to five hours)."""

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class Profile:
    """Share of a day's calls per hour, from ``start_s`` (seconds after midnight)."""

    start_s: float
    shares: tuple[float, ...]

    @property
    def end_s(self) -> float:
        return self.start_s + 3600.0 * len(self.shares)

    def hourly_fractions(self) -> tuple[float, ...]:
        """The shares normalised to sum to 1."""
        total = sum(self.shares)
        return tuple(s / total for s in self.shares)


@dataclass(frozen=True)
class DayPlan:
    """Expected calls on one day of the week and how they spread over the hours."""

    volume: float
    profile: Profile


@dataclass(frozen=True)
class WeeklyTraffic:
    """The week's traffic: a plan per weekday name (absent = no calls), holidays closed."""

    week: dict[str, DayPlan]
    public_holidays: bool = True  # French public holidays bring no calls (site closed)

    def plan_for(self, day: date) -> DayPlan | None:
        """The plan of ``day``, or None when the site receives no traffic that day."""
        if self.public_holidays and day in french_holidays(day.year):
            return None
        return self.week.get(DAY_NAMES[day.weekday()])


def arrival_times(plan: DayPlan, rng: random.Random) -> list[float]:
    """Arrival instants (seconds after midnight, increasing) for one day of ``plan``."""
    times: list[float] = []
    for hour, fraction in enumerate(plan.profile.hourly_fractions()):
        rate = plan.volume * fraction / 3600.0
        start = plan.profile.start_s + 3600.0 * hour
        if rate <= 0:
            continue
        t = start + rng.expovariate(rate)
        while t < start + 3600.0:
            times.append(t)
            t += rng.expovariate(rate)
    return times


def choose(weights: dict[str, float], rng: random.Random) -> str:
    """One key of ``weights`` drawn with probability proportional to its weight."""
    keys = list(weights)
    return rng.choices(keys, weights=[weights[k] for k in keys])[0]

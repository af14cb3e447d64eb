"""Time-of-day profiles and per-hour staffing over a week of opening hours.

A profile gives each hour of the day its share of a full day's calls (``hour,share``
lines of a small CSV; shares are weights, normalised to sum to 1, so percentages work).
Opening hours use the calendar configuration's shape: weekday (0 = Monday) → spans in
minutes since midnight. An hour open for only part of its 60 minutes receives that
part of its share, at the same call rate.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from acd.config import WEEKDAYS
from acd.planning.staffing import (
    Performance,
    StaffingError,
    Targets,
    Traffic,
    evaluate,
    required_agents,
    scheduled_agents,
)

OpeningHours = dict[int, tuple[tuple[int, int], ...]]

# The reference customer: Mon–Fri 08:00–19:00, Sat 08:00–13:00.
REFERENCE_HOURS: OpeningHours = {
    **{day: ((8 * 60, 19 * 60),) for day in range(5)},
    5: ((8 * 60, 13 * 60),),
}


def parse_profile(text: str, source: str = "<profile>") -> dict[int, float]:
    """``hour,share`` lines → {hour: share}, shares normalised to sum to 1.

    Blank lines and ``#`` comments are skipped, as is a first line ``hour,share``.
    Hours are ``8``, ``08`` or ``08:00``; shares are numbers ≥ 0, optionally with ``%``.
    """
    shares: dict[int, float] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        fields = [f.strip() for f in line.split(",")]
        if not shares and [f.lower() for f in fields] == ["hour", "share"]:
            continue
        where = f"{source}:{number}"
        if len(fields) != 2:
            raise StaffingError(f"{where}: expected 'hour,share', got {raw.strip()!r}")
        hour = _hour(fields[0], where)
        try:
            share = float(fields[1].removesuffix("%"))
        except ValueError:
            raise StaffingError(f"{where}: share must be a number, got {fields[1]!r}") from None
        if not share >= 0 or share == float("inf"):
            raise StaffingError(f"{where}: share must be zero or more, got {fields[1]!r}")
        if hour in shares:
            raise StaffingError(f"{where}: hour {hour:02d} given twice")
        shares[hour] = share
    total = sum(shares.values())
    if total <= 0:
        raise StaffingError(f"{source}: no hour with a positive share")
    return {hour: share / total for hour, share in sorted(shares.items())}


def _hour(text: str, where: str) -> int:
    hours, _, minutes = text.partition(":")
    if hours.isdigit() and 0 <= int(hours) <= 23 and minutes in ("", "00"):
        return int(hours)
    raise StaffingError(f"{where}: hour must be 0..23 (e.g. 08 or 08:00), got {text!r}")


def load_profile(path: str | os.PathLike[str]) -> dict[int, float]:
    """Read a profile file (see :func:`parse_profile`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise StaffingError(f"{path}: cannot read the profile ({exc.strerror})") from None
    return parse_profile(text, str(path))


@dataclass(frozen=True)
class HourPlan:
    """One open hour of one weekday: its calls and the team it needs (or has)."""

    weekday: int  # 0 = Monday
    hour: int
    open_minutes: int
    calls: float
    performance: Performance
    agents_scheduled: int

    @property
    def day(self) -> str:
        return WEEKDAYS[self.weekday]


def plan_week(
    per_day: float,
    profile: dict[int, float],
    aht_s: float,
    targets: Targets,
    *,
    patience_s: float | None = None,
    shrinkage: float = 0.0,
    hours: OpeningHours = REFERENCE_HOURS,
    agents: int | None = None,
) -> list[HourPlan]:
    """Per open hour of each weekday: the smallest team meeting ``targets`` for
    ``per_day`` calls spread by ``profile`` (or, with ``agents``, that team's figures).

    ``per_day`` is a full day's volume: a day open fewer hours gets only their shares.
    """
    if not per_day >= 0:
        raise StaffingError(f"calls per day must be zero or more, got {per_day:g}")
    plans = []
    solved: dict[tuple[int, int], tuple[Performance, float]] = {}
    for weekday in sorted(hours):
        for hour, minutes in _open_minutes(hours[weekday]).items():
            if (hour, minutes) not in solved:
                traffic = Traffic(
                    calls=per_day * profile.get(hour, 0.0) * minutes / 60,
                    interval_s=minutes * 60,
                    aht_s=aht_s,
                    patience_s=patience_s,
                )
                try:
                    if agents is None:
                        perf = required_agents(traffic, targets)
                    else:
                        perf = evaluate(traffic, agents, targets.threshold_s)
                except StaffingError as exc:
                    raise StaffingError(f"{WEEKDAYS[weekday]} {hour:02d}:00: {exc}") from None
                solved[hour, minutes] = (perf, traffic.calls)
            perf, calls = solved[hour, minutes]
            team = scheduled_agents(perf.agents, shrinkage)
            plans.append(HourPlan(weekday, hour, minutes, calls, perf, team))
    return plans


def _open_minutes(spans: tuple[tuple[int, int], ...]) -> dict[int, int]:
    """Hour of the day → minutes open within it."""
    open_minutes: dict[int, int] = {}
    for start, end in spans:
        for hour in range(start // 60, (end + 59) // 60):
            overlap = min(end, (hour + 1) * 60) - max(start, hour * 60)
            if overlap > 0:
                open_minutes[hour] = open_minutes.get(hour, 0) + overlap
    return dict(sorted(open_minutes.items()))

"""The figures the customer reads, computed from call records (docs/tools.md, "What the
figures mean").

Every leg counts once in ``calls`` and ends in one outcome. Legs that came while the
queue was closed and short abandons (caller gone within ``short_abandon`` seconds) are
counted apart and are not *offered*, so::

    calls   = closed + short_abandoned + offered
    offered = answered + abandoned + overflowed + rejected + failed

Rates have ``offered`` (or ``answered``) as denominator and are ``None`` when it is 0:
``answer_rate`` = answered / offered (taux de décroché); ``sl_offered`` = answered
within the threshold / offered; ``sl_answered`` (Asterisk SL) = answered within /
answered; ``sl_wait`` (Asterisk SL2) = (answered within + abandoned within) / (answered +
abandoned); ``abandon_rate`` = abandoned / offered; ``asa`` = mean wait of answered legs;
``aht`` = mean talk + wrap-up of answered legs; ``occupancy`` = handling time / staffed
time, when the staffed time is known (``staffed_seconds`` from agent notifications).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import astuple, dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged
from acd.core.records import CallRecord, Outcome

PERIODS = ("queue", "hour", "day", "week", "month")


@dataclass(frozen=True, slots=True)
class Figures:
    """Counts and rates of a set of legs."""

    calls: int
    offered: int
    answered: int
    abandoned: int
    short_abandoned: int
    overflowed: int
    closed: int
    rejected: int
    failed: int
    answered_in_sl: int
    abandoned_in_sl: int
    answer_rate: float | None
    sl_offered: float | None
    sl_answered: float | None
    sl_wait: float | None
    abandon_rate: float | None
    asa: float | None
    aht: float | None
    occupancy: float | None
    handling: float  # s of talk + wrap-up

    def to_dict(self) -> dict[str, float | int | None]:
        return {name: getattr(self, name) for name in self.__slots__}


def _ratio(a: float, b: float) -> float | None:
    return a / b if b else None


@dataclass(frozen=True, slots=True)
class Tally:
    """The sums `Figures` are made of; tallies of disjoint sets of legs add up (``+``),
    so figures kept per queue and hour (`acd.runtime.store` aggregates) combine with legs."""

    calls: int = 0
    answered: int = 0
    abandoned: int = 0
    short_abandoned: int = 0
    overflowed: int = 0
    closed: int = 0
    rejected: int = 0
    failed: int = 0
    answered_in_sl: int = 0
    abandoned_in_sl: int = 0
    wait_sum: float = 0.0  # s waited by the answered legs
    handling: float = 0.0  # s of talk + wrap-up of the answered legs

    def __add__(self, other: Tally) -> Tally:
        return Tally(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))

    def figures(self, staffed: float | None = None) -> Figures:
        """The figures of these sums; occupancy when ``staffed`` (s) is known."""
        answered, abandoned = self.answered, self.abandoned
        answered_in, abandoned_in = self.answered_in_sl, self.abandoned_in_sl
        offered = self.calls - self.closed - self.short_abandoned
        return Figures(
            calls=self.calls,
            offered=offered,
            answered=answered,
            abandoned=abandoned,
            short_abandoned=self.short_abandoned,
            overflowed=self.overflowed,
            closed=self.closed,
            rejected=self.rejected,
            failed=self.failed,
            answered_in_sl=answered_in,
            abandoned_in_sl=abandoned_in,
            answer_rate=_ratio(answered, offered),
            sl_offered=_ratio(answered_in, offered),
            sl_answered=_ratio(answered_in, answered),
            sl_wait=_ratio(answered_in + abandoned_in, answered + abandoned),
            abandon_rate=_ratio(abandoned, offered),
            asa=_ratio(self.wait_sum, answered),
            aht=_ratio(self.handling, answered),
            occupancy=_ratio(self.handling, staffed) if staffed is not None else None,
            handling=self.handling,
        )


def tally(
    records: Iterable[CallRecord],
    *,
    sl_threshold: float | Mapping[str, float] = 20.0,
    short_abandon: float = 5.0,
) -> Tally:
    """The sums of ``records``; ``sl_threshold`` is seconds, or seconds per queue id."""
    counts = dict.fromkeys(
        ("answered", "abandoned", "short", "overflowed", "closed", "rejected", "failed"), 0
    )
    calls = answered_in = abandoned_in = 0
    wait_sum = handling = 0.0
    per_queue = not isinstance(sl_threshold, int | float)
    for r in records:
        calls += 1
        threshold = sl_threshold.get(r.queue, 20.0) if per_queue else sl_threshold
        outcome = r.outcome
        if outcome is Outcome.ANSWERED:
            counts["answered"] += 1
            wait = r.wait
            wait_sum += wait
            handling += r.talk + r.wrapup
            answered_in += wait <= threshold
        elif outcome is Outcome.ABANDONED:
            wait = r.wait
            if wait < short_abandon:
                counts["short"] += 1
            else:
                counts["abandoned"] += 1
                abandoned_in += wait <= threshold
        else:
            counts[str(outcome)] += 1
    return Tally(
        calls,
        counts["answered"],
        counts["abandoned"],
        counts["short"],
        counts["overflowed"],
        counts["closed"],
        counts["rejected"],
        counts["failed"],
        answered_in,
        abandoned_in,
        wait_sum,
        handling,
    )


def compute(
    records: Iterable[CallRecord],
    *,
    sl_threshold: float | Mapping[str, float] = 20.0,
    short_abandon: float = 5.0,
    staffed: float | None = None,
) -> Figures:
    """Figures of ``records``; ``sl_threshold`` is seconds, or seconds per queue id."""
    sums = tally(records, sl_threshold=sl_threshold, short_abandon=short_abandon)
    return sums.figures(staffed)


def period_key(at: float, period: str, tz: ZoneInfo) -> str:
    """The local hour (``2026-11-30T09``), day (``2026-11-30``), ISO week (``2026-W49``)
    or month (``2026-11``) of an epoch time."""
    local = datetime.fromtimestamp(at, tz)
    if period == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.strftime(_KEY_FORMATS[period])


_KEY_FORMATS = {"hour": "%Y-%m-%dT%H", "day": "%Y-%m-%d", "month": "%Y-%m"}


def grouped(
    records: Iterable[CallRecord],
    by: str,
    tz: ZoneInfo,
    *,
    sl_threshold: float | Mapping[str, float] = 20.0,
    short_abandon: float = 5.0,
    staffed: Mapping[str, float] | None = None,
    kept: Mapping[str, Tally] | None = None,
) -> dict[str, Figures]:
    """Figures per queue id, or per local hour, day, week or month (legs counted in the
    period they entered their queue), sorted by key; ``kept`` adds the sums of purged legs."""
    if by not in PERIODS:
        raise ValueError(f"by must be one of {PERIODS}")
    key: Callable[[CallRecord], str] = (
        (lambda r: r.queue) if by == "queue" else (lambda r: period_key(r.queued_at, by, tz))
    )
    groups: dict[str, list[CallRecord]] = {}
    for r in records:
        groups.setdefault(key(r), []).append(r)
    kept = kept or {}
    options = {"sl_threshold": sl_threshold, "short_abandon": short_abandon}
    return {
        k: (tally(groups.get(k, ()), **options) + kept.get(k, Tally())).figures(
            staffed.get(k) if staffed is not None else None
        )
        for k in sorted(groups.keys() | kept.keys())
    }


def add_by_period(
    totals: dict[str, float],
    start: float,
    stop: float,
    by: str,
    tz: ZoneInfo,
    weight: float = 1.0,
) -> None:
    """Add ``weight`` × the seconds of ``[start, stop)`` to ``totals``, split by local
    hour or day (cut at hour boundaries, which every time zone's days also fall on)."""
    while start < stop:
        boundary = min(stop, (start // 3600 + 1) * 3600)
        k = period_key(start, by, tz)
        totals[k] = totals.get(k, 0.0) + weight * (boundary - start)
        start = boundary


def staffed_seconds(
    changes: Iterable[AgentChanged], end: float, by: str, tz: ZoneInfo
) -> dict[str, float]:
    """Staffed time per local hour or day from agent notifications (in time order):
    an agent is staffed while ready or handling a call, not while logged out or idle
    in not-ready. Intervals still open are closed at ``end``."""
    since: dict[str, float] = {}
    totals: dict[str, float] = {}
    for c in changes:
        staffed = c.status is AgentStatus.READY or (
            c.status is AgentStatus.NOT_READY and c.state is not AgentState.IDLE
        )
        start = since.pop(c.agent_id, None)
        if start is not None:
            add_by_period(totals, start, c.at, by, tz)
        if staffed:
            since[c.agent_id] = c.at
    for start in since.values():
        add_by_period(totals, start, end, by, tz)
    return dict(sorted(totals.items()))


def ready_series(changes: Iterable[AgentChanged]) -> list[tuple[float, int]]:
    """``(at, agents ready)`` each time the number of agents with status ready changes."""
    ready: set[str] = set()
    series: list[tuple[float, int]] = []
    for c in changes:
        if c.status is AgentStatus.READY:
            ready.add(c.agent_id)
        else:
            ready.discard(c.agent_id)
        if series and series[-1][0] == c.at:
            series[-1] = (c.at, len(ready))
        elif not series or series[-1][1] != len(ready):
            series.append((c.at, len(ready)))
    return series


def ready_seconds(
    series: list[tuple[float, int]], end: float, by: str, tz: ZoneInfo
) -> dict[str, float]:
    """Agent-seconds ready per local hour or day, the last level lasting until ``end``."""
    totals: dict[str, float] = {}
    points = [*series, (max(end, series[-1][0]), 0)] if series else []
    for (start, count), (stop, _) in itertools.pairwise(points):
        if count:
            add_by_period(totals, start, stop, by, tz, count)
    return totals

"""Traffic forecasts as the planner reads them, and the agents they need.

A forecast (``acd forecast --out``) is a CSV ``start,mean,lo80,hi80``: one row per
interval, local time, the mean number of calls and the 80 % prediction interval of the
count. Its uncertainty is read as a gamma-Poisson (negative binomial) model with a
**day-level factor**: on day d the calls of interval i are Poisson with mean m_i·F_d,
where F_d has mean 1 and a gamma distribution, one draw per day. The count's variance is
then m_i + m_i²·c_d (c_d the squared coefficient of variation of F_d); the 80 % interval
gives each interval's standard deviation, (hi80 − lo80) / (2 × 1.2816), and c_d is fitted
over the day's intervals: c_d = max(0, Σ(σ_i² − m_i)) / Σ m_i². A factor shared by the
whole day is how call-centre forecasts err (the day's level is uncertain, its shape much
less: Taylor 2012, Ibrahim et al. 2016).

Staffing (`plan_staffing`) gives every interval the Erlang agents for the traffic
m_i·Q(q), Q the day factor's quantile at one level q for every interval, with q the
smallest level at which the **week** meets its targets with the probability asked for:
the week's answered share (and service level) are aggregated over the days, whose
factors are drawn independently (Monte Carlo over Erlang figures interpolated in the
factor), and the calls the week misses are drawn around Erlang's expectation (the
week's own randomness). docs/planning.md explains the choice.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from acd.errors import AcdError
from acd.planning.profile import REFERENCE_HOURS
from acd.planning.staffing import (
    Performance,
    StaffingError,
    Targets,
    Traffic,
    evaluate,
    required_agents,
)

Z80 = 1.2815515655446004  # the standard normal's 90 % quantile: an 80 % interval is ±Z80·σ
FORECAST_COLUMNS = ("start", "mean", "lo80", "hi80")
MIN_SPREAD = 1e-4  # a day factor varying by less than 1 % (the file's rounding) is none


class ForecastError(AcdError):
    """A forecast file that cannot be read (missing column, bad number, no interval)."""


@dataclass(frozen=True, slots=True)
class Interval:
    """One forecast interval: local start, mean calls and the 80 % interval of the count."""

    start: datetime
    mean: float
    lo80: float
    hi80: float

    @property
    def variance(self) -> float:
        """The count's variance read from the 80 % interval (normal approximation; from
        its upper half when its lower end is clipped at zero)."""
        if self.lo80 <= 0:
            return ((self.hi80 - self.mean) / Z80) ** 2
        return ((self.hi80 - self.lo80) / (2 * Z80)) ** 2


@dataclass(frozen=True)
class Forecast:
    """A forecast: intervals in time order, all ``interval_s`` long."""

    intervals: tuple[Interval, ...]
    interval_s: float

    def days(self) -> dict[date, tuple[Interval, ...]]:
        """The intervals of each day, in order."""
        out: dict[date, list[Interval]] = {}
        for row in self.intervals:
            out.setdefault(row.start.date(), []).append(row)
        return {d: tuple(rows) for d, rows in out.items()}

    def day_spread(self) -> dict[date, float]:
        """Each day's c_d: the squared coefficient of variation of its day factor."""
        return {d: day_spread(rows) for d, rows in self.days().items()}

    def weeks(self) -> dict[date, tuple[date, ...]]:
        """The forecast's days in weeks: blocks of 7 days from its first day (key: the
        block's first day), so that a forecast of 7 days is one week whatever its start."""
        days = list(self.days())
        out: dict[date, list[date]] = {}
        for day in days:
            first = days[0] + timedelta(days=7 * ((day - days[0]).days // 7))
            out.setdefault(first, []).append(day)
        return {first: tuple(block) for first, block in out.items()}


def day_spread(rows: Iterable[Interval]) -> float:
    """c = max(0, Σ(σ_i² − m_i)) / Σ m_i² over the rows: the variance of the day factor
    that, added to Poisson noise, gives the rows' 80 % intervals (0: Poisson only, or
    less than `MIN_SPREAD`)."""
    rows = list(rows)
    squares = math.fsum(r.mean**2 for r in rows)
    if squares == 0:
        return 0.0
    spread = math.fsum(r.variance - r.mean for r in rows) / squares
    return spread if spread >= MIN_SPREAD else 0.0


def parse_forecast(text: str, source: str = "<forecast>") -> Forecast:
    """Read ``start,mean,lo80,hi80`` CSV text (start in ISO 8601 local time)."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in FORECAST_COLUMNS if c not in (reader.fieldnames or ())]
    if missing:
        raise ForecastError(
            f"{source}: missing column(s) {', '.join(missing)} (need start,mean,lo80,hi80)"
        )
    rows: list[Interval] = []
    for line, raw in enumerate(reader, start=2):
        where = f"{source}:{line}"
        try:
            start = datetime.fromisoformat(raw["start"].strip()).replace(tzinfo=None)
        except (ValueError, AttributeError):
            raise ForecastError(
                f"{where}: start must be a date and time, got {raw['start']!r}"
            ) from None
        values = []
        for name in FORECAST_COLUMNS[1:]:
            try:
                value = float(raw[name])
            except (TypeError, ValueError):
                raise ForecastError(
                    f"{where}: {name} must be a number, got {raw[name]!r}"
                ) from None
            if not 0 <= value < math.inf:
                raise ForecastError(f"{where}: {name} must be zero or more, got {raw[name]!r}")
            values.append(value)
        mean, lo, hi = values
        if lo > hi:
            raise ForecastError(f"{where}: lo80 {lo:g} is above hi80 {hi:g}")
        rows.append(Interval(start, mean, lo, hi))
    if not rows:
        raise ForecastError(f"{source}: no interval")
    rows.sort(key=lambda r: r.start)
    gaps = [(b.start - a.start).total_seconds() for a, b in pairwise(rows)]
    if 0.0 in gaps:
        twice = next(a.start for a, b in pairwise(rows) if a.start == b.start)
        raise ForecastError(f"{source}: interval {twice.isoformat(' ')} given twice")
    same_day = [g for g, a in zip(gaps, rows, strict=False) if g < 86400]
    if not same_day:
        raise ForecastError(f"{source}: one interval a day: cannot tell the interval length")
    return Forecast(tuple(rows), min(same_day))


def load_forecast(path: str | os.PathLike[str]) -> Forecast:
    """Read a forecast file (see `parse_forecast`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ForecastError(f"{path}: cannot read the forecast ({exc.strerror})") from None
    return parse_forecast(text, str(path))


def assumed_forecast(
    profile: dict[int, float],
    per_day: float,
    first: date,
    days: int = 7,
    hours: dict[int, tuple[tuple[int, int], ...]] | None = None,
    interval_min: int = 60,
    day_sd: float = 0.0,
) -> Forecast:
    """A forecast without history: ``per_day`` calls on a full day spread by the hourly
    ``profile`` (shares summing to 1) over the opening ``hours`` (weekday → spans in
    minutes; default the reference town hall's) of ``days`` days from ``first``, in
    intervals of ``interval_min``. A day open fewer hours gets only their shares. The
    80 % intervals are those of a day factor of standard deviation ``day_sd`` on top of
    Poisson noise (0: Poisson noise alone), which `day_spread` reads back."""

    if not 0 <= per_day < math.inf:
        raise StaffingError(f"calls per day must be zero or more, got {per_day:g}")
    if not 0 <= day_sd < math.inf:
        raise StaffingError(f"day level standard deviation must be zero or more, got {day_sd:g}")
    if not 1 <= interval_min <= 60 or 60 % interval_min:
        raise StaffingError(
            f"interval must divide the hour (5, 10, 15, 30, 60 min), got {interval_min}"
        )
    hours = REFERENCE_HOURS if hours is None else hours
    rows = []
    for k in range(days):
        day = first + timedelta(days=k)
        for start, end in hours.get(day.weekday(), ()):
            minute = start - start % interval_min
            while minute < end:
                open_min = min(end, minute + interval_min) - max(start, minute)
                mean = per_day * profile.get(minute // 60, 0.0) * open_min / 60
                sd = math.sqrt(mean + (day_sd * mean) ** 2)
                at = datetime.combine(day, datetime.min.time()) + timedelta(minutes=minute)
                rows.append(Interval(at, mean, max(0.0, mean - Z80 * sd), mean + Z80 * sd))
                minute += interval_min
    if not rows:
        raise StaffingError("no opening hour in the days asked for")
    return Forecast(tuple(rows), 60.0 * interval_min)


def forecast_csv(forecast: Forecast) -> str:
    """A forecast as ``start,mean,lo80,hi80`` CSV (what `parse_forecast` reads)."""
    lines = ["start,mean,lo80,hi80"]
    for r in forecast.intervals:
        start = r.start.isoformat(timespec="minutes")
        lines.append(f"{start},{r.mean:.3f},{r.lo80:.3f},{r.hi80:.3f}")
    return "\n".join(lines) + "\n"


# --- the day factor: gamma with mean 1 --------------------------------------------------


def _gamma_p(shape: float, x: float) -> float:
    """Regularised lower incomplete gamma P(shape, x) (series or continued fraction)."""
    if x <= 0:
        return 0.0
    log_front = shape * math.log(x) - x - math.lgamma(shape)
    if x < shape + 1:
        term = total = 1.0 / shape
        a = shape
        for _ in range(10_000):
            a += 1
            term *= x / a
            total += term
            if term < total * 1e-16:
                break
        return min(1.0, total * math.exp(log_front))
    tiny = 1e-300
    b = x + 1 - shape
    c, d = 1 / tiny, 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - shape)
        b += 2
        d = an * d + b
        d = 1 / (d if abs(d) > tiny else tiny)
        c = b + an / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        if abs(d * c - 1) < 1e-16:
            break
    return max(0.0, 1.0 - math.exp(log_front) * h)


@dataclass(frozen=True, slots=True)
class DayFactor:
    """The day's multiplier F of the forecast mean: gamma, mean 1, variance ``spread``
    (a spread of 0: F = 1, the forecast is exact up to Poisson noise)."""

    spread: float

    def quantile(self, p: float) -> float:
        """F's ``p`` quantile (bisection on the gamma CDF, to 1e-10)."""
        if not 0 < p < 1:
            raise StaffingError(f"quantile level must be in ]0, 1[, got {p:g}")
        if self.spread == 0:
            return 1.0
        shape = 1 / self.spread
        lo, hi = 0.0, 2.0
        while _gamma_p(shape, hi * shape) < p:
            lo, hi = hi, 2 * hi
        while hi - lo > 1e-10 * hi:
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if _gamma_p(shape, mid * shape) < p else (lo, mid)
        return (lo + hi) / 2

    def sample(self, rng: random.Random) -> float:
        """One draw of F."""
        if self.spread == 0:
            return 1.0
        return rng.gammavariate(1 / self.spread, self.spread)


# --- required agents -------------------------------------------------------------------


WEEK_METRICS = ("answer_rate", "sl_offered")
"""Goals that are shares of offered calls, so that a week's value is the offered-call
weighted mean of its intervals': the week-level probability is computed on these."""


@dataclass(frozen=True, slots=True)
class IntervalNeed:
    """One interval: the forecast, the calls staffed for and the agents they need."""

    start: datetime
    mean: float
    planned_calls: float  # mean × the day factor's q quantile
    agents: int  # on the phones
    performance: Performance  # Erlang figures at planned_calls


@dataclass(frozen=True)
class WeekNeed:
    """A week of the plan: agent-hours on the phones and the chance it meets the goals."""

    first: date
    days: tuple[date, ...]
    calls: float  # forecast mean
    agent_hours: float  # at the chosen quantile
    agent_hours_at_mean: float  # staffed for the forecast mean (no margin)
    probability: float  # P(the week meets its goals) at the chosen quantile


@dataclass(frozen=True)
class StaffingPlan:
    """Agents per interval from a forecast, at the quantile that meets ``confidence``."""

    intervals: tuple[IntervalNeed, ...]
    weeks: tuple[WeekNeed, ...]
    interval_s: float
    quantile: float | None  # None: the forecast has no spread beyond Poisson noise
    confidence: float
    spread: dict[date, float]  # c_d per day
    week_goals: tuple[str, ...]  # the goals the week-level probability is about
    reached: bool  # the confidence is reached at the quantile (else the highest tried)
    given: bool = False  # the quantile was given, not searched


QUANTILE_RANGE = (0.05, 0.995)
_GRID = 17  # day-factor points where each day's Erlang figures are computed
_DRAWS = 4000  # simulated weeks behind each probability


class _Solver:
    """Erlang figures and staffing, cached (days alike share their intervals' traffic)."""

    def __init__(self, aht_s: float, patience_s: float | None, interval_s: float, targets: Targets):
        self.aht_s, self.patience_s, self.interval_s = aht_s, patience_s, interval_s
        self.targets = targets
        self._need: dict[float, Performance] = {}
        self._perf: dict[tuple[float, int], Performance] = {}

    def traffic(self, calls: float) -> Traffic:
        return Traffic(calls, self.aht_s, self.interval_s, self.patience_s)

    def need(self, calls: float) -> Performance:
        if calls not in self._need:
            self._need[calls] = required_agents(self.traffic(calls), self.targets)
        return self._need[calls]

    def perf(self, calls: float, agents: int) -> Performance:
        key = (calls, agents)
        if key not in self._perf:
            traffic = self.traffic(calls)
            if agents == 0 and calls > 0:
                self._perf[key] = Performance(0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0)
            elif self.patience_s is None and agents <= traffic.erlangs:
                # Erlang C without a steady state: the queue grows all day, no call is
                # answered within any threshold (every call is, eventually, answered)
                a = traffic.erlangs
                self._perf[key] = Performance(agents, a, 0, 1, 0, 1, 0, 0, 0, 0, 0, 1)
            else:
                self._perf[key] = evaluate(traffic, agents, self.targets.threshold_s)
        return self._perf[key]


def plan_staffing(
    forecast: Forecast,
    targets: Targets,
    aht_s: float,
    patience_s: float | None = None,
    confidence: float = 0.9,
    seed: int = 1,
    quantile: float | None = None,
) -> StaffingPlan:
    """Agents per interval so that each week meets ``targets`` with probability
    ``confidence`` under the forecast's uncertainty (see the module docstring); or, with
    ``quantile``, at that level of the day factor (the probability then only reported).

    The per-interval goals (every target) hold at the planned traffic; the week-level
    probability is about the `WEEK_METRICS` goals among ``targets`` (answer rate,
    service level on offered calls), aggregated over the week's calls.
    """
    if not 0 < confidence < 1:
        raise StaffingError(f"confidence must be in ]0, 1[, got {confidence:g}")
    given = quantile is not None
    if given and not 0 < quantile < 1:
        raise StaffingError(f"quantile must be in ]0, 1[, got {quantile:g}")
    solver = _Solver(aht_s, patience_s, forecast.interval_s, targets)
    days = forecast.days()
    spread = forecast.day_spread()
    factor = {d: DayFactor(c) for d, c in spread.items()}
    goals = [(m, g) for m, up, g, _ in targets._checks if up and m in WEEK_METRICS]
    weeks = forecast.weeks()

    def staff(q: float | None) -> dict[date, list[int]]:
        return {
            d: [
                solver.need(r.mean * (1.0 if q is None else factor[d].quantile(q))).agents
                for r in rows
            ]
            for d, rows in days.items()
        }

    grids = {d: _factor_grid(factor[d]) for d in days}

    def day_curves(team: dict[date, list[int]]) -> dict[date, list[tuple[float, ...]]]:
        """Per day and grid factor: (offered, then each goal's good calls)."""
        out = {}
        for d, rows in days.items():
            curve = []
            for f in grids[d]:
                offered = math.fsum(r.mean * f for r in rows)
                good = [
                    math.fsum(
                        r.mean * f * getattr(solver.perf(r.mean * f, n), metric)
                        for r, n in zip(rows, team[d], strict=True)
                    )
                    for metric, _ in goals
                ]
                curve.append((offered, *good))
            out[d] = curve
        return out

    def probabilities(q: float | None) -> dict[date, float]:
        team = staff(q)
        if not goals:
            return dict.fromkeys(weeks, 1.0)
        curves = day_curves(team)
        out = {}
        for first, week_days in weeks.items():
            rng = random.Random(f"staffing:{seed}:{first.isoformat()}")
            met = 0
            for _ in range(_DRAWS):
                totals = [0.0] * (len(goals) + 1)
                for d in week_days:
                    point = _interpolate(grids[d], curves[d], factor[d].sample(rng))
                    totals = [a + b for a, b in zip(totals, point, strict=True)]
                met += _week_meets(totals, [goal for _, goal in goals], rng)
            out[first] = met / _DRAWS
        return out

    if all(c == 0 for c in spread.values()):
        quantile, probs = None, probabilities(None)
        reached = min(probs.values()) >= confidence
    elif quantile is not None:
        probs = probabilities(quantile)
        reached = min(probs.values()) >= confidence
    else:
        quantile, probs, reached = _smallest_level(probabilities, confidence)
    team = staff(quantile)
    at_mean = staff(None)
    hours = forecast.interval_s / 3600
    needs = []
    for d, rows in days.items():
        level = 1.0 if quantile is None else factor[d].quantile(quantile)
        for r, n in zip(rows, team[d], strict=True):
            calls = r.mean * level
            needs.append(IntervalNeed(r.start, r.mean, calls, n, solver.need(calls)))
    week_needs = tuple(
        WeekNeed(
            first=first,
            days=week_days,
            calls=math.fsum(r.mean for d in week_days for r in days[d]),
            agent_hours=hours * sum(n for d in week_days for n in team[d]),
            agent_hours_at_mean=hours * sum(n for d in week_days for n in at_mean[d]),
            probability=probs[first],
        )
        for first, week_days in weeks.items()
    )
    return StaffingPlan(
        intervals=tuple(needs),
        weeks=week_needs,
        interval_s=forecast.interval_s,
        quantile=quantile,
        confidence=confidence,
        spread=spread,
        week_goals=tuple(f"{m} >= {g:g}" for m, g in goals),
        reached=reached,
        given=given,
    )


def _week_meets(totals: Sequence[float], goals: Sequence[float], rng: random.Random) -> bool:
    """Whether a week of ``totals`` (offered calls, then each goal's expected good calls
    at the week's day factors) meets every goal, once the week's own randomness is
    drawn: given the rates, the calls that miss a goal (abandoned, or answered too late)
    are a count over thousands of calls, drawn here as binomial (normal approximation,
    variance missed × (1 − missed ÷ offered)) around Erlang's expectation."""
    offered = totals[0]
    if offered == 0:
        return True
    met = True
    for good, goal in zip(totals[1:], goals, strict=True):
        missed = max(0.0, offered - good)
        noisy = good + rng.gauss(0.0, math.sqrt(missed * (1 - missed / offered)))
        met = met and noisy >= goal * offered * (1 - 1e-12)
    return met


def _smallest_level(
    probabilities: Callable[[float], dict[date, float]], confidence: float
) -> tuple[float, dict[date, float], bool]:
    """The smallest quantile level in `QUANTILE_RANGE` (to 0.005) whose every week meets
    ``confidence``, with its probabilities; the top of the range if none does."""
    lo, hi = QUANTILE_RANGE
    top = probabilities(hi)
    if min(top.values()) < confidence:
        return hi, top, False
    bottom = probabilities(lo)
    if min(bottom.values()) >= confidence:
        return lo, bottom, True
    best = top
    while hi - lo > 0.005:
        mid = (lo + hi) / 2
        probs = probabilities(mid)
        if min(probs.values()) >= confidence:
            hi, best = mid, probs
        else:
            lo = mid
    return hi, best, True


def _factor_grid(factor: DayFactor) -> list[float]:
    """Day factors from the 0.05 % to the 99.95 % quantile, denser in the middle."""
    if factor.spread == 0:
        return [1.0]
    levels = [0.0005 + 0.999 * (1 - math.cos(math.pi * k / (_GRID - 1))) / 2 for k in range(_GRID)]
    return [factor.quantile(p) for p in levels]


def _interpolate(
    grid: Sequence[float], curve: Sequence[tuple[float, ...]], f: float
) -> tuple[float, ...]:
    """The curve at factor ``f``: linear between grid points; beyond the grid, the
    nearest end's shares scaled to the traffic (offered grows with f)."""
    if len(grid) == 1:
        return tuple(x * f for x in curve[0])
    i = bisect_left(grid, f)
    if i == 0 or i == len(grid):
        end = curve[0] if i == 0 else curve[-1]
        edge = grid[0] if i == 0 else grid[-1]
        return tuple(x * f / edge for x in end)
    f0, f1 = grid[i - 1], grid[i]
    w = (f - f0) / (f1 - f0)
    return tuple(a + w * (b - a) for a, b in zip(curve[i - 1], curve[i], strict=True))


def requirements_csv(plan: StaffingPlan) -> str:
    """``start,agents`` lines (agents on the phones per interval): what ``acd schedule
    --requirements`` reads."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(("start", "agents"))
    for need in plan.intervals:
        writer.writerow((need.start.isoformat(timespec="minutes"), need.agents))
    return out.getvalue()


@dataclass(frozen=True)
class Team:
    """The team a plan is held against: ``agents`` on ``contract_hours`` a week each."""

    agents: int
    contract_hours: float

    def __post_init__(self) -> None:
        if self.agents < 0:
            raise StaffingError(f"agents must be zero or more, got {self.agents}")
        if not 0 < self.contract_hours <= 168:
            raise StaffingError(
                f"contract hours must be in ]0, 168] a week, got {self.contract_hours:g}"
            )

    @property
    def hours(self) -> float:
        """The team's paid agent-hours a week."""
        return self.agents * self.contract_hours

    def shortfall(self, on_phone_hours: float, shrinkage: float = 0.0) -> tuple[float, float]:
        """(agent-hours, full-time equivalents) the team lacks to give ``on_phone_hours``
        on the phones when ``shrinkage`` of paid time is off them (negative: spare)."""
        short = on_phone_hours / (1 - shrinkage) - self.hours
        return short, short / self.contract_hours

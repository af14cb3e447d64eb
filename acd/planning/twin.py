"""The twin: a schedule checked by the real engine against traffic drawn from a forecast.

Each simulated day runs the what-if machinery (`acd.planning.whatif.run_day`: the real `Engine`
behind a `Bridge`, against the simulated switch in virtual time) with exactly the
agents of the schedule (``agent,day,start,end,break_start,break_end``, as ``acd
schedule`` writes it) on shift: each logs in at the shift's start, goes not ready for
the break and logs out at the shift's end (after the call in hand). Arrivals follow the
forecast with its uncertainty: one day factor per simulated day (the gamma of
`acd.planning.demand`, fitted to the forecast's 80 % intervals), then a Poisson process at the
interval's mean times that factor. Many simulated weeks give the share of weeks and of
days whose answer rate reaches the queue's target, with Wilson intervals.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from statistics import NormalDist

from acd.config import AgentConfig, Config
from acd.core.figures import compute
from acd.errors import AcdError, must_be
from acd.planning.demand import DayFactor, Forecast, Interval
from acd.planning.schedule import CSV_COLUMNS, Requirement, ScheduleError
from acd.planning.whatif import (
    CONFIDENCE,
    REFERENCE_SITE,
    WhatIf,
    cheap_pins,
    day_seed,
    in_processes,
    run_day,
    served_queue,
)
from firmware_sim.distributions import Distribution, Exponential, Fixed
from firmware_sim.people import Agent, Behaviour, Break, CallerModel, Shift, draw_caller
from firmware_sim.scenario import LinkSettings, Scenario, ScriptedCall
from firmware_sim.switch import SwitchConfig
from firmware_sim.traffic import WeeklyTraffic

BREAK_REASON = 1  # the not-ready reason code of scheduled breaks


@dataclass(frozen=True, slots=True)
class ShiftRow:
    """One agent's shift on one day, in seconds after midnight (break optional)."""

    agent: str
    day: date
    start_s: float
    end_s: float
    break_start_s: float | None = None
    break_end_s: float | None = None

    def shift(self) -> Shift:
        """The simulated agent's shift: log in, break (not ready), log out."""
        breaks = ()
        if self.break_start_s is not None and self.break_end_s is not None:
            duration = self.break_end_s - self.break_start_s
            breaks = (Break(self.break_start_s, duration, BREAK_REASON),)
        return Shift(self.start_s, self.end_s, breaks)

    @property
    def on_phones_s(self) -> float:
        """Seconds of the shift off break."""
        pause = 0.0
        if self.break_start_s is not None and self.break_end_s is not None:
            pause = self.break_end_s - self.break_start_s
        return self.end_s - self.start_s - pause


def _clock(text: str, where: str, name: str) -> float:
    hours, _, minutes = text.strip().partition(":")
    if hours.isdigit() and minutes.isdigit() and len(minutes) == 2:
        h, m = int(hours), int(minutes)
        if (h < 24 and m < 60) or (h == 24 and m == 0):
            return 3600.0 * h + 60.0 * m
    raise ScheduleError(f"{where}: {name} must be a time HH:MM, got {text!r}")


def parse_schedule(text: str, source: str = "<schedule>") -> dict[date, tuple[ShiftRow, ...]]:
    """Read ``agent,day,start,end,break_start,break_end`` CSV text (day an ISO date,
    times HH:MM; the break columns may be empty) → shifts per day."""
    reader = csv.DictReader(io.StringIO(text))
    missing = [c for c in CSV_COLUMNS[:4] if c not in (reader.fieldnames or ())]
    if missing:
        raise ScheduleError(
            f"{source}: missing column(s) {', '.join(missing)} (need {','.join(CSV_COLUMNS)})"
        )
    days: dict[date, dict[str, ShiftRow]] = {}
    for line, raw in enumerate(reader, start=2):
        where = f"{source}:{line}"
        agent = (raw["agent"] or "").strip()
        if not agent:
            raise ScheduleError(f"{where}: agent is empty")
        try:
            day = date.fromisoformat((raw["day"] or "").strip())
        except ValueError:
            raise ScheduleError(
                f"{where}: day must be a date YYYY-MM-DD, got {raw['day']!r}"
            ) from None
        start = _clock(raw["start"] or "", where, "start")
        end = _clock(raw["end"] or "", where, "end")
        if end <= start:
            raise ScheduleError(f"{where}: the shift ends at {raw['end']}, not after its start")
        pause_text = [(raw.get(k) or "").strip() for k in CSV_COLUMNS[4:]]
        pause: list[float | None] = [None, None]
        if any(pause_text):
            if not all(pause_text):
                raise ScheduleError(f"{where}: give both break_start and break_end, or neither")
            pause = [_clock(t, where, k) for t, k in zip(pause_text, CSV_COLUMNS[4:], strict=True)]
            if not start <= pause[0] < pause[1] <= end:
                raise ScheduleError(f"{where}: the break is not within the shift")
        if agent in days.get(day, {}):
            raise ScheduleError(f"{where}: agent {agent} has a second shift on {day}: one a day")
        days.setdefault(day, {})[agent] = ShiftRow(agent, day, start, end, *pause)
    if not days:
        raise ScheduleError(f"{source}: no shift")
    return {d: tuple(rows.values()) for d, rows in sorted(days.items())}


def load_schedule(path: str | os.PathLike[str]) -> dict[date, tuple[ShiftRow, ...]]:
    """Read a schedule file (see `parse_schedule`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot read the schedule ({exc.strerror})") from None
    return parse_schedule(text, str(path))


def exact_schedule(req: Requirement) -> dict[date, tuple[ShiftRow, ...]]:
    """A requirement played exactly: in each interval ⌈agents⌉ agents on the phones,
    each stretch of intervals a k-th agent is needed one shift with no pause (agent
    ``req-<k>.<stretch>``). The twin of the requirement itself, before any schedule: it
    shows what the staffing model's steady state leaves out."""
    step = req.step.total_seconds()
    days: dict[date, list[ShiftRow]] = {}
    for day, indices in req.by_day().items():
        need = [math.ceil(req.agents[i] - 1e-9) for i in indices]
        starts = [_seconds(req.starts[i]) for i in indices]
        for k in range(max(need, default=0)):
            stretch, begin = 0, None
            for j, (start, n) in enumerate(zip(starts, need, strict=True)):
                joined = begin is not None and starts[j - 1] + step == start
                if n > k and joined:
                    continue
                if begin is not None:
                    stretch += 1
                    end = starts[j - 1] + step
                    days.setdefault(day, []).append(
                        ShiftRow(f"req-{k + 1:02d}.{stretch}", day, begin, end)
                    )
                    begin = None
                if n > k:
                    begin = start
            if begin is not None:
                stretch += 1
                end = starts[-1] + step
                days.setdefault(day, []).append(
                    ShiftRow(f"req-{k + 1:02d}.{stretch}", day, begin, end)
                )
    if not days:
        raise ScheduleError("the requirement asks for no agent")
    return {d: tuple(rows) for d, rows in days.items()}


# --- the twin ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Twin:
    """What the twin simulates: the forecast's days, the schedule's shifts on them, the
    site (engine configuration and queue), handling times and patience."""

    forecast: Forecast
    schedule: dict[date, tuple[ShiftRow, ...]]
    config: Config
    queue: str
    handling: Distribution
    patience_s: float
    target: float  # what a day or a week must reach ...
    metric: str = "answer_rate"  # ... in this: answer_rate or sl_offered
    trunks: int = 30

    @property
    def days(self) -> tuple[date, ...]:
        return tuple(self.forecast.days())

    def unstaffed_days(self) -> list[date]:
        """Days of the forecast with calls but no shift in the schedule."""
        calls = {d: sum(r.mean for r in rows) for d, rows in self.forecast.days().items()}
        return [d for d, c in calls.items() if c > 0 and not self.schedule.get(d)]

    @property
    def agents(self) -> tuple[str, ...]:
        """Every agent of the schedule, sorted."""
        return tuple(sorted({row.agent for rows in self.schedule.values() for row in rows}))

    def on_phones_hours(self) -> float:
        """Agent-hours of the schedule's shifts (breaks off) on the forecast's days."""
        days = set(self.days)
        return (
            sum(row.on_phones_s for d, rows in self.schedule.items() if d in days for row in rows)
            / 3600
        )


def build(
    forecast: Forecast,
    schedule: dict[date, tuple[ShiftRow, ...]],
    handling: Distribution,
    patience_s: float,
    config: Config | None = None,
    queue: str | None = None,
    target: float | None = None,
    trunks: int = 30,
    sl: float | None = None,
) -> Twin:
    """A twin of ``schedule`` against ``forecast`` for the site of ``config`` (default:
    the reference town hall's front desk, open whenever the forecast has calls); the
    answer-rate ``target`` defaults to the queue's; with ``sl`` the days and weeks are
    judged on the service level instead (answered within the queue's threshold ÷
    offered) reaching ``sl``.

    Every agent of the schedule serves the queue (their skills from ``config`` if it
    names them, else the queue's skill); they answer at once and wrap up at once.
    """
    if not 0 < patience_s < math.inf:
        raise AcdError(must_be("patience", "a positive number of seconds", patience_s))
    if trunks < 1:
        raise AcdError(must_be("trunks", "at least 1", trunks))
    for name, value in (("target", target), ("service level", sl)):
        if value is not None and not 0 < value <= 1:
            raise AcdError(must_be(name, "in ]0, 1]", value))
    if target is not None and sl is not None:
        raise AcdError("give an answer-rate target or a service level, not both")
    if config is None:
        site = {
            **REFERENCE_SITE,
            "queues": {"front-desk": dict(REFERENCE_SITE["queues"]["front-desk"])},
        }
        del site["queues"]["front-desk"]["calendar"]
        config = Config.from_dict(site, "<reference site>")
    queue, q = served_queue(config, queue)
    days = set(forecast.days())
    if not days & set(schedule):
        first, last = min(schedule), max(schedule)
        raise AcdError(
            f"the schedule ({first} .. {last}) has no day of the forecast"
            f" ({min(days)} .. {max(days)}): plan both for the same week"
        )
    names = sorted({row.agent for rows in schedule.values() for row in rows})
    team = {}
    for name in names:
        known = config.agents.get(name)
        skills = dict(known.skills) if known is not None else {q.skill: 5}
        if q.skill not in skills:
            raise AcdError(f"agent {name} of the schedule lacks skill {q.skill!r} of {queue!r}")
        team[name] = AgentConfig(name, pin_hash="", skills=skills)
    config = dataclasses.replace(config, agents={**config.agents, **team})
    config = cheap_pins(config, {name: _pin(i) for i, name in enumerate(names)})
    if sl is not None:
        return Twin(
            forecast, schedule, config, queue, handling, patience_s, sl, "sl_offered", trunks
        )
    target = q.target if target is None else target
    return Twin(forecast, schedule, config, queue, handling, patience_s, target, trunks=trunks)


def _pin(index: int) -> str:
    return f"{1000 + index}"


@dataclass(frozen=True, slots=True)
class DayResult:
    """One simulated day: calls offered (busy signals included), answered, answered
    within the queue's threshold, and the day factor drawn."""

    day: date
    factor: float
    offered: int
    answered: int
    answered_in_sl: int

    @property
    def answer_rate(self) -> float | None:
        return self.answered / self.offered if self.offered else None

    def good(self, metric: str) -> int:
        """The calls that count for ``metric``: answered, or answered within the threshold."""
        return self.answered_in_sl if metric == "sl_offered" else self.answered

    def rate(self, metric: str) -> float | None:
        return self.good(metric) / self.offered if self.offered else None


def _arrivals(
    rows: tuple[Interval, ...], length_s: float, factor: float, rng: random.Random
) -> list[float]:
    """Poisson arrival instants (seconds after midnight) at each interval's mean × factor."""
    times: list[float] = []
    for row in rows:
        rate = row.mean * factor / length_s
        if rate <= 0:
            continue
        start = _seconds(row.start)
        t = start + rng.expovariate(rate)
        while t < start + length_s:
            times.append(t)
            t += rng.expovariate(rate)
    return times


def simulate_day(twin: Twin, day: date, seed: int) -> DayResult:
    """One day of the twin: draw the day factor and the arrivals, run the engine."""
    rows = twin.forecast.days()[day]
    rng = random.Random(seed)
    spread = twin.forecast.day_spread()[day]
    factor = DayFactor(spread).sample(rng)
    length = twin.forecast.interval_s
    callers = CallerModel(patience=Exponential(twin.patience_s))
    calls = tuple(
        ScriptedCall(t, draw_caller(callers, rng)) for t in _arrivals(rows, length, factor, rng)
    )
    shifts = twin.schedule.get(day, ())
    names = twin.agents
    index = {name: i for i, name in enumerate(names)}
    behaviour = Behaviour(
        answer_delay=Fixed(0.0), no_answer=0.0, handling=twin.handling, wrap_up=Fixed(0.0)
    )
    agents = tuple(
        Agent(s.agent, f"{201 + index[s.agent]}", _pin(index[s.agent]), behaviour, s.shift())
        for s in shifts
    )
    first = min([_seconds(rows[0].start)] + [s.start_s for s in shifts])
    last = max([_seconds(rows[-1].start) + length] + [s.end_s for s in shifts])
    q = twin.config.queues[twin.queue]
    scenario = Scenario(
        name=f"twin {day}",
        day=day,
        start_s=max(0.0, first - 600.0),
        end_s=min(24 * 3600.0 - 1, last + 3600.0),
        seed=seed,
        speed=1.0,
        link=LinkSettings(),
        switch=SwitchConfig(
            trunks=twin.trunks,
            service_numbers=(q.numbers[0],),
            extensions=tuple(f"{201 + i}" for i in range(len(names))),
        ),
        traffic=WeeklyTraffic({}, public_holidays=False),
        callers=callers,
        agents=agents,
        calls=calls,
        faults=(),
    )
    spec = WhatIf(scenario, twin.config, twin.queue)
    run = run_day(spec, day, seed)
    short = twin.config.acd.short_abandon
    fig = compute(run.records, sl_threshold=q.sl_threshold, short_abandon=short)
    return DayResult(day, factor, fig.offered + run.busy, fig.answered, fig.answered_in_sl)


def _seconds(t: datetime) -> float:
    return 3600.0 * t.hour + 60.0 * t.minute + t.second


def simulate_week(twin: Twin, index: int, seed: int = 1) -> tuple[DayResult, ...]:
    """Simulated week ``index``: every day of the forecast, each with its own seed."""
    return tuple(
        simulate_day(twin, day, day_seed(seed, index, k)) for k, day in enumerate(twin.days)
    )


# --- shares and their intervals ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Share:
    """``hits`` of ``n`` trials, with the Wilson score interval at ``level``."""

    hits: int
    n: int
    low: float
    high: float

    @property
    def value(self) -> float | None:
        return self.hits / self.n if self.n else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "share": self.value,
            "hits": self.hits,
            "n": self.n,
            "low": self.low,
            "high": self.high,
        }


def wilson(hits: int, n: int, level: float = CONFIDENCE) -> Share:
    """The Wilson score interval of a proportion (sound near 0 and 1, unlike p ± z·se)."""
    if not 0 <= hits <= n:
        raise ValueError("need 0 <= hits <= n")
    if n == 0:
        return Share(0, 0, 0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p = hits / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == n else min(1.0, centre + half)
    return Share(hits, n, low, high)


@dataclass(frozen=True)
class TwinResult:
    """The weeks simulated, and the shares reaching the target."""

    weeks: tuple[tuple[DayResult, ...], ...]
    target: float
    seed: int
    metric: str = "answer_rate"  # what the target is on (answer_rate or sl_offered)

    def week_rates(self) -> list[float | None]:
        """Each week's ``metric`` over its calls (None: no call)."""
        out = []
        for week in self.weeks:
            offered = sum(d.offered for d in week)
            good = sum(d.good(self.metric) for d in week)
            out.append(good / offered if offered else None)
        return out

    @property
    def weeks_met(self) -> Share:
        """Weeks (with calls) whose ``metric`` reaches the target."""
        rates = [r for r in self.week_rates() if r is not None]
        return wilson(sum(r >= self.target for r in rates), len(rates))

    @property
    def days_met(self) -> Share:
        """Simulated days with calls whose ``metric`` reaches the target."""
        rates = [d.rate(self.metric) for w in self.weeks for d in w if d.offered]
        return wilson(sum(r >= self.target for r in rates), len(rates))

    def week_rate_range(self, low: float = 0.05, high: float = 0.95) -> tuple[float, float] | None:
        """The ``low`` and ``high`` empirical quantiles of the weeks' ``metric``."""
        rates = sorted(r for r in self.week_rates() if r is not None)
        if not rates:
            return None
        last = len(rates) - 1
        return rates[round(low * last)], rates[round(high * last)]

    def days_met_by_day(self) -> dict[date, Share]:
        """The share of simulated days (with calls) meeting the target, per day of the
        forecast week."""
        out = {}
        for k, day in enumerate(self.weeks[0]):
            rates = [w[k].rate(self.metric) for w in self.weeks if w[k].offered]
            out[day.day] = wilson(sum(r >= self.target for r in rates), len(rates))
        return out

    def answer_rate_by_day(self) -> dict[date, float | None]:
        """Answered / offered over the simulated days of each day of the forecast week."""
        out = {}
        for k, day in enumerate(self.weeks[0]):
            offered = sum(w[k].offered for w in self.weeks)
            answered = sum(w[k].answered for w in self.weeks)
            out[day.day] = answered / offered if offered else None
        return out

    @property
    def calls(self) -> int:
        return sum(d.offered for w in self.weeks for d in w)

    @property
    def answer_rate(self) -> float | None:
        """Answered / offered over every simulated call."""
        calls = self.calls
        return sum(d.answered for w in self.weeks for d in w) / calls if calls else None

    @property
    def sl_offered(self) -> float | None:
        calls = self.calls
        return sum(d.answered_in_sl for w in self.weeks for d in w) / calls if calls else None


def run(
    twin: Twin,
    weeks: int,
    seed: int = 1,
    jobs: int = 1,
    on_week: Callable[[tuple[DayResult, ...]], None] | None = None,
) -> TwinResult:
    """Simulate ``weeks`` independent weeks in ``jobs`` processes (same figures for any
    number of jobs)."""
    if weeks < 1:
        raise AcdError(f"weeks must be at least 1, got {weeks}")
    if jobs < 1:
        raise AcdError(f"jobs must be at least 1, got {jobs}")
    done = in_processes(simulate_week, twin, weeks, seed, jobs, on_week)
    return TwinResult(tuple(done), twin.target, seed, twin.metric)

"""One what-if run: the engine behind a `Bridge` against the simulated switch, a day at a
time, replicated; the customer's figures per hour and overall.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import repeat
from typing import TypeVar
from zoneinfo import ZoneInfo

from acd.config import Config
from acd.core.calendar import midnight
from acd.core.commands import CallEnded, Notification
from acd.core.engine import Engine
from acd.core.figures import compute
from acd.core.records import CallRecord, RingOutcome
from acd.errors import AcdError
from acd.planning.whatif.stats import Estimate, estimate, verdict
from acd.runtime.bridge import Bridge, run_virtual
from firmware_sim.scenario import Scenario

S = TypeVar("S")
R = TypeVar("R")

METRICS = (
    "offered",
    "answered",
    "answer_rate",
    "sl_offered",
    "abandon_rate",
    "asa",
    "p_wait",
    "missed_rings",
)
"""Figures estimated per replication (``offered``, ``answered`` and ``missed_rings`` —
rings that timed out or were refused — are per simulated day)."""
RATES = frozenset(("answer_rate", "sl_offered", "abandon_rate", "p_wait"))

_WAITED = 1e-6  # s: a leg that waited longer than this waited (engine times are floats)
_MISSED = (RingOutcome.NO_ANSWER, RingOutcome.FAILED)


@dataclass(frozen=True)
class WhatIf:
    """What to simulate: the switch's scenario, the site's engine config, the queue whose
    figures are reported, how many days per replication, and a warm-up (legs entering
    the queue within ``warmup_s`` of the run's start are left out of the figures)."""

    scenario: Scenario
    config: Config
    queue: str
    days: int = 1
    warmup_s: float = 0.0

    def __post_init__(self) -> None:
        if self.queue not in self.config.queues:
            raise AcdError(f"no queue {self.queue!r} in the configuration")
        if self.days < 1:
            raise AcdError(f"days must be at least 1, got {self.days}")

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.config.site.timezone)

    def dates(self) -> list[date]:
        """The first ``days`` dates from the scenario's day that have traffic."""
        dates, day = [], self.scenario.day
        for _ in range(366 * 2):
            if self.scenario.traffic.plan_for(day) is not None:
                dates.append(day)
                if len(dates) == self.days:
                    return dates
            day += timedelta(days=1)
        raise AcdError(f"scenario {self.scenario.name!r} has no traffic on any day")


@dataclass(frozen=True, slots=True)
class DayRun:
    """One simulated day: the final records of the queue's legs, and what the switch did."""

    day: date
    records: tuple[CallRecord, ...]
    calls: int  # calls the switch offered (every queue)
    unfinished: int  # legs still in the engine when the run ended
    busy: int = 0  # calls that found every trunk taken (never offered)


def run_day(spec: WhatIf, day: date, seed: int) -> DayRun:
    """Simulate ``day``: engine + bridge + simulated switch, in virtual time."""
    scenario = dataclasses.replace(spec.scenario, day=day, seed=seed)
    switch = scenario.build_switch()
    start, end = scenario.start_s, scenario.end_s
    switch.start(start)
    epoch = midnight(day, spec.config.site.timezone)
    engine = Engine(
        spec.config,
        epoch + start,
        random.Random(seed),
        queue_notes=False,
        release_notes=False,
        agent_notes=False,
    )
    queue, since = spec.queue, epoch + start + spec.warmup_s
    records: list[CallRecord] = []

    def on_note(note: Notification) -> None:
        if type(note) is CallEnded:
            record = note.record
            if record.queue == queue and record.queued_at >= since:
                records.append(record)

    run_virtual(Bridge(engine, call_steps=False), switch, start, end, epoch, on_note)
    unfinished = sum(engine.active_legs().values())
    return DayRun(day, tuple(records), switch.stats.offered, unfinished, switch.stats.busy)


def _absent(metric: str) -> float | None:
    """A metric's value in an hour with no leg: no call, and no rate."""
    return None if metric in RATES or metric == "asa" else 0.0


def day_seed(seed: int, replication: int, day_index: int) -> int:
    """The switch's seed for one day of one replication (independent streams)."""
    return random.Random(f"whatif:{seed}:{replication}:{day_index}").getrandbits(63)


def summary(
    records: Sequence[CallRecord], days: int, sl_threshold: float, short_abandon: float
) -> dict[str, float | None]:
    """The `METRICS` of a replication's legs (``offered``, ``answered`` per day);
    ``p_wait`` counts the offered legs that waited in the queue before a first ring."""
    fig = compute(records, sl_threshold=sl_threshold, short_abandon=short_abandon)
    waited = 0  # legs that found no agent free: they waited before any ring
    missed = sum(ring.outcome in _MISSED for r in records for ring in r.rings)
    for r in records:
        if not r.offered(short_abandon):
            continue
        rung = r.rings[0].started if r.rings else r.queued_at + r.wait
        waited += rung - r.queued_at > _WAITED
    return {
        "offered": fig.offered / days,
        "answered": fig.answered / days,
        "answer_rate": fig.answer_rate,
        "sl_offered": fig.sl_offered,
        "abandon_rate": fig.abandon_rate,
        "asa": fig.asa,
        "p_wait": waited / fig.offered if fig.offered else None,
        "missed_rings": missed / days,
    }


@dataclass(frozen=True)
class Result:
    """Figures of R replications: overall and per local hour (legs counted in the hour
    they entered the queue), each metric an `Estimate` (None: no value in any run)."""

    replications: int
    days: tuple[date, ...]
    calls: int  # calls simulated in all (every queue, every replication)
    unfinished: int
    overall: dict[str, Estimate | None]
    hours: dict[int, dict[str, Estimate | None]]
    target: float

    @property
    def verdict(self) -> tuple[str, str]:
        """`verdict` of the overall answer rate against the queue's target."""
        return verdict(self.overall["answer_rate"], self.target)


@dataclass(frozen=True, slots=True)
class Replication:
    """The figures of one replication: `summary` overall and per local hour."""

    overall: dict[str, float | None]
    hours: dict[int, dict[str, float | None]]
    calls: int
    unfinished: int
    days: int


def replication(spec: WhatIf, index: int, seed: int = 1) -> Replication:
    """Replication ``index``: ``spec.days`` days, each with its own `day_seed`."""
    dates = spec.dates()
    tz = spec.tz
    threshold = spec.config.queues[spec.queue].sl_threshold
    short = spec.config.acd.short_abandon
    legs: list[CallRecord] = []
    calls = unfinished = 0
    for day_index, day in enumerate(dates):
        run = run_day(spec, day, day_seed(seed, index, day_index))
        legs.extend(run.records)
        calls += run.calls
        unfinished += run.unfinished
    by_hour: dict[int, list[CallRecord]] = {}
    for r in legs:
        by_hour.setdefault(datetime.fromtimestamp(r.queued_at, tz).hour, []).append(r)
    return Replication(
        overall=summary(legs, len(dates), threshold, short),
        hours={h: summary(g, len(dates), threshold, short) for h, g in sorted(by_hour.items())},
        calls=calls,
        unfinished=unfinished,
        days=len(dates),
    )


def in_processes(
    run: Callable[[S, int, int], R],
    spec: S,
    count: int,
    seed: int,
    jobs: int,
    on_each: Callable[[R], None] | None = None,
) -> list[R]:
    """``run(spec, i, seed)`` for i in 0 … ``count`` − 1, in order, in up to ``jobs``
    processes (one: in this one); ``on_each`` sees each result as it arrives."""
    out: list[R] = []
    parallel = jobs > 1 and count > 1
    with ProcessPoolExecutor(min(jobs, count)) if parallel else nullcontext() as pool:
        mapper = pool.map if pool is not None else map
        for result in mapper(run, repeat(spec), range(count), repeat(seed)):
            out.append(result)
            if on_each is not None:
                on_each(result)
    return out


def replicate(
    spec: WhatIf,
    replications: int,
    seed: int = 1,
    on_replication: Callable[[Replication], None] | None = None,
    jobs: int = 1,
) -> Result:
    """Run ``replications`` independent replications of ``spec.days`` days each, in
    ``jobs`` processes (the figures do not depend on ``jobs``)."""
    if replications < 1:
        raise AcdError(f"replications must be at least 1, got {replications}")
    if jobs < 1:
        raise AcdError(f"jobs must be at least 1, got {jobs}")
    runs = in_processes(replication, spec, replications, seed, jobs, on_replication)
    hours = sorted({h for run in runs for h in run.hours})
    absent = {m: _absent(m) for m in METRICS}
    return Result(
        replications=replications,
        days=tuple(spec.dates()),
        calls=sum(run.calls for run in runs),
        unfinished=sum(run.unfinished for run in runs),
        overall={m: estimate((run.overall[m] for run in runs), rate=m in RATES) for m in METRICS},
        hours={
            h: {
                m: estimate((run.hours.get(h, absent)[m] for run in runs), rate=m in RATES)
                for m in METRICS
            }
            for h in hours
        },
        target=spec.config.queues[spec.queue].target,
    )

"""What-if simulation: the real engine against the simulated switch, in virtual time.

A `WhatIf` pairs a scenario of the simulated switch (``firmware_sim``: traffic, callers,
agents) with the site's engine configuration. Each simulated day builds a fresh
`Engine` behind a `Bridge` (the same mapping the live controller uses) and runs it
against ``Switch`` in process with ``acd.bridge.run_virtual``: no link, no clock, so a
day takes a fraction of a second. `replicate` runs several independent replications of
N days and reports the customer's figures (docs/tools.md) per hour and overall with 95 %
confidence intervals (Student t over replications); `expectation` gives the Erlang A
figures of the same traffic where that model applies, and `sweep` answers "which daily
volume still reaches the target?".

Two changes to the site's configuration make a what-if run practical and change no
routing decision: agents' PIN hashes are replaced by cheap ones of the same PINs
(checked once against the real hashes), and handset display refreshes are switched off.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import repeat
from zoneinfo import ZoneInfo

from acd.bridge import Bridge, run_virtual
from acd.calendar import midnight
from acd.commands import CallEnded, Notification
from acd.config import AgentConfig, Config
from acd.engine import Engine
from acd.errors import AcdError, must_be
from acd.figures import compute
from acd.pins import hash_pin, verify_pin
from acd.records import CallRecord, RingOutcome
from acd.staffing import Traffic, evaluate
from firmware_sim.distributions import Distribution, Exponential, Fixed, Lognormal
from firmware_sim.people import Agent, Behaviour, CallerModel, Shift
from firmware_sim.scenario import LinkSettings, Scenario
from firmware_sim.switch import SwitchConfig
from firmware_sim.traffic import (
    DAY_NAMES,
    SATURDAY_SHARES,
    WEEKDAY_SHARES,
    DayPlan,
    Profile,
    WeeklyTraffic,
)

CONFIDENCE = 0.95
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


# --- confidence intervals ----------------------------------------------------------------


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for aa in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on `t_cdf`, to 1e-12)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError("need 0 < p < 1 and df > 0")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2.0


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean over replications with its confidence interval (``None`` bounds when
    fewer than two replications gave a value)."""

    mean: float
    low: float | None
    high: float | None
    n: int  # replications that gave a value

    def to_dict(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def estimate(
    values: Iterable[float | None], level: float = CONFIDENCE, rate: bool = False
) -> Estimate | None:
    """Mean and Student t interval of the values that are not None (None if there are
    none); a ``rate``'s interval is clipped to [0, 1]."""
    xs = [x for x in values if x is not None]
    if not xs:
        return None
    n = len(xs)
    mean = math.fsum(xs) / n
    if n < 2:
        return Estimate(mean, None, None, n)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    if rate:
        return Estimate(mean, max(0.0, mean - half), min(1.0, mean + half), n)
    return Estimate(mean, mean - half, mean + half, n)


def verdict(answer_rate: Estimate | None, target: float) -> tuple[str, str]:
    """``(verdict, sentence)`` for an answer-rate target: ``holds`` when the interval's
    lower bound reaches it, ``does not hold`` when its upper bound is below it, else
    ``uncertain``."""
    pct = f"{100 * target:g} %"
    if answer_rate is None:
        return "uncertain", f"no call was offered: the {pct} target cannot be judged"
    if answer_rate.low is None or answer_rate.high is None:
        return "uncertain", "one replication gives no confidence interval: run at least two"
    low, high = f"{100 * answer_rate.low:.2f} %", f"{100 * answer_rate.high:.2f} %"
    if answer_rate.low >= target:
        return (
            "holds",
            f"the {pct} target holds: even the interval's lower bound ({low}) reaches it",
        )
    if answer_rate.high < target:
        return "does not hold", f"the {pct} target does not hold: the interval ends at {high}"
    return "uncertain", (
        f"the {pct} target is not shown to hold: the interval {low} .. {high} straddles it"
        " (more days or replications narrow it)"
    )


# --- the run -----------------------------------------------------------------------------


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
        spec.config, epoch + start, random.Random(seed), queue_notes=False, release_notes=False
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
    runs: list[Replication] = []
    parallel = jobs > 1 and replications > 1
    with ProcessPoolExecutor(min(jobs, replications)) if parallel else nullcontext() as pool:
        mapper = pool.map if pool is not None else map
        for run in mapper(replication, repeat(spec), range(replications), repeat(seed)):
            runs.append(run)
            if on_replication is not None:
                on_replication(run)
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


# --- the Erlang A expectation ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HourExpectation:
    """Erlang A figures of one hour for its mean team ``agents`` (agents on the phones,
    averaged over the hour; a fractional team is interpolated, see `fractional_team`)."""

    agents: float
    answer_rate: float
    sl_offered: float
    asa_s: float  # mean wait of answered calls
    p_wait: float
    p_abandon: float


@dataclass(frozen=True)
class Expectation:
    """Erlang A (M/M/n+M) figures of the simulated traffic, per hour and overall.

    ``agents`` is the team serving the queue; each hour's n (``hours[h].agents``) is the
    mean number of them on the phones in that hour (shifts and planned breaks).
    ``notes`` say what the simulation has that the model leaves out; with none the model
    is exact (up to the steady-state assumption within each hour).
    """

    agents: int
    aht_s: float
    patience_s: float
    hours: dict[int, HourExpectation]
    overall: dict[str, float]
    notes: tuple[str, ...]

    @property
    def exact(self) -> bool:
        return not self.notes


def on_phones(shift: Shift, start_s: float, end_s: float) -> float:
    """Seconds of [``start_s``, ``end_s``) an agent of ``shift`` is on the phones: within
    the shift and on no planned break."""

    def overlap(a: float, b: float) -> float:
        return max(0.0, min(b, end_s) - max(a, start_s))

    breaks = math.fsum(
        overlap(max(b.start_s, shift.start_s), min(b.start_s + b.duration_s, shift.end_s))
        for b in shift.breaks
    )
    return max(0.0, overlap(shift.start_s, shift.end_s) - breaks)


def staffed_hours(team: Sequence[Agent], hours: Iterable[int]) -> dict[int, float]:
    """Mean number of ``team`` on the phones over each local hour (shifts minus breaks)."""
    return {
        h: round(
            math.fsum(on_phones(a.shift, 3600.0 * h, 3600.0 * (h + 1)) for a in team) / 3600, 9
        )
        for h in hours
    }


def fractional_team(traffic: Traffic, agents: float, threshold_s: float) -> HourExpectation:
    """Erlang A for a mean team of ``agents``: exact for a whole number, else the linear
    interpolation between ⌊agents⌋ and ⌈agents⌉ (ASA through the answered calls' total
    wait); no agent answers no call."""
    low = math.floor(agents)
    weight = agents - low

    def whole(n: int) -> tuple[float, float, float, float, float]:
        if n == 0:
            return 0.0, 0.0, 0.0, 1.0, 1.0
        p = evaluate(traffic, n, threshold_s)
        return p.answer_rate, p.sl_offered, p.answer_rate * p.asa_s, p.p_wait, p.p_abandon

    figures = whole(low)
    if weight > 0:
        figures = tuple(
            (1 - weight) * x + weight * y for x, y in zip(figures, whole(low + 1), strict=True)
        )
    answer_rate, sl, waited, p_wait, p_abandon = figures
    asa = waited / answer_rate if answer_rate > 0 else 0.0
    return HourExpectation(agents, answer_rate, sl, asa, p_wait, p_abandon)


def _serving(spec: WhatIf) -> list[Agent]:
    skill = spec.config.queues[spec.queue].skill
    agents = spec.config.agents
    return [
        a
        for a in spec.scenario.agents
        if a.agent_id in agents and skill in agents[a.agent_id].skills
    ]


def warnings(spec: WhatIf) -> list[str]:
    """Mismatches between the site and the simulated people that drive the figures:
    agents whose mean wrap-up outlasts the ACD's wrap-up are rung while still wrapping
    up and do not answer (missed rings, then not ready)."""
    q = spec.config.queues[spec.queue]
    late: dict[tuple[float, float], list[str]] = {}  # (mean wrap-up, allowed) -> agents
    for agent in _serving(spec):
        allowed = spec.config.agents[agent.agent_id].wrapup
        allowed = q.wrapup if allowed is None else allowed
        if agent.behaviour.wrap_up.mean > allowed:
            late.setdefault((agent.behaviour.wrap_up.mean, allowed), []).append(agent.agent_id)
    return [
        f"agents {', '.join(ids)} wrap up {mean:g} s on average, the ACD allows {allowed:g} s:"
        " rung while still wrapping up, they do not answer"
        for (mean, allowed), ids in late.items()
    ]


def expectation(spec: WhatIf) -> tuple[Expectation | None, str]:
    """The Erlang A figures of ``spec``'s traffic and team, or None with the reason."""
    sc = spec.scenario
    if not isinstance(sc.callers.patience, Exponential) or sc.callers.patience.mean <= 0:
        return None, "caller patience is not exponential: Erlang A does not apply"
    team = _serving(spec)
    if not team:
        return None, f"no simulated agent serves {spec.queue!r}"
    if sc.callers.menu or len(sc.switch.service_numbers) > 1:
        return None, "callers reach several queues: one Erlang A model does not apply"
    behaviours = [a.behaviour for a in team]
    aht = math.fsum(b.handling.mean + b.wrap_up.mean for b in behaviours) / len(team)
    notes = []
    if not all(isinstance(b.handling, Exponential) for b in behaviours):
        notes.append("handling times are not exponential")
    if any(b.wrap_up.mean > 0 for b in behaviours):
        notes.append("agents wrap up after calls (counted in the AHT)")
    patience = sc.callers.patience.mean
    if any(b.answer_delay.mean > 0 or b.no_answer > 0 for b in behaviours):
        delay = math.fsum(b.answer_delay.mean for b in behaviours) / len(team)
        notes.append(
            f"agents take time to answer or miss rings: a caller's patience runs while the"
            f" handset rings, so the answer delay (mean {delay:g} s) counts as waiting; with"
            f" a mean patience of {patience:g} s it alone makes"
            f" ~{100 * -math.expm1(-delay / patience):.1f} % hang up"
        )
    if any(b.escalate > 0 for b in behaviours):
        notes.append("agents escalate calls")
    dates = spec.dates()
    calls: dict[int, float] = {}
    for day in dates:
        plan = sc.traffic.plan_for(day)
        for i, fraction in enumerate(plan.profile.hourly_fractions()):
            hour = int(plan.profile.start_s // 3600) + i
            calls[hour] = calls.get(hour, 0.0) + plan.volume * fraction / len(dates)
    busy = sorted(h for h, c in calls.items() if c > 0)
    staffed = staffed_hours(team, busy)
    if any(n != len(team) for n in staffed.values()):
        notes.append(
            "agents work shifts and take breaks: n is the mean number on the phones over"
            " each hour (a fractional n interpolated between the whole teams around it)"
        )
    threshold = spec.config.queues[spec.queue].sl_threshold
    hours = {
        h: fractional_team(Traffic(calls[h], aht, 3600.0, patience), staffed[h], threshold)
        for h in busy
    }
    total = math.fsum(calls[h] for h in hours)
    answered = math.fsum(calls[h] * p.answer_rate for h, p in hours.items())
    overall = {
        "offered": total,
        "answer_rate": answered / total if total else 1.0,
        "sl_offered": math.fsum(calls[h] * p.sl_offered for h, p in hours.items()) / total
        if total
        else 1.0,
        "abandon_rate": 1 - answered / total if total else 0.0,
        "asa": math.fsum(calls[h] * p.answer_rate * p.asa_s for h, p in hours.items()) / answered
        if answered
        else 0.0,
        "p_wait": math.fsum(calls[h] * p.p_wait for h, p in hours.items()) / total
        if total
        else 0.0,
    }
    return Expectation(len(team), aht, patience, hours, overall, tuple(notes)), ""


# --- building what-if runs -------------------------------------------------------------


def cheap_pins(config: Config, pins: Mapping[str, str]) -> Config:
    """``config`` for a what-if run: the PINs of ``pins`` (agent id → PIN) hashed cheaply
    (each is first checked against its real hash when it has one) and handset displays
    off. ``AcdError`` names an agent whose PIN does not match."""
    agents = dict(config.agents)
    for agent_id, pin in pins.items():
        cfg = agents.get(agent_id)
        if cfg is None:
            raise AcdError(f"agent {agent_id} of the scenario is not in the configuration")
        if cfg.pin_hash and not verify_pin(pin, cfg.pin_hash):
            raise AcdError(f"agent {agent_id}: the scenario's PIN does not match the configuration")
        cheap = hash_pin(pin, n=2, r=1, p=1, salt=b"what-if")
        agents[agent_id] = dataclasses.replace(cfg, pin_hash=cheap)
    acd = dataclasses.replace(config.acd, display_interval=0.0)
    return dataclasses.replace(config, agents=agents, acd=acd)


def for_scenario(
    scenario: Scenario, config: Config, queue: str | None = None, days: int = 1
) -> WhatIf:
    """A what-if run of a scenario against the site's configuration; the queue defaults
    to the one the scenario's first service number reaches."""
    if queue is None:
        number = scenario.switch.service_numbers[0]
        queue = config.queue_for_number().get(number)
        if queue is None:
            raise AcdError(f"the scenario's service number {number} reaches no queue")
    pins = {a.agent_id: a.pin for a in scenario.agents}
    return WhatIf(scenario, cheap_pins(config, pins), queue, days)


def with_volume(spec: WhatIf, calls_per_day: float) -> WhatIf:
    """``spec`` with every planned day's volume set to ``calls_per_day``."""
    if not 0 <= calls_per_day < math.inf:
        raise AcdError(must_be("calls per day", "zero or more", calls_per_day))
    traffic = spec.scenario.traffic
    week = {
        name: dataclasses.replace(plan, volume=calls_per_day) for name, plan in traffic.week.items()
    }
    scenario = dataclasses.replace(spec.scenario, traffic=dataclasses.replace(traffic, week=week))
    return dataclasses.replace(spec, scenario=scenario)


REFERENCE_SITE: dict = {
    "site": {"id": "town-hall", "timezone": "Europe/Paris"},
    "acd": {"short_abandon": 0.0},
    "calendars": {
        "town-hall": {
            "holidays": "FR",
            "hours": {
                **{d: "08:00-19:00" for d in ("mon", "tue", "wed", "thu", "fri")},
                "sat": "08:00-13:00",
            },
        }
    },
    "queues": {
        "front-desk": {
            "numbers": ["3000"],
            "priority": 1,
            "calendar": "town-hall",
            "wrapup": 60.0,
            "sl_threshold": 20.0,
            "target": 0.99,
        }
    },
}
"""The site used without ``--config``: the reference town hall's front desk (3000),
every abandon counted (no short-abandon rule, as in Erlang A). The queue's wrap-up is
a ceiling: simulated agents press wrap-up done as soon as the call ends."""


@dataclass(frozen=True)
class Flags:
    """A what-if traffic given by numbers instead of a scenario file."""

    agents: int
    calls_per_day: float
    aht_s: float
    patience_s: float
    distribution: str = "exponential"  # of handling times: exponential or lognormal
    aht_sd: float | None = None  # lognormal: standard deviation (default: AHT / 2)
    profile: Mapping[int, float] | None = None  # hour → share of a full day
    day: str = "weekday"  # weekday (Mon–Fri) or saturday
    trunks: int = 30

    def __post_init__(self) -> None:
        for name, value, low in (
            ("agents", self.agents, 1),
            ("AHT", self.aht_s, 1e-9),
            ("patience", self.patience_s, 1e-9),
            ("trunks", self.trunks, 1),
        ):
            if not low <= value < math.inf:
                raise AcdError(must_be(name, "positive", value))
        if not 0 <= self.calls_per_day < math.inf:
            raise AcdError(must_be("calls per day", "zero or more", self.calls_per_day))
        if self.aht_sd is not None and not 0 < self.aht_sd < math.inf:
            raise AcdError(must_be("standard deviation of handling times", "positive", self.aht_sd))
        if self.distribution not in ("exponential", "lognormal"):
            raise AcdError(
                f"distribution must be exponential or lognormal, not {self.distribution}"
            )
        if self.day not in ("weekday", "saturday"):
            raise AcdError(f"day must be weekday or saturday, not {self.day}")

    def hour_shares(self) -> dict[int, float]:
        """Hour → share of a full day's calls: the profile's, else the day's default."""
        if self.profile is not None:
            total = math.fsum(self.profile.values())
            return {h: s / total for h, s in self.profile.items()}
        default = WEEKDAY_SHARES if self.day == "weekday" else SATURDAY_SHARES
        return {8 + i: s / sum(default) for i, s in enumerate(default)}

    def handling(self) -> Distribution:
        if self.distribution == "exponential":
            return Exponential(self.aht_s)
        sd = self.aht_s / 2 if self.aht_sd is None else self.aht_sd
        return Lognormal(self.aht_s, sd)


FIRST_DAY = {"weekday": date(2026, 3, 9), "saturday": date(2026, 3, 14)}
"""First simulated day of each kind (a Monday and a Saturday of an ordinary week)."""


def for_flags(
    flags: Flags, config: Config | None = None, queue: str | None = None, days: int = 1
) -> WhatIf:
    """A what-if run of ``flags``: ``flags.agents`` agents (ids 1001 …, extensions
    201 …) serve the queue of ``config`` (default `REFERENCE_SITE`); they answer at
    once, never miss a ring, take no break and no wrap-up; callers have exponential
    patience. The day's calls follow the profile's shares of the hours the queue is
    open that day (renormalised over them)."""
    config = config or Config.from_dict(REFERENCE_SITE, "<reference site>")
    if queue is None:
        if len(config.queues) != 1:
            raise AcdError(f"name the queue (queues: {', '.join(sorted(config.queues))})")
        queue = next(iter(config.queues))
    q = config.queues.get(queue)
    if q is None:
        raise AcdError(f"no queue {queue!r} in the configuration")
    if not q.numbers:
        raise AcdError(f"queue {queue!r} has no number callers dial")
    first = FIRST_DAY[flags.day]
    spans = ((0, 24 * 60),)
    if q.calendar is not None:
        spans = config.calendars[q.calendar].hours.get(first.weekday(), ())
        if not spans:
            raise AcdError(f"queue {queue!r} is closed on {DAY_NAMES[first.weekday()]}")
    open_s, close_s = 60.0 * spans[0][0], 60.0 * spans[-1][1]
    day_shares = flags.hour_shares()
    hours = [h for h in sorted(day_shares) if open_s <= 3600 * h < close_s]
    if not hours or not any(day_shares[h] for h in hours):
        raise AcdError("the profile gives no call within the opening hours")
    first_hour = hours[0]
    shares = tuple(day_shares.get(h, 0.0) for h in range(first_hour, hours[-1] + 1))
    profile = Profile(3600.0 * first_hour, shares)
    names = DAY_NAMES[:5] if flags.day == "weekday" else ("sat",)
    traffic = WeeklyTraffic({n: DayPlan(flags.calls_per_day, profile) for n in names})
    behaviour = Behaviour(
        answer_delay=Fixed(0.0), no_answer=0.0, handling=flags.handling(), wrap_up=Fixed(0.0)
    )
    shift = Shift(max(0.0, open_s - 300.0), min(24 * 3600.0, close_s + 1800.0))
    agents = tuple(
        Agent(f"{1001 + i}", f"{201 + i}", f"{1000 + i}", behaviour, shift)
        for i in range(flags.agents)
    )
    scenario = Scenario(
        name=f"{flags.agents} agents, {flags.day}s",
        day=first,
        start_s=max(0.0, open_s - 600.0),
        end_s=min(24 * 3600.0 - 1, close_s + 3600.0),
        seed=1,
        speed=1.0,
        link=LinkSettings(),
        switch=SwitchConfig(trunks=flags.trunks, service_numbers=(q.numbers[0],)),
        traffic=traffic,
        callers=CallerModel(patience=Exponential(flags.patience_s)),
        agents=agents,
        calls=(),
        faults=(),
    )
    team = {a.agent_id: AgentConfig(a.agent_id, pin_hash="", skills={q.skill: 5}) for a in agents}
    others = {k: v for k, v in config.agents.items() if q.skill not in v.skills}
    config = dataclasses.replace(config, agents={**others, **team})
    return WhatIf(scenario, cheap_pins(config, {a.agent_id: a.pin for a in agents}), queue, days)


# --- the customer's question ------------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    """One daily volume of a sweep."""

    calls_per_day: float
    result: Result
    expected: Expectation | None


def sweep(
    spec: WhatIf,
    volumes: Sequence[float],
    replications: int,
    seed: int = 1,
    on_replication: Callable[[Replication], None] | None = None,
    jobs: int = 1,
) -> list[SweepPoint]:
    """Simulate ``spec`` at each daily volume (same seeds at every volume)."""
    points = []
    for volume in volumes:
        point = with_volume(spec, volume)
        result = replicate(point, replications, seed, on_replication, jobs)
        points.append(SweepPoint(volume, result, expectation(point)[0]))
    return points


def highest_holding(points: Sequence[SweepPoint]) -> float | None:
    """The highest volume whose target holds, every lower volume of the sweep holding too."""
    best = None
    for point in sorted(points, key=lambda p: p.calls_per_day):
        if point.result.verdict[0] != "holds":
            break
        best = point.calls_per_day
    return best

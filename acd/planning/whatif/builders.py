"""Building what-if runs from a scenario, a volume or the command line's flags, and the
customer's question: which daily volume still reaches the target (`sweep`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from acd.config import AgentConfig, Config, QueueConfig
from acd.core.pins import hash_pin, verify_pin
from acd.errors import AcdError, must_be
from acd.planning.whatif.erlang import Expectation, expectation
from acd.planning.whatif.runs import Replication, Result, WhatIf, replicate
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


def served_queue(config: Config, queue: str | None) -> tuple[str, QueueConfig]:
    """The queue a simulated run serves: ``queue``, or the only queue of ``config``.
    ``AcdError`` when it is ambiguous, unknown or has no number callers dial."""
    if queue is None:
        if len(config.queues) != 1:
            raise AcdError(f"name the queue (queues: {', '.join(sorted(config.queues))})")
        queue = next(iter(config.queues))
    q = config.queues.get(queue)
    if q is None:
        raise AcdError(f"no queue {queue!r} in the configuration")
    if not q.numbers:
        raise AcdError(f"queue {queue!r} has no number callers dial")
    return queue, q


def for_flags(
    flags: Flags, config: Config | None = None, queue: str | None = None, days: int = 1
) -> WhatIf:
    """A what-if run of ``flags``: ``flags.agents`` agents (ids 1001 …, extensions
    201 …) serve the queue of ``config`` (default `REFERENCE_SITE`); they answer at
    once, never miss a ring, take no break and no wrap-up; callers have exponential
    patience. The day's calls follow the profile's shares of the hours the queue is
    open that day (renormalised over them)."""
    config = config or Config.from_dict(REFERENCE_SITE, "<reference site>")
    queue, q = served_queue(config, queue)
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

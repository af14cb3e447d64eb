"""The Erlang A expectation of a what-if run's traffic, where that model applies, and the
warnings when it does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from acd.planning.staffing import Traffic, evaluate
from acd.planning.whatif.runs import WhatIf
from firmware_sim.distributions import Exponential
from firmware_sim.people import Agent, Shift


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

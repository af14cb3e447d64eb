"""Where the agents' time went, from agent notifications and call records.

An agent's time between two notifications is, by its status and state then:

- ``idle``: ready and idle (waiting for a call);
- ``busy``: ringing, on a call or in wrap-up (whatever its status);
- ``not_ready``: not ready and idle, counted by reason code;
- nothing while logged out.

``staffed`` = idle + busy (as ``acd.core.figures.staffed_seconds``); occupancy = handling
time of the agent's answered legs (talk + wrap-up) / staffed time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged
from acd.core.figures import add_by_period
from acd.core.records import CallRecord, Outcome

IDLE, BUSY, NOT_READY = "idle", "busy", "not_ready"


@dataclass(frozen=True)
class AgentRow:
    """One agent's figures over a report's period (seconds)."""

    agent_id: str
    calls: int = 0  # legs answered
    talk: float = 0.0
    wrapup: float = 0.0
    idle: float = 0.0  # ready, waiting for a call
    busy: float = 0.0  # ringing, on a call or in wrap-up
    not_ready: dict[int, float] = field(default_factory=dict)  # reason -> s, idle

    @property
    def staffed(self) -> float:
        return self.idle + self.busy

    @property
    def occupancy(self) -> float | None:
        return (self.talk + self.wrapup) / self.staffed if self.staffed else None

    def to_dict(self) -> dict[str, object]:
        return {
            "agent_id": self.agent_id,
            "calls": self.calls,
            "talk": round(self.talk, 3),
            "wrapup": round(self.wrapup, 3),
            "ready_idle": round(self.idle, 3),
            "busy": round(self.busy, 3),
            "not_ready": {str(k): round(v, 3) for k, v in sorted(self.not_ready.items())},
            "staffed": round(self.staffed, 3),
            "occupancy": self.occupancy,
        }


def intervals(
    changes: Iterable[AgentChanged], since: float | None, end: float
) -> Iterator[tuple[str, str, int, float, float]]:
    """``(agent, kind, reason, start, stop)`` of each stretch in ``[since, end)``; the
    notifications are in time order (those before ``since`` say where agents were)."""
    open_: dict[str, tuple[str, int, float]] = {}

    def close(agent: str, at: float) -> Iterator[tuple[str, str, int, float, float]]:
        kind, reason, start = open_.pop(agent)
        start = start if since is None else max(start, since)
        stop = min(at, end)
        if stop > start:
            yield agent, kind, reason, start, stop

    for c in changes:
        if c.agent_id in open_:
            yield from close(c.agent_id, c.at)
        if c.status is AgentStatus.LOGGED_OUT:
            continue
        if c.state is not AgentState.IDLE:
            open_[c.agent_id] = (BUSY, 0, c.at)
        elif c.status is AgentStatus.READY:
            open_[c.agent_id] = (IDLE, 0, c.at)
        else:
            open_[c.agent_id] = (NOT_READY, c.reason, c.at)
    for agent in list(open_):
        yield from close(agent, end)


def agent_rows(
    records: Iterable[CallRecord], changes: Iterable[AgentChanged], since: float | None, end: float
) -> list[AgentRow]:
    """One row per agent seen in ``records`` or ``changes``, by agent id."""
    calls: dict[str, list[float]] = {}
    for r in records:
        if r.outcome is Outcome.ANSWERED and r.agent_id is not None:
            c = calls.setdefault(r.agent_id, [0, 0.0, 0.0])
            c[0] += 1
            c[1] += r.talk
            c[2] += r.wrapup
    time: dict[str, dict] = {}
    for agent, kind, reason, start, stop in intervals(changes, since, end):
        t = time.setdefault(agent, {IDLE: 0.0, BUSY: 0.0, NOT_READY: {}})
        if kind == NOT_READY:
            t[NOT_READY][reason] = t[NOT_READY].get(reason, 0.0) + stop - start
        else:
            t[kind] += stop - start
    rows = []
    for agent in sorted(calls.keys() | time.keys()):
        n, talk, wrapup = calls.get(agent, (0, 0.0, 0.0))
        t = time.get(agent, {IDLE: 0.0, BUSY: 0.0, NOT_READY: {}})
        rows.append(AgentRow(agent, n, talk, wrapup, t[IDLE], t[BUSY], t[NOT_READY]))
    return rows


def presence_by_hour(
    changes: Iterable[AgentChanged], since: float | None, end: float, tz: ZoneInfo
) -> dict[str, dict[str, float]]:
    """Agent-seconds ``idle`` and ``busy`` per local hour (``2026-03-10T09``)."""
    totals: dict[str, dict[str, float]] = {IDLE: {}, BUSY: {}}
    for _, kind, _, start, stop in intervals(changes, since, end):
        if kind in totals:
            add_by_period(totals[kind], start, stop, "hour", tz)
    return totals

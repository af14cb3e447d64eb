"""Read-only snapshots of the engine's calls and agents (``Engine.calls()``,
``Engine.agents()``): for tests, tools and consoles; changing one changes nothing."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from acd.core.agents import AgentState, AgentStatus
from acd.core.call_states import CallState
from acd.core.records import RingAttempt


@dataclass(frozen=True, slots=True)
class CallView:
    """A call's current leg, as the engine has it now."""

    call_id: int
    leg: int
    state: CallState
    queue: str | None  # None at a menu
    caller: str
    dialled: str
    priority: int  # the caller's (added to the queue's)
    queued_at: float
    ringing: Mapping[str, str]  # device -> agent rung there (read-only)
    agent: str | None  # the agent on the call once connected
    device: str | None  # where it was answered
    rings: tuple[RingAttempt, ...]  # ring attempts so far, in order


@dataclass(frozen=True, slots=True)
class AgentView:
    """A configured agent, as the engine has it now."""

    agent_id: str
    device: str | None  # None while logged out
    status: AgentStatus
    reason: int
    state: AgentState
    call: int | None  # the call ringing the agent or connected to it
    wrapup_call: int | None  # the call of the leg the agent wraps up
    wrapup_queue: str | None  # the queue of that leg
    available: bool  # offered calls: ready, idle and on hook
    calls: int  # calls answered since the engine started

"""Agents: status (the agent's choice) apart from state (driven by calls).

Status is logged out, ready or not ready with a reason code; state is idle, ringing
(reserved for a call), on call or wrap-up. An agent is *available* — offered calls —
only when ready, idle and on hook. Busy can't be requested: it is a state. The values
are those of the MQTT payloads and the call-record store (lowercase, joined by ``_``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class AgentStatus(enum.StrEnum):
    """What the agent chose."""

    LOGGED_OUT = "logged_out"
    READY = "ready"
    NOT_READY = "not_ready"


class AgentState(enum.StrEnum):
    """What calls make of the agent."""

    IDLE = "idle"
    RINGING = "ringing"
    ON_CALL = "on_call"
    WRAP_UP = "wrap_up"


@dataclass(frozen=True, slots=True)
class AgentSession:
    """Who is logged in where, to carry sessions over a controller restart."""

    agent_id: str
    device: str
    status: AgentStatus
    reason: int
    since: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "agent_id": self.agent_id,
            "device": self.device,
            "status": str(self.status),
            "reason": self.reason,
            "since": self.since,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentSession:
        return cls(
            agent_id=str(data["agent_id"]),
            device=str(data["device"]),
            status=AgentStatus(data["status"]),
            reason=int(data["reason"]),
            since=float(data["since"]),
        )

"""The call record: one per visit of a call to a queue (a *leg*), complete and final.

A call offered to the front desk and escalated to a specialist group leaves two records
with the same ``call_id``: the front-desk leg (``answered``, ``escalated_to`` set) and the
specialist leg (``escalated_from`` set). Every leg ends in exactly one ``Outcome``.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass
from typing import Any


class Outcome(enum.StrEnum):
    """How a leg ended."""

    ANSWERED = "answered"  # an agent answered (then maybe transferred or escalated)
    ABANDONED = "abandoned"  # the caller hung up waiting or while an agent's phone rang
    OVERFLOWED = "overflowed"  # max wait / max wait with no agent: sent to the overflow
    CLOSED = "closed"  # outside opening hours: closed announcement
    REJECTED = "rejected"  # queue full (max length): sent to the overflow
    FAILED = "failed"  # lost: the switch no longer knew the call, or no route possible


class RingOutcome(enum.StrEnum):
    """How one ring attempt at an agent's extension ended."""

    ANSWERED = "answered"
    NO_ANSWER = "no-answer"  # ring timeout
    FAILED = "failed"  # the switch refused the route
    CANCELLED = "cancelled"  # another extension answered first, or the agent left
    ABANDONED = "abandoned"  # the caller hung up while it rang


@dataclass(slots=True)
class RingAttempt:
    """One extension rung for the leg."""

    agent_id: str
    device: str
    started: float
    ended: float
    outcome: RingOutcome


@dataclass(slots=True)
class CallRecord:
    """Everything that happened to one leg. Times are epoch seconds (UTC).

    ``wait`` runs from ``queued_at`` to the answer, or to the end for unanswered legs;
    ``talk`` from the answer to ``released_at`` (the call left the agent); wrap-up from
    there to ``wrapup_end``. The record is emitted when the leg is over, i.e. after the
    agent's wrap-up for answered legs.
    """

    call_id: int
    leg: int  # 1 for the first queue, 2 after one escalation or overflow ...
    queue: str
    caller: str
    dialled: str
    trunk: int
    arrived_at: float  # the call reached the ACD
    queued_at: float  # the call entered this queue (== arrived_at for the first leg)
    ended_at: float  # the leg left the ACD or this queue
    outcome: Outcome
    answered_at: float | None = None
    released_at: float | None = None
    wrapup_end: float | None = None
    agent_id: str | None = None
    device: str | None = None
    rings: tuple[RingAttempt, ...] = ()
    menu_choice: str | None = None
    escalated_from: str | None = None  # previous queue of this call
    escalated_to: str | None = None  # next queue (escalation or overflow to a queue)
    transferred_to: str | None = None  # extension outside the ACD
    abandoned_ringing: bool = False  # abandoned while an extension rang
    reason: str = ""  # free text: why a leg failed, overflowed, was rejected or adopted
    fallback: bool = False  # routed by the switch's fallback (cti-protocol §9.7)

    @property
    def wait(self) -> float:
        """Seconds in the queue before the answer (or the end)."""
        end = self.answered_at if self.answered_at is not None else self.ended_at
        return end - self.queued_at

    def offered(self, short_abandon: float) -> bool:
        """Whether the leg counts as offered: neither closed nor a short abandon (caller
        gone within ``short_abandon`` s), as the figures count it (docs/tools.md)."""
        outcome = self.outcome
        return outcome is not Outcome.CLOSED and not (
            outcome is Outcome.ABANDONED and self.wait < short_abandon
        )

    @property
    def talk(self) -> float:
        """Seconds connected to the agent (0 for unanswered legs)."""
        if self.answered_at is None:
            return 0.0
        return (self.released_at if self.released_at is not None else self.ended_at) - (
            self.answered_at
        )

    @property
    def wrapup(self) -> float:
        """Seconds of wrap-up after the call (0 for unanswered legs)."""
        if self.wrapup_end is None or self.released_at is None:
            return 0.0
        return self.wrapup_end - self.released_at

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (enum values as strings)."""
        data = asdict(self)
        data["outcome"] = str(self.outcome)
        data["rings"] = [dict(r, outcome=str(r["outcome"])) for r in data["rings"]]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallRecord:
        """Inverse of ``to_dict``."""
        data = dict(data)
        data["outcome"] = Outcome(data["outcome"])
        data["rings"] = tuple(
            RingAttempt(**dict(r, outcome=RingOutcome(r["outcome"]))) for r in data["rings"]
        )
        return cls(**data)


@dataclass(slots=True, frozen=True)
class LiveLeg:
    """What a restarted controller needs to continue a call's leg in progress (waiting,
    ringing or connected): its number, times and where it is. The caller and the
    dialled number come back from the switch; the rings so far are not kept."""

    call_id: int
    leg: int
    queue: str | None  # None while the call is at a menu
    trunk: int
    arrived_at: float
    queued_at: float
    answered_at: float | None = None
    agent_id: str | None = None
    device: str | None = None
    menu_choice: str | None = None
    escalated_from: str | None = None
    priority: int = 0
    fallback: bool = False  # routed by the switch's fallback (cti-protocol §9.7)

"""Events the ACD engine consumes: what the switch, the handsets and the clock report.

Every event carries ``at``, its time in seconds since the epoch (UTC, float). The engine
never reads a clock: ``Tick(at)`` (or any other event) moves its time forward and fires
the timers that fell due. Call ids are the switch's integers; devices (extensions) are
strings; handset keys name the device they come from, and the engine knows which agent
is logged in there. The controller maps the wire messages of ``protocols.messages`` to
these types one to one (``Offered`` → ``CallOffered``, ``Delivered`` → ``Alerting``,
``Established`` → ``Answered``, ``ConnectionCleared`` → ``Cleared``, ``Failed`` / a
negative acknowledgement of a route → ``RouteFailed``, ``KeyLogin`` → ``Login`` ...).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from functools import cache

from acd.core.agents import AgentStatus
from acd.core.pins import Pin


@dataclass(frozen=True, slots=True)
class Event:
    """Base class: something that happened at time ``at`` (epoch seconds, UTC)."""

    at: float

    def __str__(self) -> str:
        """``SetAgentStatus agent_id=1002 status=not_ready reason=5`` (for logs)."""
        values = " ".join(f"{name}={getattr(self, name)}" for name in _field_names(type(self)))
        return f"{type(self).__name__} {values}".rstrip()


@dataclass(frozen=True, slots=True)
class Tick(Event):
    """Time passes: fire every timer due at or before ``at``."""


# -- calls -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallOffered(Event):
    """A new call reached a number the ACD serves (a queue's number or a menu's).
    ``priority`` is the caller's (e.g. from a CLI lookup), added to the queue's."""

    call_id: int
    dialled: str
    caller: str = ""
    trunk: int = 0
    priority: int = 0


@dataclass(frozen=True, slots=True)
class MenuChoice(Event):
    """The caller keyed ``digits`` at a menu (empty: no choice before the timeout)."""

    call_id: int
    digits: str


@dataclass(frozen=True, slots=True)
class Alerting(Event):
    """The call rings at ``device`` (CSTA Delivered)."""

    call_id: int
    device: str


@dataclass(frozen=True, slots=True)
class Answered(Event):
    """The call was answered at ``device`` (CSTA Established)."""

    call_id: int
    device: str


@dataclass(frozen=True, slots=True)
class Cleared(Event):
    """The call ended. ``device`` is the agent's extension when the agent hung up, or
    ``""`` when the caller (or the network) did."""

    call_id: int
    device: str = ""


@dataclass(frozen=True, slots=True)
class RouteFailed(Event):
    """The switch refused or could not complete ringing ``device`` for the call
    (negative acknowledgement of a route, busy, device not obtainable). The caller goes
    back to its place in the queue; the attempt counts as a miss for the agent."""

    call_id: int
    device: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Transferred(Event):
    """The agent transferred the call out of the ACD to ``to_device`` (CSTA Transferred)."""

    call_id: int
    device: str
    to_device: str


# -- handset keys ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Login(Event):
    """Login key at ``device`` with an agent id and PIN (never shown: see `Pin`)."""

    device: str
    agent_id: str
    pin: Pin | str = field(repr=False)


@dataclass(frozen=True, slots=True)
class PinChecked(Event):
    """The runtime's answer to the engine's `acd.core.commands.VerifyPin` ``check``: whether
    the PIN matched the agent's hash."""

    check: int
    ok: bool


@dataclass(frozen=True, slots=True)
class Logout(Event):
    """Logout key at ``device``."""

    device: str


@dataclass(frozen=True, slots=True)
class Ready(Event):
    """Ready key at ``device``."""

    device: str


@dataclass(frozen=True, slots=True)
class NotReady(Event):
    """Not-ready key at ``device`` with a reason code (site ``[acd.reasons]``)."""

    device: str
    reason: int = 0


@dataclass(frozen=True, slots=True)
class WrapUpDone(Event):
    """Wrap-up-done key at ``device``: end the wrap-up early."""

    device: str


@dataclass(frozen=True, slots=True)
class Escalate(Event):
    """Escalate key at ``device``: hand the call in progress to specialist ``group``
    (a queue id)."""

    device: str
    call_id: int
    group: str


@dataclass(frozen=True, slots=True)
class Hook(Event):
    """Hook state of ``device``; an off-hook idle agent is not offered calls."""

    device: str
    off_hook: bool


# -- supervisor --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SetAgentStatus(Event):
    """A supervisor sets an agent's status: ready, not ready (with a reason) or logged
    out."""

    agent_id: str
    status: AgentStatus
    reason: int = 0


# -- resynchronisation -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SwitchCall:
    """One call as the switch reports it after a link loss or a restart (a snapshot
    entry, for ``Engine.reconcile``). ``device`` is the extension it rings or is
    connected at (``""`` when it is held in a queue); ``connected`` says it is answered
    there. ``queue`` (optional) names the queue to adopt an unknown connected call into;
    ``caller`` and ``dialled`` go into the adopted leg's record."""

    device: str = ""
    connected: bool = False
    queue: str = ""
    caller: str = ""
    dialled: str = ""
    # (offered, answered) when the switch's fallback answered it (cti-protocol §9.7)
    fallback: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class FallbackLeg:
    """A call the switch's fallback routed and that ended while the controller could
    not hear (cti-protocol §9.7), for ``Engine.fallback_leg``. ``device`` is the handset
    that answered it ("" if none); times are epoch seconds (``answered_at`` None: the
    caller abandoned)."""

    call_id: int
    caller: str
    dialled: str
    device: str
    arrived_at: float
    answered_at: float | None
    ended_at: float


@cache
def _field_names(kind: type) -> tuple[str, ...]:
    """The fields shown by ``Event.__str__``: those with ``repr=False`` (a PIN) are not."""
    return tuple(f.name for f in fields(kind) if f.repr and f.name != "at")

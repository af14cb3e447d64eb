"""What the ACD engine emits: commands for the switch and notifications for the rest.

``Engine.handle`` returns a list of ``Output`` values in the order they must be carried
out. Commands map one to one onto wire requests of ``protocols.messages``
(``QueueCall`` → QueueCall, ``PlayAnnouncement`` → PlayAnnouncement, ``RouteCall`` →
DeflectCall, ``RingDevices`` → RingDevices, ``CancelRing`` and ``ClearCall`` →
ClearConnection, ``TransferCall`` → SingleStepTransfer, ``CollectDigits`` → QueueCall
with the menu announcement, ``Display`` → SetDisplay, ``Lamp`` → SetLamp). A command the
switch refuses comes back to the engine as an event (``RouteFailed``).
Notifications feed MQTT and the call-record store; they never go to the switch.

Outputs are plain slotted dataclasses, not frozen ones (ten times cheaper to build on the
hot path): treat them as values and never mutate one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from acd.core.agents import AgentState, AgentStatus
from acd.core.pins import Pin
from acd.core.records import CallRecord


@dataclass(slots=True)
class Command:
    """Base class: a request for the switch."""


@dataclass(slots=True)
class QueueCall(Command):
    """Hold the call in ``queue`` and play ``announcement`` (0: none, music only)."""

    call_id: int
    queue: str
    announcement: int


@dataclass(slots=True)
class CollectDigits(Command):
    """Play the menu ``announcement`` and report the caller's digits (``MenuChoice``)."""

    call_id: int
    announcement: int


@dataclass(slots=True)
class PlayAnnouncement(Command):
    """Play an announcement to a waiting caller; ``value`` is the position in queue or
    the estimated wait in seconds for those announcements, else 0."""

    call_id: int
    announcement: int
    value: int = 0


@dataclass(slots=True)
class RouteCall(Command):
    """Ring one extension with the call (deflect); on answer the call is connected."""

    call_id: int
    device: str


@dataclass(slots=True)
class RingDevices(Command):
    """Ring several extensions at once with the call (ring-all and progressive rings);
    the first to answer gets it."""

    call_id: int
    devices: tuple[str, ...]


@dataclass(slots=True)
class CancelRing(Command):
    """Stop ringing ``device`` with the call (the call stays up)."""

    call_id: int
    device: str


@dataclass(slots=True)
class ClearCall(Command):
    """Play ``announcement`` (0: none) to the caller, then clear the call."""

    call_id: int
    announcement: int = 0


@dataclass(slots=True)
class TransferCall(Command):
    """Transfer the call to an extension outside the ACD (overflow to a device)."""

    call_id: int
    device: str


@dataclass(slots=True)
class Display(Command):
    """Show ``text`` on the handset display of ``device``."""

    device: str
    text: str


@dataclass(slots=True)
class Lamp(Command):
    """Set a handset lamp: ``lamp`` is ``"ready"``, ``"not-ready"`` or ``"queue"``;
    ``mode`` is ``"off"``, ``"on"`` or ``"flash"``."""

    device: str
    lamp: str
    mode: str


@dataclass(slots=True)
class Notification:
    """Base class: news for MQTT, the store and the logs (never sent to the switch)."""

    at: float


@dataclass(slots=True)
class AgentChanged(Notification):
    """An agent's status or state changed."""

    agent_id: str
    device: str | None
    status: AgentStatus
    reason: int
    state: AgentState
    call_id: int | None
    since: float


@dataclass(slots=True)
class QueueFigures:
    """Live figures of one queue (what MQTT ``queue/<id>/stats`` carries).

    ``longest_wait`` is how long the first caller in line has waited (the longest wait
    unless callers have priorities), in seconds at ``at``; today's counts restart at local midnight.
    ``offered`` counts the legs that entered the queue while it was open (today), less
    short abandons; calls still in progress are in it but not yet in any outcome.
    """

    queue: str
    waiting: int
    longest_wait: float
    agents_logged_in: int
    agents_available: int
    offered: int
    answered: int
    answered_in_sl: int
    abandoned: int  # not counting short abandons
    short_abandoned: int  # abandoned within [acd] short_abandon s: not in offered
    overflowed: int
    closed: int
    rejected: int
    failed: int


@dataclass(slots=True)
class QueueChanged(Notification):
    """A queue's live figures changed (at most one per queue per handled event)."""

    figures: QueueFigures


@dataclass(slots=True)
class CallEnded(Notification):
    """A leg is over: its complete record."""

    record: CallRecord


@dataclass(slots=True)
class LegReleased(Notification):
    """An answered leg left its agent, who now wraps up: its record so far (outcome,
    talk, rings known; ``wrapup_end`` None), to be stored at once. The leg's
    ``CallEnded`` follows at the end of the wrap-up."""

    record: CallRecord


@dataclass(slots=True)
class Refused(Notification):
    """An event was ignored because it made no sense in the current state (unknown
    call or agent, wrong PIN, key at a device with no agent ...). State is unchanged."""

    event: object
    reason: str


@dataclass(slots=True)
class PinLocked(Notification):
    """``attempts`` wrong PINs in a row: the agent's PIN is refused until ``until``."""

    agent_id: str
    device: str
    attempts: int
    until: float


@dataclass(slots=True)
class VerifyPin:
    """For the runtime, not the switch: check ``pin`` against ``pin_hash`` (an scrypt run,
    too slow for the engine's caller to wait on) and answer with
    ``PinChecked(at, check, ok)``. The engine holds the login until then."""

    check: int
    agent_id: str
    device: str  # where the login was keyed
    pin: Pin | str = field(repr=False)
    pin_hash: str = field(repr=False)


Output = Command | Notification | VerifyPin

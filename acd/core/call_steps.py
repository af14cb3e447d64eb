"""The steps of each call, told from what the engine hears and decides: protocol-neutral.

A PBX driver gives the engine events and carries out its outputs; `CallSteps` watches
both and notes, among the outputs, the `CallStep` each is: the step an accepted event
is (offered, answered, escalated, transferred by the agent) first, then the step of each
command just before it (queued, ringing, transferred out). It knows no wire protocol:
every driver notes the same steps the same way, and the controller formats them for
MQTT ``event/call`` (the record of each leg, ``CallEnded``, tells its end).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from acd.core import commands as cmd
from acd.core import events as ev
from acd.core.agents import AgentStatus
from acd.core.commands import Notification, Output


class StepKind(StrEnum):
    """A step of a call (MQTT ``event/call`` adds ``ended``, told by a leg's record)."""

    OFFERED = "offered"
    QUEUED = "queued"
    RINGING = "ringing"
    ANSWERED = "answered"
    TRANSFERRED = "transferred"  # out of the ACD (to an extension, by the agent or overflow)
    ESCALATED = "escalated"  # by the agent to a specialist group (a queue)


@dataclass(slots=True)
class CallStep(Notification):
    """A step of a call: ``device`` is the handset rung, answering or transferred to,
    ``agent_id`` the agent there (or escalating), ``queue`` the queue entered (or
    escalated to)."""

    event: StepKind
    call_id: int
    offered_at: float  # when the call was offered (``at`` if never heard of)
    caller: str | None = None
    queue: str | None = None
    agent_id: str | None = None
    device: str | None = None


@dataclass(slots=True)
class _Call:
    caller: str | None
    offered_at: float


class CallSteps:
    """Notes the steps of calls (see the module docstring); one per engine."""

    def __init__(self) -> None:
        self._calls: dict[int, _Call] = {}  # calls in progress: who called, since when
        self._agents_at: dict[str, str] = {}  # device -> agent logged in there

    @property
    def calls(self) -> frozenset[int]:
        """The calls whose steps are being followed (until their last leg ends)."""
        return frozenset(self._calls)

    def adopt(self, call_id: int, caller: str | None, at: float) -> None:
        """Follow a call found in progress (never seen offered), from ``at``."""
        self._calls.setdefault(call_id, _Call(caller, at))

    def after(self, event: ev.Event | None, outputs: list[Output], now: float) -> list[Output]:
        """``outputs`` (the engine's answer to ``event``, or to its timers when None, at
        ``now``) with the call steps among them, in order (a new list if any)."""
        first = self._event_step(event, outputs) if type(event) in _EVENT_STEPS else None
        steps = [first] if first is not None else None
        for i, out in enumerate(outputs):
            kind = type(out)
            if kind in _COMMAND_STEPS:
                if steps is None:
                    steps = list(outputs[:i])
                steps.extend(self._command_steps(out, now))
            elif kind is cmd.AgentChanged:
                self._agent_moved(out)
            elif kind is cmd.CallEnded and out.record.escalated_to is None:
                self._calls.pop(out.record.call_id, None)  # its last leg is over
            if steps is not None:
                steps.append(out)
        return outputs if steps is None else steps

    def _step(self, kind: StepKind, call_id: int, at: float, **fields: object) -> CallStep:
        call = self._calls.get(call_id)
        caller, offered_at = (call.caller, call.offered_at) if call else (None, at)
        return CallStep(at, kind, call_id, offered_at, caller, **fields)

    def _event_step(self, event: ev.Event, outputs: list[Output]) -> CallStep | None:
        """The step an accepted event is (None if the engine refused it)."""
        if cmd.Refused in map(type, outputs):
            return None
        kind, at = type(event), event.at
        if kind is ev.CallOffered:
            self._calls[event.call_id] = _Call(event.caller, at)
            return self._step(StepKind.OFFERED, event.call_id, at)
        agent = self._agents_at.get(event.device)
        if kind is ev.Answered:
            return self._step(
                StepKind.ANSWERED, event.call_id, at, agent_id=agent, device=event.device
            )
        if kind is ev.Escalate:
            return self._step(
                StepKind.ESCALATED, event.call_id, at, queue=event.group, agent_id=agent
            )
        # Transferred by the agent: the call leaves the ACD
        step = self._step(
            StepKind.TRANSFERRED, event.call_id, at, agent_id=agent, device=event.to_device
        )
        self._calls.pop(event.call_id, None)
        return step

    def _command_steps(self, out: cmd.Command, now: float) -> list[CallStep]:
        kind = type(out)
        if kind is cmd.QueueCall:
            return [self._step(StepKind.QUEUED, out.call_id, now, queue=out.queue)]
        if kind is cmd.TransferCall:
            step = self._step(StepKind.TRANSFERRED, out.call_id, now, device=out.device)
            self._calls.pop(out.call_id, None)
            return [step]
        devices = (out.device,) if kind is cmd.RouteCall else out.devices
        agents = self._agents_at
        return [
            self._step(StepKind.RINGING, out.call_id, now, agent_id=agents.get(d), device=d)
            for d in devices
        ]

    def _agent_moved(self, note: cmd.AgentChanged) -> None:
        """Keep the device → agent map the steps name agents by."""
        if note.status is AgentStatus.LOGGED_OUT or note.device is None:
            for device, agent in list(self._agents_at.items()):
                if agent == note.agent_id:
                    del self._agents_at[device]
        else:
            self._agents_at[note.device] = note.agent_id


_EVENT_STEPS = frozenset({ev.CallOffered, ev.Answered, ev.Escalate, ev.Transferred})
"""Events that are call steps when the engine accepts them."""
_COMMAND_STEPS = frozenset({cmd.QueueCall, cmd.RouteCall, cmd.RingDevices, cmd.TransferCall})
"""Commands that are call steps."""

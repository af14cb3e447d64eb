"""The simulated PBX as a pure state machine: trunks, service numbers, handsets, calls.

``Switch.handle(message, now)`` answers one controller request (the response first,
then the events it causes); ``advance(now)`` runs the people and traffic timers that
are due and returns the events they cause; ``next_deadline()`` says when to call it
next. Time is seconds after midnight of the simulated day, always passed in: there is
no clock, no sleeping and no I/O here, so a seed and a scenario fix the run.

Conventions (see docs/simulator.md): every device is monitored at start;
``ConnectionCleared`` with device "" is the caller hanging up; a ring that stops
without being answered is reported as ``ConnectionCleared`` for that handset. With
``[fallback]`` enabled the switch routes calls itself while the controller is gone
(``link_changed`` tells it about the link; docs/cti-protocol.md §9.7).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from firmware_sim.fallback import FallbackSettings, pick_handset, report
from firmware_sim.people import Agent, Caller, CallerModel, answer_delay, draw_caller, escalation
from firmware_sim.traffic import WeeklyTraffic, arrival_times
from protocols.messages import (
    LOGIN_PROMPT,
    CallInfo,
    CallState,
    Cause,
    ClearConnection,
    ConnectionCleared,
    DeflectCall,
    Delivered,
    DigitsCollected,
    Diverted,
    ErrorCode,
    Established,
    FallbackCall,
    HookState,
    KeyEscalate,
    KeyLogin,
    KeyLogout,
    KeyNotReady,
    KeyReady,
    KeyWrapUpDone,
    LampMode,
    Message,
    MonitorStart,
    MonitorStop,
    NegativeAck,
    Offered,
    PlayAnnouncement,
    PositiveAck,
    QueueCall,
    Queued,
    RingDevices,
    SetDisplay,
    SetLamp,
    SingleStepTransfer,
    SnapshotCalls,
    SnapshotCallsResult,
    SnapshotDevice,
    SnapshotDeviceResult,
    SystemStatus,
    Transferred,
)


@dataclass(frozen=True)
class SwitchConfig:
    """The PBX's fixed equipment."""

    trunks: int = 30
    service_numbers: tuple[str, ...] = ("3000",)
    extensions: tuple[str, ...] = ()  # besides the agents' own extensions
    announcements: tuple[int, ...] = (1, 2, 3, 4, 5, 6)
    display_width: int = 40
    lamps: int = 8
    escalate_wait: float = 30.0  # s an escalating agent waits for the transfer
    fallback: FallbackSettings = field(default_factory=FallbackSettings)


READY_LAMP = 0
"""The handset lamp the controller lights while the agent is ready (docs/cti-protocol.md)."""


@dataclass
class SwitchStats:
    """Counts of what happened, for the summary and the tests."""

    offered: int = 0  # calls that seized a trunk
    busy: int = 0  # callers who found every trunk busy (busy tone)
    answered: int = 0  # calls answered by a first agent
    abandoned: int = 0  # callers who hung up before being answered
    completed: int = 0  # answered calls ended by a hang-up
    cleared: int = 0  # calls cleared by the controller before an answer
    transferred: int = 0
    lost: int = 0  # calls lost in a switch reboot
    fallback: int = 0  # calls the switch routed itself (controller gone)
    fallback_announced: int = 0  # of which found no handset free at first (announcement)
    requests: int = 0
    rejected: int = 0  # requests answered with NegativeAck
    events: int = 0


@dataclass
class _Call:
    call_id: int
    caller: Caller
    called: str
    trunk: int
    state: CallState = CallState.offered
    queue: str = ""
    ringing: list[str] = field(default_factory=list)
    connected: str = ""
    answered: bool = False
    patience_token: int = 0  # bumped when answered, so a pending abandon timer is ignored
    offered_at: float = 0.0
    answered_at: float | None = None
    controlled: bool = False  # a request named this call since it was offered
    fallback: bool = False  # the switch's fallback routed it
    reported: bool = False  # a calls snapshot listed it in progress: the controller's now
    answered_by: str = ""  # the first handset that answered

    def device(self) -> str:
        return self.connected or (self.ringing[0] if self.ringing else self.called)

    def info(self) -> CallInfo:
        return CallInfo(self.call_id, self.state, self.caller.calling, self.called, self.device())


@dataclass
class _Handset:
    extension: str
    agent: Agent | None
    status: str = "out"  # the agent's own view: out, ready, wrap, break
    off_hook: bool = False
    call_id: int = 0  # ringing or connected call, 0 if none
    ring_token: int = 0  # bumped on every new ring, so stale answer timers are ignored
    breaks_due: list[tuple[int, float]] = field(default_factory=list)  # (reason, s), held
    logout_due: bool = False  # the shift ended while the agent was busy
    display: str = ""
    lamps: dict[int, LampMode] = field(default_factory=dict)
    idle_since: float = 0.0  # when its last call left it (fallback "longest-idle")

    @property
    def busy(self) -> bool:
        return self.off_hook or self.call_id != 0


class Nak(Exception):
    """A request the switch refuses; becomes a ``NegativeAck``."""

    def __init__(self, error: ErrorCode, detail: str) -> None:
        super().__init__(detail)
        self.error = error
        self.detail = detail


class Switch:
    """The PBX with its callers and agents. Deterministic for a seed."""

    def __init__(
        self,
        config: SwitchConfig,
        traffic: WeeklyTraffic,
        callers: CallerModel,
        agents: tuple[Agent, ...],
        day: date,
        seed: int,
    ) -> None:
        self.config = config
        self.traffic = traffic
        self.callers = callers
        self.day = day
        self.stats = SwitchStats()
        self._rng = random.Random(seed)
        self._agenda: list[tuple[float, int, Callable[..., None], tuple[Any, ...]]] = []
        self._seq = 0
        self._out: list[Message] = []
        self._event_id = 0
        self._next_call_id = 1
        self._calls: dict[int, _Call] = {}
        self._trunks_free = list(range(1, config.trunks + 1))
        self._handsets = {a.extension: _Handset(a.extension, a) for a in agents}
        for ext in config.extensions:
            self._handsets.setdefault(ext, _Handset(ext, None))
        self._unmonitored: set[str] = set()
        self._link_up = False
        self._link_token = 0  # bumped at every link change: a pending fallback start is stale
        self._fallback_on = False  # the link has been down for fallback.after_s
        self._fb_waiting: list[_Call] = []  # fallback calls waiting for a handset, in order
        self._fb_ended: list[tuple[_Call, float]] = []  # ended (when), not yet in a snapshot
        self._handlers: dict[type[Message], Callable[[Any, float], list[Message]]] = {
            MonitorStart: self._monitor_start,
            MonitorStop: self._monitor_stop,
            SnapshotDevice: self._snapshot_device,
            SnapshotCalls: self._snapshot_calls,
            SystemStatus: self._system_status,
            DeflectCall: self._deflect,
            RingDevices: self._ring_devices,
            QueueCall: self._queue,
            PlayAnnouncement: self._announce,
            ClearConnection: self._clear_connection,
            SingleStepTransfer: self._transfer,
            SetDisplay: self._set_display,
            SetLamp: self._set_lamp,
        }

    # --- public API -----------------------------------------------------------------

    def start(self, now: float) -> None:
        """Plan the day from ``now``: arrivals, logins, breaks and logouts (and the
        fallback, as the link is down until `link_changed` says otherwise)."""
        self.link_changed(False, now)
        plan = self.traffic.plan_for(self.day)
        if plan is not None:
            for t in arrival_times(plan, self._rng):
                if t >= now:
                    self._at(t, self._arrival)
        for h in self._handsets.values():
            if h.agent is None:
                continue
            shift = h.agent.shift
            if shift.end_s <= now:
                continue
            self._at(max(shift.start_s, now), self._login, h)
            for b in shift.breaks:
                if b.start_s >= now:
                    self._at(b.start_s, self._break_due, h, b.reason, b.duration_s)
            self._at(shift.end_s, self._shift_end, h)

    def handle(self, message: Message, now: float) -> list[Message]:
        """Answer one controller request: the response, then the events it caused."""
        self.stats.requests += 1
        call = self._calls.get(getattr(message, "call_id", 0))
        if call is not None:  # the controller has this call: the fallback leaves it
            call.controlled = True
            if call in self._fb_waiting:
                self._fb_waiting.remove(call)
        handler = self._handlers.get(type(message))
        try:
            if handler is None:
                raise Nak(ErrorCode.not_supported, f"{type(message).__name__} is not a request")
            response = handler(message, now)
        except Nak as nak:
            self.stats.rejected += 1
            self._out.clear()
            return [NegativeAck(message.invoke_id, nak.error, nak.detail)]
        return response + self._flush()

    def next_deadline(self) -> float | None:
        """When ``advance`` next has work, or None."""
        return self._agenda[0][0] if self._agenda else None

    def advance(self, now: float) -> list[Message]:
        """Run every timer due at ``now`` (in time order) and return the events."""
        while self._agenda and self._agenda[0][0] <= now:
            t, _, action, args = heapq.heappop(self._agenda)
            action(t, *args)
            if self._fb_waiting:
                self._fallback_dispatch(t)
        return self._flush()

    def link_changed(self, up: bool, now: float) -> None:
        """The link to the controller came up or went down at ``now``."""
        self._link_up = up
        self._link_token += 1
        self._fallback_on = False
        if not up and self.config.fallback.enabled:
            self._at(now + self.config.fallback.after_s, self._link_silent, self._link_token)

    def add_call(self, now: float, caller: Caller, called: str | None = None) -> None:
        """A scripted arrival (scenario ``[[calls]]`` or a test), at ``now``."""
        self._at(now, self._arrival, caller, called)

    def reboot(self) -> None:
        """Power cycle: every call is lost without events; handsets keep their logins."""
        self.stats.lost += len(self._calls)
        self._calls.clear()
        self._trunks_free = list(range(1, self.config.trunks + 1))
        for h in self._handsets.values():
            h.call_id = 0
            h.off_hook = False
            h.ring_token += 1
            if h.status == "wrap":
                h.status = "ready"
        self._unmonitored.clear()
        self._out.clear()
        self._fb_waiting.clear()
        self._fb_ended.clear()

    @property
    def active_calls(self) -> int:
        return len(self._calls)

    def calls(self) -> tuple[CallInfo, ...]:
        """Every call in progress, as ``SnapshotCalls`` reports it."""
        return tuple(c.info() for c in self._calls.values())

    # --- plumbing -------------------------------------------------------------------

    def _at(self, t: float, action: Callable[..., None], *args: Any) -> None:
        self._seq += 1
        heapq.heappush(self._agenda, (t, self._seq, action, args))

    def _flush(self) -> list[Message]:
        out, self._out = self._out, []
        self.stats.events += len(out)
        return out

    def _event(self, device: str, cls: type[Message], *fields: Any) -> None:
        """Emit event ``cls`` about ``device`` (fields in the message's order, after the
        invoke id: positional arguments cost less than keywords on this hot path)."""
        if device in self._unmonitored:
            return
        self._event_id = self._event_id % 0xFFFF + 1
        self._out.append(cls(self._event_id, *fields))

    def _call(self, call_id: int) -> _Call:
        call = self._calls.get(call_id)
        if call is None:
            raise Nak(ErrorCode.invalid_call, f"no call {call_id}")
        return call

    def _handset(self, device: str) -> _Handset:
        h = self._handsets.get(device)
        if h is None:
            raise Nak(ErrorCode.invalid_device, f"no extension {device!r}")
        return h

    def _known_device(self, device: str) -> None:
        if device and device not in self._handsets and device not in self.config.service_numbers:
            raise Nak(ErrorCode.invalid_device, f"no device {device!r}")

    def _waiting(self, call: _Call) -> None:
        if call.state == CallState.connected:
            raise Nak(ErrorCode.invalid_state, f"call {call.call_id} is already answered")

    def _announcement(self, announcement: int) -> None:
        if announcement not in self.config.announcements:
            raise Nak(ErrorCode.invalid_parameter, f"no announcement {announcement}")

    # --- calls ----------------------------------------------------------------------

    def _arrival(self, now: float, caller: Caller | None = None, called: str | None = None) -> None:
        caller = caller or draw_caller(self.callers, self._rng)
        if not self._trunks_free:
            self.stats.busy += 1
            return
        call = _Call(
            self._next_call_id,
            caller,
            called or self.config.service_numbers[0],
            heapq.heappop(self._trunks_free),
        )
        self._next_call_id += 1
        self._calls[call.call_id] = call
        self.stats.offered += 1
        call.offered_at = now
        self._event(call.called, Offered, call.call_id, caller.calling, call.called, call.trunk)
        self._offered(now, call)
        self._wait_patiently(now, call, caller.patience)
        if caller.digits:
            self._at(now + self.callers.menu_delay, self._digits, call)

    def _live(self, call: _Call) -> bool:
        return self._calls.get(call.call_id) is call

    def _digits(self, now: float, call: _Call) -> None:
        if self._live(call) and call.state != CallState.connected:
            self._event(call.called, DigitsCollected, call.call_id, call.caller.digits)

    def _wait_patiently(self, now: float, call: _Call, patience: float) -> None:
        call.patience_token += 1
        self._at(now + patience, self._abandon, call, call.patience_token)

    def _abandon(self, now: float, call: _Call, token: int) -> None:
        if not self._live(call) or call.patience_token != token:
            return
        self._stop_ringing(now, call, Cause.caller_abandon)
        if call.answered:  # answered, then left waiting after a transfer
            self.stats.completed += 1
        else:
            self.stats.abandoned += 1
        self._end(now, call, "", Cause.caller_abandon)

    def _end(self, now: float, call: _Call, device: str, cause: Cause) -> None:
        if call.fallback and not call.reported:
            self._fb_ended.append((call, now))
            if call in self._fb_waiting:
                self._fb_waiting.remove(call)
        del self._calls[call.call_id]
        heapq.heappush(self._trunks_free, call.trunk)
        self._event(device or call.called, ConnectionCleared, call.call_id, device, cause)

    def _stop_ringing(
        self, now: float, call: _Call, cause: Cause, only: str = "", keep: str = ""
    ) -> None:
        """Stop the rings of ``call`` (at ``only``, or all but ``keep``), reporting each."""
        if not call.ringing:
            return
        stopping = [e for e in call.ringing if e != keep and (not only or e == only)]
        for ext in stopping:
            h = self._handsets[ext]
            h.call_id = 0
            h.ring_token += 1
            if h.agent and h.status == "ready" and not keep and cause != Cause.caller_abandon:
                self._at(now + h.agent.behaviour.ready_after_miss, self._press_ready, h)
            self._event(ext, ConnectionCleared, call.call_id, ext, cause)
        call.ringing = [e for e in call.ringing if e not in stopping]

    def _ring(self, now: float, call: _Call, h: _Handset) -> None:
        h.call_id = call.call_id
        h.ring_token += 1
        call.ringing.append(h.extension)
        call.state = CallState.alerting
        self._event(
            h.extension, Delivered, call.call_id, h.extension, call.caller.calling, call.called
        )
        ready = h.agent is not None and h.status == "ready"
        delay = answer_delay(h.agent.behaviour, self._rng) if ready else None
        if delay is not None:
            self._at(now + delay, self._answer, h, call, h.ring_token)

    def _answer(self, now: float, h: _Handset, call: _Call, token: int) -> None:
        if not self._live(call) or h.ring_token != token or h.extension not in call.ringing:
            return
        self._stop_ringing(now, call, Cause.normal, keep=h.extension)
        call.ringing = []
        call.connected = h.extension
        call.state = CallState.connected
        call.patience_token += 1
        if not call.answered:
            call.answered = True
            call.answered_at = now
            call.answered_by = h.extension
            self.stats.answered += 1
        h.off_hook = True
        self._event(h.extension, HookState, h.extension, True)
        self._event(h.extension, Established, call.call_id, h.extension, call.caller.calling)
        self._at(now + h.agent.behaviour.handling.sample(self._rng), self._talk_over, h, call)

    def _talk_over(self, now: float, h: _Handset, call: _Call) -> None:
        if not self._live(call) or call.connected != h.extension:
            return
        group = escalation(h.agent.behaviour, self._rng)
        if group is None:
            self._hang_up(now, h, call)
            return
        self._event(h.extension, KeyEscalate, h.extension, call.call_id, group)
        self._at(now + self.config.escalate_wait, self._hang_up, h, call)

    def _hang_up(self, now: float, h: _Handset, call: _Call) -> None:
        if not self._live(call) or call.connected != h.extension:
            return
        self.stats.completed += 1
        self._release(now, h)
        self._end(now, call, h.extension, Cause.normal)

    def _release(self, now: float, h: _Handset) -> None:
        """The agent's side of a call ends: hook on, then wrap-up."""
        h.call_id = 0
        h.off_hook = False
        h.idle_since = now
        self._event(h.extension, HookState, h.extension, False)
        if h.agent is not None and h.status == "ready":
            h.status = "wrap"
            self._at(now + h.agent.behaviour.wrap_up.sample(self._rng), self._wrap_done, h)

    # --- agents ---------------------------------------------------------------------

    def _login(self, now: float, h: _Handset) -> None:
        if h.status != "out":
            return
        h.status = "ready"
        agent = h.agent
        self._event(h.extension, KeyLogin, h.extension, agent.agent_id, agent.pin)
        self._event(h.extension, KeyReady, h.extension)

    def _press_ready(self, now: float, h: _Handset) -> None:
        if h.status == "ready":
            self._event(h.extension, KeyReady, h.extension)

    def _wrap_done(self, now: float, h: _Handset) -> None:
        if h.status != "wrap":
            return
        h.status = "ready"
        self._event(h.extension, KeyWrapUpDone, h.extension)
        if self._ready_lamp_off(h):
            self._event(h.extension, KeyReady, h.extension)
        self._run_pending(now, h)

    def _idle(self, h: _Handset) -> bool:
        return h.status == "ready" and not h.busy

    def _run_pending(self, now: float, h: _Handset) -> None:
        """Once idle: log out if the shift is over, else take the breaks held back."""
        while self._idle(h) and (h.logout_due or h.breaks_due):
            if h.logout_due:
                self._logout(now, h)
            else:
                self._break_due(now, h, *h.breaks_due.pop(0))

    def _break_due(self, now: float, h: _Handset, reason: int, seconds: float) -> None:
        if h.status == "out":
            return
        if not self._idle(h):
            h.breaks_due.append((reason, seconds))
            return
        h.status = "break"
        self._event(h.extension, KeyNotReady, h.extension, reason)
        self._at(now + seconds, self._break_over, h)

    def _break_over(self, now: float, h: _Handset) -> None:
        if h.status != "break":
            return
        h.status = "ready"
        self._event(h.extension, KeyReady, h.extension)
        self._run_pending(now, h)

    def _shift_end(self, now: float, h: _Handset) -> None:
        if h.status == "break":
            h.status = "ready"
        if self._idle(h):
            self._logout(now, h)
        elif h.status != "out":
            h.logout_due = True

    def _logout(self, now: float, h: _Handset) -> None:
        h.status = "out"
        h.breaks_due = []
        h.logout_due = False
        self._event(h.extension, KeyLogout, h.extension)

    # --- requests -------------------------------------------------------------------

    def _ack(self, message: Message) -> list[Message]:
        return [PositiveAck(message.invoke_id)]

    def _monitor_start(self, m: MonitorStart, now: float) -> list[Message]:
        self._known_device(m.device)
        if m.device:
            self._unmonitored.discard(m.device)
        else:
            self._unmonitored.clear()
        return self._ack(m)

    def _monitor_stop(self, m: MonitorStop, now: float) -> list[Message]:
        self._known_device(m.device)
        if m.device:
            self._unmonitored.add(m.device)
        else:
            self._unmonitored = {*self._handsets, *self.config.service_numbers}
        return self._ack(m)

    def _snapshot_device(self, m: SnapshotDevice, now: float) -> list[Message]:
        if m.device in self.config.service_numbers:
            calls = tuple(c.info() for c in self._calls.values() if c.device() == m.device)
            return [SnapshotDeviceResult(m.invoke_id, m.device, False, "", calls)]
        h = self._handset(m.device)
        calls = (self._calls[h.call_id].info(),) if h.call_id else ()
        agent_id = h.agent.agent_id if h.agent is not None and h.status != "out" else ""
        return [SnapshotDeviceResult(m.invoke_id, m.device, h.off_hook, agent_id, calls)]

    def _snapshot_calls(self, m: SnapshotCalls, now: float) -> list[Message]:
        ended, self._fb_ended = self._fb_ended, []
        routed = [(c, None) for c in self._calls.values() if c.fallback]
        for c, _ in routed:  # listed in progress: the controller records its end itself
            c.reported = True
        routed += ended
        return [SnapshotCallsResult(m.invoke_id, self.calls(), self._fallback_report(routed, now))]

    def _system_status(self, m: SystemStatus, now: float) -> list[Message]:
        return self._ack(m)

    def _free_handset(self, device: str, call: _Call) -> _Handset:
        h = self._handset(device)
        if h.busy and device not in call.ringing:
            raise Nak(ErrorCode.device_busy, f"extension {device} is busy")
        return h

    def _deflect(self, m: DeflectCall, now: float) -> list[Message]:
        call = self._call(m.call_id)
        self._waiting(call)
        h = self._free_handset(m.device, call)
        source = call.device()
        for ext in call.ringing:
            self._handsets[ext].call_id = 0
            self._handsets[ext].ring_token += 1
        call.ringing = []
        self._event(m.device, Diverted, call.call_id, source, m.device)
        self._ring(now, call, h)
        return self._ack(m)

    def _ring_devices(self, m: RingDevices, now: float) -> list[Message]:
        call = self._call(m.call_id)
        self._waiting(call)
        if not m.devices:
            raise Nak(ErrorCode.invalid_parameter, "no device to ring")
        handsets = [self._handset(d) for d in m.devices]
        free = [h for h in handsets if not h.busy]
        if not free:
            raise Nak(ErrorCode.device_busy, "every extension is busy")
        self._stop_ringing(now, call, Cause.normal)
        for h in free:
            self._ring(now, call, h)
        if m.timeout_s:
            self._at(now + m.timeout_s, self._ring_timeout, call, [h.ring_token for h in free])
        return self._ack(m)

    def _ring_timeout(self, now: float, call: _Call, tokens: list[int]) -> None:
        if not self._live(call) or call.state != CallState.alerting:
            return
        if [self._handsets[e].ring_token for e in call.ringing] != tokens:
            return
        self._stop_ringing(now, call, Cause.no_answer)
        call.state = CallState.queued

    def _queue(self, m: QueueCall, now: float) -> list[Message]:
        call = self._call(m.call_id)
        self._waiting(call)
        if m.announcement:
            self._announcement(m.announcement)
        self._stop_ringing(now, call, Cause.normal)
        call.state = CallState.queued
        call.queue = m.queue
        self._event(call.called, Queued, call.call_id, m.queue)
        return self._ack(m)

    def _announce(self, m: PlayAnnouncement, now: float) -> list[Message]:
        self._waiting(self._call(m.call_id))
        self._announcement(m.announcement)
        return self._ack(m)

    def _clear_connection(self, m: ClearConnection, now: float) -> list[Message]:
        call = self._call(m.call_id)
        if m.device and m.device in call.ringing:
            self._stop_ringing(now, call, Cause.normal, only=m.device)
            if not call.ringing:
                call.state = CallState.queued
            return self._ack(m)
        if m.device not in ("", call.connected, call.called):
            raise Nak(ErrorCode.invalid_device, f"{m.device!r} is not a party of call {m.call_id}")
        self._stop_ringing(now, call, Cause.normal)
        if call.connected:
            self.stats.completed += 1
            self._event(
                call.connected, ConnectionCleared, call.call_id, call.connected, Cause.normal
            )
            self._release(now, self._handsets[call.connected])
        else:
            self.stats.cleared += 1
        self._end(now, call, "", Cause.normal)
        return self._ack(m)

    def _transfer(self, m: SingleStepTransfer, now: float) -> list[Message]:
        call = self._call(m.call_id)
        if call.connected != m.device or not m.device:
            raise Nak(ErrorCode.invalid_state, f"call {m.call_id} is not connected at {m.device!r}")
        if m.to_device in self.config.service_numbers:
            target = None
        else:
            target = self._handset(m.to_device)
            if target.busy:
                raise Nak(ErrorCode.device_busy, f"extension {m.to_device} is busy")
        self.stats.transferred += 1
        call.connected = ""
        self._release(now, self._handsets[m.device])
        self._event(m.device, Transferred, call.call_id, m.device, m.to_device)
        self._wait_patiently(now, call, self.callers.patience.sample(self._rng))
        if target is not None:
            self._ring(now, call, target)
            return self._ack(m)
        call.called = m.to_device
        call.state = CallState.offered
        call.controlled = False
        self._event(
            call.called, Offered, call.call_id, call.caller.calling, call.called, call.trunk
        )
        self._offered(now, call)
        return self._ack(m)

    def _set_display(self, m: SetDisplay, now: float) -> list[Message]:
        h = self._handset(m.device)
        if len(m.text) > self.config.display_width:
            raise Nak(ErrorCode.invalid_parameter, f"text longer than {self.config.display_width}")
        h.display = m.text
        if m.text == LOGIN_PROMPT and h.agent is not None and h.status != "out":
            # The controller never heard this login (keyed while it was away): key it again.
            self._at(now + h.agent.behaviour.ready_after_miss, self._login_again, h)
        return self._ack(m)

    def _login_again(self, now: float, h: _Handset) -> None:
        if h.status == "out" or h.display != LOGIN_PROMPT:
            return
        h.display = ""
        self._event(h.extension, KeyLogin, h.extension, h.agent.agent_id, h.agent.pin)
        if h.status == "ready":
            self._event(h.extension, KeyReady, h.extension)

    def _set_lamp(self, m: SetLamp, now: float) -> list[Message]:
        h = self._handset(m.device)
        if m.lamp >= self.config.lamps:
            raise Nak(ErrorCode.invalid_parameter, f"no lamp {m.lamp} (0..{self.config.lamps - 1})")
        h.lamps[m.lamp] = m.mode
        if self._ready_lamp_off(h) and h.status in ("ready", "wrap"):
            # The ACD made the agent not ready (missed rings): they notice the lamp.
            self._at(now + h.agent.behaviour.ready_after_miss, self._notice_not_ready, h)
        return self._ack(m)

    def _ready_lamp_off(self, h: _Handset) -> bool:
        return h.agent is not None and h.lamps.get(READY_LAMP) is LampMode.off

    def _notice_not_ready(self, now: float, h: _Handset) -> None:
        """An agent who finds the ready lamp off when they think they are ready presses
        ready; one still wrapping up presses it with wrap-up done."""
        if self._ready_lamp_off(h) and self._idle(h):
            self._event(h.extension, KeyReady, h.extension)

    def handset_view(self, device: str) -> dict[str, Any]:
        """What a handset shows (display, lamps, hook, agent status), for logs and tests."""
        h = self._handset(device)
        return {
            "display": h.display,
            "lamps": {k: v.name for k, v in sorted(h.lamps.items())},
            "off_hook": h.off_hook,
            "status": h.status,
        }

    # --- fallback (docs/cti-protocol.md §9.7) ------------------------------------------

    def _offered(self, now: float, call: _Call) -> None:
        """A call was offered to the controller: the fallback takes it now if the
        controller is gone, else if no request names it within ``after_s``."""
        fb = self.config.fallback
        if self._fallback_on:
            self._fallback_take(now, call)
        elif fb.enabled:
            self._at(now + fb.after_s, self._unanswered, call)

    def _unanswered(self, now: float, call: _Call) -> None:
        if self._live(call) and not call.controlled and not call.fallback:
            self._fallback_take(now, call)

    def _link_silent(self, now: float, token: int) -> None:
        """The link has been down for ``after_s``: route every waiting call, and the
        new ones as they come, until it is up again."""
        if token != self._link_token or self._link_up:
            return
        self._fallback_on = True
        for call in list(self._calls.values()):
            if not call.ringing and not call.connected and not call.fallback:
                self._fallback_take(now, call)

    def _fallback_take(self, now: float, call: _Call) -> None:
        call.fallback = True
        call.state = CallState.queued
        self.stats.fallback += 1
        self._fb_waiting.append(call)
        self._fallback_dispatch(now)
        if call in self._fb_waiting and self.config.fallback.announcement:
            self.stats.fallback_announced += 1  # the caller hears the announcement

    def _fallback_dispatch(self, now: float) -> None:
        """Ring a free group handset for each waiting fallback call, oldest call first."""
        fb = self.config.fallback
        while self._fb_waiting:
            free = [
                h for e in fb.group if (h := self._handsets.get(e)) is not None and self._idle(h)
            ]
            h = pick_handset(free, fb.order)
            if h is None:
                return
            call = self._fb_waiting.pop(0)
            self._ring(now, call, h)
            self._at(now + fb.ring_s, self._fallback_ring_over, call, h, h.ring_token)

    def _fallback_ring_over(self, now: float, call: _Call, h: _Handset, token: int) -> None:
        """Nobody answered in ``ring_s``: the call waits for the next free handset."""
        if not self._live(call) or h.ring_token != token or h.extension not in call.ringing:
            return
        h.idle_since = now  # "longest-idle" tries the others first
        self._stop_ringing(now, call, Cause.no_answer, only=h.extension)
        call.state = CallState.queued
        self._fb_waiting.insert(0, call)

    def _fallback_report(
        self, routed: list[tuple[_Call, float | None]], now: float
    ) -> tuple[FallbackCall, ...]:
        return tuple(
            report(
                c.call_id,
                c.caller.calling,
                c.called,
                c.answered_by,
                (c.offered_at, c.answered_at, ended),
                now,
            )
            for c, ended in routed
        )

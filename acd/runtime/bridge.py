"""Between the CTI protocol and the ACD engine: pure and sans-I/O.

A `Bridge` owns an `Engine`. It turns switch messages (``protocols.messages``) into
engine events, engine commands into switch requests with invoke ids, and checks each
request's response: a refused (or unanswered) route or ring comes back to the engine as
``RouteFailed`` so the caller returns to its place in the queue. On link up it asks for
a full picture (MonitorStart, SnapshotCalls, SnapshotDevice per extension) and holds
the switch's events until every answer is in; then the calls snapshot is the baseline
that the held events amend, in the order of docs/cti-protocol.md §9.2: unanswered
calls the engine never heard of are offered to it, and a login the switch shows but
the controller never verified makes no session (the handset is asked to log in again).
With `controller_link` on the wire, it is the ``acd-cti`` PBX driver (`CtiDriver`, see
`acd.runtime.pbx`): a `Bridge` is a ``SwitchSession``.

Every entry point takes ``now`` (engine time, epoch seconds) and returns a `Step`: the
requests to send to the switch, in order, and the notifications for the store, MQTT
and the logs. Among them are the protocol-neutral `acd.core.call_steps.CallStep` notes
that `acd.core.call_steps.CallSteps` tells from the engine's events and outputs. The same
object serves the live controller (requests go to a ``Link``) and a virtual-time
what-if run with the simulated switch in process (`run_virtual`).

Conventions of the switch side (docs/cti-protocol.md): ``ConnectionCleared`` with
device ``""`` is the caller hanging up; for the handset a call is connected at, it is
the end of the call; for a handset that rang, the end of that ring (when the bridge
stopped that ring itself, the engine already knows: the echo is dropped, so that it
cannot be taken for the failure of a new ring at the same handset; a ring that ends
because the caller hung up is dropped too: the caller's own clear follows). A call
connected at
an agent's handset that the engine sends elsewhere (escalation) is moved with
SingleStepTransfer, not deflected; announcements are not played to it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from acd.config import Config, LinkConfig
from acd.core import commands as cmd
from acd.core import events as ev
from acd.core.agents import AgentSession
from acd.core.call_steps import CallSteps, StepKind
from acd.core.commands import Notification, Output
from acd.core.engine import Engine
from acd.core.pins import Pin, verify_pin
from acd.core.records import Outcome
from acd.runtime.pbx import PbxDriver, RequestFailed, Resynced, Step
from protocols import messages as m
from protocols.link import Link, Role

LAMPS = {"ready": 0, "not-ready": 1, "queue": 2}
"""Handset lamp numbers of the engine's lamp names."""


def handle_checking_pins(engine: Engine, event: ev.Event) -> list[Output]:
    """``engine.handle(event)`` with its PIN checks answered at once, in this thread (for
    virtual-time runs and tests; the controller checks PINs off its loop)."""
    out = engine.handle(event)
    for check in [o for o in out if type(o) is cmd.VerifyPin]:
        ok = verify_pin(check.pin, check.pin_hash)
        out += engine.handle(ev.PinChecked(event.at, check.check, ok))
    return out


@dataclass(slots=True)
class _Pending:
    request: m.Message
    ring: tuple[str, ...]  # devices rung by a route request (else empty)


@dataclass(slots=True)
class _Resync:
    ids: set[int]  # invoke ids of the snapshot requests still unanswered
    devices: int = 0  # extensions that answered their snapshot
    logged_out: list[str] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)


def controller_link(cfg: LinkConfig) -> Link:
    """The controller's end of the PBX link with the configured timers (it sends RESET
    every ``reset_interval`` until the switch answers)."""
    return Link(Role.CONTROLLER, cfg.window, cfg.t1, cfg.n2, cfg.heartbeat, cfg.reset_interval)


class CtiDriver(PbxDriver):
    """``[link] protocol = "acd-cti"``: the project's CTI protocol (docs/cti-protocol.md),
    `protocols.link.Link` on the wire and a `Bridge` to the engine."""

    def link(self, cfg: LinkConfig) -> Link:
        return controller_link(cfg)

    def session(
        self, engine: Engine, cfg: LinkConfig, extensions: Iterable[str], speed: float
    ) -> Bridge:
        return Bridge.for_link(engine, cfg, extensions, speed)


class Bridge:
    """The engine behind the CTI protocol (see the module docstring).

    ``extensions`` are the handsets to snapshot on link up (besides those the engine has
    agents logged in at); ``ack_timeout`` is how long (engine seconds) a request may
    wait for its response before it counts as refused. A new bridge behaves as if the
    link were up (in-process use); a live controller calls `link_down` until it is.
    With ``call_steps=False`` no call step is noted (a what-if run reads only records).
    """

    def __init__(
        self,
        engine: Engine,
        extensions: Iterable[str] = (),
        ack_timeout: float = 10.0,
        call_steps: bool = True,
    ):
        self.engine = engine
        self.extensions = tuple(extensions)
        self.ack_timeout = ack_timeout
        self.steps = CallSteps() if call_steps else None
        self._invoke = 0
        self._pending: dict[int, _Pending] = {}
        self._deadlines: deque[tuple[float, int]] = deque()  # in send order
        self._connected: dict[int, str] = {}  # call id -> handset it is connected at
        self._escalated: set[int] = set()  # calls an agent escalated, not yet transferred
        self._cancelled: set[tuple[int, str]] = set()  # rings we stopped: their echo is ours
        self._resync: _Resync | None = None
        self._held: list[tuple[m.Message | ev.PinChecked, float]] = []  # since link up
        self._checking: dict[int, str] = {}  # PIN checks out to the runtime -> handset
        self._calls: set[int] = set()  # calls in progress the switch told of
        self._gone: list[int] = []  # calls over at the switch, to forget after this message
        # fallback calls connected at a handset the engine could not adopt them at (no
        # session there): recorded as fallback legs when they end (see _unadopted)
        self._unheard: dict[int, ev.FallbackLeg] = {}
        self._tracking = True  # requests are tracked (and time out) while the link is up
        self._handlers: dict[type[m.Message], Callable[[m.Message, float], list[ev.Event]]] = {
            m.Offered: lambda x, t: [ev.CallOffered(t, x.call_id, x.called, x.calling, x.trunk)],
            m.Delivered: lambda x, t: [ev.Alerting(t, x.call_id, x.device)],
            m.Established: self._established,
            m.ConnectionCleared: self._cleared,
            m.Transferred: self._transferred,
            m.Failed: lambda x, t: [ev.RouteFailed(t, x.call_id, x.device, x.cause.name)],
            m.DigitsCollected: lambda x, t: [ev.MenuChoice(t, x.call_id, x.digits)],
            m.KeyLogin: lambda x, t: [ev.Login(t, x.device, x.agent_id, Pin(x.pin))],
            m.KeyLogout: lambda x, t: [ev.Logout(t, x.device)],
            m.KeyReady: lambda x, t: [ev.Ready(t, x.device)],
            m.KeyNotReady: lambda x, t: [ev.NotReady(t, x.device, x.reason)],
            m.KeyWrapUpDone: lambda x, t: [ev.WrapUpDone(t, x.device)],
            m.KeyEscalate: self._escalate,
            m.HookState: lambda x, t: [ev.Hook(t, x.device, x.off_hook)],
            m.Queued: lambda x, t: [],
            m.Diverted: lambda x, t: [],
        }
        self._commands: dict[type[Output], Callable[[Output, float, Step], None]] = {
            cmd.RouteCall: self._route_call,
            cmd.RingDevices: self._ring_devices,
            cmd.QueueCall: self._queue_call,
            cmd.PlayAnnouncement: self._play,
            cmd.CollectDigits: self._collect,
            cmd.CancelRing: self._cancel_ring,
            cmd.ClearCall: self._clear_call,
            cmd.TransferCall: self._transfer_call,
            cmd.Display: self._display,
            cmd.Lamp: self._lamp,
        }

    # --- public API ---------------------------------------------------------------

    @classmethod
    def for_link(
        cls, engine: Engine, cfg: LinkConfig, extensions: Iterable[str], speed: float = 1.0
    ) -> Bridge:
        """A bridge behind a real link: requests wait for their response as long as the
        link retries a frame (2·T1·(N2+1), in engine seconds at ``speed``), and nothing
        is sent until the first link up."""
        bridge = cls(engine, extensions, ack_timeout=2 * cfg.t1 * (cfg.n2 + 1) * speed)
        bridge.link_down()
        return bridge

    @property
    def outstanding(self) -> int:
        """Requests sent and not yet answered."""
        return len(self._pending)

    @property
    def resyncing(self) -> bool:
        """True from a link up until every snapshot has been answered."""
        return self._resync is not None

    def from_switch(self, msg: m.Message, now: float) -> Step:
        """Handle one message from the switch (event or response)."""
        step = Step()
        self._from_switch(msg, now, step)
        return step

    def _from_switch(self, msg: m.Message, now: float, step: Step) -> None:
        if type(msg) in self._handlers:
            if self._resync is not None:  # held until every snapshot is in (see _resynced)
                self._held.append((msg, now))
            else:
                self._event(msg, now, step)
        elif type(msg) in _RESPONSES:
            self._response(msg, now, step)
        elif type(msg) is m.SystemStatus:
            step.requests.append(m.PositiveAck(msg.invoke_id))
        else:
            step.notes.append(RequestFailed(now, msg, "unexpected message from the switch"))

    def _event(self, msg: m.Message, now: float, step: Step) -> None:
        """Give one switch event to the engine and send what it decides."""
        if self._unheard and getattr(msg, "call_id", None) in self._unheard:
            self._unheard_event(msg, now, step)
            return
        handle = self.engine.handle
        for event in self._handlers[type(msg)](msg, now):
            outputs = handle(event)
            if type(event) in _CALL_IN_OUT:
                self._call_in_out(event, outputs)
            self._apply(outputs, now, step, event)
        gone = self._gone
        while gone:
            self._calls.discard(gone.pop())

    def invalid(self, payload: bytes, error: str) -> Step:
        """An invalid message from the switch (docs/cti-protocol.md §5.1): a request is
        answered ``NegativeAck(invalid_parameter)``; anything else only reported."""
        step = Step()
        if (nak := m.refusal(payload, error)) is not None:
            step.requests.append(nak)
        return step

    def command(self, event: ev.Event) -> Step:
        """Apply an event that does not come from the switch (a supervisor command, a
        PIN checked). While resynchronising, a PIN checked is held with the events, and
        a supervisor command's requests about calls are not sent (they would cross the
        snapshots: the calls snapshot decides again)."""
        step = Step()
        if self._resync is None:
            self._apply(self._handle(event), event.at, step)
        elif type(event) is ev.PinChecked:
            self._held.append((event, event.at))  # a login's end: held like the key was
        else:  # applied, but the calls snapshot decides the calls (see _unsent)
            decided = Step()
            self._apply(self.engine.handle(event), event.at, decided)
            self._unsent(decided, step)
        return step

    def advance(self, now: float) -> Step:
        """Fire the engine's timers and time out unanswered requests due by ``now``."""
        step = Step()
        self._advance(now, step)
        return step

    def _advance(self, now: float, step: Step) -> None:
        deadlines = self._deadlines
        while deadlines and deadlines[0][0] <= now:
            _, invoke = deadlines.popleft()
            pending = self._pending.pop(invoke, None)
            if pending is not None:
                error = f"no response within {self.ack_timeout:g} s"
                self._refused(pending, error, now, step)
        if self._resync is not None:
            return  # the engine's timers wait for the snapshots, like its events
        if (deadline := self.engine.next_deadline()) is not None and deadline <= now:
            self._apply(self.engine.advance(now), now, step)

    def next_deadline(self) -> float | None:
        """When `advance` next has work (engine timer or request timeout), or None."""
        engine = self.engine.next_deadline() if self._resync is None else None
        while self._deadlines and self._deadlines[0][1] not in self._pending:
            self._deadlines.popleft()
        ours = self._deadlines[0][0] if self._deadlines else None
        if engine is None or ours is None:
            return engine if ours is None else ours
        return min(engine, ours)

    def restore(self, sessions: Iterable[AgentSession], now: float) -> Step:
        """Log agents back in as saved before a restart (``Engine.import_sessions``)."""
        step = Step()
        self._apply(self.engine.import_sessions(now, sessions), now, step)
        return step

    def reload(self, config: Config, now: float) -> Step:
        """Apply a new configuration to the engine (``Engine.reload``; `ReloadRefused`)."""
        step = Step()
        self._apply(self.engine.reload(config, now), now, step)
        return step

    def link_down(self) -> None:
        """The link is down: forget the requests in flight (the resync on link up will
        tell what became of them) and stop timing requests out until it is up again.
        Events held for an unfinished resync stay held for the next one."""
        self._tracking = False
        self._pending.clear()
        self._deadlines.clear()
        self._resync = None
        self._held = [h for h in self._held if type(h[0]) not in _SNAPSHOTS]

    def link_up(self, now: float) -> Step:
        """The link is up: ask for monitoring and a snapshot of calls and extensions."""
        self._tracking = True
        step = Step()
        devices = sorted({*self.extensions, *(s.device for s in self.engine.export_sessions())})
        requests = [
            self._request(m.MonitorStart, now, (), ""),
            self._request(m.SnapshotCalls, now, ()),
            *(self._request(m.SnapshotDevice, now, (), d) for d in devices),
        ]
        self._resync = _Resync({r.invoke_id for r in requests[1:]})
        step.requests.extend(requests)
        return step

    def _call_in_out(self, event: ev.CallOffered | ev.Transferred, outputs: list[Output]) -> None:
        """An accepted offer is a call in progress; a transfer by the agent ends it here."""
        if cmd.Refused in map(type, outputs):
            return
        if type(event) is ev.CallOffered:
            self._calls.add(event.call_id)
        else:
            self._calls.discard(event.call_id)

    # --- switch events --------------------------------------------------------------

    def _established(self, x: m.Established, t: float) -> list[ev.Event]:
        self._connected[x.call_id] = x.device
        return [ev.Answered(t, x.call_id, x.device)]

    def _cleared(self, x: m.ConnectionCleared, t: float) -> list[ev.Event]:
        if (x.call_id, x.device) in self._cancelled:  # the end of a ring we cancelled
            self._cancelled.discard((x.call_id, x.device))
            return []
        ringing_end = x.device and self._connected.get(x.call_id) != x.device
        if ringing_end and x.cause is m.Cause.caller_abandon:
            return []  # the caller hung up while it rang: the caller's own clear follows
        events: list[ev.Event] = [ev.Cleared(t, x.call_id, x.device)]
        if not x.device or self._connected.get(x.call_id) == x.device:
            self._connected.pop(x.call_id, None)
            self._gone.append(x.call_id)  # forgotten once the engine has had its say
            self._cancelled = {c for c in self._cancelled if c[0] != x.call_id}
            if x.call_id in self._escalated:  # the call ended before it reached a specialist
                self._escalated.discard(x.call_id)
                if x.device:
                    events.append(ev.Cleared(t, x.call_id, ""))
        return events

    def _transferred(self, x: m.Transferred, t: float) -> list[ev.Event]:
        self._connected.pop(x.call_id, None)
        if x.call_id in self._escalated:  # our own transfer of an escalated call
            self._escalated.discard(x.call_id)
            return []
        return [ev.Transferred(t, x.call_id, x.from_device, x.to_device)]

    def _escalate(self, x: m.KeyEscalate, t: float) -> list[ev.Event]:
        self._escalated.add(x.call_id)
        return [ev.Escalate(t, x.device, x.call_id, x.group)]

    # --- responses ------------------------------------------------------------------

    def _response(self, msg: m.Message, now: float, step: Step) -> None:
        pending = self._pending.pop(msg.invoke_id, None)
        resync = self._resync
        if resync is not None and msg.invoke_id in resync.ids and type(msg) in _SNAPSHOTS:
            resync.ids.discard(msg.invoke_id)
            self._held.append((msg, now))  # its place among the events is what it shows
        if pending is None:
            if not isinstance(msg, m.PositiveAck):
                step.notes.append(RequestFailed(now, msg, "response to no pending request"))
        elif isinstance(msg, m.NegativeAck):
            self._refused(pending, f"{msg.error.name}: {msg.detail}", now, step)
        if resync is not None and not resync.ids and self._resync is resync:
            self._resynced(resync, now, step)

    def _refused(self, pending: _Pending, error: str, now: float, step: Step) -> None:
        request = pending.request
        step.notes.append(RequestFailed(now, request, error))
        resync = self._resync
        if resync is not None and request.invoke_id in resync.ids:
            resync.ids.discard(request.invoke_id)
            if not resync.ids:
                self._resynced(resync, now, step)
            return
        call_id = getattr(request, "call_id", None)
        if isinstance(request, m.ClearConnection):
            self._cancelled.discard((call_id, request.device))
        if error.startswith(m.ErrorCode.invalid_call.name) and call_id is not None:
            self._connected.pop(call_id, None)  # the switch no longer knows the call
            self._calls.discard(call_id)
            self._apply(self.engine.handle(ev.Cleared(now, call_id, "")), now, step)
        for device in pending.ring:
            self._apply(self.engine.handle(ev.RouteFailed(now, call_id, device, error)), now, step)

    def _resynced(self, resync: _Resync, now: float, step: Step) -> None:
        """Every snapshot is in: apply them and the events held since link up, in the
        order of docs/cti-protocol.md §9.2 (resynchronisation)."""
        self._resync = None
        held, self._held = self._held, []
        base = next((i for i, h in enumerate(held) if type(h[0]) is m.SnapshotCallsResult), None)
        adopted: tuple[int, ...] = ()
        unadopted: tuple[int, ...] = ()
        calls = 0
        if base is None:  # no calls snapshot: nothing replaces the call events
            later = held
        else:
            snapshot, at = held[base]
            calls = len(snapshot.calls)
            present = {c.call_id for c in snapshot.calls}
            by_fallback = {f.call_id for f in snapshot.fallback} - present
            offers: dict[int, m.Offered] = {}
            for x, t in held[:base]:
                if type(x) not in _CALL_EVENTS:
                    continue
                if x.call_id in present:  # shown by the snapshot: replaced by it
                    if type(x) is m.Offered:
                        offers[x.call_id] = x
                elif x.call_id not in by_fallback:
                    # ended before the snapshot: its story, without requests (a call the
                    # fallback routed is told once, by the snapshot's fallback list)
                    self._past(x, t, step)
            adopted, unadopted = self._baseline(snapshot, offers, at, step)
            later = [h for h in held[:base] if type(h[0]) not in _CALL_EVENTS]
            later += held[base + 1 :]
        for x, t in later:
            if type(x) is m.SnapshotDeviceResult:
                self._device_snapshot(x, resync, t, step)
            elif type(x) is ev.PinChecked:
                self._apply(self._handle(x), t, step)
            elif type(x) is not m.SnapshotCallsResult:
                self._event(x, t, step)
        if self.engine.next_deadline() is not None:  # the engine's timers catch up
            self._advance(now, step)
        step.notes.append(
            Resynced(
                now,
                calls,
                resync.devices,
                tuple(resync.unverified),
                tuple(resync.logged_out),
                adopted,
                unadopted,
            )
        )

    def _past(self, msg: m.Message, now: float, step: Step) -> None:
        """A held event of a call the switch ended before its snapshot: the engine
        learns how it ended; requests about calls are not sent (the snapshot is the
        baseline: `_baseline` decides again), those to handsets are."""
        past = Step()
        self._event(msg, now, past)
        self._unsent(past, step)

    def _unsent(self, decided: Step, step: Step) -> None:
        """Pass on what was ``decided`` before the calls snapshot is applied but its
        requests about calls (and their ringing steps): `_baseline` decides again."""
        step.notes.extend(n for n in decided.notes if getattr(n, "event", None) != StepKind.RINGING)
        step.checks.extend(decided.checks)
        for request in decided.requests:
            if hasattr(request, "call_id"):
                self._pending.pop(request.invoke_id, None)
            else:
                step.requests.append(request)

    def _baseline(
        self, snapshot: m.SnapshotCallsResult, offers: dict[int, m.Offered], now: float, step: Step
    ) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Align the engine with the calls snapshot; return the calls adopted (found
        connected at a handset) and those that could not be."""
        engine = self.engine
        calls = {c.call_id: c.device if c.state in _AT_DEVICE else "" for c in snapshot.calls}
        fallback = self._fallback_calls(snapshot, now, step)
        # Connected calls say so: the engine answers the ones it has waiting or ringing
        # (an answer lost with the link) and adopts those it never saw answered (while
        # the controller was down), so that their end is recorded.
        connected = {
            c.call_id: ev.SwitchCall(
                c.device,
                True,
                caller=c.calling,
                dialled=c.called,
                fallback=fallback.get(c.call_id),
            )
            for c in snapshot.calls
            if c.state is m.CallState.connected and c.device
        }
        self._connected = {
            call_id: device
            for call_id, device in self._connected.items()
            if calls.get(call_id) == device
        }
        unheard, self._unheard = self._unheard, {}
        for call_id, leg in unheard.items():
            if call_id not in calls:  # ended while the link was down: its end unknown
                self._apply(engine.fallback_leg(now, replace(leg, ended_at=now)), now, step)
        outputs = engine.reconcile(now, {**calls, **connected})
        refused = {id(o.event) for o in outputs if type(o) is cmd.Refused}
        self._apply(outputs, now, step)
        adopted: list[int] = []
        unadopted: list[int] = []
        for call_id, sc in connected.items():
            if call_id in self._calls:
                self._connected[call_id] = sc.device
            elif id(sc) in refused:
                unadopted.append(call_id)
                if sc.fallback is not None:
                    self._unadopted(call_id, sc)
            else:
                adopted.append(call_id)
                self._connected[call_id] = sc.device
                self._calls.add(call_id)
                if self.steps is not None:
                    self.steps.adopt(call_id, sc.caller, now)
        for call in snapshot.calls:  # offered while we could not act: take them
            if call.state not in _UNANSWERED:
                continue
            trunk = offers[call.call_id].trunk if call.call_id in offers else 0
            offered = ev.CallOffered(now, call.call_id, call.called, call.calling, trunk)
            outputs = engine.handle(offered)
            if not any(isinstance(o, cmd.Refused) for o in outputs):
                self._call_in_out(offered, outputs)
                self._apply(outputs, now, step, offered)
        return tuple(adopted), tuple(unadopted)

    def _unadopted(self, call_id: int, sc: ev.SwitchCall) -> None:
        """A call the switch's fallback answered that the engine could not adopt (no
        session at its handset, e.g. at a first start): the switch lists it in progress
        only once, so its leg is recorded here when it ends (`_unheard_event`), or at the
        next resync if it ended meanwhile, as a fallback leg, like an ended one."""
        offered, answered = sc.fallback
        leg = ev.FallbackLeg(call_id, sc.caller, sc.dialled, sc.device, offered, answered, 0.0)
        self._unheard[call_id] = leg

    def _unheard_event(self, msg: m.Message, now: float, step: Step) -> None:
        """An event of a call `_unadopted` keeps (the engine does not know it): its end
        (the caller's clear, or its handset's) records it; a transfer moves it."""
        leg = self._unheard[msg.call_id]
        if type(msg) is m.Transferred:
            self._unheard[msg.call_id] = replace(leg, device=msg.to_device)
        elif type(msg) is m.ConnectionCleared and msg.device in ("", leg.device):
            del self._unheard[msg.call_id]
            self._apply(self.engine.fallback_leg(now, replace(leg, ended_at=now)), now, step)

    def _fallback_calls(
        self, snapshot: m.SnapshotCallsResult, now: float, step: Step
    ) -> dict[int, tuple[float, float]]:
        """The calls the switch's fallback routed (cti-protocol §9.7): those ended are
        recorded as fallback legs; return when those still in progress that it
        answered were offered and answered."""
        answered: dict[int, tuple[float, float]] = {}
        for f in snapshot.fallback:
            at = {
                name: None if ago == m.NOT_YET else now - ago / 1000
                for name, ago in (("o", f.offered_ago), ("a", f.answered_ago), ("e", f.ended_ago))
            }
            if at["e"] is None:
                if at["a"] is not None:
                    answered[f.call_id] = (at["o"] or at["a"], at["a"])
                continue
            leg = ev.FallbackLeg(
                f.call_id, f.calling, f.called, f.device, at["o"] or at["e"], at["a"], at["e"]
            )
            self._apply(self.engine.fallback_leg(now, leg), now, step)
        return answered

    def _device_snapshot(
        self, snap: m.SnapshotDeviceResult, resync: _Resync, now: float, step: Step
    ) -> None:
        """One handset's snapshot at its place among the events: a session the switch
        no longer shows ends; a login the controller never verified makes no session
        (the handset is asked to log in again), but one whose PIN is being checked is
        left to its check."""
        engine = self.engine
        resync.devices += 1
        device = snap.device
        known = engine.logged_in_at(device)
        if known is not None and known != snap.agent_id:
            resync.logged_out.append(known)
            self._apply(engine.handle(ev.Logout(now, device)), now, step)
        self._apply(engine.handle(ev.Hook(now, device, snap.hook_off)), now, step)
        checking = device in self._checking.values()
        if snap.agent_id and known != snap.agent_id and not checking:
            resync.unverified.append(snap.agent_id)
            step.requests.append(self._request(m.SetDisplay, now, (), device, m.LOGIN_PROMPT))

    # --- engine commands -> switch requests ----------------------------------------

    def _apply(
        self, outputs: list[Output], now: float, step: Step, event: ev.Event | None = None
    ) -> None:
        """Send the engine's commands (its answer to ``event``, if any); pass its
        notifications on, the call steps among them."""
        if self.steps is not None:
            outputs = self.steps.after(event, outputs, now)
        commands = self._commands
        for out in outputs:
            kind = type(out)
            command = commands.get(kind)
            if command is not None:
                command(out, now, step)
                continue
            if kind is cmd.CallEnded and out.record.outcome in _CALL_OVER:
                self._calls.discard(out.record.call_id)
            elif kind is cmd.VerifyPin:
                self._checking[out.check] = out.device
                step.checks.append(out)
                continue
            step.notes.append(out)

    def _handle(self, event: ev.Event) -> list[Output]:
        """``engine.handle`` for an event not from the switch: a PIN check answered is
        no longer out."""
        if type(event) is ev.PinChecked:
            self._checking.pop(event.check, None)
        return self.engine.handle(event)

    def check_pins(
        self, step: Step, now: float, verify: Callable[[Pin | str, str], bool] = verify_pin
    ) -> None:
        """Answer ``step``'s PIN checks at once with ``verify``, in this thread, adding what
        follows to ``step`` (for virtual-time runs and replays; the controller checks off
        its loop)."""
        while step.checks:
            check = step.checks.pop(0)
            ok = verify(check.pin, check.pin_hash)
            self._apply(self._handle(ev.PinChecked(now, check.check, ok)), now, step)

    def _route_call(self, out: cmd.RouteCall, now: float, step: Step) -> None:
        self._route(out.call_id, (out.device,), now, step)

    def _ring_devices(self, out: cmd.RingDevices, now: float, step: Step) -> None:
        self._route(out.call_id, out.devices, now, step)

    def _queue_call(self, out: cmd.QueueCall, now: float, step: Step) -> None:
        if out.call_id not in self._connected:
            step.requests.append(
                self._request(m.QueueCall, now, (), out.call_id, out.queue, out.announcement)
            )

    def _play(self, out: cmd.PlayAnnouncement, now: float, step: Step) -> None:
        if out.call_id not in self._connected:
            step.requests.append(
                self._request(m.PlayAnnouncement, now, (), out.call_id, out.announcement, out.value)
            )

    def _collect(self, out: cmd.CollectDigits, now: float, step: Step) -> None:
        step.requests.append(self._request(m.QueueCall, now, (), out.call_id, "", out.announcement))

    def _cancel_ring(self, out: cmd.CancelRing, now: float, step: Step) -> None:
        self._cancelled.add((out.call_id, out.device))
        step.requests.append(self._request(m.ClearConnection, now, (), out.call_id, out.device))

    def _clear_call(self, out: cmd.ClearCall, now: float, step: Step) -> None:
        if out.announcement and out.call_id not in self._connected:
            step.requests.append(
                self._request(m.PlayAnnouncement, now, (), out.call_id, out.announcement, 0)
            )
        step.requests.append(self._request(m.ClearConnection, now, (), out.call_id, ""))

    def _transfer_call(self, out: cmd.TransferCall, now: float, step: Step) -> None:
        self._calls.discard(out.call_id)
        at = self._connected.get(out.call_id)
        if at is None:
            request = self._request(m.DeflectCall, now, (), out.call_id, out.device)
        else:
            request = self._request(m.SingleStepTransfer, now, (), out.call_id, at, out.device)
        step.requests.append(request)

    def _display(self, out: cmd.Display, now: float, step: Step) -> None:
        step.requests.append(self._request(m.SetDisplay, now, (), out.device, out.text))

    def _lamp(self, out: cmd.Lamp, now: float, step: Step) -> None:
        lamp, mode = LAMPS[out.lamp], m.LampMode[out.mode]
        step.requests.append(self._request(m.SetLamp, now, (), out.device, lamp, mode))

    def _route(self, call_id: int, devices: tuple[str, ...], now: float, step: Step) -> None:
        """Ring ``devices`` for the call."""
        at = self._connected.get(call_id)
        if at is not None:  # escalated: move the answered call with a transfer
            request = self._request(m.SingleStepTransfer, now, devices[:1], call_id, at, devices[0])
        elif len(devices) == 1:
            request = self._request(m.DeflectCall, now, devices, call_id, devices[0])
        else:
            request = self._request(m.RingDevices, now, devices, call_id, devices, 0)
        step.requests.append(request)

    def _request(
        self, cls: type[m.Message], now: float, ring: tuple[str, ...], *fields: object
    ) -> m.Message:
        self._invoke = self._invoke % 0xFFFF + 1
        request = cls(self._invoke, *fields)
        if not self._tracking:
            return request
        deadline = now + self.ack_timeout
        self._pending[self._invoke] = _Pending(request, ring)
        self._deadlines.append((deadline, self._invoke))
        return request


_CALL_OVER = frozenset({Outcome.ABANDONED, Outcome.CLOSED, Outcome.REJECTED, Outcome.FAILED})
"""Outcomes of a leg after which the call has no further leg (the caller is gone)."""
_CALL_IN_OUT = frozenset({ev.CallOffered, ev.Transferred})
"""Events that start or end a call in progress when the engine accepts them."""
_RESPONSES = frozenset(
    (m.PositiveAck, m.NegativeAck, m.SnapshotCallsResult, m.SnapshotDeviceResult)
)
_SNAPSHOTS = frozenset((m.SnapshotCallsResult, m.SnapshotDeviceResult))
_CALL_EVENTS = frozenset(
    (
        m.Offered,
        m.Queued,
        m.Delivered,
        m.Diverted,
        m.Established,
        m.ConnectionCleared,
        m.Transferred,
        m.Failed,
    )
)
"""Switch events that change a call's state: a calls snapshot shows their effect."""
_AT_DEVICE = (m.CallState.alerting, m.CallState.connected)
"""Call states in which a snapshot's ``device`` is the handset that rings or talks."""
_UNANSWERED = (m.CallState.offered, m.CallState.queued, m.CallState.alerting)
"""Call states of a snapshot's calls that the engine takes over if it does not know them."""


# --- in-process, virtual time -------------------------------------------------------


class SwitchModel(Protocol):
    """A switch run in process (``firmware_sim.switch.Switch``): its own time scale."""

    def handle(self, message: m.Message, now: float) -> list[m.Message]: ...

    def advance(self, now: float) -> list[m.Message]: ...

    def next_deadline(self) -> float | None: ...


def run_virtual(
    bridge: Bridge,
    switch: SwitchModel,
    start: float,
    end: float,
    epoch: float,
    on_note: Callable[[Notification], None],
    max_steps: int = 50_000_000,
) -> None:
    """Run ``bridge`` against an in-process ``switch`` in virtual time, no link at all.

    ``start`` and ``end`` are switch times; engine time is ``epoch + switch time``
    (`midnight` of the simulated day for the simulated switch). Messages are delivered
    at once and in order; every notification goes to ``on_note``. The switch must have
    been started at ``start``.
    """
    now = start
    inbox: deque[m.Message] = deque()
    step = bridge.link_up(epoch + now)
    notes, requests = step.notes, step.requests
    handle, feed, pop, extend = switch.handle, bridge._from_switch, inbox.popleft, inbox.extend
    steps = 0
    while True:
        if notes:
            for note in notes:
                on_note(note)
            notes.clear()
        if requests:
            for request in requests:
                extend(handle(request, now))
            requests.clear()
        if inbox:
            feed(pop(), epoch + now, step)
            if step.checks:
                bridge.check_pins(step, epoch + now)
            continue
        if now >= end:
            return
        steps += 1
        if steps > max_steps:
            break
        due = end
        theirs = switch.next_deadline()
        if theirs is not None and theirs < due:
            due = theirs
        ours = bridge.next_deadline()
        if ours is not None and ours - epoch < due:
            due = ours - epoch
        if due > now:
            now = due
        extend(switch.advance(now))
        if ours is not None and ours <= epoch + now:  # else the bridge has nothing due
            bridge._advance(epoch + now, step)
    raise RuntimeError(f"virtual run did not reach {end} in {max_steps} steps")

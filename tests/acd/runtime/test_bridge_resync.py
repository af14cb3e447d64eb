"""Resynchronisation under traffic (docs/cti-protocol.md §9.2): the real bridge and
engine against the simulated switch in process, joined by two ordered message queues
(what the link layer guarantees), every interleaving of switch activity (calls offered,
logins, answers) with the snapshot exchange after a link up."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import deque
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from acd.config import load_config
from acd.core import events as ev
from acd.core.agents import AgentState, AgentStatus
from acd.core.calendar import midnight
from acd.core.commands import CallEnded, Refused
from acd.core.engine import Engine
from acd.core.records import Outcome
from acd.runtime.bridge import Bridge
from firmware_sim.distributions import Fixed
from firmware_sim.fallback import FallbackSettings
from firmware_sim.people import Agent, Behaviour, Caller, CallerModel, Shift
from firmware_sim.switch import Switch, SwitchConfig
from firmware_sim.traffic import WeeklyTraffic
from protocols import messages as m

# every call-state move the engine makes is checked against the table
pytestmark = pytest.mark.usefixtures("checked_call_states")


CONFIG = load_config(Path(__file__).resolve().parents[3] / "examples" / "town-hall.toml")
DAY = dt.date(2026, 3, 10)  # a Tuesday
EPOCH = midnight(DAY, "Europe/Paris")
START = 9 * 3600.0  # switch time (s after midnight) when the first agent logs in
UP = START + 10  # the link comes back up
PINS = {"1001": "1111", "1002": "2222", "1003": "3333"}
ROUTES = (m.DeflectCall, m.RingDevices)
LATENCY = 5.0  # s a message may take at most to cross the link (ring timeouts are 15 s)
CALL_EVENTS = (ev.Alerting, ev.Answered, ev.Cleared, ev.RouteFailed, ev.CallOffered)


def agent(agent_id: str, login_at: float, answer_after: float) -> Agent:
    behaviour = Behaviour(Fixed(answer_after), 0.0, Fixed(60.0), Fixed(5.0))
    return Agent(
        agent_id, f"20{agent_id[-1]}", PINS[agent_id], behaviour, Shift(login_at, 17 * 3600)
    )


class Harness:
    """Controller (bridge + engine) and simulated switch joined by two in-order queues;
    every step is one move chosen by the test. Time moves with the switch's timers, but
    never more than `LATENCY` past the sending of a message still in flight."""

    def __init__(
        self,
        agents: tuple[Agent, ...],
        calls: list[float],
        fallback: FallbackSettings | None = None,
    ) -> None:
        traffic = WeeklyTraffic({}, public_holidays=False)
        callers = CallerModel(Fixed(3600.0))
        config = SwitchConfig(
            extensions=("201", "202", "203"), fallback=fallback or FallbackSettings()
        )
        self.switch = Switch(config, traffic, callers, agents, DAY, seed=1)
        for i, at in enumerate(calls):
            self.switch.add_call(at, Caller(f"06000000{i:02d}", 3600.0, ""))
        self.bridge = Bridge(
            Engine(CONFIG, EPOCH + START), extensions=("201", "202", "203"), ack_timeout=1e6
        )
        self.now = START
        self.to_switch: deque[tuple[m.Message, float]] = deque()
        self.to_controller: deque[tuple[m.Message, float]] = deque()
        self.notes: list = []
        self.requests: list[m.Message] = []
        self.refused: list[m.NegativeAck] = []
        self.rerouted: list[tuple[m.Message, m.CallInfo]] = []  # routes of a ringing call
        self.switch.start(START)

    def _take(self, step) -> None:
        self.bridge.check_pins(step, EPOCH + self.now)  # the controller's PIN thread
        self.requests += step.requests
        self.to_switch.extend((r, self.now) for r in step.requests)
        self.notes.extend(step.notes)

    def _to_controller(self, messages: list[m.Message]) -> None:
        self.to_controller.extend((x, self.now) for x in messages)

    def moves(self) -> list[str]:
        """The moves possible now."""
        out = []
        if self.to_switch:
            out.append("switch handles a request")
        if self.to_controller:
            out.append("controller handles a message")
        due = self._due()
        sent = [q[0][1] for q in (self.to_switch, self.to_controller) if q]
        if due is not None and (not sent or due <= min(sent) + LATENCY):
            out.append("timer")
        return out

    def _due(self) -> float | None:
        """The next timer of either side, in switch time."""
        due = [self.switch.next_deadline(), self.bridge.next_deadline()]
        if due[1] is not None:
            due[1] -= EPOCH
        return min((t for t in due if t is not None), default=None)

    def move(self, name: str) -> None:
        if name == "switch handles a request":
            request = self.to_switch.popleft()[0]
            if isinstance(request, ROUTES):
                info = {c.call_id: c for c in self.switch.calls()}.get(request.call_id)
                if (
                    info is not None
                    and info.state is not m.CallState.queued
                    and (info.state is not m.CallState.offered)
                ):
                    self.rerouted.append((request, info))
            out = self.switch.handle(request, self.now)
            self.refused += [x for x in out if isinstance(x, m.NegativeAck)]
            self._to_controller(out)
        elif name == "controller handles a message":
            message = self.to_controller.popleft()[0]
            self._take(self.bridge.from_switch(message, EPOCH + self.now))
        else:
            self.now = max(self.now, self._due())
            self._to_controller(self.switch.advance(self.now))
            self._take(self.bridge.advance(EPOCH + self.now))

    def settle(self, until: float) -> None:
        """Everything in order, timers included, until switch time ``until``."""
        while True:
            while self.to_switch or self.to_controller:
                if self.to_switch:
                    self.move("switch handles a request")
                else:
                    self.move("controller handles a message")
            due = self._due()
            if due is None or due > until:
                self.now = until
                self._take(self.bridge.advance(EPOCH + until))
                if not (self.to_switch or self.to_controller):
                    return
                continue
            self.now = max(self.now, due)
            self._to_controller(self.switch.advance(self.now))
            self._take(self.bridge.advance(EPOCH + self.now))

    def link_bounce(self) -> None:
        """The link goes down and comes back up: requests in flight are lost, the
        bridge asks for its snapshots."""
        self.bridge.link_down()
        self._take(self.bridge.link_up(EPOCH + self.now))

    def outage(self, seconds: float) -> None:
        """The link is down for ``seconds``: what the switch sends meanwhile is lost (a
        PBX discards events while its link is down); then it is up again."""
        self.bridge.link_down()
        self.switch.link_changed(False, self.now)
        end = self.now + seconds
        while (due := self.switch.next_deadline()) is not None and due <= end:
            self.now = due
            self.switch.advance(due)
        self.now = end
        self.switch.link_changed(True, self.now)
        self._take(self.bridge.link_up(EPOCH + self.now))

    def sent(self, cls: type[m.Message]) -> list[m.Message]:
        """The requests of type ``cls`` the controller sent, in order."""
        return [r for r in self.requests if isinstance(r, cls)]

    def assert_agreement(self) -> None:
        """Controller and switch agree on every call and every agent."""
        engine = {a.agent_id: a for a in self.bridge.engine.agent_states()}
        at_switch = {c.call_id: c for c in self.switch.calls()}
        for a in engine.values():
            if a.state in (AgentState.RINGING, AgentState.ON_CALL):
                call = at_switch.get(a.call_id)
                want = (
                    m.CallState.alerting
                    if a.state is AgentState.RINGING
                    else (m.CallState.connected)
                )
                assert call is not None and (call.state, call.device) == (want, a.device), (
                    a,
                    call,
                )
        busy = {a.call_id for a in engine.values() if a.state in _BUSY}
        for call in at_switch.values():
            if call.state in (m.CallState.alerting, m.CallState.connected):
                assert call.call_id in busy, (call, engine)
        logged_in = {a.device: a.agent_id for a in engine.values() if a.status is not _OUT}
        at_handsets = {a: self.switch.handset_view(f"20{a[-1]}")["status"] for a in PINS}
        assert logged_in == {f"20{a[-1]}": a for a, s in at_handsets.items() if s != "out"}
        # the calls in the engine, not its active legs: a leg in wrap-up is one, but
        # its call is over at the switch
        assert {c.call_id for c in self.bridge.engine.calls()} == set(at_switch)
        waiting = [c for c in at_switch.values() if c.state is not m.CallState.connected]
        free = [a for a in engine.values() if a.status is AgentStatus.READY and a.state is _IDLE]
        assert not (waiting and free), (waiting, free)


_BUSY = (AgentState.RINGING, AgentState.ON_CALL)
_OUT = AgentStatus.LOGGED_OUT
_IDLE = AgentState.IDLE


@given(
    calls=st.lists(st.floats(0.0, 4.0), min_size=1, max_size=3),
    login=st.one_of(st.none(), st.floats(0.0, 4.0)),
    answer=st.floats(0.5, 3.0),
    moves=st.lists(st.integers(0, 2), max_size=40),
)
# found by hypothesis: the check ends while 1001 wraps up the call answered after link up
@example(calls=[0.0, 1.0], login=None, answer=1.0, moves=[0] * 19)
@example(
    calls=[1.0],
    login=2.0,
    answer=1.0,
    moves=[0, 0, 0, 1, 2, 2, *[0] * 11, 1, 2, *[0] * 12],
)
def test_every_interleaving_with_the_snapshots_routes_each_call_once_and_ends_in_agreement(
    calls, login, answer, moves
):
    """Offered / Login / Answered before, between and after the snapshot answers: one
    route request per call per free agent (never a second one while it rings), no
    request refused, no switch event refused, controller and switch agree after."""
    agents = [agent("1001", START, answer)]
    if login is not None:
        agents.append(agent("1002", UP + login, answer))
    rig = Harness(tuple(agents), [UP + t for t in calls])
    rig.settle(UP)  # 1001 logged in and ready on both sides
    rig.link_bounce()
    for choice in moves:
        possible = rig.moves()
        if not possible:
            break
        rig.move(possible[choice % len(possible)])
    rig.settle(rig.now + 30.0)
    assert rig.rerouted == []
    assert rig.refused == []
    refused = [n for n in rig.notes if isinstance(n, Refused) and isinstance(n.event, CALL_EVENTS)]
    assert refused == []
    failed = [n for n in rig.notes if isinstance(n, CallEnded)]
    assert [n.record for n in failed if n.record.outcome is Outcome.FAILED] == []
    assert not rig.bridge.resyncing
    # every login was heard (no outage): no handset is asked to log in again
    assert [r for r in rig.sent(m.SetDisplay) if r.text == m.LOGIN_PROMPT] == []
    rig.assert_agreement()


def records(rig: Harness) -> list:
    return [n.record for n in rig.notes if isinstance(n, CallEnded)]


def test_call_offered_between_the_calls_snapshot_and_the_device_snapshots_is_kept():
    """Issue 11 item 2: such a call was ended as failed ("lost during link outage")
    while the switch still held the caller."""
    rig = Harness((agent("1001", START, 2.0),), [])
    rig.settle(UP)
    rig.link_bounce()
    rig.move("switch handles a request")  # MonitorStart
    rig.move("switch handles a request")  # SnapshotCalls: no call yet
    rig.switch.add_call(rig.now, Caller("0611111111", 3600.0, ""))
    rig.move("timer")  # Offered, before the device snapshots are answered
    rig.settle(rig.now + 30.0)
    assert [r.outcome for r in records(rig)] == []
    assert [(r.call_id, r.device) for r in rig.sent(m.DeflectCall)] == [(1, "201")]
    assert [(c.call_id, c.state, c.device) for c in rig.switch.calls()] == [
        (1, m.CallState.connected, "201")
    ]
    rig.assert_agreement()


@pytest.mark.parametrize("pin", ["2222", "9999"])
def test_a_login_keyed_while_the_controller_is_away_counts_only_once_its_pin_is_checked(pin):
    """Issue 12 item 9: the switch shows 1002 logged in at 202 after the outage, but no
    PIN was checked: no session; the handset is asked to log in again, and the login
    keyed then is verified like any other."""
    late = dataclasses.replace(agent("1002", UP + 1, 1.0), pin=pin)
    rig = Harness((agent("1001", START, 1.0), late), [])
    rig.settle(UP)
    rig.outage(5.0)  # 1002 keys login meanwhile: nobody hears it
    assert rig.switch.handset_view("202")["status"] == "ready"
    rig.settle(rig.now + 1.0)
    sessions = {s.agent_id: s.device for s in rig.bridge.engine.export_sessions()}
    assert sessions == {"1001": "201"}
    prompts = [r.device for r in rig.sent(m.SetDisplay) if r.text == m.LOGIN_PROMPT]
    assert prompts == ["202"]
    rig.settle(rig.now + 60.0)  # the agent reads the display and keys the login again
    sessions = {s.agent_id: s.device for s in rig.bridge.engine.export_sessions()}
    if pin == "2222":
        assert sessions == {"1001": "201", "1002": "202"}
    else:
        assert sessions == {"1001": "201"}
        assert rig.bridge.engine.wrong_pins("1002") == 1
        assert rig.switch.handset_view("202")["display"] == "Wrong PIN"


@pytest.mark.parametrize("pin", ["2222", "9999"])
def test_a_login_keyed_during_the_snapshots_is_decided_by_its_pin_check_alone(pin):
    """§9.3: the controller heard this login during the resync window; its PIN check is
    still out when the handset's snapshot, showing 1002 there, is applied. The handset
    is not asked to log in again (it was, and the login keyed again was refused as
    'already logged in here'): the check decides, as for any login."""
    late = dataclasses.replace(agent("1002", UP + 1, 1.0), pin=pin)
    rig = Harness((agent("1001", START, 1.0), late), [])
    rig.settle(UP)
    rig.link_bounce()
    for _ in range(3):  # MonitorStart, SnapshotCalls, SnapshotDevice 201
        rig.move("switch handles a request")
    rig.move("timer")  # 1002 keys login: held, its snapshot not asked for yet
    rig.settle(rig.now + 30.0)
    assert [r.device for r in rig.sent(m.SetDisplay) if r.text == m.LOGIN_PROMPT] == []
    logins = (ev.Login, ev.PinChecked)
    refused = [(type(n.event), n.reason) for n in rig.notes if isinstance(n, Refused)]
    refused = [r for r in refused if r[0] in logins]
    assert refused == ([] if pin == "2222" else [(ev.PinChecked, "wrong PIN")])
    sessions = {s.agent_id: s.device for s in rig.bridge.engine.export_sessions()}
    if pin == "2222":
        assert sessions == {"1001": "201", "1002": "202"}
        rig.assert_agreement()
    else:
        assert sessions == {"1001": "201"}
        assert rig.bridge.engine.wrong_pins("1002") == 1
        assert rig.switch.handset_view("202")["display"] == "Wrong PIN"


def test_during_the_resync_a_pin_check_is_held_and_a_command_routes_nothing():
    t = EPOCH + START
    bridge = Bridge(Engine(CONFIG, t), extensions=("201", "202"), ack_timeout=5.0)
    (check,) = bridge.from_switch(m.KeyLogin(1, "201", "1001", "1111"), t).checks
    bridge.check_pins(bridge.from_switch(m.KeyLogin(2, "202", "1002", "2222"), t), t)
    bridge.command(ev.SetAgentStatus(t, "1002", AgentStatus.NOT_READY, 1))
    bridge.from_switch(m.Offered(3, 7, "0611", "3000", 1), t)  # waits: nobody ready
    up = bridge.link_up(t)
    held = bridge.command(ev.PinChecked(t, check.check, True))
    assert (held.requests, held.notes) == ([], [])
    # 1002 made ready: the engine rings 1002 for call 7, but that is not sent
    ready = bridge.command(ev.SetAgentStatus(t, "1002", AgentStatus.READY, 0))
    assert not [n for n in ready.notes if isinstance(n, Refused)]
    assert [type(r) for r in ready.requests] == [m.SetLamp]
    calls, *devices = (r for r in up.requests if type(r) is not m.MonitorStart)
    waiting = m.CallInfo(7, m.CallState.queued, "0611", "3000", "3000")
    step = bridge.from_switch(m.SnapshotCallsResult(calls.invoke_id, (waiting,)), t)
    for device, agent in zip(devices, ("1001", "1002"), strict=True):
        info = m.SnapshotDeviceResult(device.invoke_id, device.device, False, agent, ())
        step.requests += bridge.from_switch(info, t).requests
    assert {s.agent_id: s.device for s in bridge.engine.export_sessions()} == {
        "1001": "201",
        "1002": "202",
    }
    assert [r for r in step.requests if isinstance(r, m.SetDisplay)] == []  # verified
    assert [(r.call_id, r.device) for r in step.requests if isinstance(r, ROUTES)] == [
        (7, "202")
    ]  # decided from the snapshot, once

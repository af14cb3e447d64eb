"""The bridge: protocol messages to engine events, commands to requests, resync, and a
simulated hour with the engine and the simulated switch in process, in virtual time."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from acd.config import load_config
from acd.core.agents import AgentSession, AgentState, AgentStatus
from acd.core.calendar import midnight
from acd.core.call_steps import CallStep
from acd.core.commands import AgentChanged, CallEnded
from acd.core.engine import Engine
from acd.core.records import Outcome
from acd.runtime.bridge import Bridge, RequestFailed, Resynced, run_virtual
from firmware_sim.scenario import load_scenario
from protocols import messages as m

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "examples" / "town-hall.toml"
DAY = dt.date(2026, 3, 10)  # a Tuesday
EPOCH = midnight(DAY, "Europe/Paris")
T0 = EPOCH + 9 * 3600.0  # 09:00, open


@pytest.fixture
def bridge() -> Bridge:
    engine = Engine(load_config(CONFIG), T0)
    return Bridge(engine, extensions=("201", "202"), ack_timeout=5.0)


def login(bridge: Bridge, device: str, agent: str, pin: str, t: float = T0) -> None:
    bridge.check_pins(bridge.from_switch(m.KeyLogin(1, device, agent, pin), t), t)
    bridge.from_switch(m.KeyReady(2, device), t)


def ack(bridge: Bridge, step, t: float) -> None:
    for r in step.requests:
        bridge.from_switch(m.PositiveAck(r.invoke_id), t)


def requests_of(step, cls):
    return [r for r in step.requests if isinstance(r, cls)]


def test_offered_call_is_queued_and_routed_with_fresh_invoke_ids(bridge):
    login(bridge, "201", "1001", "1111")
    before = bridge.outstanding  # the login lamp
    step = bridge.from_switch(m.Offered(10, 77, "0612345678", "3000", 4), T0 + 1)
    queued = requests_of(step, m.QueueCall)
    routed = requests_of(step, m.DeflectCall)
    assert [(q.call_id, q.queue, q.announcement) for q in queued] == [(77, "front-desk", 1)]
    assert [(r.call_id, r.device) for r in routed] == [(77, "201")]
    ids = [r.invoke_id for r in step.requests]
    assert len(set(ids)) == len(ids) and all(1 <= i <= 0xFFFF for i in ids)
    assert before == 1 and bridge.outstanding == before + len(step.requests)


def test_refused_route_requeues_the_caller_and_rings_again(bridge):
    login(bridge, "201", "1001", "1111")
    login(bridge, "202", "1002", "2222")
    step = bridge.from_switch(m.Offered(10, 77, "0612345678", "3000", 4), T0 + 1)
    first = requests_of(step, m.DeflectCall)[0]
    step = bridge.from_switch(
        m.NegativeAck(first.invoke_id, m.ErrorCode.device_busy, "busy"), T0 + 2
    )
    assert any(isinstance(n, RequestFailed) and "device_busy" in n.error for n in step.notes)
    again = requests_of(step, m.DeflectCall)
    assert [(r.call_id, r.device) for r in again] == [(77, "202")]
    # a route that is never answered times out the same way
    step = bridge.advance(T0 + 2 + bridge.ack_timeout + 0.1)
    assert any(isinstance(n, RequestFailed) and "no response" in n.error for n in step.notes)
    assert [r.device for r in requests_of(step, m.DeflectCall)] == ["201"]


def test_call_life_ends_in_one_answered_record(bridge):
    login(bridge, "201", "1001", "1111")
    step = bridge.from_switch(m.Offered(10, 5, "0612345678", "3000", 1), T0 + 1)
    for r in step.requests:
        bridge.from_switch(m.PositiveAck(r.invoke_id), T0 + 1)
    bridge.from_switch(m.Delivered(11, 5, "201", "0612345678", "3000"), T0 + 1)
    step = bridge.from_switch(m.Established(12, 5, "201", "0612345678"), T0 + 4)
    agent = next(n for n in step.notes if isinstance(n, AgentChanged))
    assert (agent.agent_id, agent.state) == ("1001", AgentState.ON_CALL)
    bridge.from_switch(m.ConnectionCleared(13, 5, "201", m.Cause.normal), T0 + 60)
    step = bridge.from_switch(m.KeyWrapUpDone(14, "201"), T0 + 65)
    records = [n.record for n in step.notes if isinstance(n, CallEnded)]
    assert [(r.call_id, r.outcome, r.agent_id) for r in records] == [(5, Outcome.ANSWERED, "1001")]
    assert records[0].answered_at == T0 + 4


def test_escalated_call_is_transferred_not_deflected(bridge):
    login(bridge, "201", "1001", "1111")
    login(bridge, "301", "2001", "9001")
    bridge.from_switch(m.Offered(10, 5, "0612345678", "3000", 1), T0 + 1)
    bridge.from_switch(m.Established(12, 5, "201", "0612345678"), T0 + 4)
    step = bridge.from_switch(m.KeyEscalate(13, "201", 5, "civil-status"), T0 + 30)
    assert not requests_of(step, m.QueueCall) and not requests_of(step, m.DeflectCall)
    transfers = requests_of(step, m.SingleStepTransfer)
    assert [(t.call_id, t.device, t.to_device) for t in transfers] == [(5, "201", "301")]
    # the switch's Transferred of our own transfer is not an agent transfer out of the ACD
    steps = [bridge.from_switch(m.Transferred(14, 5, "201", "301"), T0 + 30)]
    assert not [n for n in steps[0].notes if isinstance(n, CallEnded)]
    steps.append(bridge.from_switch(m.Established(15, 5, "301", "0612345678"), T0 + 35))
    steps.append(bridge.from_switch(m.ConnectionCleared(16, 5, "301", m.Cause.normal), T0 + 200))
    steps.append(bridge.advance(T0 + 400))
    notes = [n for s in steps for n in s.notes]
    records = sorted((n.record for n in notes if isinstance(n, CallEnded)), key=lambda r: r.leg)
    assert [(r.leg, r.queue, r.outcome) for r in records] == [
        (1, "front-desk", Outcome.ANSWERED),
        (2, "civil-status", Outcome.ANSWERED),
    ]


def test_escalated_call_dropped_before_transfer_ends_as_abandoned(bridge):
    login(bridge, "201", "1001", "1111")
    bridge.from_switch(m.Offered(10, 5, "0612345678", "3000", 1), T0 + 1)
    bridge.from_switch(m.Established(12, 5, "201", "0612345678"), T0 + 4)
    bridge.from_switch(m.KeyEscalate(13, "201", 5, "civil-status"), T0 + 30)  # nobody there
    step = bridge.from_switch(m.ConnectionCleared(14, 5, "201", m.Cause.normal), T0 + 60)
    records = [n.record for n in step.notes if isinstance(n, CallEnded)]
    assert [(r.queue, r.outcome) for r in records if r.leg == 2] == [
        ("civil-status", Outcome.ABANDONED)
    ]


def test_link_up_resync_reconciles_calls_and_logins(bridge):
    login(bridge, "202", "1002", "2222")  # known here, gone at the switch
    bridge.from_switch(m.Offered(10, 9, "0612345678", "3000", 1), T0 + 1)
    step = bridge.link_up(T0 + 10)
    assert isinstance(step.requests[0], m.MonitorStart)
    snaps = {r.device: r for r in requests_of(step, m.SnapshotDevice)}
    assert set(snaps) == {"201", "202"}
    calls = requests_of(step, m.SnapshotCalls)[0]
    assert bridge.resyncing
    bridge.from_switch(m.SnapshotCallsResult(calls.invoke_id, ()), T0 + 10)
    bridge.from_switch(
        m.SnapshotDeviceResult(snaps["202"].invoke_id, "202", False, "", ()), T0 + 10
    )
    step = bridge.from_switch(
        m.SnapshotDeviceResult(snaps["201"].invoke_id, "201", False, "1001", ()), T0 + 10
    )
    assert not bridge.resyncing
    resynced = [n for n in step.notes if isinstance(n, Resynced)]
    assert [(r.calls, r.devices, r.unverified, r.logged_out) for r in resynced] == [
        (0, 2, ("1001",), ("1002",))
    ]
    # 1001's login was keyed while the controller could not hear: no PIN was checked,
    # so it makes no session; the handset is asked to log in again
    assert bridge.engine.export_sessions() == []
    assert requests_of(step, m.SetDisplay) == [
        m.SetDisplay(step.requests[-1].invoke_id, "201", m.LOGIN_PROMPT)
    ]
    # call 9 vanished during the outage: it failed, and its record says so
    failed = [n.record for n in step.notes if isinstance(n, CallEnded)]
    assert [(r.call_id, r.outcome) for r in failed] == [(9, Outcome.FAILED)]
    assert bridge.engine.active_legs()["front-desk"] == 0


def test_unknown_call_in_a_refusal_clears_it_and_switch_status_is_acknowledged(bridge):
    login(bridge, "201", "1001", "1111")
    step = bridge.from_switch(m.Offered(10, 5, "0612345678", "3000", 1), T0 + 1)
    route = requests_of(step, m.DeflectCall)[0]
    nak = m.NegativeAck(route.invoke_id, m.ErrorCode.invalid_call, "no call 5")
    step = bridge.from_switch(nak, T0 + 2)
    assert not requests_of(step, m.DeflectCall)
    assert bridge.engine.active_legs()["front-desk"] == 0
    step = bridge.from_switch(m.SystemStatus(99, m.SystemStatusCode.normal), T0 + 3)
    assert step.requests == [m.PositiveAck(99)]


class Recorder:
    """The simulated switch, noting the time of every call it offers."""

    def __init__(self, switch) -> None:
        self.switch = switch
        self.offered: dict[int, float] = {}
        self.refused: list[m.NegativeAck] = []

    def handle(self, message, now):
        out = self.switch.handle(message, now)
        self.refused += [x for x in out if isinstance(x, m.NegativeAck)]
        return self._note(out, now)

    def advance(self, now):
        return self._note(self.switch.advance(now), now)

    def next_deadline(self):
        return self.switch.next_deadline()

    def _note(self, out, now):
        for x in out:
            if isinstance(x, m.Offered):
                self.offered.setdefault(x.call_id, now)
        return out


def test_simulated_hour_in_process_every_offered_call_has_one_final_record():
    """The what-if wiring: engine + bridge + simulated switch, no link, virtual time."""
    scenario = dataclasses.replace(load_scenario("town-hall-weekday-250"), day=DAY)
    switch = Recorder(scenario.build_switch())
    start, end = 9 * 3600.0, 10 * 3600.0
    switch.switch.start(start)
    bridge = Bridge(Engine(load_config(CONFIG), EPOCH + start), ack_timeout=10.0)
    notes = []
    run_virtual(bridge, switch, start, end + 3600, EPOCH, notes.append)
    hour = {c for c, t in switch.offered.items() if t < end}
    assert len(hour) > 15
    firsts = [n.record for n in notes if isinstance(n, CallEnded) and n.record.leg == 1]
    ended = [r.call_id for r in firsts if r.call_id in hour]
    assert sorted(ended) == sorted(hour)  # exactly one first-leg record per offered call
    records = [n.record for n in notes if isinstance(n, CallEnded)]
    assert len({(r.call_id, r.leg) for r in records}) == len(records)
    answered = [r for r in firsts if r.call_id in hour and r.outcome is Outcome.ANSWERED]
    assert len(answered) >= len(hour) / 3
    assert switch.refused == []  # the bridge never asks the switch for the impossible


def test_resync_takes_over_unanswered_calls_it_never_heard_of(bridge):
    login(bridge, "201", "1001", "1111")
    step = bridge.link_up(T0)
    calls = requests_of(step, m.SnapshotCalls)[0]
    for snap in requests_of(step, m.SnapshotDevice):
        agent = "1001" if snap.device == "201" else ""
        bridge.from_switch(
            m.SnapshotDeviceResult(snap.invoke_id, snap.device, False, agent, ()), T0
        )
    waiting = m.CallInfo(31, m.CallState.queued, "0611111111", "3000", "3000")
    talking = m.CallInfo(32, m.CallState.connected, "0622222222", "3000", "299")
    step = bridge.from_switch(m.SnapshotCallsResult(calls.invoke_id, (waiting, talking)), T0)
    assert [(q.call_id, q.queue) for q in requests_of(step, m.QueueCall)] == [(31, "front-desk")]
    assert [(r.call_id, r.device) for r in requests_of(step, m.DeflectCall)] == [(31, "201")]
    assert bridge.engine.active_legs()["front-desk"] == 1  # the connected stranger is not ours


def test_echo_of_a_cancelled_ring_does_not_fail_the_next_ring_at_that_handset(bridge):
    login(bridge, "201", "1001", "1111")
    step = bridge.from_switch(m.KeyReady(2, "201"), T0)
    ack(bridge, step, T0)
    step = bridge.from_switch(m.Offered(10, 5, "0612345678", "3000", 1), T0)
    assert [r.device for r in requests_of(step, m.DeflectCall)] == ["201"]
    ack(bridge, step, T0)
    step = bridge.advance(T0 + 16)  # the ring timed out: cancelled, and rung again
    cancels = requests_of(step, m.ClearConnection)
    assert [(c.call_id, c.device) for c in cancels] == [(5, "201")]
    assert [r.device for r in requests_of(step, m.DeflectCall)] == ["201"]
    ack(bridge, step, T0 + 16)
    step = bridge.from_switch(m.ConnectionCleared(11, 5, "201", m.Cause.normal), T0 + 16)
    assert step.requests == [] and step.notes == []  # our own cancel, echoed
    step = bridge.from_switch(m.Established(12, 5, "201", "0612345678"), T0 + 18)
    assert [n.state for n in step.notes if isinstance(n, AgentChanged)] == [AgentState.ON_CALL]


def test_ring_ended_by_the_caller_hanging_up_is_one_abandon_not_a_failed_ring(bridge):
    login(bridge, "201", "1001", "1111")
    login(bridge, "202", "1002", "2222")
    bridge.from_switch(m.Offered(10, 5, "0612345678", "3000", 1), T0)
    steps = [
        bridge.from_switch(m.ConnectionCleared(11, 5, "201", m.Cause.caller_abandon), T0 + 9),
        bridge.from_switch(m.ConnectionCleared(12, 5, "", m.Cause.caller_abandon), T0 + 9),
    ]
    assert not [r for s in steps for r in s.requests if isinstance(r, m.DeflectCall)]
    records = [n.record for s in steps for n in s.notes if isinstance(n, CallEnded)]
    assert [(r.outcome, r.abandoned_ringing) for r in records] == [(Outcome.ABANDONED, True)]


def call_steps(steps) -> list[tuple]:
    return [
        (n.event, n.call_id, n.queue, n.agent_id, n.device)
        for s in steps
        for n in s.notes
        if isinstance(n, CallStep)
    ]


def test_call_steps_of_an_escalated_call_name_queues_agents_and_handsets(bridge):
    login(bridge, "201", "1001", "1111")
    login(bridge, "301", "2001", "9001")
    steps = [bridge.from_switch(m.Offered(10, 5, "0612345678", "3000", 1), T0 + 1)]
    steps.append(bridge.from_switch(m.Established(12, 5, "201", "0612345678"), T0 + 4))
    steps.append(bridge.from_switch(m.KeyEscalate(13, "201", 5, "civil-status"), T0 + 30))
    steps.append(bridge.from_switch(m.Transferred(14, 5, "201", "301"), T0 + 30))
    steps.append(bridge.from_switch(m.Established(15, 5, "301", "0612345678"), T0 + 35))
    assert call_steps(steps) == [
        ("offered", 5, None, None, None),
        ("queued", 5, "front-desk", None, None),
        ("ringing", 5, None, "1001", "201"),
        ("answered", 5, None, "1001", "201"),
        ("escalated", 5, "civil-status", "1001", None),
        ("queued", 5, "civil-status", None, None),
        ("ringing", 5, None, "2001", "301"),
        ("answered", 5, None, "2001", "301"),
    ]
    notes = [n for s in steps for n in s.notes if isinstance(n, CallStep)]
    assert {(n.caller, n.offered_at) for n in notes} == {("0612345678", T0 + 1)}
    bridge.from_switch(m.ConnectionCleared(16, 5, "301", m.Cause.normal), T0 + 200)
    assert not bridge._calls  # forgotten once over


def test_call_steps_transfer_out_and_refused_events_are_no_steps(bridge):
    login(bridge, "201", "1001", "1111")
    steps = [bridge.from_switch(m.Offered(10, 6, "0611", "3000", 1), T0 + 1)]
    steps.append(bridge.from_switch(m.Established(12, 6, "201", "0611"), T0 + 4))
    steps.append(bridge.from_switch(m.Transferred(13, 6, "201", "4444"), T0 + 9))
    assert call_steps(steps)[-1] == ("transferred", 6, None, "1001", "4444")
    assert 6 not in bridge._calls
    unknown = bridge.from_switch(m.Established(14, 99, "202", ""), T0 + 10)
    dialled = bridge.from_switch(m.Offered(15, 7, "0622", "9999", 1), T0 + 11)
    assert call_steps([unknown, dialled]) == []


def test_call_steps_keep_the_call_when_a_due_timer_rings_it_as_its_caller_leaves(bridge):
    login(bridge, "201", "1001", "1111")
    bridge.from_switch(m.Offered(10, 5, "0611", "3000", 1), T0 + 1)
    bridge.from_switch(m.Established(11, 5, "201", "0611"), T0 + 2)
    bridge.from_switch(m.ConnectionCleared(12, 5, "201", m.Cause.normal), T0 + 60)  # wrap-up
    bridge.from_switch(m.Offered(13, 6, "0622", "3000", 2), T0 + 61)
    # the wrap-up is over before the caller's clear: the engine rings, then the call ends
    step = bridge.from_switch(m.ConnectionCleared(14, 6, "", m.Cause.caller_abandon), T0 + 95)
    rings = [n for n in step.notes if isinstance(n, CallStep)]
    assert [(n.event, n.device, n.caller, n.offered_at) for n in rings] == [
        ("ringing", "201", "0622", T0 + 61)
    ]
    assert any(isinstance(n, CallEnded) for n in step.notes) and not bridge._calls


def test_resync_after_a_restart_finds_calls_connected_at_handsets(bridge):
    """Calls answered before a restart: the switch has them connected, nobody here saw
    them answered. The engine adopts them (the agent, whose session was restored from
    the store, is on the call) and they are left alone on the wire."""
    session = AgentSession("1001", "201", AgentStatus.READY, 0, T0 - 600)
    bridge.restore([session], T0)
    step = bridge.link_up(T0)
    calls = requests_of(step, m.SnapshotCalls)[0]
    snaps = {r.device: r for r in requests_of(step, m.SnapshotDevice)}
    connected = m.CallInfo(9, m.CallState.connected, "0612345678", "3000", "201")
    queued = m.CallInfo(10, m.CallState.queued, "0622", "3000", "")
    steps = [bridge.from_switch(m.SnapshotCallsResult(calls.invoke_id, (connected, queued)), T0)]
    steps.append(
        bridge.from_switch(m.SnapshotDeviceResult(snaps["202"].invoke_id, "202", False, "", ()), T0)
    )
    steps.append(
        bridge.from_switch(
            m.SnapshotDeviceResult(snaps["201"].invoke_id, "201", True, "1001", ()), T0
        )
    )
    (resynced,) = [n for s in steps for n in s.notes if isinstance(n, Resynced)]
    assert (resynced.calls, resynced.unverified, resynced.logged_out) == (2, (), ())
    assert (resynced.adopted, resynced.unadopted) == ((9,), ())
    (agent,) = [a for a in bridge.engine.agent_states() if a.agent_id == "1001"]
    assert (agent.state, agent.call_id) == (AgentState.ON_CALL, 9)
    about_9 = [r for s in steps for r in s.requests if getattr(r, "call_id", None) == 9]
    assert about_9 == []  # a connected call is never disturbed
    taken = [(n.event, n.call_id) for s in steps for n in s.notes if isinstance(n, CallStep)]
    assert taken[:2] == [("offered", 10), ("queued", 10)]  # the waiting caller is taken over


def test_an_invalid_request_from_the_switch_is_refused_and_an_invalid_event_only_reported(
    bridge,
):
    """Spec §5.1: every request is answered once, even a malformed one."""
    status = m.encode_message(m.SystemStatus(77, m.SystemStatusCode.normal))
    with pytest.raises(Exception, match="truncated"):
        m.decode_message(status[:-1])
    step = bridge.invalid(status[:-1], "truncated: SystemStatus.status")
    assert step.requests == [
        m.NegativeAck(77, m.ErrorCode.invalid_parameter, "truncated: SystemStatus.status")
    ]
    offered = m.encode_message(m.Offered(78, 5, "0611", "3000", 1))
    assert bridge.invalid(offered[:-2], "truncated").requests == []


def test_every_event_message_of_the_protocol_has_a_bridge_handler(bridge):
    """The events of the spec's catalogue (§6.3) each reach a handler: none is
    reported as an unexpected message (a request from the switch is)."""
    spec = (ROOT / "docs" / "cti-protocol.md").read_text()
    section = spec[spec.index("### 6.3 Events") : spec.index("## 7. Enumerations")]
    events = [line.split()[1] for line in section.splitlines() if line.startswith("#### ")]
    assert {"Offered", "HookState"} <= set(events) <= set(m.MESSAGE_TYPES)

    def unexpected(name: str) -> list[RequestFailed]:
        step = bridge.from_switch(m.sample(name), T0 + 1)
        return [n for n in step.notes if isinstance(n, RequestFailed) and "unexpected" in n.error]

    assert {name: unexpected(name) for name in events} == {name: [] for name in events}
    assert unexpected("MonitorStart") != []

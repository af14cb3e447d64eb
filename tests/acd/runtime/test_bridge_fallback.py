"""The controller adopts the calls the switch's fallback routed while it was gone
(docs/cti-protocol.md §9.7): the real bridge and engine against the simulated switch in
process (the harness of test_bridge_resync)."""

from __future__ import annotations

import pytest

from acd.core import events as ev
from acd.core.agents import AgentSession, AgentStatus
from acd.core.commands import CallEnded, LegReleased
from acd.core.engine import ENDED_UNHEARD, FALLBACK, Engine
from acd.core.records import LiveLeg, Outcome
from acd.runtime.bridge import Bridge
from acd.runtime.pbx import Resynced
from acd.runtime.store_sqlite import SqliteStore
from firmware_sim.fallback import FallbackSettings
from protocols import messages as m

from .test_bridge_resync import CONFIG, EPOCH, START, UP, Harness, agent

pytestmark = pytest.mark.usefixtures("checked_call_states")

FALLBACK_201_202 = FallbackSettings(True, 30.0, ("201", "202"), "in-order", 2)


def records(rig: Harness) -> list:
    return [n.record for n in rig.notes if isinstance(n, CallEnded)]


def test_calls_routed_by_the_fallback_during_an_outage_are_recorded_and_adopted():
    # 1001 and 1002 answer after 1 s and talk 60 s; three calls come during the outage
    calls = [UP + 40, UP + 45, UP + 50]
    rig = Harness((agent("1001", START, 1.0), agent("1002", START, 1.0)), calls, FALLBACK_201_202)
    rig.settle(UP)
    rig.outage(120.0)  # the third call waited (announcement), then 201 took it
    assert rig.switch.stats.fallback == 3
    assert rig.switch.stats.fallback_announced == 1
    rig.settle(rig.now + 1.0)
    ended = {r.call_id: r for r in records(rig)}
    assert sorted(ended) == [1, 2]  # the ended ones, from the snapshot's fallback list
    for call_id, agent_id, device, offered in ((1, "1001", "201", 40), (2, "1002", "202", 45)):
        r = ended[call_id]
        assert (r.outcome, r.agent_id, r.device, r.fallback) == (
            Outcome.ANSWERED,
            agent_id,
            device,
            True,
        )
        assert (r.queue, r.leg, r.reason) == ("front-desk", 1, FALLBACK)
        assert r.arrived_at == pytest.approx(EPOCH + UP + offered, abs=0.01)
        assert r.answered_at == pytest.approx(r.arrived_at + 1.0, abs=0.01)
        assert r.ended_at == pytest.approx(r.answered_at + 60.0, abs=0.01)
    # the third is connected at 201: adopted, answered when the fallback answered it
    assert rig.bridge.engine.active_legs()["front-desk"] == 1
    rig.settle(rig.now + 120.0)
    (third,) = [r for r in records(rig) if r.call_id == 3]
    assert (third.outcome, third.agent_id, third.fallback) == (Outcome.ANSWERED, "1001", True)
    assert third.answered_at == pytest.approx(EPOCH + UP + 40 + 1 + 60 + 5 + 1, abs=0.01)
    assert third.arrived_at == pytest.approx(EPOCH + UP + 50, abs=0.01)
    assert [r for r in records(rig) if r.outcome is Outcome.FAILED] == []
    rig.assert_agreement()
    # the next calls snapshot lists the third among the fallback's ended calls: it is
    # recorded already, not again
    rig.link_bounce()
    rig.settle(rig.now + 1.0)
    assert sorted(r.call_id for r in records(rig)) == [1, 2, 3]


def test_a_fallback_call_the_controller_had_gets_the_next_leg():
    t = EPOCH + START
    bridge = Bridge(Engine(CONFIG, t), extensions=("201",), ack_timeout=5.0)
    bridge.from_switch(m.Offered(1, 7, "0611", "3000", 1), t)  # waits: nobody logged in
    bridge.link_down()
    up = bridge.link_up(t + 100)
    snapshot = next(r for r in up.requests if type(r) is m.SnapshotCalls)
    gone = m.FallbackCall(7, "0611", "3000", "", 90_000, m.NOT_YET, 10_000)
    steps = [bridge.from_switch(m.SnapshotCallsResult(snapshot.invoke_id, (), (gone,)), t + 100)]
    steps += [
        bridge.from_switch(m.SnapshotDeviceResult(r.invoke_id, "201", False, "", ()), t + 100)
        for r in up.requests
        if type(r) is m.SnapshotDevice
    ]
    ended = [n.record for s in steps for n in s.notes if isinstance(n, CallEnded)]
    legs = sorted((r.leg, r.outcome, r.fallback) for r in ended)
    assert legs == [(1, Outcome.FAILED, False), (2, Outcome.ABANDONED, True)]


def test_a_fallback_leg_with_no_queue_is_refused_not_recorded():
    engine = Engine(CONFIG, EPOCH + START)
    leg = ev.FallbackLeg(9, "0611", "4999", "", EPOCH + START, None, EPOCH + START + 5)
    (refused,) = engine.fallback_leg(EPOCH + START + 10, leg)
    assert "no queue for the fallback call 9" in refused.reason


def restart(rig: Harness, store, down: float) -> None:
    """The controller stops (its legs in progress and sessions saved in ``store``, as
    `acd.runtime.controller` does), the switch has no link for ``down`` s, and a new controller
    (a new engine, its legs and sessions loaded from ``store``) links up."""
    engine = rig.bridge.engine
    store.save_legs(engine.drain_legs())
    store.save_sessions(engine.export_sessions())
    rig.switch.link_changed(False, rig.now)
    end = rig.now + down
    while (due := rig.switch.next_deadline()) is not None and due <= end:
        rig.now = due
        rig.switch.advance(due)
    rig.now = end
    engine = Engine(CONFIG, EPOCH + rig.now)
    engine.continue_legs(store.load_legs())
    rig.bridge = Bridge(engine, extensions=("201", "202", "203"), ack_timeout=1e6)
    rig._take(rig.bridge.restore(store.load_sessions(), EPOCH + rig.now))
    rig.switch.link_changed(True, rig.now)
    rig._take(rig.bridge.link_up(EPOCH + rig.now))


@pytest.mark.parametrize("ends", ["after restart 2", "during restart 2"])
def test_a_fallback_call_keeps_its_mark_over_two_controller_restarts(tmp_path, ends):
    # the controller dies at UP + 10; 30 s later the fallback takes the call of UP + 40,
    # answered at 201 1 s later, talk 60 s (ends at UP + 101)
    rig = Harness((agent("1001", START, 1.0),), [UP + 40], FALLBACK_201_202)
    rig.bridge.engine.continue_legs([])  # as the controller does: legs saved
    rig.settle(UP + 10)
    with SqliteStore(tmp_path / "acd.db") as store:
        restart(rig, store, 50.0)  # restart 1 at UP + 60: the call is adopted
        rig.settle(rig.now + 5.0)
        assert rig.bridge.engine.active_legs()["front-desk"] == 1
        store.save_legs(rig.bridge.engine.drain_legs())
        assert [(leg.call_id, leg.fallback) for leg in store.load_legs()] == [(1, True)]
        down = 20.0 if ends == "after restart 2" else 60.0
        restart(rig, store, down)  # restart 2: the call still connected, or ended
        rig.settle(rig.now + 120.0)
        store.save_legs(rig.bridge.engine.drain_legs())
        assert store.load_legs() == []
    (record,) = records(rig)
    assert (record.call_id, record.leg, record.outcome, record.agent_id) == (
        1,
        1,
        Outcome.ANSWERED,
        "1001",
    )
    assert record.fallback
    assert record.arrived_at == pytest.approx(EPOCH + UP + 40, abs=0.01)
    assert record.answered_at == pytest.approx(EPOCH + UP + 41, abs=0.01)
    if ends == "during restart 2":  # ended while no controller heard: said so, still marked
        assert record.reason == ENDED_UNHEARD
        assert record.ended_at == pytest.approx(EPOCH + UP + 60 + 5 + 60, abs=0.01)
    else:
        assert record.reason == FALLBACK
        assert record.released_at == pytest.approx(EPOCH + UP + 101, abs=0.01)


def test_the_events_of_a_fallback_call_held_during_the_resync_do_not_record_it_twice():
    # a standby takes over: the switch still sends the events of a call its fallback
    # rang at 201 (the caller hung up) before the snapshot answers; the snapshot's
    # fallback list tells that call's story: one leg, marked fallback
    t = EPOCH + START
    bridge = Bridge(Engine(CONFIG, t), extensions=("201",), ack_timeout=5.0)
    up = bridge.link_up(t)
    steps = [up]
    for event in (
        m.Offered(0, 9, "0611", "3000", 1),
        m.Delivered(0, 9, "201", "0611", "3000"),
        m.ConnectionCleared(0, 9, "", m.Cause.caller_abandon),
    ):
        steps.append(bridge.from_switch(event, t + 0.01))
    snapshot = next(r for r in up.requests if type(r) is m.SnapshotCalls)
    gone = m.FallbackCall(9, "0611", "3000", "201", 21_000, m.NOT_YET, 10)
    steps.append(bridge.from_switch(m.SnapshotCallsResult(snapshot.invoke_id, (), (gone,)), t))
    steps += [
        bridge.from_switch(m.SnapshotDeviceResult(r.invoke_id, "201", False, "", ()), t)
        for r in up.requests
        if type(r) is m.SnapshotDevice
    ]
    ended = [n.record for s in steps for n in s.notes if isinstance(n, CallEnded)]
    assert [(r.call_id, r.leg, r.outcome, r.fallback) for r in ended] == [
        (9, 1, Outcome.ABANDONED, True)
    ]


def test_a_call_the_controller_took_over_from_the_fallback_is_not_marked_at_the_next_start():
    # the fallback held call 5 (never answered it); a controller took it over, 1002
    # answered and moved it to 201 (leg 2, 1001, saved unmarked); that controller dies;
    # the switch still lists the call among the fallback's in progress, answered 60 s
    # ago (by 1002): the next controller continues the saved leg, unmarked, answered
    # when the leg says (it was marked, answered 60 s ago: before it began)
    t = EPOCH + START
    engine = Engine(CONFIG, t)
    saved = LiveLeg(5, 2, "front-desk", 1, t - 50, t - 50, t - 40, "1001", "201")
    engine.continue_legs([saved])
    bridge = Bridge(engine, extensions=("201",), ack_timeout=5.0)
    bridge.restore([AgentSession("1001", "201", AgentStatus.READY, "", t - 300)], t)
    up = bridge.link_up(t)
    snapshot = next(r for r in up.requests if type(r) is m.SnapshotCalls)
    talking = m.CallInfo(5, m.CallState.connected, "0611", "3000", "201")
    held = m.FallbackCall(5, "0611", "3000", "201", 130_000, 60_000, m.NOT_YET)
    steps = [bridge.from_switch(m.SnapshotCallsResult(snapshot.invoke_id, (talking,), (held,)), t)]
    steps += [
        bridge.from_switch(m.SnapshotDeviceResult(r.invoke_id, "201", True, "1001", ()), t)
        for r in up.requests
        if type(r) is m.SnapshotDevice
    ]
    steps.append(bridge.from_switch(m.ConnectionCleared(0, 5, "", m.Cause.normal), t + 20))
    (record,) = [n.record for s in steps for n in s.notes if isinstance(n, LegReleased)]
    assert (record.call_id, record.leg, record.fallback) == (5, 2, False)
    assert record.reason != FALLBACK
    assert (record.arrived_at, record.answered_at) == (t - 50, t - 40)


def resync(bridge: Bridge, at: float, calls=(), fallback=(), login="") -> list:
    """Link up at ``at`` and the switch's snapshots: ``calls`` and ``fallback``, handset
    201 with ``login`` (the other extensions idle); the steps."""
    up = bridge.link_up(at)
    snapshot = next(r for r in up.requests if type(r) is m.SnapshotCalls)
    steps = [up, bridge.from_switch(m.SnapshotCallsResult(snapshot.invoke_id, calls, fallback), at)]
    for r in up.requests:
        if type(r) is m.SnapshotDevice:
            agent_id = login if r.device == "201" else ""
            result = m.SnapshotDeviceResult(r.invoke_id, r.device, bool(agent_id), agent_id, ())
            steps.append(bridge.from_switch(result, at))
    return steps


@pytest.mark.parametrize("ends", ["while linked", "during an outage"])
def test_a_fallback_call_at_a_handset_with_no_session_at_start_is_recorded_when_it_ends(ends):
    # the controller starts fresh (no sessions saved) while the fallback's call 4 talks
    # at 201, where the switch shows 1001 logged in: no session (its PIN unchecked), so
    # the call cannot be adopted; it was recorded by nobody (the switch lists it in
    # progress once, never as ended), now it is, once, when it ends
    t = EPOCH + START
    bridge = Bridge.for_link(Engine(CONFIG, t), CONFIG.link, ("201",))
    talking = m.CallInfo(4, m.CallState.connected, "0611", "3000", "201")
    fb = m.FallbackCall(4, "0611", "3000", "201", 50_000, 45_000, m.NOT_YET)
    steps = resync(bridge, t, (talking,), (fb,), login="1001")
    (resynced,) = [n for s in steps for n in s.notes if isinstance(n, Resynced)]
    assert resynced.unadopted == (4,)
    if ends == "while linked":
        steps.append(bridge.from_switch(m.ConnectionCleared(0, 4, "", m.Cause.normal), t + 30))
        end = t + 30
    else:  # over while the link was down: the next snapshot no longer has it
        bridge.link_down()
        steps += resync(bridge, t + 60, login="1001")
        end = t + 60
    steps += resync(bridge, t + 90, login="1001")  # not again at the next resync
    (record,) = [n.record for s in steps for n in s.notes if isinstance(n, CallEnded)]
    assert (record.call_id, record.leg, record.outcome, record.fallback, record.device) == (
        4,
        1,
        Outcome.ANSWERED,
        True,
        "201",
    )
    assert record.arrived_at == pytest.approx(t - 50)
    assert record.answered_at == pytest.approx(t - 45)
    assert record.ended_at == pytest.approx(end)

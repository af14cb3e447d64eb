"""The switch state machine: commands obeyed or refused, timers, determinism."""

from __future__ import annotations

import dataclasses

import pytest

from firmware_sim.people import Break, Caller
from firmware_sim.scenario import load_scenario
from protocols import messages as m

T0 = 8 * 3600.0


@pytest.fixture
def switch(scripted):
    sw = scripted().build_switch()
    sw.start(T0)
    sw.advance(T0)  # the agents log in
    return sw


def offer(sw, at: float, patience: float = 600.0, calling: str = "0612345678") -> int:
    sw.add_call(at, Caller(calling, patience, ""))
    (offered,) = [x for x in sw.advance(at) if isinstance(x, m.Offered)]
    return offered.call_id


def only(messages, cls):
    found = [x for x in messages if isinstance(x, cls)]
    assert len(found) == 1, messages
    return found[0]


def test_logins_follow_the_shift(scripted):
    sw = scripted().build_switch()
    sw.start(T0)
    out = sw.advance(T0)
    logins = [(x.device, x.agent_id, x.pin) for x in out if isinstance(x, m.KeyLogin)]
    assert logins == [("201", "1001", "1111"), ("202", "1002", "2222"), ("301", "2001", "9001")]
    assert [x.device for x in out if isinstance(x, m.KeyReady)] == ["201", "202", "301"]


@pytest.mark.parametrize(
    ("request_", "error"),
    [
        (m.DeflectCall(7, 999, "201"), m.ErrorCode.invalid_call),
        (m.DeflectCall(7, 1, "555"), m.ErrorCode.invalid_device),
        (m.DeflectCall(7, 1, "3000"), m.ErrorCode.invalid_device),
        (m.QueueCall(7, 1, "front-desk", 42), m.ErrorCode.invalid_parameter),
        (m.PlayAnnouncement(7, 1, 9, 0), m.ErrorCode.invalid_parameter),
        (m.ClearConnection(7, 1, "202"), m.ErrorCode.invalid_device),
        (m.SingleStepTransfer(7, 1, "201", "202"), m.ErrorCode.invalid_state),
        (m.RingDevices(7, 1, (), 10), m.ErrorCode.invalid_parameter),
        (m.SetDisplay(7, "201", "x" * 41), m.ErrorCode.invalid_parameter),
        (m.SetLamp(7, "201", 8, m.LampMode.on), m.ErrorCode.invalid_parameter),
        (m.MonitorStart(7, "nowhere"), m.ErrorCode.invalid_device),
        (m.SnapshotDevice(7, "nowhere"), m.ErrorCode.invalid_device),
        (m.PositiveAck(7), m.ErrorCode.not_supported),
        (m.KeyReady(7, "201"), m.ErrorCode.not_supported),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, m.Message) else v.name,
)
def test_impossible_commands_are_refused_with_a_proper_error(switch, request_, error):
    offer(switch, T0 + 1)
    before = switch.stats.rejected
    (nak,) = switch.handle(request_, T0 + 2)
    assert isinstance(nak, m.NegativeAck)
    assert (nak.invoke_id, nak.error) == (7, error) and nak.detail
    assert switch.stats.rejected == before + 1
    assert [c.state for c in switch.handle(m.SnapshotCalls(8), T0 + 2)[0].calls] == [
        m.CallState.offered
    ]


def test_deflect_to_a_busy_extension_is_refused(switch):
    a, b = offer(switch, T0 + 1), offer(switch, T0 + 1.1)
    switch.handle(m.DeflectCall(1, a, "202"), T0 + 2)
    (nak,) = switch.handle(m.DeflectCall(2, b, "202"), T0 + 2)
    assert nak.error == m.ErrorCode.device_busy
    established = switch.advance(T0 + 2.3)
    assert only(established, m.Established).device == "202"
    (nak,) = switch.handle(m.QueueCall(3, a, "front-desk", 1), T0 + 3)
    assert nak.error == m.ErrorCode.invalid_state


def test_ring_devices_first_to_answer_wins_and_the_others_stop(switch):
    a = offer(switch, T0 + 1)
    out = switch.handle(m.RingDevices(1, a, ("201", "202", "299"), 10), T0 + 2)
    assert isinstance(out[0], m.PositiveAck)
    assert sorted(x.device for x in out if isinstance(x, m.Delivered)) == ["201", "202", "299"]
    out = switch.advance(T0 + 2.3)  # 201 and 202 both answer after 0.3 s: 201 rang first
    assert only(out, m.Established).device == "201"
    stopped = sorted(x.device for x in out if isinstance(x, m.ConnectionCleared))
    assert stopped == ["202", "299"]


def test_ring_timeout_returns_the_call_to_the_queue(switch):
    a = offer(switch, T0 + 1)
    switch.handle(m.RingDevices(1, a, ("299",), 5), T0 + 2)  # nobody at 299
    out = switch.advance(T0 + 7)
    cleared = only(out, m.ConnectionCleared)
    assert (cleared.device, cleared.cause) == ("299", m.Cause.no_answer)
    (info,) = switch.handle(m.SnapshotCalls(2), T0 + 7)[0].calls
    assert (info.state, info.device) == (m.CallState.queued, "3000")


def test_clear_connection_of_an_answered_call_releases_the_agent_into_wrap_up(switch):
    a = offer(switch, T0 + 1)
    switch.handle(m.DeflectCall(1, a, "202"), T0 + 2)
    switch.advance(T0 + 2.3)
    out = switch.handle(m.ClearConnection(2, a, ""), T0 + 3)
    assert isinstance(out[0], m.PositiveAck)
    assert [(x.device, x.cause) for x in out if isinstance(x, m.ConnectionCleared)] == [
        ("202", m.Cause.normal),
        ("", m.Cause.normal),
    ]
    assert only(out, m.HookState).off_hook is False
    assert only(switch.advance(T0 + 3.3), m.KeyWrapUpDone).device == "202"
    assert switch.handle(m.SnapshotCalls(3), T0 + 4)[0].calls == ()


def test_transfer_to_a_service_number_offers_the_call_again(switch):
    a = offer(switch, T0 + 1)
    switch.handle(m.DeflectCall(1, a, "202"), T0 + 2)
    switch.advance(T0 + 2.3)
    out = switch.handle(m.SingleStepTransfer(2, a, "202", "3000"), T0 + 3)
    assert only(out, m.Transferred).to_device == "3000"
    again = only(out, m.Offered)
    assert (again.call_id, again.called) == (a, "3000")
    assert switch.stats.transferred == 1 and switch.stats.answered == 1


def test_display_lamps_and_monitoring(switch):
    assert isinstance(switch.handle(m.SetDisplay(1, "201", "Queue: 3"), T0)[0], m.PositiveAck)
    switch.handle(m.SetLamp(2, "201", 1, m.LampMode.flash), T0)
    assert switch.handset_view("201") == {
        "display": "Queue: 3",
        "lamps": {1: "flash"},
        "off_hook": False,
        "status": "ready",
    }
    switch.handle(m.MonitorStop(3, "3000"), T0)
    switch.add_call(T0 + 1, Caller("0600000001", 0.5, ""))
    assert switch.advance(T0 + 1) == []
    switch.handle(m.MonitorStart(4, ""), T0 + 2)
    switch.add_call(T0 + 3, Caller("0600000002", 0.5, ""))
    assert only(switch.advance(T0 + 3), m.Offered).calling == "0600000002"
    assert only(switch.advance(T0 + 4), m.ConnectionCleared).cause == m.Cause.caller_abandon
    switch.handle(m.MonitorStop(5, ""), T0 + 4)
    switch.handle(m.MonitorStart(6, "3000"), T0 + 4)
    switch.add_call(T0 + 5, Caller("0600000003", 600.0, ""))
    assert [type(x) for x in switch.advance(T0 + 5)] == [m.Offered]
    switch.handle(m.SetDisplay(7, "201", "hi"), T0 + 6)  # a request, not an event: answered


def test_menu_digits_are_collected_after_the_menu_delay(scripted):
    sc = scripted()
    sc = dataclasses.replace(sc, callers=dataclasses.replace(sc.callers, menu_delay=4.0))
    sw = sc.build_switch()
    sw.start(T0)
    sw.add_call(T0 + 1, Caller("0611111111", 600.0, "2"))
    sw.advance(T0 + 1)
    assert sw.advance(T0 + 4.9) == []
    digits = only(sw.advance(T0 + 5), m.DigitsCollected)
    assert digits.digits == "2"


def test_agents_log_in_take_their_planned_break_and_log_out_at_shift_end():
    sc = load_scenario("town-hall-saturday-250")
    sw = sc.build_switch()
    sw.start(sc.start_s)
    out = sw.advance(13.5 * 3600)
    by_device = {}
    for x in out:
        if isinstance(x, m.KeyNotReady | m.KeyLogout | m.KeyLogin):
            by_device.setdefault(x.device, []).append(type(x).__name__)
    assert by_device["201"][0] == "KeyLogin" and by_device["201"][-1] == "KeyLogout"
    assert len(by_device) == 6
    assert all(names.count("KeyNotReady") == 1 for names in by_device.values())


def test_a_break_waits_until_the_call_and_wrap_up_are_over(scripted):
    sc = scripted()
    pause = Break(T0 + 3, 60.0, 3)
    agents = tuple(
        dataclasses.replace(a, shift=dataclasses.replace(a.shift, breaks=(pause,)))
        if a.extension == "202"
        else a
        for a in sc.agents
    )
    switch = dataclasses.replace(sc, agents=agents).build_switch()
    switch.start(T0)
    switch.advance(T0)
    a = offer(switch, T0 + 1)
    switch.handle(m.DeflectCall(1, a, "202"), T0 + 2)
    switch.advance(T0 + 2.3)  # 202 answers a long call; the break falls due during it
    assert switch.advance(T0 + 3) == []
    out = switch.handle(m.ClearConnection(2, a, ""), T0 + 4)
    out += switch.advance(T0 + 4.3)
    keys = [(type(x).__name__, getattr(x, "reason", None)) for x in out]
    assert [k for k in keys if k[0].startswith("Key")] == [
        ("KeyWrapUpDone", None),
        ("KeyNotReady", 3),
    ]
    assert only(switch.advance(T0 + 64.3), m.KeyReady).device == "202"


def run_day(seed: int) -> list[m.Message]:
    sc = dataclasses.replace(load_scenario("town-hall-weekday-700"), seed=seed)
    sw = sc.build_switch()
    sw.start(sc.start_s)
    events: list[m.Message] = []
    queue: list[int] = []
    free: list[str] = []
    invoke = 0
    t = sc.start_s
    while (nxt := sw.next_deadline()) is not None and nxt < sc.end_s:
        t = nxt
        for x in sw.advance(t):
            events.append(x)
            if isinstance(x, m.Offered):
                queue.append(x.call_id)
            elif isinstance(x, m.KeyReady | m.KeyWrapUpDone) and x.device.startswith("2"):
                free.append(x.device)
            elif isinstance(x, m.ConnectionCleared) and x.call_id in queue:
                queue.remove(x.call_id)
        while queue and free:
            invoke += 1
            events += sw.handle(m.DeflectCall(invoke, queue.pop(0), free.pop(0)), t)
    return events


def test_same_seed_same_event_sequence_and_another_seed_differs():
    first, second = run_day(11), run_day(11)
    assert len(first) > 3000
    assert first == second
    assert run_day(12) != first


def test_clear_connection_of_one_ringing_extension_leaves_the_others_ringing(switch):
    a = offer(switch, T0 + 1)
    switch.handle(m.RingDevices(1, a, ("202", "299"), 0), T0 + 2)
    out = switch.handle(m.ClearConnection(2, a, "299"), T0 + 2.1)
    assert [(x.device, x.cause) for x in out[1:]] == [("299", m.Cause.normal)]
    (info,) = switch.handle(m.SnapshotCalls(3), T0 + 2.2)[0].calls
    assert (info.state, info.device) == (m.CallState.alerting, "202")
    switch.handle(m.ClearConnection(4, a, "202"), T0 + 2.2)
    (info,) = switch.handle(m.SnapshotCalls(5), T0 + 2.2)[0].calls
    assert (info.state, info.device) == (m.CallState.queued, "3000")


def kinds(out) -> list[tuple]:
    """Each message's type name, with the device and cause of a ConnectionCleared."""
    return [
        (type(x).__name__, x.device, x.cause.name)
        if isinstance(x, m.ConnectionCleared)
        else (type(x).__name__,)
        for x in out
    ]


def test_events_after_each_request_follow_the_call_model(switch):
    """docs/cti-protocol.md §9.5-9.6, request by request."""
    a = offer(switch, T0 + 1, patience=20.0)
    switch.handle(m.DeflectCall(1, a, "299"), T0 + 2)  # nobody answers at 299
    # QueueCall on a ringing call: the ring ends, then Queued
    out = switch.handle(m.QueueCall(2, a, "front-desk", 1), T0 + 3)
    assert kinds(out) == [("PositiveAck",), ("ConnectionCleared", "299", "normal"), ("Queued",)]
    # DeflectCall on a call ringing elsewhere: Diverted from that handset, no clear
    switch.handle(m.DeflectCall(3, a, "299"), T0 + 4)
    out = switch.handle(m.DeflectCall(4, a, "202"), T0 + 5)
    assert kinds(out) == [("PositiveAck",), ("Diverted",), ("Delivered",)]
    assert (out[1].from_device, out[1].to_device) == ("299", "202")
    # SingleStepTransfer to a handset: hook on, Transferred, Delivered at the target
    switch.advance(T0 + 5.3)  # 202 answers
    out = switch.handle(m.SingleStepTransfer(5, a, "202", "299"), T0 + 6)
    assert kinds(out) == [("PositiveAck",), ("HookState",), ("Transferred",), ("Delivered",)]
    # the caller hangs up while it rings: the ring's clear, then the caller's
    out = switch.advance(T0 + 6 + 600)
    abandon = [k for k in kinds(out) if k[0] == "ConnectionCleared"]
    assert abandon == [
        ("ConnectionCleared", "299", "caller_abandon"),
        ("ConnectionCleared", "", "caller_abandon"),
    ]
    # a connected call that the agent ends: hook on, one clear naming the handset
    b = offer(switch, T0 + 700)
    switch.handle(m.DeflectCall(6, b, "201"), T0 + 701)
    switch.advance(T0 + 701.3)
    out = switch.advance(T0 + 701.3 + 3600)
    ends = [k for k in kinds(out) if k[0] in ("ConnectionCleared", "HookState")]
    assert ends[:2] == [("HookState",), ("ConnectionCleared", "201", "normal")]
    assert [k for k in ends if k[0] == "ConnectionCleared"] == [ends[1]]

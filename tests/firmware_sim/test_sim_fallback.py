"""The switch's own routing while the controller is gone (cti-protocol §9.7)."""

from __future__ import annotations

import pytest

from acd.errors import AcdError
from firmware_sim.people import Caller
from protocols import messages as m

T0 = 8 * 3600.0


def fallback_switch(scripted, group='"201", "202"', order="in-order", extra=""):
    """The scripted switch with fallback after 30 s; link down since T0."""
    sw = scripted(
        f"""
[fallback]
enabled = true
after = 30
group = [{group}]
order = "{order}"
announcement = 2
{extra}"""
    ).build_switch()
    sw.start(T0)
    sw.advance(T0)  # the agents log in
    return sw


def call_at(sw, at: float, patience: float = 600.0) -> int:
    sw.add_call(at, Caller("0612345678", patience, ""))
    (offered,) = [x for x in sw.advance(at) if isinstance(x, m.Offered)]
    return offered.call_id


def delivered(out) -> list[tuple[int, str]]:
    return [(x.call_id, x.device) for x in out if isinstance(x, m.Delivered)]


def snapshot(sw, now: float) -> m.SnapshotCallsResult:
    (answer,) = sw.handle(m.SnapshotCalls(9), now)
    return answer


def test_link_down_for_the_configured_time_routes_waiting_and_new_calls(scripted):
    sw = fallback_switch(scripted)
    first = call_at(sw, T0 + 10)
    assert delivered(sw.advance(T0 + 29.9)) == []  # not before `after`
    assert delivered(sw.advance(T0 + 30)) == [(first, "201")]  # the waiting call
    sw.add_call(T0 + 31, Caller("0622", 600.0, ""))
    out = sw.advance(T0 + 31)
    (offered,) = [x for x in out if isinstance(x, m.Offered)]
    assert delivered(out) == [(offered.call_id, "202")]  # a new call: at once
    assert sw.stats.fallback == 2


def test_no_fallback_while_the_controller_answers(scripted):
    sw = fallback_switch(scripted)
    sw.link_changed(True, T0 + 1)
    handled = call_at(sw, T0 + 2)
    sw.handle(m.QueueCall(1, handled, "front-desk", 0), T0 + 3)
    ignored = call_at(sw, T0 + 4)  # an Offered unanswered by any request
    assert delivered(sw.advance(T0 + 33)) == []
    assert delivered(sw.advance(T0 + 34)) == [(ignored, "201")]
    assert sw.stats.fallback == 1


def test_a_link_up_before_the_time_cancels_the_fallback(scripted):
    sw = fallback_switch(scripted)
    sw.link_changed(True, T0 + 20)
    sw.link_changed(False, T0 + 25)
    call = call_at(sw, T0 + 26)
    sw.handle(m.QueueCall(1, call, "front-desk", 0), T0 + 26)
    assert delivered(sw.advance(T0 + 54)) == []  # down since T0 + 25 only
    assert delivered(sw.advance(T0 + 55)) == [(call, "201")]


@pytest.mark.parametrize(("order", "second"), [("in-order", "201"), ("longest-idle", "202")])
def test_in_order_or_longest_idle(scripted, order, second):
    sw = fallback_switch(scripted, order=order)
    sw.add_call(T0 + 40, Caller("0611", 600.0, ""))
    assert [d for _, d in delivered(sw.advance(T0 + 40))] == ["201"]  # both idle since T0
    sw.advance(T0 + 45)  # 201 answered, talked 0.8 s and wrapped up 0.3 s
    assert sw.handset_view("201")["status"] == "ready"
    sw.add_call(T0 + 50, Caller("0622", 600.0, ""))
    assert [d for _, d in delivered(sw.advance(T0 + 50))] == [second]


def test_announcement_when_no_handset_is_free_then_the_next_free_one(scripted):
    sw = fallback_switch(scripted, group='"202"')
    talking = call_at(sw, T0 + 40)  # 202 answers and talks for 600 s
    sw.advance(T0 + 41)
    waiting = call_at(sw, T0 + 42, patience=900.0)
    assert sw.stats.fallback_announced == 1
    calls = {c.call_id: c for c in snapshot(sw, T0 + 50).calls}
    assert calls[talking].state == m.CallState.connected
    assert calls[waiting].state == m.CallState.queued
    out = sw.advance(T0 + 40.3 + 600 + 1)  # 202 hung up and wrapped up
    assert delivered(out) == [(waiting, "202")]


def test_the_calls_snapshot_lists_fallback_calls_with_their_times_once_ended(scripted):
    sw = fallback_switch(scripted)
    ended = call_at(sw, T0 + 40)  # fallback at once; 201 answers at +0.3, ends at +1.1
    talking = call_at(sw, T0 + 41)  # 202: 600 s
    sw.advance(T0 + 50)
    sw.link_changed(True, T0 + 60)
    answer = snapshot(sw, T0 + 60)
    assert [c.call_id for c in answer.calls] == [talking]  # the calls in progress
    by_id = {f.call_id: f for f in answer.fallback}
    assert set(by_id) == {ended, talking}
    assert by_id[ended] == m.FallbackCall(
        ended, "0612345678", "3000", "201", 20_000, 19_700, 18_900
    )
    assert by_id[talking].device == "202"
    assert by_id[talking].ended_ago == m.NOT_YET
    assert encode_decodes(answer)
    again = snapshot(sw, T0 + 61)  # an ended call is reported once
    assert [f.call_id for f in again.fallback] == [talking]


def encode_decodes(msg: m.Message) -> bool:
    return m.decode_message(m.encode_message(msg)) == msg


def test_a_request_about_a_fallback_call_takes_it_back(scripted):
    sw = fallback_switch(scripted, group='"202"')
    call_at(sw, T0 + 40)  # 202 busy for 600 s
    sw.advance(T0 + 41)
    waiting = call_at(sw, T0 + 42, patience=900.0)
    sw.link_changed(True, T0 + 50)
    sw.handle(m.QueueCall(1, waiting, "front-desk", 0), T0 + 50)
    assert delivered(sw.advance(T0 + 700)) == []  # the controller routes it now


def test_fallback_settings_are_checked(scripted):
    with pytest.raises(AcdError, match=r"fallback\.order: must be one of in-order, longest-idle"):
        fallback_switch(scripted, order="random")
    with pytest.raises(AcdError, match=r"fallback\.group: no extension 999"):
        fallback_switch(scripted, group='"201", "999"')
    with pytest.raises(AcdError, match=r"fallback\.announcement: 9 is not in switch.announcements"):
        scripted('\n[fallback]\nenabled = true\ngroup = ["201"]\nannouncement = 9\n')
    with pytest.raises(AcdError, match=r"fallback\.group: needs at least one extension"):
        scripted("\n[fallback]\nenabled = true\n")

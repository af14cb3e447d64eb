"""The link layer, end to end through faulty in-memory channels in virtual time."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from protocols.errors import LocalProtocolError
from protocols.framing import Ctrl, FrameDecoder, encode_frame
from protocols.link import (
    POLL,
    SILENCE_INTERVALS,
    BadMessage,
    Link,
    LinkDown,
    LinkState,
    LinkUp,
    MessageReceived,
    Role,
)
from protocols.messages import DeflectCall, Offered, PositiveAck
from protocols.testing import LinkPair

OPTIONS = {"t1": 0.5, "n2": 25, "heartbeat": 2.0, "reset_interval": 1.0}


def _ids(events):
    return [e.message.invoke_id for e in events if isinstance(e, MessageReceived)]


def _downs(events):
    return [e for e in events if isinstance(e, LinkDown)]


def _assert_delivered(pair, complete=True):
    """Each side got what the other sent, in order: exactly once while the link stayed up,
    at least once (replays after a reset) otherwise; ``complete``: everything so far."""
    any_down = bool(_downs(pair.controller_events + pair.switch_events))
    for events, sent_messages in (
        (pair.switch_events, pair.sent_by_controller),
        (pair.controller_events, pair.sent_by_switch),
    ):
        got = _ids(events)
        sent = [m.invoke_id for m in sent_messages]
        fresh = [x for i, x in enumerate(got) if x > max(got[:i], default=-1)]
        assert fresh == (sent if complete else sent[: len(fresh)])
        if not any_down:
            assert got == fresh


def _settle(pair):
    """Run until the link is up and both ends have delivered everything (bounded)."""
    for _ in range(200):
        ends = (pair.controller, pair.switch)
        if all(end.is_up and end.queued == 0 for end in ends):
            return
        pair.run(5.0)
    raise AssertionError("link not up or messages still queued after 1000 s")


def test_reset_handshake_brings_both_ends_up():
    pair = LinkPair()
    assert pair.controller.state is LinkState.IDLE
    pair.start()
    assert pair.controller_events == [LinkUp()] and pair.switch_events == [LinkUp()]
    assert pair.controller.is_up and pair.switch.is_up


def test_messages_both_ways_with_sequence_wrap():
    pair = LinkPair(link_options={"window": 4})
    pair.start()
    for i in range(600):  # ns wraps twice
        pair.send("controller", DeflectCall(i, i, "201"))
        pair.send("switch", PositiveAck(i))
    pair.run(1.0)
    assert _ids(pair.switch_events) == list(range(600))
    assert _ids(pair.controller_events) == list(range(600))
    assert pair.controller.stats.retransmits == 0
    assert pair.controller.queued == pair.switch.queued == 0


def test_window_limits_frames_in_flight():
    link = Link(Role.SWITCH, window=3)
    link.start(0.0)
    link.receive_data(encode_frame(Ctrl.RESET), 0.0)
    for i in range(10):
        link.send(PositiveAck(i), 0.0)
    frames = FrameDecoder().feed(link.data_to_send())
    assert [f.ctrl for f in frames] == [Ctrl.RESET_ACK] + [Ctrl.INFO] * 3
    link.receive_data(encode_frame(Ctrl.ACK, 0, 2), 0.1)  # two acknowledged: two more go
    assert [f.ns for f in FrameDecoder().feed(link.data_to_send())] == [3, 4]
    assert link.queued == 8


def test_duplicates_are_acknowledged_and_dropped():
    link = Link(Role.SWITCH)
    link.start(0.0)
    link.receive_data(encode_frame(Ctrl.RESET), 0.0)
    frame = encode_frame(Ctrl.INFO, 0, 0, b"\xd2\x00\x07")
    link.receive_data(frame + frame, 0.1)
    events = [link.next_event(), link.next_event(), link.next_event()]
    assert events[0] == LinkUp()
    assert events[1] == MessageReceived(PositiveAck(7), b"\xd2\x00\x07")
    assert events[2] is None
    assert link.stats.duplicates == 1
    assert FrameDecoder().feed(link.data_to_send())[-1] == (Ctrl.ACK, 0, 1, b"")


def test_gap_is_naked_once_and_filled_by_go_back():
    pair = LinkPair()
    pair.start()
    pair.to_switch.connected = False
    pair.send("controller", PositiveAck(1))  # lost
    pair.to_switch.connected = True
    pair.send("controller", PositiveAck(2))
    pair.send("controller", PositiveAck(3))
    assert pair.switch.stats.naks_out == 1
    assert pair.controller.stats.naks_in == 1
    assert _ids(pair.switch_events) == [1, 2, 3]


def test_undecodable_payload_is_reported_not_fatal():
    pair = LinkPair()
    pair.start()
    pair.send("controller", b"\xff\x00\x01")
    pair.send("controller", PositiveAck(2))
    assert isinstance(pair.switch_events[1], BadMessage)
    assert "unknown opcode" in pair.switch_events[1].error
    assert _ids(pair.switch_events) == [2]
    assert pair.switch.is_up


@settings(deadline=None)
@given(
    seed=st.integers(0, 2**32),
    drop=st.floats(0, 0.15),
    duplicate=st.floats(0, 0.15),
    corrupt=st.floats(0, 0.15),
    delay=st.floats(0, 0.05),
    window=st.integers(1, 16),
    count=st.integers(1, 60),
)
def test_faulty_channel_delivers_everything_in_order(
    seed, drop, duplicate, corrupt, delay, window, count
):
    faults = {"drop": drop, "duplicate": duplicate, "corrupt": corrupt}
    pair = LinkPair(seed, {**OPTIONS, "window": window}, delay=delay, jitter=delay, **faults)
    pair.start()
    for i in range(count):
        pair.send("controller", DeflectCall(i, i, "201"))
        pair.send("switch", Offered(i, i, "0561234567", "3900", 1))
        pair.run(0.01)
    _settle(pair)
    _assert_delivered(pair)


class LinkMachine(RuleBasedStateMachine):
    """Random sends, time steps and cable pulls; delivery stays in order, nothing lost."""

    def __init__(self):
        super().__init__()
        self.pair = LinkPair(7, OPTIONS, drop=0.05, duplicate=0.05, corrupt=0.05, delay=0.01)
        self.pair.start()
        self.next_id = 0

    @rule(side=st.sampled_from(["controller", "switch"]))
    def send(self, side):
        self.next_id += 1
        self.pair.send(side, PositiveAck(self.next_id))

    @rule(dt=st.floats(0.001, 3.0))
    def wait(self, dt):
        self.pair.run(dt)

    @precondition(lambda self: self.pair.to_switch.connected)
    @rule(dt=st.floats(0.0, 20.0))
    def pull_the_cable(self, dt):
        self.pair.to_switch.connected = self.pair.to_controller.connected = False
        self.pair.run(dt)
        self.pair.to_switch.connected = self.pair.to_controller.connected = True

    @invariant()
    def delivered_in_order(self):
        _assert_delivered(self.pair, complete=False)

    def teardown(self):
        _settle(self.pair)
        _assert_delivered(self.pair)


TestLinkMachine = LinkMachine.TestCase
TestLinkMachine.settings = settings(max_examples=25, stateful_step_count=20, deadline=None)


@pytest.mark.parametrize("busy", [False, True])
def test_dead_peer_is_detected_within_the_timers(busy):
    pair = LinkPair(link_options=OPTIONS)
    pair.start()
    pair.run(3.3)
    cut_at = pair.now
    pair.to_controller.connected = pair.to_switch.connected = False
    if busy:
        pair.send("controller", PositiveAck(1))
    for _ in range(400):
        pair.run(0.05)
        if _downs(pair.controller_events):
            break
    bound = SILENCE_INTERVALS * OPTIONS["heartbeat"]
    if busy:
        bound = min(bound, OPTIONS["t1"] * (OPTIONS["n2"] + 1))
    assert pair.now - cut_at <= bound + 0.05
    assert pair.controller.state is LinkState.RESETTING


def test_retries_exhausted_takes_the_link_down_and_reset_recovers():
    pair = LinkPair(link_options={"t1": 0.2, "n2": 3, "heartbeat": 10.0, "reset_interval": 1.0})
    pair.start()
    pair.to_switch.connected = False
    pair.send("controller", PositiveAck(1))
    pair.run(0.2 * 4 + 0.01)
    assert _downs(pair.controller_events) == [LinkDown("no acknowledgement after 3 retries")]
    pair.send("controller", PositiveAck(2))  # queued while down
    pair.to_switch.connected = True
    pair.run(1.5)
    assert pair.controller.is_up
    assert _ids(pair.switch_events) == [1, 2]
    assert pair.controller.stats.link_downs == 1


def test_peer_restart_is_seen_and_queued_messages_flow_after():
    pair = LinkPair(link_options=OPTIONS)
    pair.start()
    pair.switch = Link(Role.SWITCH, **OPTIONS)  # the switch rebooted
    pair.switch.start(pair.now)
    pair.send("controller", PositiveAck(1))
    pair.run(20.0)
    assert pair.controller.is_up and pair.switch.is_up
    assert _downs(pair.controller_events)
    assert _ids(pair.switch_events) == [1]


def test_reset_while_up_is_a_peer_reset():
    link = Link(Role.SWITCH)
    link.start(0.0)
    link.receive_data(encode_frame(Ctrl.RESET), 0.0)
    link.receive_data(encode_frame(Ctrl.RESET), 0.5)  # a repeat: answered, nothing changes
    link.receive_data(encode_frame(Ctrl.HEARTBEAT), 0.6)
    link.receive_data(encode_frame(Ctrl.RESET), 1.0)
    events = [link.next_event() for _ in range(4)]
    assert events == [LinkUp(), LinkDown("peer reset"), LinkUp(), None]
    frames = FrameDecoder().feed(link.data_to_send())
    assert [f.ctrl for f in frames] == [Ctrl.RESET_ACK] * 3


def test_local_errors():
    with pytest.raises(LocalProtocolError, match="window"):
        Link(Role.CONTROLLER, window=17)
    with pytest.raises(LocalProtocolError):
        Link(Role.CONTROLLER, t1=0)
    link = Link("controller", max_queue=1)
    link.start(0.0)
    with pytest.raises(LocalProtocolError, match="already started"):
        link.start(0.0)
    with pytest.raises(LocalProtocolError, match="not a message"):
        link.send("hello", 0.0)  # type: ignore[arg-type]
    link.send(PositiveAck(1), 0.0)
    with pytest.raises(LocalProtocolError, match="queue full"):
        link.send(PositiveAck(2), 0.0)


def test_deadlines_and_heartbeat():
    link = Link(Role.CONTROLLER, heartbeat=5.0, reset_interval=3.0)
    assert link.next_deadline() is None
    link.start(10.0)
    assert link.next_deadline() == 13.0
    link.handle_timer(13.0)
    assert [f.ctrl for f in FrameDecoder().feed(link.data_to_send())] == [Ctrl.RESET] * 2
    link.receive_data(encode_frame(Ctrl.RESET_ACK), 14.0)
    assert link.is_up and link.next_deadline() == 18.0  # heartbeat due 5 s after last send
    link.handle_timer(18.0)
    assert FrameDecoder().feed(link.data_to_send())[-1] == (Ctrl.HEARTBEAT, 0, 0, b"")
    assert link.next_deadline() == 20.0  # silent for one interval and t1: poll, every t1
    link.handle_timer(20.0)
    assert FrameDecoder().feed(link.data_to_send())[-1] == (Ctrl.HEARTBEAT, POLL, 0, b"")
    assert link.next_deadline() == 21.0
    link.receive_data(encode_frame(Ctrl.HEARTBEAT, POLL), 20.5)  # the peer polls: answer
    assert FrameDecoder().feed(link.data_to_send())[-1] == (Ctrl.HEARTBEAT, 0, 0, b"")
    assert link.next_deadline() == 20.5 + 5.0
    link.handle_timer(20.5 + SILENCE_INTERVALS * 5.0)
    assert link.next_event() == LinkUp()
    assert link.next_event() == LinkDown("peer silent")
    assert link.state is LinkState.RESETTING


def test_two_idle_ends_with_the_same_heartbeat_exchange_heartbeats_not_polls():
    """Spec §4.4: with H alike at both ends, each end's heartbeat reaches the other
    before its poll timer (H + T1): one frame per end per H, no poll."""
    pair = LinkPair(link_options={"heartbeat": 5.0, "t1": 1.0})
    pair.start()
    pair.run(1.0)
    before = pair.controller.stats.frames_out + pair.switch.stats.frames_out
    pair.run(60.0)
    sent = pair.controller.stats.frames_out + pair.switch.stats.frames_out - before
    assert sent <= 2 * 60 / 5 + 2
    assert pair.controller.is_up and pair.switch.is_up

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.mqtt_outbox import Outbox, Outgoing


def test_retained_topics_coalesce_latest_wins():
    box = Outbox()
    for i in range(1000):
        box.put_retained("a", str(i).encode())
    box.put_retained("b", b"x")
    assert box.take(0.0) == [Outgoing("a", b"999", True), Outgoing("b", b"x", True)]
    assert box.take(0.0) == []
    assert box.pending == 0


def test_events_are_bounded_oldest_dropped_and_counted():
    box = Outbox(max_events=3)
    for i in range(5):
        box.put_event("e", bytes([i]))
    assert box.dropped == 2
    assert [m.payload for m in box.take(0.0)] == [b"\x02", b"\x03", b"\x04"]


def test_rate_limited_topic_waits_for_its_interval():
    box = Outbox()
    box.put_retained("q", b"1", min_interval=1.0)
    assert box.take(10.0) == [Outgoing("q", b"1", True)]
    box.put_retained("q", b"2", min_interval=1.0)
    box.put_retained("q", b"3", min_interval=1.0)
    assert box.take(10.5) == []
    assert box.next_due() == 11.0
    assert box.take(11.0) == [Outgoing("q", b"3", True)]
    assert box.next_due() is None


def test_snapshot_holds_every_retained_topic_and_clears_stay_until_sent():
    box = Outbox()
    box.put_retained("a", b"1")
    box.put_retained("alarm", b"on")
    box.take(0.0)
    box.put_retained("alarm", b"")
    snap = box.snapshot(1.0)
    assert snap == [Outgoing("a", b"1", True), Outgoing("alarm", b"", True)]
    assert box.take(1.0) == []
    box.sent(snap[1])
    assert box.snapshot(2.0) == [Outgoing("a", b"1", True)]


def test_a_clear_overtaken_by_a_new_alarm_is_not_forgotten():
    box = Outbox()
    box.put_retained("alarm", b"")
    (clear,) = box.take(0.0)
    box.put_retained("alarm", b"on again")
    box.sent(clear)
    assert box.snapshot(1.0) == [Outgoing("alarm", b"on again", True)]


def test_a_clear_sent_while_the_alarm_came_and_went_again_is_still_published():
    box = Outbox()
    box.put_retained("alarm", b"")
    (clear,) = box.take(0.0)
    box.put_retained("alarm", b"on again")
    box.put_retained("alarm", b"")  # and off again, before the first clear was sent
    box.sent(clear)
    assert box.take(1.0) == [Outgoing("alarm", b"", True)]


def test_failed_messages_come_back():
    box = Outbox(max_events=2)
    box.put_retained("a", b"1")
    box.put_event("e", b"1")
    box.put_event("e", b"2")
    batch = box.take(0.0)
    box.put_event("e", b"3")
    box.failed(batch)
    assert box.take(0.0) == [
        Outgoing("a", b"1", True),
        Outgoing("e", b"2", False),
        Outgoing("e", b"3", False),
    ]
    assert box.dropped == 1  # the oldest, as when the queue overflows


def test_max_events_must_be_positive():
    with pytest.raises(ValueError):
        Outbox(0)


ops = st.lists(
    st.one_of(
        st.tuples(st.just("retain"), st.sampled_from("abc"), st.binary(max_size=3)),
        st.tuples(st.just("event"), st.just("e"), st.binary(max_size=3)),
        st.tuples(st.just("reply"), st.just("r"), st.binary(max_size=3)),
        st.tuples(st.just("take"), st.just(""), st.just(b"")),
    ),
    max_size=60,
)


@given(ops)
def test_what_is_taken_is_latest_per_topic_and_events_in_order(operations):
    box = Outbox(max_events=5, max_replies=3)
    latest: dict[str, bytes] = {}
    events: list[bytes] = []
    replies: list[bytes] = []
    delivered: dict[str, bytes] = {}
    for op, topic, payload in [*operations, ("take", "", b"")]:
        if op == "retain":
            box.put_retained(topic, payload)
            latest[topic] = payload
        elif op == "event":
            box.put_event(topic, payload)
            events.append(payload)
        elif op == "reply":
            box.put_reply(topic, payload)
            replies.append(payload)
        else:
            batch = box.take(0.0)
            unretained = [m for m in batch if not m.retain]
            assert [m.payload for m in unretained] == events[-5:] + replies[-3:]
            assert [m.reply for m in unretained] == sorted(m.reply for m in unretained)
            assert len(events) - len(events[-5:]) <= box.dropped
            events.clear()
            replies.clear()
            topics = [m.topic for m in batch if m.retain]
            assert len(topics) == len(set(topics))
            delivered.update((m.topic, m.payload) for m in batch if m.retain)
            for m in batch:
                box.sent(m)
    assert delivered == latest
    assert box.pending == 0


def test_replies_never_push_out_call_events_and_go_after_them():
    box = Outbox(max_events=10, max_replies=3)
    for i in range(5):
        box.put_event("event", b"%d" % i)
    for i in range(5000):  # a flood of refused commands
        box.put_reply(f"reply/{i}", b"no")
    box.put_retained("state", b"x")
    batch = box.take(0.0)
    assert [m.topic for m in batch] == ["state"] + ["event"] * 5 + [
        f"reply/{i}" for i in (4997, 4998, 4999)
    ]
    assert box.dropped == 0 and box.dropped_replies == 4997
    box.put_event("event", b"5")
    box.failed(batch)  # each goes back to its own queue, first in line
    assert [m.payload for m in box.take(0.0) if not m.reply] == [
        b"x",
        b"0",
        b"1",
        b"2",
        b"3",
        b"4",
        b"5",
    ]
    assert box.dropped == 0


def test_queue_sizes_must_be_positive():
    with pytest.raises(ValueError):
        Outbox(max_replies=0)

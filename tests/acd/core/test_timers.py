"""Timer lanes on their own (acd.core.timers): order, ties, cancelling, reuse."""

from __future__ import annotations

from acd.core.timers import TimerLanes


class Clock(TimerLanes):
    def __init__(self) -> None:
        self.now = 0.0
        self.fired: list[tuple[float, str]] = []
        self._init_timers()

    def note(self, what: str) -> None:
        self.fired.append((self.now, what))


def test_timers_of_several_delays_fire_in_time_order_ties_first_scheduled_first():
    c = Clock()
    c._schedule(5.0, Clock.note, "a5")
    c._schedule(2.0, Clock.note, "b2")
    c.now = 3.0
    c._schedule(2.0, Clock.note, "c2")  # due at 5, like a5: after it
    c._schedule(0.5, Clock.note, "d05")
    assert c.next_deadline() == 2.0
    c._fire_due(10.0)
    assert c.fired == [(2.0, "b2"), (3.5, "d05"), (5.0, "a5"), (5.0, "c2")]
    assert c.now == 10.0 and c.next_deadline() is None


def test_a_cancelled_timer_never_fires_and_its_place_is_reused():
    c = Clock()
    gone = c._schedule(1.0, Clock.note, "gone")
    c._schedule(4.0, Clock.note, "kept")
    gone.cancel()
    assert gone.arg is None  # let go at once
    assert c.next_deadline() == 4.0  # the lane dropped its cancelled head
    assert c._schedule(1.0, Clock.note, "again") is gone  # reused, not allocated
    c._fire_due(4.0)
    assert c.fired == [(1.0, "again"), (4.0, "kept")]


def test_a_listed_timer_is_not_reused():
    c = Clock()
    held = c._schedule(1.0, Clock.note, "held")
    held.listed = True  # a call's list still holds it
    held.cancel()
    c.next_deadline()
    assert c._schedule(1.0, Clock.note, "new") is not held


def test_the_next_deadline_follows_timers_scheduled_after_none_was_left():
    c = Clock()
    assert c.next_deadline() is None
    late = c._schedule(9.0, Clock.note, "late")  # the next, with no lane looked at
    assert c.next_deadline() == 9.0
    c._schedule(3.0, Clock.note, "early")  # earlier than the next: the next now
    assert c.next_deadline() == 3.0
    c._fire_due(5.0)
    late.cancel()
    assert c.next_deadline() is None  # only cancelled timers left: none due
    c._schedule(7.0, Clock.note, "again")  # none live before it: the next at once
    assert c.next_deadline() == 12.0
    c._fire_due(20.0)
    assert c.fired == [(3.0, "early"), (12.0, "again")]

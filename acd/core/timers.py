"""The engine's timers: one FIFO lane per distinct delay.

Time never goes back, so timers of the same delay are scheduled in time order: each
lane is sorted as it is filled. Scheduling is an append; the next timer is the earliest
lane head, O(distinct delays in the configuration: ring timeout, wrap-up, display
interval ...) whatever the number of timers. Cancelling marks a timer; lanes drop
marked heads when they are looked at.

`TimerLanes` is a base class of the engine (its methods and fields are the engine's,
so that scheduling costs no call or attribute hop more than before it moved here).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from typing import Any


class Timer:
    """``fire(engine, arg)`` at ``at``: an unbound engine method and its one argument
    (no bound method or argument tuple to allocate and keep alive per timer).

    A timer that left its lane is reused for a later one unless ``listed`` (held in a
    call's timer list, which may still cancel it): every other holder (a call's ring
    timer, an agent's wrap-up timer, a queue's display timer) lets go of it when it fires
    or is cancelled. Reuse spares an allocation per ring and the cyclic GC's young
    collections a walk over timers."""

    __slots__ = ("arg", "at", "cancelled", "fire", "listed", "n")

    def __init__(self, at: float, n: int, fire: Callable[[Any, Any], None], arg: Any) -> None:
        self.at = at
        self.n = n  # scheduling order: ties fire first scheduled first
        self.fire = fire
        self.arg = arg
        self.cancelled = False
        self.listed = False

    def cancel(self) -> None:
        """Never fire; let go of the argument at once (the timer may wait in its lane
        for up to its delay: an ended call must not be kept alive that long)."""
        self.cancelled = True
        self.arg = None


class TimerLanes:
    """Timer lanes on the engine's clock ``now`` (see the module docstring)."""

    now: float

    def _init_timers(self) -> None:
        # one FIFO lane of timers per distinct delay: sorted by construction
        self._lanes: dict[float, deque[Timer]] = {}
        self._due = math.inf  # no live timer is due before this (cancelling only delays it)
        # the next timer (see _head): None when there is no live timer at all (then the
        # next one scheduled is the next); stale once it is cancelled (then the lanes are
        # looked at again)
        self._next: Timer | None = None
        self._spare: list[Timer] = []  # timers out of their lanes, to reuse (see Timer)
        self._n = 0  # scheduling order of timers (and, in the engine, arrival of calls)

    def next_deadline(self) -> float | None:
        """When the next timer falls due (epoch seconds), or None."""
        head = self._next
        if head is not None and head.cancelled:
            head = self._head()
        if head is None:
            self._due = math.inf
            return None
        self._due = head.at
        return head.at

    def _head(self) -> Timer | None:
        """The next timer due, or None: the earliest lane head. The answer is kept until
        that timer fires or is cancelled, or an earlier one comes."""
        best = self._next
        if best is None or not best.cancelled:
            return best
        best = None
        spare = self._spare
        for lane in self._lanes.values():
            while lane and lane[0].cancelled:
                gone = lane.popleft()
                if not gone.listed:
                    gone.arg = None
                    spare.append(gone)
            if lane:
                timer = lane[0]
                if best is None or timer.at < best.at or (timer.at == best.at and timer.n < best.n):
                    best = timer
        self._next = best
        return best

    def _fire_due(self, at: float) -> None:
        """Fire every timer due at or before ``at``, each at its time; then ``now = at``."""
        while (timer := self._head()) is not None and timer.at <= at:
            timer.cancelled = True  # fired: its lane drops it like a cancelled one
            self.now = timer.at
            timer.fire(self, timer.arg)
        self._due = timer.at if timer is not None else math.inf
        self.now = at

    def _schedule(self, delay: float, fire: Callable[[Any, Any], None], arg: Any) -> Timer:
        """Call ``fire(self, arg)`` (``fire`` an unbound method) ``delay`` s from now."""
        self._n += 1
        if self._spare:
            timer = self._spare.pop()
            timer.at = self.now + delay
            timer.n = self._n
            timer.fire = fire
            timer.arg = arg
            timer.cancelled = False
        else:
            timer = Timer(self.now + delay, self._n, fire, arg)
        lane = self._lanes.get(delay)
        if lane is None:
            lane = self._lanes[delay] = deque()
        lane.append(timer)
        if timer.at < self._due:
            self._due = timer.at
        head = self._next
        if head is None or timer.at < head.at:  # (a stale head is no later than any)
            self._next = timer
        return timer

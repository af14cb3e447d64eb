"""The controller's alarms as a pure state machine: which are active since when, and the
rules that raise and clear them. Time is passed in; the controller logs each change and
publishes it (``alarm/<name>``, docs/mqtt.md).

Rules besides the ones the controller sets by name (``link-down``, ``pin-locked-<agent>``):
``waiting-<queue>`` while more callers wait than ``[alarms] waiting_threshold``, and
``answer-rate-<queue>`` while the answer rate of the legs ended in the last
``answer_rate_window`` seconds (at least ``answer_rate_min_calls`` of them) is below the
target.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

from acd.config import AlarmsConfig, QueueConfig
from acd.core.commands import QueueFigures
from acd.runtime.topics import answer_rate_alarm, waiting_alarm


@dataclass(frozen=True, slots=True)
class AlarmChange:
    """An alarm raised (``since`` when it was first raised) or cleared (``since`` None)."""

    name: str
    since: float | None
    severity: str = "warning"
    message: str = ""
    value: float | None = None
    threshold: float | None = None

    @property
    def active(self) -> bool:
        return self.since is not None


class Alarms:
    """The active alarms of one controller and the rules over queue figures and ended
    legs that raise and clear them."""

    def __init__(self, config: AlarmsConfig, queues: Mapping[str, QueueConfig]) -> None:
        self.active: dict[str, float] = {}  # alarm -> raised at
        self._ended: dict[str, deque[tuple[float, bool]]] = {}  # queue -> (ended at, answered)
        self.reconfigure(config, queues)

    def reconfigure(self, config: AlarmsConfig, queues: Mapping[str, QueueConfig]) -> None:
        """New thresholds and queues (a reload); the windows of kept queues carry on."""
        self.config, self.queues = config, queues
        self._ended = {q: self._ended.get(q, deque()) for q in queues}

    def set(
        self,
        name: str,
        active: bool,
        at: float,
        severity: str = "warning",
        message: str = "",
        value: float | None = None,
        threshold: float | None = None,
    ) -> AlarmChange | None:
        """Raise ``name`` (again: same ``since``, new message) or clear it; None when a
        clear finds it not active."""
        if not active:
            if self.active.pop(name, None) is None:
                return None
            return AlarmChange(name, None)
        since = self.active.setdefault(name, at)
        return AlarmChange(name, since, severity, message, value, threshold)

    def queue_figures(self, f: QueueFigures, at: float) -> AlarmChange | None:
        """``waiting-<queue>`` raised or cleared by a queue's new figures, if it changes."""
        name, threshold = waiting_alarm(f.queue), self.config.waiting_threshold
        high = f.waiting > threshold
        if high == (name in self.active):
            return None
        message = f"{f.waiting} callers waiting in {f.queue} (threshold {threshold})"
        return self.set(name, high, at, "warning", message, f.waiting, threshold)

    def leg_ended(self, queue: str, at: float, answered: bool) -> AlarmChange | None:
        """``answer-rate-<queue>`` raised or cleared by an offered leg that ended at ``at``,
        if it changes. Legs of queues not configured are not judged."""
        ended = self._ended.get(queue)
        if ended is None:
            return None
        ended.append((at, answered))
        window = self.config.answer_rate_window
        while ended and ended[0][0] <= at - window:
            ended.popleft()
        target = self.config.target(self.queues[queue])
        rate = sum(a for _, a in ended) / len(ended)
        low = len(ended) >= self.config.answer_rate_min_calls and rate < target
        name = answer_rate_alarm(queue)
        if low == (name in self.active):
            return None
        message = (
            f"answer rate {rate:.1%} over the last {window / 60:g} min in {queue}"
            f" (target {target:.0%})"
        )
        return self.set(name, low, at, "warning", message, round(rate, 4), target)

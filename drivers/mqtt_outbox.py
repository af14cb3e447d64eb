"""What the MQTT bridge still has to publish: a pure, bounded structure (no I/O).

Retained topics keep only their latest payload (bursts coalesce, memory is bounded by
the number of topics); an empty payload clears a retained topic and is kept until the
clear has been published. Non-retained events wait in a bounded FIFO whose oldest
entries are dropped (and counted) when it is full. A retained topic may carry a
minimum interval between two publications (queue figures); time is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Outgoing:
    """One message to publish."""

    topic: str
    payload: bytes
    retain: bool


class Outbox:
    """Latest payload per retained topic, plus a bounded FIFO of events."""

    def __init__(self, max_events: int = 1000) -> None:
        if max_events < 1:
            raise ValueError("max_events must be at least 1")
        self.retained: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set of topics to publish
        self._interval: dict[str, float] = {}
        self._last_sent: dict[str, float] = {}
        self._events: deque[Outgoing] = deque()
        self.max_events = max_events
        self.dropped = 0

    def put_retained(self, topic: str, payload: bytes, min_interval: float = 0.0) -> None:
        """Set the latest payload of ``topic`` (``b""`` clears it on the broker)."""
        self.retained[topic] = payload
        self._dirty[topic] = None
        if min_interval > 0:
            self._interval[topic] = min_interval

    def put_event(self, topic: str, payload: bytes) -> None:
        """Queue a non-retained message; when full, the oldest is dropped and counted."""
        if len(self._events) >= self.max_events:
            self._events.popleft()
            self.dropped += 1
        self._events.append(Outgoing(topic, payload, False))

    @property
    def pending(self) -> int:
        """Messages waiting (retained topics to publish plus queued events)."""
        return len(self._dirty) + len(self._events)

    def snapshot(self, now: float) -> list[Outgoing]:
        """Every retained topic (pending clears included), for after a (re)connect."""
        self._dirty.clear()
        for topic in self._interval:
            self._last_sent[topic] = now
        return [Outgoing(t, p, True) for t, p in self.retained.items()]

    def take(self, now: float) -> list[Outgoing]:
        """Retained topics that are due, then every queued event; they leave the outbox."""
        out = []
        for topic in list(self._dirty):
            if topic in self._interval:
                if now < self._due(topic):
                    continue
                self._last_sent[topic] = now
            del self._dirty[topic]
            out.append(Outgoing(topic, self.retained[topic], True))
        out.extend(self._events)
        self._events.clear()
        return out

    def next_due(self) -> float | None:
        """When the earliest rate-limited topic still waiting becomes due (None: none)."""
        return min((self._due(t) for t in self._dirty if t in self._interval), default=None)

    def _due(self, topic: str) -> float:
        last = self._last_sent.get(topic)
        return float("-inf") if last is None else last + self._interval[topic]

    def sent(self, message: Outgoing) -> None:
        """``message`` reached the broker: a published clear is forgotten."""
        if message.retain and message.payload == b"" and self.retained.get(message.topic) == b"":
            del self.retained[message.topic]
            self._interval.pop(message.topic, None)
            self._last_sent.pop(message.topic, None)

    def failed(self, messages: list[Outgoing]) -> None:
        """Put back messages whose publication failed (events first in line, if room)."""
        for message in messages:
            if message.retain and message.topic in self.retained:
                self._dirty[message.topic] = None
        for message in reversed([m for m in messages if not m.retain]):
            if len(self._events) < self.max_events:
                self._events.appendleft(message)
            else:
                self.dropped += 1

"""What the MQTT bridge still has to publish: a pure, bounded structure (no I/O).

Retained topics keep only their latest payload (bursts coalesce, memory is bounded by
the number of topics); an empty payload clears a retained topic and is kept until the
clear has been published. Non-retained messages wait in two bounded FIFOs whose
oldest entries are dropped (and counted) when full: call events, and command replies
behind them (a flood of commands fills only the replies' queue, never pushes out a
call event). A retained topic may carry a minimum interval between two publications
(queue figures); time is passed in.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Outgoing:
    """One message to publish (``reply``: a command reply, sent after call events)."""

    topic: str
    payload: bytes
    retain: bool
    reply: bool = False


class _Fifo:
    """A bounded queue whose oldest entry is dropped, and counted, when it is full."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("queue sizes must be at least 1")
        self.items: deque[Outgoing] = deque()
        self.size = size
        self.dropped = 0

    def append(self, message: Outgoing) -> None:
        if len(self.items) >= self.size:
            self.items.popleft()
            self.dropped += 1
        self.items.append(message)

    def put_back(self, messages: list[Outgoing]) -> None:
        """Failed messages go back first in line, as far as there is room."""
        for message in reversed(messages):
            if len(self.items) < self.size:
                self.items.appendleft(message)
            else:
                self.dropped += 1

    def take(self) -> list[Outgoing]:
        out = list(self.items)
        self.items.clear()
        return out


class Outbox:
    """Latest payload per retained topic, plus bounded FIFOs of events and replies."""

    def __init__(self, max_events: int = 1000, max_replies: int = 100) -> None:
        self.retained: dict[str, bytes] = {}
        self._dirty: dict[str, None] = {}  # insertion-ordered set of topics to publish
        self._interval: dict[str, float] = {}
        self._last_sent: dict[str, float] = {}
        self._events = _Fifo(max_events)
        self._replies = _Fifo(max_replies)

    @property
    def dropped(self) -> int:
        """Call events dropped because their queue was full."""
        return self._events.dropped

    @property
    def dropped_replies(self) -> int:
        """Command replies dropped because their queue was full."""
        return self._replies.dropped

    def put_retained(self, topic: str, payload: bytes, min_interval: float = 0.0) -> None:
        """Set the latest payload of ``topic`` (``b""`` clears it on the broker)."""
        self.retained[topic] = payload
        self._dirty[topic] = None
        if min_interval > 0:
            self._interval[topic] = min_interval

    def put_event(self, topic: str, payload: bytes) -> None:
        """Queue a call event; when full, the oldest is dropped and counted."""
        self._events.append(Outgoing(topic, payload, False))

    def put_reply(self, topic: str, payload: bytes) -> None:
        """Queue a command reply (sent after the events); when full, the oldest is
        dropped and counted."""
        self._replies.append(Outgoing(topic, payload, False, reply=True))

    @property
    def pending(self) -> int:
        """Messages waiting (retained topics to publish plus queued events and replies)."""
        return len(self._dirty) + len(self._events.items) + len(self._replies.items)

    def snapshot(self, now: float) -> list[Outgoing]:
        """Every retained topic (pending clears included), for after a (re)connect."""
        self._dirty.clear()
        for topic in self._interval:
            self._last_sent[topic] = now
        return [Outgoing(t, p, True) for t, p in self.retained.items()]

    def take(self, now: float) -> list[Outgoing]:
        """Retained topics that are due, then every queued event, then every queued
        reply; they leave the outbox."""
        out = []
        for topic in list(self._dirty):
            if topic in self._interval:
                if now < self._due(topic):
                    continue
                self._last_sent[topic] = now
            del self._dirty[topic]
            out.append(Outgoing(topic, self.retained[topic], True))
        return out + self._events.take() + self._replies.take()

    def next_due(self) -> float | None:
        """When the earliest rate-limited topic still waiting becomes due (None: none)."""
        return min((self._due(t) for t in self._dirty if t in self._interval), default=None)

    def _due(self, topic: str) -> float:
        last = self._last_sent.get(topic)
        return float("-inf") if last is None else last + self._interval[topic]

    def sent(self, message: Outgoing) -> None:
        """``message`` reached the broker: a published clear is forgotten (unless the
        topic was set and cleared again meanwhile: that clear is still to send)."""
        if (
            message.retain
            and message.payload == b""
            and self.retained.get(message.topic) == b""
            and message.topic not in self._dirty
        ):
            del self.retained[message.topic]
            self._interval.pop(message.topic, None)
            self._last_sent.pop(message.topic, None)

    def failed(self, messages: list[Outgoing]) -> None:
        """Put back messages whose publication failed (first in line, if room)."""
        for message in messages:
            if message.retain and message.topic in self.retained:
                self._dirty[message.topic] = None
        self._events.put_back([m for m in messages if not m.retain and not m.reply])
        self._replies.put_back([m for m in messages if m.reply])

"""Test and benchmark peers: two link endpoints joined in memory by faulty channels, in
virtual time, and a toy router playing the controller in front of a simulated switch.

`LinkPair` plays both ends of a CTI link (a controller and a switch `Link`) over two
`Channel`s that can drop, duplicate and corrupt bytes and delay them, deterministically
from a seed. Time is virtual: `LinkPair.run` jumps from deadline to deadline.
"""

from __future__ import annotations

import random
from collections import OrderedDict, deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from protocols import messages as m
from protocols.link import Event, Link, Role
from protocols.messages import Message


@dataclass
class Channel:
    """One direction of a byte pipe with faults.

    Each chunk put in suffers, independently and with the given probabilities, one
    dropped byte run, one duplicated byte run and one flipped bit; it arrives ``delay``
    seconds later (plus up to ``jitter``), never overtaking earlier bytes. ``connected =
    False`` loses everything (the cable is pulled).
    """

    rng: random.Random
    drop: float = 0.0
    duplicate: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    connected: bool = True
    _in_flight: deque[tuple[float, bytes]] = field(default_factory=deque)
    _last_arrival: float = 0.0

    def put(self, data: bytes, now: float) -> None:
        """Send ``data`` at ``now``."""
        if not data or not self.connected:
            return
        data = bytearray(data)
        rng = self.rng
        if rng.random() < self.drop:
            start = rng.randrange(len(data))
            del data[start : start + rng.randint(1, 8)]
        if data and rng.random() < self.duplicate:
            start = rng.randrange(len(data))
            data[start:start] = data[start : start + rng.randint(1, 16)]
        if data and rng.random() < self.corrupt:
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        arrival = max(self._last_arrival, now + self.delay + rng.random() * self.jitter)
        self._last_arrival = arrival
        self._in_flight.append((arrival, bytes(data)))

    def take(self, now: float) -> bytes:
        """The bytes that have arrived by ``now``."""
        out = bytearray()
        while self._in_flight and self._in_flight[0][0] <= now:
            out += self._in_flight.popleft()[1]
        return bytes(out)

    def next_arrival(self) -> float | None:
        """When the next bytes arrive (None if nothing is in flight)."""
        return self._in_flight[0][0] if self._in_flight else None


class LinkPair:
    """A controller `Link` and a switch `Link` joined by two `Channel`s.

    ``link_options`` go to both links; ``faults`` (drop, duplicate, corrupt, delay,
    jitter) to both channels. Events each side produced are collected in
    `controller_events` and `switch_events`, what `send` sent in `sent_by_controller`
    and `sent_by_switch`.
    """

    def __init__(self, seed: int = 0, link_options: dict[str, Any] | None = None, **faults):
        rng = random.Random(seed)
        options = link_options or {}
        self.now = 0.0
        self.controller = Link(Role.CONTROLLER, **options)
        self.switch = Link(Role.SWITCH, **options)
        self.to_switch = Channel(random.Random(rng.random()), **faults)
        self.to_controller = Channel(random.Random(rng.random()), **faults)
        self.controller_events: list[Event] = []
        self.switch_events: list[Event] = []
        self.sent_by_controller: list[Message | bytes] = []
        self.sent_by_switch: list[Message | bytes] = []

    def start(self) -> None:
        """Start both ends and exchange what is ready."""
        self.switch.start(self.now)
        self.controller.start(self.now)
        self.pump()

    def send(self, side: str, message: Message | bytes) -> None:
        """Have ``side`` ("controller" or "switch") send a message."""
        if side == "controller":
            self.controller.send(message, self.now)
            self.sent_by_controller.append(message)
        else:
            self.switch.send(message, self.now)
            self.sent_by_switch.append(message)
        self.pump()

    def pump(self) -> None:
        """Move bytes that are due and collect events, until nothing more happens now."""
        for _ in range(10_000):
            self.to_switch.put(self.controller.data_to_send(), self.now)
            self.to_controller.put(self.switch.data_to_send(), self.now)
            to_switch = self.to_switch.take(self.now)
            to_controller = self.to_controller.take(self.now)
            if not to_switch and not to_controller:
                break
            if to_switch:
                self.switch.receive_data(to_switch, self.now)
            if to_controller:
                self.controller.receive_data(to_controller, self.now)
        else:
            raise RuntimeError("links still busy after 10000 exchanges")
        self._collect()

    def _collect(self) -> None:
        for link, events in (
            (self.controller, self.controller_events),
            (self.switch, self.switch_events),
        ):
            while (event := link.next_event()) is not None:
                events.append(event)

    def next_time(self) -> float | None:
        """The earliest timer or arrival of either side."""
        times = [
            self.controller.next_deadline(),
            self.switch.next_deadline(),
            self.to_switch.next_arrival(),
            self.to_controller.next_arrival(),
        ]
        pending = [t for t in times if t is not None]
        return min(pending) if pending else None

    def run(self, duration: float) -> None:
        """Advance virtual time by ``duration``, handling timers and arrivals on the way."""
        end = self.now + duration
        for _ in range(1_000_000):
            self.pump()
            when = self.next_time()
            if when is None or when > end:
                break
            self.now = max(self.now, when)
            self.controller.handle_timer(self.now)
            self.switch.handle_timer(self.now)
        else:
            raise RuntimeError("too many steps")
        self.now = end
        self.controller.handle_timer(self.now)
        self.switch.handle_timer(self.now)
        self.pump()


class ToyRouter:
    """Just enough of a controller to keep a simulated switch's calls flowing.

    Each offered call is queued (``QueueCall`` to ``queue``, then held once ``Queued``;
    with ``queue=None`` held at once) and rung at the longest idle agent whose extension
    starts with ``front``; a ring that ends unanswered makes its agent idle again. An
    escalation is transferred to the longest idle of ``specialists[group]`` (or of
    ``specialists["*"]``). `on_message` returns the requests to send for a message.
    """

    def __init__(
        self,
        specialists: Mapping[str, Collection[str]] | None = None,
        queue: str | None = "front-desk",
        front: str = "",
    ) -> None:
        self.idle: OrderedDict[str, None] = OrderedDict()
        self.queue: OrderedDict[int, None] = OrderedDict()
        self.ringing: dict[str, int] = {}
        self.specialists = specialists or {}
        self.queue_name = queue
        self.front = front
        self.invoke = 0

    def on_message(self, msg: Message) -> list[Message]:
        """The requests that answer ``msg`` (routing, transfers)."""
        out: list[Message] = []
        if isinstance(msg, m.Offered):
            if self.queue_name is None:
                self.queue[msg.call_id] = None
            else:
                out.append(self.request(m.QueueCall, msg.call_id, self.queue_name, 1))
        elif isinstance(msg, m.SnapshotDeviceResult) and msg.agent_id and not msg.calls:
            self.idle[msg.device] = None
        elif isinstance(msg, m.Queued):
            self.queue[msg.call_id] = None
        elif isinstance(msg, m.KeyReady | m.KeyWrapUpDone):
            self.idle[msg.device] = None
        elif isinstance(msg, m.KeyNotReady | m.KeyLogout | m.Delivered):
            self.idle.pop(msg.device, None)
        elif isinstance(msg, m.Established):
            self.ringing.pop(msg.device, None)
        elif isinstance(msg, m.ConnectionCleared):
            self.queue.pop(msg.call_id, None)
            if self.ringing.pop(msg.device, None) is not None:
                self.idle[msg.device] = None  # the ring ended unanswered
        elif isinstance(msg, m.KeyEscalate):
            group = self.specialists.get(msg.group) or self.specialists.get("*", ())
            free = next((d for d in self.idle if d in group), None)
            if free is not None:
                del self.idle[free]
                self.ringing[free] = msg.call_id
                out.append(self.request(m.SingleStepTransfer, msg.call_id, msg.device, free))
        while self.queue:
            device = next((d for d in self.idle if d.startswith(self.front)), None)
            if device is None:
                break
            call_id, _ = self.queue.popitem(last=False)
            del self.idle[device]
            self.ringing[device] = call_id
            out.append(self.request(m.DeflectCall, call_id, device))
        return out

    def request(self, cls: type[Message], *fields: object) -> Message:
        """A ``cls`` request with the next invoke id."""
        self.invoke = self.invoke % 0xFFFF + 1
        return cls(self.invoke, *fields)

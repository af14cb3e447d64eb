"""The sans-I/O link layer: reliable, ordered delivery of payloads over a noisy byte pipe.

In the style of h11: a `Link` owns no socket and reads no clock. The caller feeds it
received bytes (`receive_data`), hands it messages (`send`), writes out what
`data_to_send` returns, reads `next_event` until None, and calls `handle_timer` at
`next_deadline`. Every method that can act on time takes ``now`` (seconds, any epoch).

Rules (``docs/cti-protocol.md`` §4 is normative):

- I-frames carry sequence numbers ``ns`` mod 256; every I, ACK, NAK and HEARTBEAT frame
  carries ``nr``, the next sequence number its sender expects (a cumulative ACK).
- At most ``window`` I-frames are unacknowledged; the rest wait in order. After ``t1``
  seconds without progress every unacknowledged frame is sent again (go-back-N); after
  ``n2`` such retries the link is down. A gap in received numbers is answered by one NAK
  and the sender goes back to the NAKed frame. Duplicates are acknowledged and dropped.
- An idle sender sends a HEARTBEAT every ``heartbeat`` seconds. A side that has heard
  nothing for one heartbeat interval and ``t1`` polls (HEARTBEAT with ns = 1, answered at
  once by a HEARTBEAT) every ``t1`` seconds; a peer silent for three heartbeat intervals is dead
  and the link goes down. Polling keeps a lossy but live line from looking dead.
- The controller role brings the link up: it sends RESET every ``reset_interval`` seconds
  until a RESET-ACK comes back. The switch role answers RESET (at any time: a RESET while
  up means the peer restarted). Both sequence numbers restart at 0. A RESET that comes
  while up before any other frame is a repeat (its RESET-ACK was lost or the line
  doubled it): it is answered again and changes nothing.
- Messages survive the link going down: unacknowledged ones go back to the front of the
  queue, and everything queued is sent, in order, once the link is up again. Delivery is
  exactly once while the link stays up, at least once across a reset.
"""

from __future__ import annotations

import dataclasses
import enum
from collections import deque
from dataclasses import dataclass

from protocols.errors import DecodeError, LocalProtocolError
from protocols.framing import MAX_PAYLOAD, Ctrl, FrameDecoder, encode_frame
from protocols.messages import Message, decode_message, encode_message

WINDOW = 8
"""Default window: most I-frames sent and not yet acknowledged."""
T1 = 1.0
"""Default retransmission timer and poll interval, s."""
N2 = 3
"""Default retransmissions without progress before the link is down."""
HEARTBEAT = 5.0
"""Default idle time before a HEARTBEAT, s (3 x this of silence: link down)."""
RESET_INTERVAL = 3.0
"""Default RESET repetition while the link is not up, s."""
# The one source of these defaults: the configuration (acd.config.LinkConfig), the
# simulated switch (firmware_sim.scenario.LinkSettings) and cti-protocol.md §4.2 (checked
# by tests/protocols/test_protocols_spec.py) take them from here.

SILENCE_INTERVALS = 3
"""Heartbeat intervals of silence after which the peer is declared dead."""
POLL = 1
"""``ns`` of a HEARTBEAT that asks the peer to answer at once with a HEARTBEAT."""


class Role(enum.Enum):
    """Which end of the link: the controller brings the link up, the switch answers."""

    CONTROLLER = "controller"
    SWITCH = "switch"


class LinkState(enum.Enum):
    """State of a `Link` (see the state diagram in the specification)."""

    IDLE = "idle"  # not started
    RESETTING = "resetting"  # controller: RESET sent, waiting for RESET-ACK
    WAITING = "waiting"  # switch: waiting for a RESET
    UP = "up"


@dataclass(frozen=True, slots=True)
class LinkUp:
    """The link is up: messages flow."""


@dataclass(frozen=True, slots=True)
class LinkDown:
    """The link went down; ``reason`` says why."""

    reason: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message arrived intact and in order; ``payload`` is its encoded form."""

    message: Message
    payload: bytes


@dataclass(frozen=True, slots=True)
class BadMessage:
    """An intact, in-order payload that is not a valid message (it is acknowledged)."""

    payload: bytes
    error: str


Event = LinkUp | LinkDown | MessageReceived | BadMessage


@dataclass(slots=True)
class LinkStats:
    """Counters of one link endpoint."""

    frames_in: int = 0
    frames_out: int = 0
    messages_in: int = 0
    messages_out: int = 0
    retransmits: int = 0
    naks_in: int = 0
    naks_out: int = 0
    duplicates: int = 0
    out_of_order: int = 0
    crc_errors: int = 0
    length_errors: int = 0
    dropped_bytes: int = 0
    ignored_frames: int = 0
    link_downs: int = 0


class Link:
    """One end of the CTI link (see the module docstring for the rules)."""

    def __init__(
        self,
        role: Role | str,
        window: int = WINDOW,
        t1: float = T1,
        n2: int = N2,
        heartbeat: float = HEARTBEAT,
        reset_interval: float = RESET_INTERVAL,
        max_queue: int = 4096,
    ) -> None:
        if not 1 <= window <= 16:
            raise LocalProtocolError(f"window must be 1..16, not {window}")
        if t1 <= 0 or heartbeat <= 0 or reset_interval <= 0 or n2 < 1:
            raise LocalProtocolError("t1, heartbeat and reset_interval must be > 0, n2 >= 1")
        self.role = Role(role)
        self.window = window
        self.t1 = t1
        self.n2 = n2
        self.heartbeat = heartbeat
        self.reset_interval = reset_interval
        self.max_queue = max_queue
        self.state = LinkState.IDLE
        self._decoder = FrameDecoder()
        self._out = bytearray()
        self._events: deque[Event] = deque()
        self._queue: deque[bytes] = deque()  # payloads not yet sent in this link session
        self._unacked: deque[bytes] = deque()  # sent, unacknowledged; first has number _va
        self._va = 0  # oldest unacknowledged sequence number
        self._vs = 0  # next sequence number to send
        self._vr = 0  # next sequence number expected
        self._ack_pending = False
        self._nak_sent = False
        self._retries = 0
        self._t1_deadline: float | None = None
        self._reset_deadline: float | None = None
        self._last_sent = 0.0
        self._last_received = 0.0
        self._last_poll = float("-inf")
        self._heard_since_up = False  # a frame other than RESET came since the link went up
        self._stats = LinkStats()

    # --- public API -------------------------------------------------------------

    @property
    def is_up(self) -> bool:
        """True while messages can flow."""
        return self.state is LinkState.UP

    @property
    def stats(self) -> LinkStats:
        """A snapshot of the counters."""
        d = self._decoder
        return dataclasses.replace(
            self._stats,
            crc_errors=d.bad_crc,
            length_errors=d.bad_length,
            dropped_bytes=d.dropped_bytes,
        )

    @property
    def queued(self) -> int:
        """Messages accepted by `send` and not yet acknowledged by the peer."""
        return len(self._queue) + len(self._unacked)

    def start(self, now: float) -> None:
        """Begin: the controller sends RESET, the switch waits for one."""
        if self.state is not LinkState.IDLE:
            raise LocalProtocolError("link already started")
        self._last_received = now
        if self.role is Role.CONTROLLER:
            self._send_reset(now)
        else:
            self.state = LinkState.WAITING

    def send(self, item: Message | bytes, now: float) -> None:
        """Queue a message (or an encoded payload) for reliable, ordered delivery."""
        payload = encode_message(item) if isinstance(item, Message) else item
        if not isinstance(payload, bytes | bytearray):
            raise LocalProtocolError(f"cannot send {item!r}: not a message or bytes")
        if len(payload) > MAX_PAYLOAD:
            raise LocalProtocolError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
        if self.queued >= self.max_queue:
            raise LocalProtocolError(f"send queue full ({self.max_queue} messages)")
        self._queue.append(bytes(payload))
        if self.state is LinkState.UP:
            self._fill_window(now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Process bytes received from the peer (any chunking)."""
        for frame in self._decoder.feed(data):
            self._stats.frames_in += 1
            self._last_received = now
            ctrl = frame.ctrl
            if ctrl == Ctrl.RESET:
                self._on_reset(now)
            elif ctrl == Ctrl.RESET_ACK:
                self._on_reset_ack(now)
            elif self.state is not LinkState.UP or ctrl not in _LINK_CTRLS:
                self._stats.ignored_frames += 1
            else:
                self._heard_since_up = True
                self._on_ack(frame.nr, now)
                if ctrl == Ctrl.INFO:
                    self._on_info(frame.ns, frame.payload)
                elif ctrl == Ctrl.NAK:
                    self._stats.naks_in += 1
                    self._go_back(now)
                elif ctrl == Ctrl.HEARTBEAT and frame.ns == POLL:
                    self._emit(Ctrl.HEARTBEAT, 0, now)
                self._fill_window(now)

    def data_to_send(self) -> bytes:
        """The bytes to write to the peer now (empty if none)."""
        if self._ack_pending:
            self._emit(Ctrl.ACK, 0, None)
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_event(self) -> Event | None:
        """The next event, or None when there is none."""
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next be called (None: no timer is running)."""
        if self.state is LinkState.RESETTING:
            return self._reset_deadline
        if self.state is not LinkState.UP:
            return None
        deadline = min(
            self._last_sent + self.heartbeat,
            self._poll_deadline(),
            self._last_received + SILENCE_INTERVALS * self.heartbeat,
        )
        if self._t1_deadline is not None:
            deadline = min(deadline, self._t1_deadline)
        return deadline

    def handle_timer(self, now: float) -> None:
        """Act on every deadline that has passed at ``now``."""
        if self.state is LinkState.RESETTING:
            if self._reset_deadline is not None and now >= self._reset_deadline:
                self._send_reset(now)
            return
        if self.state is not LinkState.UP:
            return
        if now >= self._last_received + SILENCE_INTERVALS * self.heartbeat:
            self._down("peer silent", now)
            return
        if self._t1_deadline is not None and now >= self._t1_deadline:
            self._retries += 1
            if self._retries > self.n2:
                self._down(f"no acknowledgement after {self.n2} retries", now)
                return
            self._go_back(now)
        if now >= self._poll_deadline():
            self._emit(Ctrl.HEARTBEAT, POLL, now)
            self._last_poll = now
        elif now >= self._last_sent + self.heartbeat:
            self._emit(Ctrl.HEARTBEAT, 0, now)

    def _poll_deadline(self) -> float:
        # A peer's heartbeat is due H after its last frame: it gets T1 to arrive, so that
        # two ends with the same H keep each other alive with heartbeats, not polls.
        return max(self._last_received + self.heartbeat + self.t1, self._last_poll + self.t1)

    # --- frames in --------------------------------------------------------------

    def _on_reset(self, now: float) -> None:
        if self.state is LinkState.UP and not self._heard_since_up:
            self._emit(Ctrl.RESET_ACK, 0, now)
            return
        if self.state is LinkState.UP:
            self._down("peer reset", now)
        self._restart(now)
        self._emit(Ctrl.RESET_ACK, 0, now)
        self._up(now)

    def _on_reset_ack(self, now: float) -> None:
        if self.state is not LinkState.RESETTING:
            self._stats.ignored_frames += 1
            return
        self._restart(now)
        self._up(now)

    def _on_ack(self, nr: int, now: float) -> None:
        acked = (nr - self._va) & 0xFF
        if acked == 0:
            return
        if acked > len(self._unacked):  # acknowledges frames never sent: stale or bogus
            self._stats.ignored_frames += 1
            return
        for _ in range(acked):
            self._unacked.popleft()
        self._va = nr
        self._retries = 0
        self._t1_deadline = now + self.t1 if self._unacked else None

    def _on_info(self, ns: int, payload: bytes) -> None:
        if ns == self._vr:
            self._vr = (ns + 1) & 0xFF
            self._ack_pending = True
            self._nak_sent = False
            self._stats.messages_in += 1
            try:
                self._events.append(MessageReceived(decode_message(payload), payload))
            except DecodeError as exc:
                self._events.append(BadMessage(payload, str(exc)))
        elif (self._vr - ns) & 0xFF <= 128:  # behind: already delivered
            self._stats.duplicates += 1
            self._ack_pending = True
        else:  # ahead: one was lost, ask for it once
            self._stats.out_of_order += 1
            if not self._nak_sent:
                self._nak_sent = True
                self._stats.naks_out += 1
                self._emit(Ctrl.NAK, 0, None)

    # --- frames out -------------------------------------------------------------

    def _emit(self, ctrl: Ctrl, ns: int, now: float | None, payload: bytes = b"") -> None:
        self._out += encode_frame(ctrl, ns, self._vr, payload)
        self._stats.frames_out += 1
        if ctrl in _LINK_CTRLS:
            self._ack_pending = False
        if now is not None:
            self._last_sent = now

    def _fill_window(self, now: float) -> None:
        while self._queue and len(self._unacked) < self.window:
            payload = self._queue.popleft()
            self._unacked.append(payload)
            self._emit(Ctrl.INFO, self._vs, now, payload)
            self._vs = (self._vs + 1) & 0xFF
            self._stats.messages_out += 1
            if self._t1_deadline is None:
                self._t1_deadline = now + self.t1

    def _go_back(self, now: float) -> None:
        """Send every unacknowledged frame again, oldest first."""
        for offset, payload in enumerate(self._unacked):
            self._emit(Ctrl.INFO, (self._va + offset) & 0xFF, now, payload)
            self._stats.retransmits += 1
        self._t1_deadline = now + self.t1 if self._unacked else None

    # --- state changes ----------------------------------------------------------

    def _send_reset(self, now: float) -> None:
        self.state = LinkState.RESETTING
        self._emit(Ctrl.RESET, 0, now)
        self._reset_deadline = now + self.reset_interval

    def _restart(self, now: float) -> None:
        """New link session: unacknowledged messages go back to the queue's front."""
        self._queue.extendleft(reversed(self._unacked))
        self._unacked.clear()
        self._va = self._vs = self._vr = 0
        self._retries = 0
        self._t1_deadline = None
        self._ack_pending = False
        self._nak_sent = False
        self._last_received = now

    def _up(self, now: float) -> None:
        self.state = LinkState.UP
        self._heard_since_up = False
        self._reset_deadline = None
        self._events.append(LinkUp())
        self._fill_window(now)

    def _down(self, reason: str, now: float) -> None:
        self._stats.link_downs += 1
        self._events.append(LinkDown(reason))
        self._restart(now)
        if self.role is Role.CONTROLLER:
            self._send_reset(now)
        else:
            self.state = LinkState.WAITING


_LINK_CTRLS = frozenset((Ctrl.INFO, Ctrl.ACK, Ctrl.NAK, Ctrl.HEARTBEAT))
"""Frames that flow only while the link is up; each carries ``nr`` (an acknowledgement)."""

"""Replay of a link capture: the decoded timeline, filters, and the engine diff (pure).

`Timeline` turns captured chunks ``(t, direction, bytes)`` into `Entry` values: one per
frame (time, direction, link control, sequence numbers, operation and fields) and one
per problem (bytes outside frames, bad CRC or length, undecodable payload, damaged
capture line). It follows the sequence numbers of both directions as the link layer
does, so a retransmitted I-frame is marked ``duplicate`` and only the messages the peer
really took in are ``delivered``. Nothing here reads a file: the CLI feeds it.

`engine_requests` feeds the captured switch bytes through a controller-side link, the
bridge and a fresh engine; `engine_diff` aligns the requests it sent with those the live
controller sent (invoke ids aside) and lists the ones only one side sent.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter, sub
from typing import Any

from acd.config import Config
from acd.core.commands import VerifyPin
from acd.core.events import PinChecked
from acd.core.pins import Pin, verify_pin
from acd.runtime.clock import Clock
from protocols.errors import ProtocolError
from protocols.framing import Ctrl, Frame, FrameDecoder
from protocols.link import Link, LinkDown, LinkUp, MessageReceived
from protocols.messages import Message, decode_message, message_name, message_to_dict

SOURCES = {"rx": "switch", "tx": "controller"}
"""Who sent the bytes of each capture direction."""


@dataclass(slots=True)
class Entry:
    """One line of the timeline: a frame, or an error (``error`` set, ``ctrl`` None)."""

    t: float
    d: str
    ctrl: str | None = None
    ns: int | None = None
    nr: int | None = None
    op: str | None = None
    fields: dict[str, Any] | None = None
    note: str | None = None
    error: str | None = None
    message: Message | None = field(default=None, repr=False, compare=False)

    @property
    def delivered(self) -> bool:
        """A message the receiving side took in (not a duplicate, not out of order)."""
        return self.message is not None and self.note is None

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (keys with no value left out)."""
        out: dict[str, Any] = {"t": self.t, "d": self.d}
        for key in ("ctrl", "ns", "nr", "op", "fields", "note", "error"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


_garbage = attrgetter("dropped_bytes", "bad_crc", "bad_length")
"""A `FrameDecoder`'s counts of what it dropped."""


def _ctrl_name(ctrl: int) -> str:
    return Ctrl(ctrl).name if ctrl in Ctrl._value2member_map_ else f"0x{ctrl:02x}"


class Timeline:
    """Decodes captured chunks into entries, one direction's byte stream at a time."""

    def __init__(self) -> None:
        self._decoders = {"rx": FrameDecoder(), "tx": FrameDecoder()}
        self._expected = {"rx": 0, "tx": 0}  # next I-frame number each side's peer takes

    def feed(self, t: float, d: str, data: bytes) -> list[Entry]:
        """Entries for the bytes ``data`` seen at ``t`` in direction ``d`` (rx or tx)."""
        decoder = self._decoders[d]
        before = _garbage(decoder)
        frames = decoder.feed(data)
        dropped, crc, length = map(sub, _garbage(decoder), before)
        entries: list[Entry] = []
        if dropped:
            entries.append(Entry(t, d, error=f"{dropped} bytes outside frames dropped"))
        if crc:
            entries.append(Entry(t, d, error=f"{crc} frame(s) with a bad CRC dropped"))
        if length:
            entries.append(Entry(t, d, error=f"{length} frame(s) with a bad length dropped"))
        entries.extend(self._frame(t, d, frame) for frame in frames)
        return entries

    @staticmethod
    def damaged(t: float, where: str, error: str) -> Entry:
        """An entry for a capture line that could not be read."""
        return Entry(t, "-", error=f"{where}: {error}")

    def _frame(self, t: float, d: str, frame: Frame) -> Entry:
        entry = Entry(t, d, _ctrl_name(frame.ctrl), frame.ns, frame.nr)
        if frame.ctrl in (Ctrl.RESET, Ctrl.RESET_ACK):
            self._expected = {"rx": 0, "tx": 0}
        if frame.ctrl != Ctrl.INFO:
            return entry
        try:
            entry.message = decode_message(frame.payload)
        except ProtocolError as exc:
            entry.error = f"{exc} (payload {frame.payload.hex()})"
        else:
            entry.op = message_name(entry.message)
            entry.fields = message_to_dict(entry.message)
        expected = self._expected[d]
        if frame.ns == expected:
            self._expected[d] = (expected + 1) & 0xFF
        elif (expected - frame.ns) & 0xFF <= 128:
            entry.note = "duplicate"
        else:
            entry.note = "out of order"
        return entry


def _devices(fields: dict[str, Any]) -> set[str]:
    found = {fields[k] for k in ("device", "from_device", "to_device") if k in fields}
    found.update(fields.get("devices", ()))
    found.update(c["device"] for c in fields.get("calls", ()))
    return found


def _calls(fields: dict[str, Any]) -> set[int]:
    found = {fields["call_id"]} if "call_id" in fields else set()
    found.update(c["call_id"] for c in fields.get("calls", ()))
    return found


@dataclass(frozen=True)
class Filter:
    """Which entries to show: by call id, device or operation (link control names too).

    With no criterion every entry passes; with one, only the frames that match it
    (errors are shown only when nothing is filtered).
    """

    call: int | None = None
    device: str | None = None
    op: str | None = None

    @property
    def active(self) -> bool:
        return self.call is not None or self.device is not None or self.op is not None

    def __call__(self, entry: Entry) -> bool:
        if not self.active:
            return True
        if entry.ctrl is None:
            return False
        fields = entry.fields or {}
        if self.call is not None and self.call not in _calls(fields):
            return False
        if self.device is not None and self.device not in _devices(fields):
            return False
        name = (entry.op or entry.ctrl).lower()
        return self.op is None or name == self.op.lower()


def format_entry(entry: Entry, clock: str) -> str:
    """One timeline line: ``clock`` (the caller formats the time), who sent, what."""
    who = SOURCES.get(entry.d, "capture")
    arrow = {"rx": "<-", "tx": "->"}.get(entry.d, "!!")
    if entry.ctrl is None:
        return f"{clock} {arrow} {who:<10} ERROR {entry.error}"
    text = f"{clock} {arrow} {who:<10} {entry.ctrl:<9} ns={entry.ns:<3} nr={entry.nr:<3}"
    if entry.op is not None:
        assert entry.fields is not None
        args = " ".join(f"{k}={_short(v)}" for k, v in entry.fields.items())
        text += f" {entry.op} {args}"
    if entry.error is not None:
        text += f" ERROR {entry.error}"
    if entry.note is not None:
        text += f" [{entry.note}]"
    return text.rstrip()


def _short(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if (not value or " " in value) else value
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_short(v)}" for k, v in value.items()) + "}"
    return str(value)


def summary(entries: Iterable[Entry]) -> dict[str, int]:
    """Counts of frames, messages each way, duplicates and errors."""
    counts = {"frames": 0, "from_switch": 0, "to_switch": 0, "duplicates": 0, "errors": 0}
    for e in entries:
        if e.ctrl is not None:
            counts["frames"] += 1
        if e.delivered:
            counts["from_switch" if e.d == "rx" else "to_switch"] += 1
        if e.note == "duplicate":
            counts["duplicates"] += 1
        if e.error is not None:
            counts["errors"] += 1
    return counts


# --- engine replay ----------------------------------------------------------------

_RESYNC_REQUESTS = ("MonitorStart", "SnapshotCalls", "SnapshotDevice")


@dataclass(frozen=True)
class Difference:
    """A request only one side sent: ``side`` is ``captured`` (the live controller sent
    it, the replayed engine did not) or ``engine`` (the other way round)."""

    t: float
    side: str
    op: str
    fields: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"t": self.t, "side": self.side, "op": self.op, "fields": self.fields}

    def describe(self, clock: Callable[[float], str]) -> str:
        who = "only in the capture" if self.side == "captured" else "only from the engine"
        args = " ".join(f"{k}={_short(v)}" for k, v in self.fields.items() if k != "invoke_id")
        return f"{clock(self.t)} {who:<20} {self.op} {args}".rstrip()


def captured_extensions(entries: Iterable[Entry]) -> tuple[str, ...]:
    """The handsets the controller snapshotted at its first link up (before any agent
    was logged in there were exactly its configured extensions)."""
    found: list[str] = []
    for e in entries:
        if e.d != "tx" or not e.delivered:
            continue
        if e.op not in _RESYNC_REQUESTS:
            if found:
                break
            continue
        if e.op == "SnapshotDevice":
            assert e.fields is not None
            found.append(e.fields["device"])
    return tuple(found)


UNIX_TIME = Clock(0.0, 0.0)
"""Engine time that is capture (Unix) time: a controller on the real clock."""


def capture_engine_time(path: str) -> Clock:
    """The live engine's clock as a function of capture (Unix) time, recorded in the
    header of the capture at ``path`` (its oldest file); Unix time itself when the
    header has none (a controller on the real clock)."""
    from drivers.capture import capture_files

    for file in capture_files(path)[:1]:
        with open(file, encoding="utf-8", errors="replace") as fh:
            first = fh.readline()
        try:
            clock = json.loads(first)["engine_clock"]
            return Clock(float(clock["engine"]), float(clock["unix"]), float(clock["speed"]))
        except (ValueError, KeyError, TypeError):
            break
    return UNIX_TIME


def engine_requests(
    chunks: Iterable[tuple[float, str, bytes]],
    config: Config,
    extensions: tuple[str, ...] = (),
    clock: Clock = UNIX_TIME,
) -> list[tuple[float, Message]]:
    """The requests a fresh engine sends when it receives the captured switch bytes.

    The switch's bytes go through a controller-side `Link` at their captured times (so
    link ups, downs and delivered messages are the live controller's), then through a
    `Bridge` and its `Engine` on the live engine's ``clock`` (see `capture_engine_time`:
    a controller on a simulated switch's clock judged opening hours on that clock);
    engine and request timers fire at their deadlines between chunks. Request times are
    capture times. A PIN check is answered when the live controller answered it: at its
    next word to the handset where the login was keyed (the lamp of a login, or "Wrong
    PIN"), as the capture's ``tx`` stream shows; a blanked PIN counts as right.
    """
    from acd.core.engine import Engine
    from acd.runtime.bridge import Bridge, Step, controller_link

    cfg = config.link
    link: Link | None = None
    bridge: Bridge | None = None
    sent: list[tuple[float, Message]] = []
    checks: list[VerifyPin] = []  # PIN checks the live controller had not answered yet
    words = FrameDecoder()  # the live controller's bytes: when it answered a check

    def take(step: Step, now: float) -> None:
        assert link is not None and bridge is not None
        checks.extend(step.checks)
        step.checks.clear()
        for request in step.requests:
            sent.append((now, request))
            link.send(request, now)

    def pump(now: float) -> None:
        assert link is not None and bridge is not None
        while (event := link.next_event()) is not None:
            if isinstance(event, LinkUp):
                take(bridge.link_up(clock.at(now)), now)
            elif isinstance(event, LinkDown):
                bridge.link_down()
            elif isinstance(event, MessageReceived):
                take(bridge.from_switch(event.message, clock.at(now)), now)
        link.data_to_send()  # what the live controller wrote is in the capture

    def run_timers(until: float) -> None:
        assert link is not None and bridge is not None
        for _ in range(10_000_000):
            engine_due = bridge.next_deadline()  # engine time
            engine_at = None if engine_due is None else clock.when(engine_due)
            due = [d for d in (link.next_deadline(), engine_at) if d is not None]
            if not due or min(due) > until:
                return
            now = min(due)
            link.handle_timer(now)
            pump(now)
            # exactly the engine's deadline when it is due (no rounding through the clock)
            engine_now = engine_due if engine_at == now else clock.at(now)
            take(bridge.advance(engine_now), now)
        raise RuntimeError("engine replay: timers do not advance")

    for t, d, data in chunks:
        if link is None or bridge is None:
            link = controller_link(cfg)  # as the controller sets them up
            bridge = Bridge.for_link(Engine(config, clock.at(t)), cfg, extensions)
            link.start(t)
        run_timers(t)
        if d == "rx":
            link.receive_data(data, t)
            pump(t)
        else:
            for device in _devices_told(words.feed(data)):
                for check in [c for c in checks if c.device == device]:
                    checks.remove(check)
                    ok = _verify_replayed(check.pin, check.pin_hash)
                    take(bridge.command(PinChecked(clock.at(t), check.check, ok)), t)
    return sent


def _devices_told(frames: Iterable[Frame]) -> Iterator[str]:
    """The handsets named by the requests in ``frames`` (of the controller)."""
    for frame in frames:
        if frame.ctrl == Ctrl.INFO:
            try:
                device = getattr(decode_message(frame.payload), "device", None)
            except ProtocolError:
                continue
            if device:
                yield device


def _verify_replayed(pin: Pin | str, pin_hash: str) -> bool:
    """A PIN blanked in the capture (all ``*``: the live controller checked it, the
    replay cannot) counts as right; any other is checked."""
    digits = pin.reveal() if isinstance(pin, Pin) else pin
    return (bool(digits) and set(digits) == {"*"}) or verify_pin(digits, pin_hash)


def _key(op: str | None, fields: dict[str, Any]) -> str:
    rest = {k: v for k, v in fields.items() if k != "invoke_id"}
    return f"{op} {json.dumps(rest, sort_keys=True)}"


def engine_diff(entries: list[Entry], engine_sent: list[tuple[float, Message]]) -> list[Difference]:
    """Where the engine's requests differ from the controller's captured ones, in order
    (invoke ids aside): the smallest set of requests only one side sent."""
    captured = [e for e in entries if e.d == "tx" and e.delivered]
    engine = [(t, message_name(msg), message_to_dict(msg)) for t, msg in engine_sent]
    ours = [_key(e.op, e.fields or {}) for e in captured]
    theirs = [_key(op, fields) for _, op, fields in engine]
    matcher = difflib.SequenceMatcher(None, ours, theirs, autojunk=False)
    diffs: list[Difference] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        for e in captured[i1:i2]:
            assert e.op is not None and e.fields is not None
            diffs.append(Difference(e.t, "captured", e.op, e.fields))
        for t, op, fields in engine[j1:j2]:
            diffs.append(Difference(t, "engine", op, fields))
    diffs.sort(key=lambda x: x.t)
    return diffs

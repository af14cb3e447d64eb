"""Faults on the wire, applied to the byte streams between the switch and the controller.

A `FaultSpec` names a fault and its parameters (from a scenario's ``[[faults]]``, from
``acd sim --fault KIND[:KEY=VALUE,...]`` or injected live); a `FaultInjector` applies
the active ones to the bytes going out (``outgoing``) and coming in (``incoming``).
Times given to the injector are wire seconds (real time, or virtual time in-process).
Kinds:

- ``bit-errors`` (rate: probability per bit), ``drop`` (rate: probability per byte):
  both directions, for ``duration`` seconds (default: the rest of the run);
- ``garbage`` (size bytes, every seconds): random bytes between frames;
- ``cable`` (duration): nothing passes either way, then the cable is plugged back;
- ``slow-ack`` (delay, duration): a slow switch: every frame it sends, and so every
  acknowledgement and response, leaves ``delay`` seconds late (order kept);
- ``ack-loss`` (rate, duration): acknowledgements go missing: ACK frames, either way,
  are lost with that probability (the sender's T1 timer retransmits);
- ``reboot``: the switch restarts (handled by the runner: link reset, calls lost).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, fields

from acd.config import Section
from acd.errors import AcdError
from protocols.framing import DLE, STX, Ctrl

KINDS = ("bit-errors", "drop", "garbage", "cable", "slow-ack", "ack-loss", "reboot")
PARAMETERS: dict[str, tuple[str, ...]] = {
    "bit-errors": ("rate", "duration"),
    "drop": ("rate", "duration"),
    "garbage": ("size", "every", "duration"),
    "cable": ("duration",),
    "slow-ack": ("delay", "duration"),
    "ack-loss": ("rate", "duration"),
    "reboot": (),
}
"""The parameters each kind of fault uses (besides ``at``)."""


def clock_text(seconds: float) -> str:
    """Seconds after midnight as ``HH:MM:SS``."""
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass(frozen=True)
class FaultSpec:
    """One fault: its kind, when it starts and its parameters."""

    kind: str
    at: float | None = None  # simulated clock (s after midnight); None: at once
    duration: float | None = None  # wire seconds; None: until the end of the run
    rate: float = 0.0  # bit-errors: per bit; drop: per byte; ack-loss: per ACK
    size: int = 32  # garbage: bytes per burst
    every: float | None = None  # garbage: s between bursts; None: a single burst
    delay: float = 2.0  # slow-ack: s added to every frame the switch sends

    def describe(self) -> str:
        """The parameters that apply to this kind, e.g. ``at 10:00:00, duration=5``
        (a cable pull has no rate; a fault without a duration lasts to the end)."""
        parts = [] if self.at is None else [f"at {clock_text(self.at)}"]
        for name in PARAMETERS[self.kind]:
            value = getattr(self, name)
            if value is not None:
                parts.append(f"{name}={value:g}")
        return ", ".join(parts)


def parse_clock(value: str) -> float:
    """``HH:MM`` or ``HH:MM:SS`` as seconds after midnight (ValueError if malformed)."""
    parts = value.split(":")
    try:
        numbers = [int(p) for p in parts]
    except ValueError:
        numbers = []
    if (
        len(numbers) not in (2, 3)
        or not 0 <= numbers[0] <= 24
        or not all(0 <= n < 60 for n in numbers[1:])
    ):
        raise ValueError(f"{value!r} is not a time of day HH:MM[:SS]")
    return float(sum(n * m for n, m in zip(numbers, (3600, 60, 1), strict=False)))


def clock_key(s: Section, name: str, default: str | None) -> float | None:
    """The time of day under key ``name`` of ``s`` (None if absent and no default)."""
    value = s.get(name, str, default)
    if value is None:
        return None
    try:
        return parse_clock(value)
    except ValueError as exc:
        raise s.error(name, str(exc)) from None


def fault_from_section(s: Section) -> FaultSpec:
    """A `FaultSpec` from a TOML table (or parsed ``--fault`` options)."""
    kind = s.get("kind", str, choices=KINDS)
    spec = FaultSpec(
        kind=kind,
        at=clock_key(s, "at", None),
        duration=s.get("duration", float, None, min=0.0),
        rate=s.get("rate", float, FaultSpec.rate, min=0.0, max=1.0),
        size=s.get("size", int, FaultSpec.size, min=1, max=65536),
        every=s.get("every", float, None, min=0.01),
        delay=s.get("delay", float, FaultSpec.delay, min=0.0),
    )
    s.done()
    if kind in ("bit-errors", "drop", "ack-loss") and spec.rate <= 0:
        raise s.error("rate", f"is required (> 0) for {kind}")
    if kind == "cable" and spec.duration is None:
        raise s.error("duration", "is required for cable")
    return spec


def parse_fault_option(text: str) -> FaultSpec:
    """``KIND[:KEY=VALUE,...]`` (the ``--fault`` option), e.g. ``cable:duration=5``."""
    kind, _, rest = text.partition(":")
    data: dict[str, object] = {"kind": kind}
    numeric = {f.name for f in fields(FaultSpec)} - {"kind", "at"}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise AcdError(f"--fault {text}: expected KEY=VALUE, got {item!r}")
        if key in numeric:
            try:
                data[key] = int(value) if key == "size" else float(value)
            except ValueError:
                raise AcdError(f"--fault {text}: {key} must be a number") from None
        else:
            data[key] = value
    return fault_from_section(Section(data, f"--fault {kind}"))


@dataclass
class FaultStats:
    """What the injector did."""

    bits_flipped: int = 0
    bytes_dropped: int = 0
    garbage_bytes: int = 0
    frames_delayed: int = 0
    acks_lost: int = 0
    cable_pulls: int = 0
    bytes_blocked: int = 0  # while the cable was out
    reboots: int = 0


@dataclass
class _Active:
    spec: FaultSpec
    until: float  # wire time the fault ends (inf: never)
    next_burst: float | None = None


@dataclass
class FaultInjector:
    """Applies the active faults to the byte streams; deterministic for its ``rng``."""

    rng: random.Random
    stats: FaultStats = field(default_factory=FaultStats)
    _active: list[_Active] = field(default_factory=list)
    _delayed: list[tuple[float, bytes]] = field(default_factory=list)
    _pending_garbage: bytearray = field(default_factory=bytearray)

    def activate(self, spec: FaultSpec, now: float) -> None:
        """Start ``spec`` at wire time ``now`` (``reboot`` is not a byte fault)."""
        if spec.kind == "reboot":
            raise ValueError("a reboot is handled by the runner, not on the byte stream")
        until = math.inf if spec.duration is None else now + spec.duration
        active = _Active(spec, until)
        if spec.kind == "cable":
            self.stats.cable_pulls += 1
        if spec.kind == "garbage":
            active.next_burst = now
        self._active.append(active)

    def cable_pulled(self, now: float) -> bool:
        """True while a ``cable`` fault is active."""
        return any(a.spec.kind == "cable" and now < a.until for a in self._active)

    def next_deadline(self) -> float | None:
        """When the injector next has something to do (a fault ends, a burst, an ACK)."""
        times = [t for t, _ in self._delayed]
        for a in self._active:
            times.append(a.until)
            if a.next_burst is not None:
                times.append(a.next_burst)
        finite = [t for t in times if math.isfinite(t)]
        return min(finite) if finite else None

    def handle_timer(self, now: float) -> None:
        """Expire faults and schedule garbage bursts due at ``now``."""
        for a in self._active:
            if a.next_burst is not None and a.next_burst <= now < a.until:
                burst = self.rng.randbytes(a.spec.size)
                self._pending_garbage += burst
                self.stats.garbage_bytes += len(burst)
                a.next_burst = now + a.spec.every if a.spec.every else None
        self._active = [
            a
            for a in self._active
            if now < a.until and (a.spec.kind != "garbage" or a.next_burst is not None)
        ]

    def outgoing(self, data: bytes, now: float) -> bytes:
        """What reaches the wire when the switch writes ``data`` at ``now``."""
        self.handle_timer(now)
        if self._pending_garbage:
            data = bytes(self._pending_garbage) + data
            self._pending_garbage.clear()
        for a in self._kind("ack-loss"):
            data = self._lose_acks(data, a.spec.rate)
        slow = self._kind("slow-ack")
        if data and (slow or self._delayed):  # never let new bytes overtake delayed ones
            due = now + max((a.spec.delay for a in slow), default=0.0)
            if self._delayed:
                due = max(due, self._delayed[-1][0])
            self.stats.frames_delayed += len(split_frames(data))
            self._delayed.append((due, data))
            data = b""
        while self._delayed and self._delayed[0][0] <= now:
            data += self._delayed.pop(0)[1]
        return self._line(data, now)

    def incoming(self, data: bytes, now: float) -> bytes:
        """What the switch receives when the wire delivers ``data`` at ``now``."""
        self.handle_timer(now)
        for a in self._kind("ack-loss"):
            data = self._lose_acks(data, a.spec.rate)
        return self._line(data, now)

    def _kind(self, kind: str) -> list[_Active]:
        return [a for a in self._active if a.spec.kind == kind]

    def _line(self, data: bytes, now: float) -> bytes:
        if self.cable_pulled(now):
            self.stats.bytes_blocked += len(data)
            return b""
        for a in self._kind("drop"):
            data = self._drop(data, a.spec.rate)
        for a in self._kind("bit-errors"):
            data = self._flip(data, a.spec.rate)
        return data

    def _gaps(self, n: int, p: float) -> list[int]:
        """Positions in range(n) hit by independent events of probability ``p``."""
        hits, i = [], -1
        log_q = math.log1p(-p) if p < 1 else -math.inf
        while True:
            i += 1 + (int(math.log(1.0 - self.rng.random()) / log_q) if p < 1 else 0)
            if i >= n:
                return hits
            hits.append(i)

    def _drop(self, data: bytes, rate: float) -> bytes:
        hits = set(self._gaps(len(data), rate))
        self.stats.bytes_dropped += len(hits)
        return bytes(b for i, b in enumerate(data) if i not in hits) if hits else data

    def _flip(self, data: bytes, rate: float) -> bytes:
        hits = self._gaps(8 * len(data), rate)
        if not hits:
            return data
        out = bytearray(data)
        for bit in hits:
            out[bit >> 3] ^= 1 << (bit & 7)
        self.stats.bits_flipped += len(hits)
        return bytes(out)

    def _lose_acks(self, data: bytes, rate: float) -> bytes:
        kept = bytearray()
        for frame in split_frames(data):
            is_ack = frame[:3] == bytes((DLE, STX, Ctrl.ACK))
            if is_ack and self.rng.random() < rate:
                self.stats.acks_lost += 1
            else:
                kept += frame
        return bytes(kept)


def split_frames(data: bytes) -> list[bytes]:
    """Cut a byte stream before each frame start (``DLE STX`` not preceded by a DLE pair)."""
    pieces, start, i = [], 0, 0
    while True:
        i = data.find(DLE, i)
        if i < 0 or i + 1 >= len(data):
            break
        if data[i + 1] == STX and i > start:
            pieces.append(data[start:i])
            start = i
        i += 2  # DLE DLE, DLE STX, DLE ETX: skip the pair
    pieces.append(data[start:])
    return [p for p in pieces if p]

"""Capture files: every byte in and out of the PBX link, with its time and direction.

A capture is a UTF-8 text file of JSON lines (``docs/cti-protocol.md``, "Capture file
format"). The first line is a header, each further line one chunk of bytes as it was
read from or written to the port::

    {"capture": "acd-cti", "version": 1, "started": 1795857600.0, "port": "/dev/ttyS0"}
    {"t": 1795857600.012345, "d": "rx", "x": "100204000000..."}
    {"t": 1795857600.013002, "d": "tx", "x": "100205000000..."}

``t`` is Unix time in seconds, ``d`` the direction seen from the controller (``rx``:
from the switch, ``tx``: to the switch) and ``x`` the bytes in hex. Agent PINs are
blanked by default (`PinBlanker`: each digit of a ``KeyLogin`` PIN becomes ``*``, frame
length and CRC stay valid; the header says ``"pins": "blanked"``). A controller whose
engine does not run on Unix time (``acd run --sim-clock``, ``--start``, ``--speed``)
puts its clock in the header: ``"engine_clock": {"unix": U, "engine": E, "speed": S}``,
engine time ``E + (t - U) * S`` (`acd.tools.replay` uses it). The files are
created 0600 (0640 with a group, `acd.files`). `CaptureWriter`
rotates by size: when ``file`` grows past ``max_bytes`` it becomes ``file.1`` (the
previous ``file.1`` becomes ``file.2``, and so on up to ``keep`` old files). `read_capture`
reads the oldest file first and never raises on a damaged line: it yields a
`CaptureError` for it and goes on.
"""

from __future__ import annotations

import json
import os
from binascii import crc_hqx
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from acd.errors import AcdError
from acd.files import open_private
from protocols.framing import DLE, ETX, HEADER_SIZE, OVERHEAD, STX, Ctrl
from protocols.messages import KeyLogin

FORMAT = "acd-cti"
VERSION = 1
_ALIASES = {"rx": "rx", "in": "rx", "tx": "tx", "out": "tx"}


def canonical_direction(value: str) -> str:
    """The canonical direction (``rx`` or ``tx``) of ``value`` (also ``in``/``out``)."""
    try:
        return _ALIASES[str(value).lower()]
    except KeyError:
        raise ValueError(f"direction must be rx or tx, not {value!r}") from None


@dataclass(frozen=True, slots=True)
class Chunk:
    """Bytes that crossed the port at time ``t`` in direction ``d`` (``rx`` or ``tx``)."""

    t: float
    d: str
    data: bytes


@dataclass(frozen=True, slots=True)
class CaptureError:
    """A line of a capture file that could not be read."""

    file: str
    line: int
    error: str


BLANK = ord("*")
"""What each byte of a PIN becomes in a capture."""
_START, _END, _DLE, _DLE_DLE = (
    bytes((DLE, STX)),
    bytes((DLE, ETX)),
    bytes((DLE,)),
    bytes((DLE, DLE)),
)
_MAX_HELD = 2 * (OVERHEAD + 0xFFFF) + 4


class PinBlanker:
    """Blanks the PIN of every ``KeyLogin`` frame in the switch's byte stream.

    ``feed(data)`` returns the bytes that can be written now: an unfinished frame is held
    back until its end arrives (so a PIN split across two reads is blanked too). The PIN
    bytes become ``*``; the frame keeps its length, and its CRC is recomputed when it was
    valid, so a replay decodes the frame as the controller did.
    """

    def __init__(self) -> None:
        self._held = bytearray()
        self.blanked = 0

    def feed(self, data: bytes) -> bytes:
        buf = self._held + data
        out = bytearray()
        pos = 0
        while pos < len(buf):
            start = buf.find(_START, pos)
            if start < 0:
                keep = 1 if buf[-1] == DLE else 0  # maybe the first half of DLE STX
                out += buf[pos : len(buf) - keep]
                pos = len(buf) - keep
                break
            out += buf[pos:start]
            end = self._end(buf, start + 2)
            if end is None:  # unfinished: held until its end comes
                pos = start
                if len(buf) - start > _MAX_HELD:
                    out += buf[start:]
                    pos = len(buf)
                break
            out += self._blank(bytes(buf[start:end]))
            pos = end
        self._held = buf[pos:]
        return bytes(out)

    @property
    def pending(self) -> int:
        """Bytes held back (an unfinished frame)."""
        return len(self._held)

    def flush(self) -> bytes:
        """The bytes held back, then none; an unfinished frame (which any reader drops:
        it may hold part of a PIN) is left out."""
        held, self._held = self._held, bytearray()
        return b"" if held.startswith(_START) else bytes(held)

    @staticmethod
    def _end(buf: bytearray, scan: int) -> int | None:
        """Where the frame begun before ``scan`` ends (after DLE ETX, or before a DLE
        that starts anything else), or None if its end has not arrived."""
        while True:
            dle = buf.find(_DLE, scan)
            if dle < 0 or dle + 1 >= len(buf):
                return None
            following = buf[dle + 1]
            if following == DLE:
                scan = dle + 2
            elif following == ETX:
                return dle + 2
            else:  # DLE STX or a broken frame: it ends here, as the decoder sees it
                return dle

    def _blank(self, frame: bytes) -> bytes:
        if not frame.endswith(_END):
            return frame
        body = bytearray(frame[2:-2].replace(_DLE_DLE, _DLE))
        if len(body) < OVERHEAD + 3 or body[0] != Ctrl.INFO or body[HEADER_SIZE] != KeyLogin.OPCODE:
            return frame
        crc_ok = crc_hqx(bytes(body[:-2]), 0xFFFF) == int.from_bytes(body[-2:], "big")
        i = HEADER_SIZE + 3  # opcode and invoke id
        for _ in range(2):  # device, agent id
            if i >= len(body) - 2:
                return frame
            i += 1 + body[i]
        if i >= len(body) - 2 or i + 1 + body[i] > len(body) - 2:
            return frame
        body[i + 1 : i + 1 + body[i]] = bytes([BLANK]) * body[i]
        if crc_ok:
            body[-2:] = crc_hqx(bytes(body[:-2]), 0xFFFF).to_bytes(2, "big")
        self.blanked += 1
        return _START + bytes(body).replace(_DLE, _DLE_DLE) + _END


class CaptureWriter:
    """Appends chunks to a capture file, rotating by size.

    Use it as the serial link's capture hook: ``writer(direction, data, time)``. Each
    chunk is flushed at once, so a crash loses nothing already written (but for an
    unfinished frame from the switch, held until its end to blank a PIN in it).
    ``blank_pins=False`` keeps PINs, for a lab; ``group`` as in `acd.files`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        max_bytes: int = 10_000_000,
        keep: int = 5,
        port: str = "",
        blank_pins: bool = True,
        group: str | None = None,
        engine_clock: dict[str, float] | None = None,
    ) -> None:
        if max_bytes < 1024:
            raise AcdError(f"capture: max_bytes must be at least 1024, not {max_bytes}")
        if keep < 0:
            raise AcdError(f"capture: keep must be >= 0, not {keep}")
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.keep = keep
        self.port = port
        self.engine_clock = engine_clock
        self.rotations = 0
        self.group = group
        self.blanker = PinBlanker() if blank_pins else None
        self._last_t = 0.0
        self._fh: IO[str] | None = None
        self._size = 0

    def __call__(self, direction: str, data: bytes, t: float) -> None:
        self.write(direction, data, t)

    def write(self, direction: str, data: bytes, t: float) -> None:
        """Record ``data`` seen at ``t`` (Unix seconds) going ``rx`` or ``tx``."""
        d = canonical_direction(direction)
        if d == "rx" and self.blanker is not None:
            data = self.blanker.feed(data)
        self._last_t = t
        if data:
            self._write_line(d, data, t)

    def _write_line(self, d: str, data: bytes, t: float) -> None:
        line = json.dumps({"t": round(t, 6), "d": d, "x": data.hex()}) + "\n"
        if self._fh is None:
            self._open(t)
        elif self._size + len(line) > self.max_bytes:
            self._rotate(t)
        assert self._fh is not None
        self._fh.write(line)
        self._fh.flush()
        self._size += len(line)

    def close(self) -> None:
        """Write what the blanker holds (see `PinBlanker.flush`) and close the file (a
        later write opens it again)."""
        if self.blanker is not None and (held := self.blanker.flush()):
            self._write_line("rx", held, self._last_t)
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self, t: float) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open_private(self.path, self.group)
        except OSError as exc:
            raise AcdError(f"capture: cannot write {self.path}: {exc.strerror}") from None
        self._size = self._fh.tell()  # opened for appending: at the end
        if not self._size:
            header = {"capture": FORMAT, "version": VERSION, "started": t, "port": self.port}
            if self.blanker is not None:
                header["pins"] = "blanked"
            if self.engine_clock is not None:
                header["engine_clock"] = self.engine_clock
            line = json.dumps(header) + "\n"
            self._fh.write(line)
            self._size += len(line)

    def _rotate(self, t: float) -> None:
        self.close()
        if self.keep == 0:
            self.path.unlink(missing_ok=True)
        else:
            for n in range(self.keep - 1, 0, -1):
                older = _numbered(self.path, n)
                if older.exists():
                    older.replace(_numbered(self.path, n + 1))
            self.path.replace(_numbered(self.path, 1))
        self.rotations += 1
        self._open(t)


def _numbered(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def capture_files(path: str | os.PathLike[str]) -> list[Path]:
    """The files of a rotated capture, oldest first (``file.N`` ... ``file.1``, ``file``)."""
    base = Path(path)
    older = []
    n = 1
    while _numbered(base, n).exists():
        older.append(_numbered(base, n))
        n += 1
    files = [*reversed(older)]
    if base.exists():
        files.append(base)
    if not files:
        raise AcdError(f"no capture file {base}")
    return files


def read_capture(path: str | os.PathLike[str]) -> Iterator[Chunk | CaptureError]:
    """Every chunk of a (rotated) capture in order; damaged lines become `CaptureError`."""
    for file in capture_files(path):
        try:
            fh = file.open("rb")
        except OSError as exc:
            raise AcdError(f"cannot read {file}: {exc.strerror}") from None
        with fh:
            for number, raw in enumerate(fh, 1):
                item = _parse_line(raw)
                if isinstance(item, str):
                    yield CaptureError(str(file), number, item)
                elif item is not None:
                    yield item


def _parse_line(raw: bytes) -> Chunk | str | None:
    """A chunk, None for the header or a blank line, or the reason the line is bad."""
    if not raw.strip():
        return None
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"not a JSON line: {exc}"
    if not isinstance(obj, dict):
        return "not a JSON object"
    if "capture" in obj:
        if obj.get("capture") != FORMAT or obj.get("version") != VERSION:
            return f"unknown capture format {obj.get('capture')!r} v{obj.get('version')!r}"
        return None
    try:
        t = obj["t"]
        if isinstance(t, bool) or not isinstance(t, int | float):
            return f"bad time {t!r}"
        return Chunk(float(t), canonical_direction(obj["d"]), bytes.fromhex(obj["x"]))
    except KeyError as exc:
        return f"missing key {exc.args[0]!r}"
    except (ValueError, TypeError) as exc:
        return str(exc)

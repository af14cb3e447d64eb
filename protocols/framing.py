"""Frames on the byte stream: ``DLE STX | body | DLE ETX`` with DLE doubled in the body.

The body is ``ctrl u8 | ns u8 | nr u8 | len u16 | payload[len] | crc16 u16``, big-endian;
the CRC is CRC-16/CCITT (``binascii.crc_hqx(data, 0xFFFF)``) over ctrl..payload.
`FrameDecoder` checks length and CRC before a payload leaves it, so only intact frames
reach the link layer and Construct. It never raises on input: bad bytes are counted.
"""

from __future__ import annotations

import enum
import struct
from binascii import crc_hqx
from typing import NamedTuple

DLE = 0x10
STX = 0x02
ETX = 0x03
_DLE = b"\x10"
_DLE_DLE = b"\x10\x10"
_START = b"\x10\x02"
_END = b"\x10\x03"
_HEADER = struct.Struct(">BBBH")
_CRC = struct.Struct(">H")
HEADER_SIZE = 5
"""Bytes of ctrl, ns, nr and len."""
OVERHEAD = HEADER_SIZE + 2
"""Body bytes besides the payload (header and CRC)."""
MAX_PAYLOAD = 0xFFFF
"""Largest payload the ``len`` field can describe."""
_MAX_STUFFED_BODY = 2 * (OVERHEAD + MAX_PAYLOAD)


class Ctrl(enum.IntEnum):
    """The ``ctrl`` byte: the kind of frame."""

    INFO = 0x01  # carries a payload; ns is its sequence number
    ACK = 0x02  # nr acknowledges every I-frame before it
    NAK = 0x03  # nr is the next I-frame expected: resend from it
    RESET = 0x04  # restart the link: both sequence numbers back to 0
    RESET_ACK = 0x05  # answer to RESET: the link is up
    HEARTBEAT = 0x06  # sent when idle (ns = 1: a poll, answer at once); nr as in ACK


class Frame(NamedTuple):
    """One intact frame."""

    ctrl: int
    ns: int
    nr: int
    payload: bytes = b""


def encode_frame(ctrl: int, ns: int = 0, nr: int = 0, payload: bytes = b"") -> bytes:
    """The bytes of one frame on the wire, delimited and DLE-stuffed."""
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    body = _HEADER.pack(ctrl, ns, nr, len(payload)) + payload
    body += _CRC.pack(crc_hqx(body, 0xFFFF))
    return _START + body.replace(_DLE, _DLE_DLE) + _END


class FrameDecoder:
    """Turns a byte stream, fed in chunks of any size, into intact frames.

    A ``DLE STX`` always starts a new frame (dropping an unfinished one); bytes outside
    a frame, DLE followed by anything but DLE, STX or ETX, and frames with a wrong
    length or CRC are dropped and counted.
    """

    def __init__(self) -> None:
        self._buf = bytearray()
        self._in_frame = False
        self._scan = 0  # in a frame: where to look for the next DLE in _buf
        self.frames = 0
        """Intact frames returned."""
        self.dropped_bytes = 0
        """Bytes outside frames and bytes of frames abandoned before their end."""
        self.bad_crc = 0
        """Frames whose CRC did not match."""
        self.bad_length = 0
        """Frames whose ``len`` field did not match their size (or too short to hold one)."""

    @property
    def pending(self) -> int:
        """Bytes held back: an unfinished frame (or a DLE that may start one)."""
        return len(self._buf) + (2 if self._in_frame else 0)

    def feed(self, data: bytes) -> list[Frame]:
        """Add bytes; return the frames they complete, in order."""
        if self._buf:
            self._buf += data
            buf: bytes | bytearray = self._buf
        else:
            buf = data  # the common case: no copy
        frames: list[Frame] = []
        in_frame = self._in_frame
        scan = self._scan
        pos = 0
        end = len(buf)
        while pos < end:
            if not in_frame:
                start = buf.find(_START, pos)
                if start < 0:
                    keep = 1 if buf[end - 1] == DLE else 0  # maybe the first half of DLE STX
                    self.dropped_bytes += end - pos - keep
                    pos = end - keep
                    break
                self.dropped_bytes += start - pos
                pos = scan = start + 2
                in_frame = True
            dle = buf.find(_DLE, scan)
            if dle < 0 or dle + 1 >= end:
                if end - pos > _MAX_STUFFED_BODY:  # no end in sight: give up on it
                    self.dropped_bytes += end - pos + 2
                    in_frame = False
                    pos = end
                else:
                    scan = end if dle < 0 else dle
                break
            following = buf[dle + 1]
            if following == DLE:
                scan = dle + 2
                continue
            in_frame = False
            if following == ETX:
                frame = self._check(buf[pos:dle])
                if frame is not None:
                    frames.append(frame)
                pos = dle + 2
            elif following == STX:  # a new frame starts: drop the unfinished one
                self.dropped_bytes += dle - pos + 2
                pos = dle
            else:  # DLE then anything else: a broken frame, drop it up to that DLE
                self.dropped_bytes += dle - pos + 3
                pos = dle + 1
        if buf is self._buf:
            del self._buf[:pos]
        elif pos < end:
            self._buf = bytearray(buf[pos:])
        self._in_frame = in_frame
        self._scan = scan - pos
        return frames

    def _check(self, stuffed: bytes | bytearray) -> Frame | None:
        body = stuffed.replace(_DLE_DLE, _DLE) if DLE in stuffed else stuffed
        size = len(body)
        if size < OVERHEAD:
            self.bad_length += 1
            return None
        ctrl, ns, nr, length = _HEADER.unpack_from(body)
        if length != size - OVERHEAD:
            self.bad_length += 1
            return None
        if crc_hqx(body[:-2], 0xFFFF) != _CRC.unpack_from(body, size - 2)[0]:
            self.bad_crc += 1
            return None
        self.frames += 1
        return Frame(ctrl, ns, nr, bytes(body[HEADER_SIZE:-2]))

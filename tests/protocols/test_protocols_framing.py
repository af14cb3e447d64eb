"""Framing: streams in arbitrary chunks, garbage between frames, mutated frames."""

import contextlib
import struct
from binascii import crc_hqx

from hypothesis import example, given
from hypothesis import strategies as st

from protocols.errors import DecodeError
from protocols.framing import Ctrl, Frame, FrameDecoder, encode_frame
from protocols.messages import decode_message

frames = st.builds(
    Frame,
    st.sampled_from(Ctrl),
    st.integers(0, 255),
    st.integers(0, 255),
    # DLE-heavy payloads exercise the stuffing.
    st.binary(max_size=40) | st.lists(st.sampled_from([0x10, 0x02, 0x03, 0x41])).map(bytes),
)
# Garbage never holds DLE STX: that would (rightly) open a frame that swallows the next one.
garbage = st.binary(max_size=12).filter(lambda b: b"\x10\x02" not in b)


def _wire(frame: Frame) -> bytes:
    return encode_frame(frame.ctrl, frame.ns, frame.nr, frame.payload)


def _clean_cut(wire: bytes, cut: int) -> int:
    """Move ``cut`` back so that it does not split a doubled DLE or the closing DLE ETX."""
    prefix = wire[2:cut]
    trailing = len(prefix) - len(prefix.rstrip(b"\x10"))
    return cut - 1 if trailing % 2 else cut


def _feed_in_chunks(decoder, data, cuts):
    out = []
    start = 0
    for cut in sorted(cuts):
        out += decoder.feed(data[start:cut])
        start = cut
    return out + decoder.feed(data[start:])


def test_layout_and_stuffing():
    wire = encode_frame(Ctrl.INFO, 0x10, 2, b"\x10")
    body = bytes([Ctrl.INFO, 0x10, 2, 0, 1, 0x10])
    crc = struct.pack(">H", crc_hqx(body, 0xFFFF))
    assert wire == b"\x10\x02" + (body + crc).replace(b"\x10", b"\x10\x10") + b"\x10\x03"
    assert FrameDecoder().feed(wire) == [Frame(Ctrl.INFO, 0x10, 2, b"\x10")]


@given(st.lists(st.tuples(garbage, frames), max_size=20), garbage, st.data())
@example([(b"\x10", Frame(1, 0, 0, b""))], b"\x10", None)
def test_stream_with_garbage_in_any_chunks(items, tail, data):
    stream = b"".join(g + _wire(f) for g, f in items) + tail
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=30)) if data else [1]
    decoder = FrameDecoder()
    assert _feed_in_chunks(decoder, stream, cuts) == [f for _, f in items]
    assert decoder.frames == len(items)
    held_back = 1 if tail.endswith(b"\x10") else 0  # maybe the start of a DLE STX
    assert decoder.dropped_bytes == sum(len(g) for g, _ in items) + len(tail) - held_back
    assert decoder.bad_crc == decoder.bad_length == 0


@given(frames, frames, st.data())
def test_new_start_restarts_the_frame(first, second, data):
    wire = _wire(first)
    cut = _clean_cut(wire, data.draw(st.integers(2, len(wire) - 2)))
    decoder = FrameDecoder()
    assert decoder.feed(wire[:cut] + _wire(second)) == [second]
    assert decoder.dropped_bytes == cut


@given(frames, st.data())
def test_bit_flip_is_never_delivered(frame, data):
    wire = bytearray(_wire(frame))
    index = data.draw(st.integers(0, len(wire) - 1))
    wire[index] ^= 1 << data.draw(st.integers(0, 7))
    decoder = FrameDecoder()
    assert decoder.feed(bytes(wire)) + decoder.feed(_wire(frame)) == [frame]


@given(frames, st.data())
def test_truncated_frame_is_never_delivered(frame, data):
    wire = _wire(frame)
    cut = data.draw(st.integers(0, len(wire) - 1))
    assert FrameDecoder().feed(wire[:cut]) == []


@given(frames, st.binary(min_size=1, max_size=10), st.data())
def test_bytes_inserted_in_a_frame_are_never_delivered(frame, extra, data):
    wire = _wire(frame)
    at = _clean_cut(wire, data.draw(st.integers(2, len(wire) - 2)))
    mutated = wire[:at] + extra.replace(b"\x10", b"\x10\x10") + wire[at:]
    assert FrameDecoder().feed(mutated) == []


@given(frames, st.integers(0, 0xFFFF))
def test_wrong_length_is_counted(frame, length):
    body = struct.pack(">BBBH", frame.ctrl, frame.ns, frame.nr, length) + frame.payload
    if length == len(frame.payload):
        return
    body += struct.pack(">H", crc_hqx(body, 0xFFFF))
    decoder = FrameDecoder()
    assert decoder.feed(b"\x10\x02" + body.replace(b"\x10", b"\x10\x10") + b"\x10\x03") == []
    assert decoder.bad_length == 1


@given(frames, st.integers(1, 0xFFFF))
def test_wrong_crc_is_counted(frame, delta):
    body = struct.pack(">BBBH", frame.ctrl, frame.ns, frame.nr, len(frame.payload))
    body += frame.payload
    crc = (crc_hqx(body, 0xFFFF) + delta) & 0xFFFF
    body += struct.pack(">H", crc)
    decoder = FrameDecoder()
    assert decoder.feed(b"\x10\x02" + body.replace(b"\x10", b"\x10\x10") + b"\x10\x03") == []
    assert decoder.bad_crc == 1


@given(st.binary(max_size=200), st.binary(max_size=40))
def test_arbitrary_input_raises_nothing_but_decode_error(noise, payload):
    """Noise, and intact frames with arbitrary payloads, reach Construct safely."""
    for frame in FrameDecoder().feed(noise + encode_frame(Ctrl.INFO, 0, 0, payload)):
        with contextlib.suppress(DecodeError):
            decode_message(frame.payload)


def test_short_body_and_broken_escape():
    decoder = FrameDecoder()
    assert decoder.feed(b"\x10\x02\x01\x10\x03") == []
    assert decoder.bad_length == 1
    assert decoder.feed(b"\x10\x02\x01\x10\x41" + encode_frame(Ctrl.ACK)) == [Frame(Ctrl.ACK, 0, 0)]
    assert decoder.dropped_bytes == 5

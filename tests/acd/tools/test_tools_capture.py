"""Capture files: round trip, rotation by size, damaged lines."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.errors import AcdError
from drivers.capture import CaptureError, CaptureWriter, Chunk, capture_files, read_capture
from protocols import messages as m
from protocols.framing import Ctrl, FrameDecoder, encode_frame
from protocols.messages import decode_message, encode_message

chunks = st.lists(
    st.tuples(st.sampled_from(["rx", "tx"]), st.binary(min_size=1, max_size=300)), max_size=60
)


@given(chunks)
def test_round_trip_through_rotation(tmp_path_factory, items):
    path = tmp_path_factory.mktemp("cap") / "line.cap"
    with CaptureWriter(path, max_bytes=1024, keep=100, blank_pins=False) as w:
        for n, (d, data) in enumerate(items):
            w(d, data, 1000.0 + n / 8)
    if not items:
        assert not path.exists()
        return
    got = list(read_capture(path))
    assert got == [Chunk(1000.0 + n / 8, d, data) for n, (d, data) in enumerate(items)]
    for f in capture_files(path):
        assert f.stat().st_size <= 1024 or len(f.read_text().splitlines()) == 2


def test_rotation_keeps_at_most_keep_old_files(tmp_path):
    path = tmp_path / "line.cap"
    with CaptureWriter(path, max_bytes=1024, keep=2, port="/dev/ttyS0") as w:
        for n in range(100):
            w("in" if n % 2 else "out", bytes(100), float(n))
    assert [f.name for f in capture_files(path)] == ["line.cap.2", "line.cap.1", "line.cap"]
    assert w.rotations > 2
    header = json.loads(path.read_text().splitlines()[0])
    assert header["capture"] == "acd-cti" and header["version"] == 1
    assert header["port"] == "/dev/ttyS0"
    times = [c.t for c in read_capture(path)]
    assert times == sorted(times) and times[-1] == 99.0
    assert {c.d for c in read_capture(path)} == {"rx", "tx"}


def test_appends_to_an_existing_capture(tmp_path):
    path = tmp_path / "line.cap"
    for t in (1.0, 2.0):
        with CaptureWriter(path, blank_pins=False) as w:
            w("rx", b"\x10", t)
    assert [c.t for c in read_capture(path)] == [1.0, 2.0]
    assert path.read_text().count('"capture"') == 1


def test_damaged_lines_are_reported_and_skipped(tmp_path):
    path = tmp_path / "line.cap"
    path.write_text(
        '{"capture": "acd-cti", "version": 1, "started": 0, "port": ""}\n'
        '{"t": 1, "d": "rx", "x": "1002"}\n'
        '{"t": 2, "d": "sideways", "x": "00"}\n'
        '{"t": 3, "d": "tx"}\n'
        '{"t": 4, "d": "tx", "x": "1003"\n'
        "\n"
        '{"t": 5, "d": "tx", "x": "10"}\n'
    )
    got = list(read_capture(path))
    assert got[0] == Chunk(1.0, "rx", b"\x10\x02")
    assert got[-1] == Chunk(5.0, "tx", b"\x10")
    errors = [g for g in got if isinstance(g, CaptureError)]
    assert [e.line for e in errors] == [3, 4, 5]
    assert "direction" in errors[0].error and "'x'" in errors[1].error


def test_bad_arguments_and_missing_files(tmp_path):
    with pytest.raises(AcdError, match="max_bytes"):
        CaptureWriter(tmp_path / "x", max_bytes=10)
    with pytest.raises(AcdError, match="no capture file"):
        list(read_capture(tmp_path / "absent.cap"))
    with pytest.raises(ValueError, match="direction"):
        CaptureWriter(tmp_path / "x").write("up", b"1", 0.0)


def _login_frame(pin: str, ns: int = 3) -> bytes:
    return encode_frame(Ctrl.INFO, ns, 0, encode_message(m.KeyLogin(9, "201", "1001", pin)))


def test_pins_are_blanked_even_split_across_reads_and_the_frames_still_decode(tmp_path):
    path = tmp_path / "line.cap"
    ready = encode_frame(Ctrl.INFO, 4, 0, encode_message(m.KeyReady(10, "201")))
    login = _login_frame("271828")
    old = os.umask(0o022)
    try:
        with CaptureWriter(path, max_bytes=1024, keep=100) as w:
            w("rx", b"\x00" + login[:-6], 1.0)  # the PIN's end arrives in the next read
            w("rx", login[-6:] + ready + login[:4], 2.0)  # another login begins
            w("tx", _login_frame("1111"), 2.5)  # only the switch sends logins
            for n in range(20):
                w("tx", bytes(100), 3.0 + n)  # rotates
    finally:
        os.umask(old)
    text = "".join(f.read_text() for f in capture_files(path))
    assert b"271828".hex() not in text
    header = json.loads(path.read_text().splitlines()[0])
    assert header["pins"] == "blanked"
    assert {f.stat().st_mode & 0o777 for f in capture_files(path)} == {0o600}
    rx = [c for c in read_capture(path) if isinstance(c, Chunk) and c.d == "rx"]
    assert [c.t for c in rx] == [1.0, 2.0]  # the unfinished login at the end is left out
    frames = FrameDecoder().feed(b"".join(c.data for c in rx))
    assert [decode_message(f.payload) for f in frames] == [
        m.KeyLogin(9, "201", "1001", "******"),
        m.KeyReady(10, "201"),
    ]
    assert len(rx[0].data) + len(rx[1].data) == 1 + len(login) + len(ready)

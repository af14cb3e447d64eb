"""Timelines from captures: same messages as both ends saw, errors marked, filters."""

from __future__ import annotations

import json

from click.testing import CliRunner

from acd.cli import cli
from acd.cli.replay import load_timeline
from acd.replay import Filter, Timeline
from drivers.capture import CaptureWriter
from protocols import messages as m
from protocols.framing import Ctrl, encode_frame
from protocols.messages import encode_message


def _delivered(entries, d):
    return [e.message for e in entries if e.d == d and e.delivered]


def test_timeline_of_a_session_has_the_messages_both_ends_saw(captured_session):
    session, path = captured_session(900)
    entries = load_timeline(path)
    assert _delivered(entries, "rx") == session.received
    assert _delivered(entries, "tx") == session.sent
    assert len(session.received) > 20
    assert not [e for e in entries if e.error]
    assert entries[0].ctrl == "RESET"


def test_rotated_capture_reads_as_one(captured_session):
    session, path = captured_session(900, max_bytes=4096, keep=1000)
    assert path.with_name("line.cap.2").exists()
    entries = load_timeline(path)
    assert _delivered(entries, "rx") == session.received


def test_corrupted_bytes_are_marked_and_the_rest_still_decodes(tmp_path):
    good = [
        encode_frame(Ctrl.INFO, n, 0, encode_message(m.KeyReady(n, f"20{n}"))) for n in range(4)
    ]
    broken = bytearray(good[1])
    broken[8] ^= 0xFF  # a bit error inside the payload: bad CRC
    path = tmp_path / "bad.cap"
    with CaptureWriter(path) as w:
        w("rx", encode_frame(Ctrl.RESET), 1.0)
        w("rx", b"\x00garbage" + good[0], 2.0)
        w("rx", bytes(broken), 3.0)
        w("rx", good[2][:5], 4.0)  # a frame split across two reads
        w("rx", good[2][5:] + good[3], 4.5)
    with path.open("a") as fh:
        fh.write('{"t": 5, "d": "rx", "x": "zz"}\nnot json\n')
    entries = load_timeline(path)
    errors = [e.error for e in entries if e.error]
    assert errors[0] == "8 bytes outside frames dropped"
    assert errors[1] == "1 frame(s) with a bad CRC dropped"
    assert any("line 7" in e and "hex" in e for e in errors)
    assert any("line 8" in e and "not a JSON line" in e for e in errors)
    ops = [(e.op, e.note) for e in entries if e.op]
    # frame 1 lost: frames 2 and 3 arrive out of order, as the link would see them
    assert ops == [("KeyReady", None), ("KeyReady", "out of order"), ("KeyReady", "out of order")]


def test_retransmissions_are_duplicates(tmp_path):
    frame = encode_frame(Ctrl.INFO, 0, 0, encode_message(m.KeyReady(1, "201")))
    timeline = Timeline()
    entries = timeline.feed(0.0, "rx", encode_frame(Ctrl.RESET_ACK) + frame + frame)
    assert [e.note for e in entries] == [None, None, "duplicate"]
    assert [e.delivered for e in entries] == [False, True, False]


def test_undecodable_payload_is_an_error_not_a_crash():
    frame = encode_frame(Ctrl.INFO, 0, 0, b"\xfe\x00\x01")
    (entry,) = Timeline().feed(0.0, "tx", frame)
    assert entry.ctrl == "INFO" and entry.op is None
    assert "unknown opcode 254" in entry.error and not entry.delivered


def test_filters():
    timeline = Timeline()
    msgs = [
        m.Delivered(1, 7, "201", "0561", "3000"),
        m.Delivered(2, 8, "202", "0562", "3000"),
        m.RingDevices(3, 7, ("203", "204"), 15),
        m.SnapshotCallsResult(4, (m.CallInfo(8, m.CallState.queued, "0", "3000", "q"),)),
    ]
    entries = []
    for n, msg in enumerate(msgs):
        entries += timeline.feed(n, "rx", encode_frame(Ctrl.INFO, n, 0, encode_message(msg)))
    entries += timeline.feed(9, "rx", b"junk")

    def pick(**kw):
        return [e.fields["invoke_id"] for e in entries if Filter(**kw)(e)]

    assert pick(call=7) == [1, 3]
    assert pick(call=8) == [2, 4]
    assert pick(device="204") == [3]
    assert pick(device="202", op="delivered") == [2]
    assert len([e for e in entries if Filter()(e)]) == 5


def test_cli_timeline_text_and_json(captured_session):
    session, path = captured_session(600)
    call_id = next(x.call_id for x in session.received if isinstance(x, m.Offered))
    text = CliRunner().invoke(cli, ["replay", str(path), "--call", str(call_id)])
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert "Offered" in lines[0] and f"call_id={call_id}" in lines[0]
    assert lines[0].split()[1] == "<-"
    assert "entries shown" in lines[-1]
    out = CliRunner().invoke(cli, ["replay", str(path), "--op", "QueueCall", "--json"])
    rows = [json.loads(line) for line in out.output.splitlines()]
    assert [r["fields"]["call_id"] for r in rows] == [
        x.call_id for x in session.sent if isinstance(x, m.QueueCall)
    ]
    assert all(r["d"] == "tx" for r in rows)


def test_cli_missing_capture_is_one_line(tmp_path):
    result = CliRunner().invoke(cli, ["replay", str(tmp_path / "none.cap")])
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: no capture file {tmp_path / 'none.cap'}"

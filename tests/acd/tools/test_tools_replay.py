"""Timelines from captures: same messages as both ends saw, errors marked, filters."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from click.testing import CliRunner

from acd.cli import cli
from acd.cli.replay import load_timeline
from acd.tools.replay import Filter, Timeline
from drivers.capture import CaptureWriter
from firmware_sim.faults import FaultSpec
from protocols import messages as m
from protocols.framing import Ctrl, encode_frame
from protocols.messages import encode_message

TOWN_HALL = Path(__file__).resolve().parents[3] / "examples" / "town-hall.toml"


def _delivered(entries, d):
    return [e.message for e in entries if e.d == d and e.delivered]


def _blanked(messages):
    """``messages`` as a capture keeps them: every PIN blanked, digit for digit."""
    return [
        dataclasses.replace(x, pin="*" * len(x.pin)) if isinstance(x, m.KeyLogin) else x
        for x in messages
    ]


def test_timeline_of_a_session_has_the_messages_both_ends_saw(captured_session):
    session, path = captured_session(900)
    entries, _ = load_timeline(path)
    assert _delivered(entries, "rx") == _blanked(session.received)
    assert _delivered(entries, "tx") == session.sent
    assert len(session.received) > 20
    assert not [e for e in entries if e.error]
    assert entries[0].ctrl == "RESET"


def test_rotated_capture_reads_as_one(captured_session):
    session, path = captured_session(900, max_bytes=4096, keep=1000)
    assert path.with_name("line.cap.2").exists()
    entries, _ = load_timeline(path)
    assert _delivered(entries, "rx") == _blanked(session.received)


def test_corrupted_bytes_are_marked_and_the_rest_still_decodes(tmp_path):
    good = [
        encode_frame(Ctrl.INFO, n, 0, encode_message(m.KeyReady(n, f"20{n}"))) for n in range(4)
    ]
    broken = bytearray(good[1])
    broken[8] ^= 0xFF  # a bit error inside the payload: bad CRC
    path = tmp_path / "bad.cap"
    with CaptureWriter(path, blank_pins=False) as w:  # the bytes as they came
        w("rx", encode_frame(Ctrl.RESET), 1.0)
        w("rx", b"\x00garbage" + good[0], 2.0)
        w("rx", bytes(broken), 3.0)
        w("rx", good[2][:5], 4.0)  # a frame split across two reads
        w("rx", good[2][5:] + good[3], 4.5)
    with path.open("a") as fh:
        fh.write('{"t": 5, "d": "rx", "x": "zz"}\nnot json\n')
    entries, _ = load_timeline(path)
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


def test_engine_replay_of_a_simulated_session_reports_no_difference(captured_session):
    session, path = captured_session(3600, engine=True, start_s=7.95 * 3600)
    assert sum(isinstance(x, m.Established) for x in session.received) >= 8
    assert sum(isinstance(x, m.KeyLogin) for x in session.received) >= 3
    out = CliRunner().invoke(cli, ["replay", str(path), "--engine", "--config", str(TOWN_HALL)])
    assert out.exit_code == 0, out.output
    assert out.output == "no difference\n"
    data = json.loads(
        CliRunner()
        .invoke(cli, ["replay", str(path), "--engine", "--json", "--config", str(TOWN_HALL)])
        .output
    )
    assert data["extensions"] == ["201", "202"]
    assert data["engine_requests"] == len(session.sent)
    assert data["differences"] == []


def test_engine_replay_shows_where_a_controller_differs(captured_session):
    _, path = captured_session(900, engine=False)
    out = CliRunner().invoke(cli, ["replay", str(path), "--engine", "--config", str(TOWN_HALL)])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[-1].endswith("difference(s)")
    assert any("only in the capture" in line and "QueueCall" in line for line in lines)
    assert any("only from the engine" in line and "SnapshotCalls" in line for line in lines)


def test_engine_replay_answers_pin_checks_when_the_controller_did(captured_session):
    """The controller's PIN checks took 20 s (a slow PIN thread on a fast clock): calls
    came meanwhile. The replay answers each check at the controller's next word to that
    handset, so it routes as the controller did (answered at once, it would not)."""
    session, path = captured_session(3600, engine=True, start_s=7.95 * 3600, pin_delay=20.0)
    assert sum(isinstance(x, m.KeyLogin) for x in session.received) >= 3
    out = CliRunner().invoke(cli, ["replay", str(path), "--engine", "--config", str(TOWN_HALL)])
    assert out.exit_code == 0, out.output
    assert out.output == "no difference\n"


def test_engine_replay_needs_a_config(captured_session, monkeypatch):
    monkeypatch.delenv("ACD_CONFIG", raising=False)
    _, path = captured_session(60)
    out = CliRunner().invoke(cli, ["replay", str(path), "--engine"])
    assert out.exit_code == 1 and "--config FILE" in out.output


def test_noisy_line_and_cable_pull_errors_marked_engine_still_agrees(captured_session):
    faults = (
        FaultSpec("bit-errors", rate=2e-4),
        FaultSpec("garbage", size=16, every=120.0),
        FaultSpec("cable", at=8.5 * 3600, duration=30.0),  # link down, then resync
    )
    session, path = captured_session(3600, engine=True, start_s=7.95 * 3600, faults=faults)
    entries, _ = load_timeline(path)
    errors = [e for e in entries if e.error]
    assert any("bad CRC" in e.error for e in errors)
    assert any("outside frames" in e.error for e in errors)
    assert any(e.note == "duplicate" for e in entries)  # retransmissions after the errors
    assert _delivered(entries, "rx") == _blanked(session.received)
    assert session.endpoint.link_downs >= 1
    assert sum(isinstance(x, m.SnapshotCalls) for x in session.sent) >= 2
    out = CliRunner().invoke(cli, ["replay", str(path), "--engine", "--config", str(TOWN_HALL)])
    assert out.output == "no difference\n"

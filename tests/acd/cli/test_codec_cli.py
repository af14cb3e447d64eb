"""`acd decode` / `acd encode` through the real click group."""

import json

import pytest
from click.testing import CliRunner

from acd.cli import cli
from protocols.framing import Ctrl, encode_frame
from protocols.messages import MESSAGE_TYPES, encode_message, message_to_dict, sample


def _run(*args, input=None):
    return CliRunner().invoke(cli, list(args), input=input)


def _lines(output):
    return [json.loads(line) for line in output.splitlines() if line.strip()]


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_decode_of_encode_gives_back_the_fields(name):
    encoded = _run("encode", name, "--sample", "--ns", "7", "--nr", "200")
    assert encoded.exit_code == 0, encoded.output
    decoded = _run("decode", encoded.output)
    assert decoded.exit_code == 0, decoded.output
    (frame,) = _lines(decoded.output)
    assert frame["ctrl"] == "INFO" and frame["ns"] == 7 and frame["nr"] == 200
    assert frame["op"] == name
    assert frame["fields"] == message_to_dict(sample(name))


def test_encode_from_fields_matches_the_library():
    result = _run(
        "encode", "RingDevices", "invoke_id=7", "call_id=0x412", "devices=201,202", "timeout_s=20"
    )
    assert result.exit_code == 0, result.output
    payload = encode_message(MESSAGE_TYPES["RingDevices"](7, 0x412, ("201", "202"), 20))
    assert bytes.fromhex(result.output) == encode_frame(Ctrl.INFO, 0, 0, payload)


def test_sample_fields_can_be_overridden():
    result = _run("encode", "SetDisplay", "--sample", "text=Bonjour", "--json")
    assert result.exit_code == 0
    (out,) = _lines(result.output)
    assert out["fields"] == {"invoke_id": 12, "device": "201", "text": "Bonjour"}
    assert bytes.fromhex(out["hex"]).startswith(b"\x10\x02\x01")


def test_control_frames():
    result = _run("encode", "--ctrl", "heartbeat", "--ns", "1", "--nr", "4")
    assert bytes.fromhex(result.output) == encode_frame(Ctrl.HEARTBEAT, 1, 4)
    (out,) = _lines(_run("decode", result.output).output)
    assert out == {"ctrl": "HEARTBEAT", "ns": 1, "nr": 4}


def test_decode_stdin_colons_garbage_and_several_frames():
    frames = [encode_frame(Ctrl.INFO, i, 0, encode_message(sample("KeyReady"))) for i in range(3)]
    data = b"\x00\xff" + frames[0] + b"junk" + frames[1] + frames[2] + b"\x10\x02\x01"
    result = _run("decode", "-", input=data.hex(":"))
    assert result.exit_code == 0, result.output
    out = _lines(result.output)
    assert [o["ns"] for o in out[:3]] == [0, 1, 2]
    assert out[3] == {"dropped_bytes": 6, "bad_crc": 0, "bad_length": 0, "incomplete_bytes": 3}


def test_decode_raw_capture_file(tmp_path):
    capture = tmp_path / "line.cap"
    capture.write_bytes(encode_frame(Ctrl.ACK, 0, 5) + encode_frame(Ctrl.RESET))
    result = _run("decode", "--file", str(capture))
    assert result.exit_code == 0
    assert [o["ctrl"] for o in _lines(result.output)] == ["ACK", "RESET"]


def test_decode_a_capture_of_acd_run(tmp_path):
    """`acd decode --file line.cap` on a file of `acd run --capture`: each frame with its
    time and direction; a frame split over two chunks is joined within its direction."""
    from drivers.capture import CaptureWriter

    ready = encode_frame(Ctrl.INFO, 0, 0, encode_message(sample("KeyReady")))
    capture = tmp_path / "line.cap"
    with CaptureWriter(capture, blank_pins=False) as write:
        write("rx", ready[:5], 100.0)
        write("tx", encode_frame(Ctrl.ACK, 0, 1), 100.25)
        write("rx", ready[5:] + encode_frame(Ctrl.RESET), 100.5)
    result = _run("decode", "--file", str(capture))
    assert result.exit_code == 0, result.output
    out = _lines(result.output)
    assert [(o["t"], o["d"], o["ctrl"]) for o in out] == [
        (100.25, "tx", "ACK"),
        (100.5, "rx", "INFO"),
        (100.5, "rx", "RESET"),
    ]
    assert out[1]["op"] == "KeyReady"
    capture.write_text(capture.read_text() + "not json\n")
    result = _run("decode", "--file", str(capture))
    assert result.exit_code == 1 and result.stderr == "Error: 1 damaged line(s) in the capture\n"


def test_list():
    result = _run("encode", "--list")
    assert result.exit_code == 0
    assert len(result.output.splitlines()) == len(MESSAGE_TYPES)
    assert "DeflectCall" in result.output
    listed = _lines(_run("encode", "--list", "--json").output)[0]
    assert {entry["op"] for entry in listed} == set(MESSAGE_TYPES)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("decode", "10 02 zz"), "not hexadecimal"),
        (("decode", "00 01 02"), "no intact frame"),
        (("decode",), "nothing to decode"),
        (("decode", encode_frame(Ctrl.INFO, 0, 0, b"\xff\x00\x00").hex()), "invalid message"),
        (("encode",), "give an operation"),
        (("encode", "Nope"), "unknown operation"),
        (("encode", "DeflectCall", "invoke_id=1"), "missing field"),
        (("encode", "DeflectCall", "--sample", "call_id=-1"), "DeflectCall"),
        (("encode", "DeflectCall", "--sample", "oops"), "expected field=value"),
        (("encode", "KeyReady", "--ctrl", "ACK"), "carries no message"),
    ],
)
def test_user_errors_are_one_line_exit_1(args, message):
    result = _run(*args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_invalid_payload_is_still_shown():
    result = _run("decode", encode_frame(Ctrl.INFO, 0, 0, b"\xff\x00\x00").hex())
    out = _lines(result.output.split("Error")[0])
    assert out[0]["payload"] == "ff0000" and "unknown opcode" in out[0]["error"]

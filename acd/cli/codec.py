"""`acd decode` and `acd encode`: CTI frames to JSON and back."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import click

from acd.cli.common import emit_json, fail, json_option
from drivers.capture import FORMAT as CAPTURE_FORMAT
from drivers.capture import CaptureError, read_capture
from protocols.errors import ProtocolError
from protocols.framing import Ctrl, Frame, FrameDecoder, encode_frame
from protocols.messages import (
    MESSAGE_TYPES,
    OPCODES,
    decode_message,
    encode_message,
    message_from_dict,
    message_name,
    message_to_dict,
    sample,
)

_HEX_SEPARATORS = re.compile(r"[\s:]+")


def parse_hex(text: str) -> bytes:
    """Bytes from hex text with or without spaces or colons; `click.ClickException` if bad."""
    digits = _HEX_SEPARATORS.sub("", text)
    if digits.lower().startswith("0x"):
        digits = digits[2:]
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise click.ClickException(f"not hexadecimal: {text.strip()[:40]!r}") from None


def frame_to_dict(frame: Frame) -> dict[str, Any]:
    """The JSON form of one frame: link fields, then the message if it carries one."""
    ctrl = Ctrl(frame.ctrl).name if frame.ctrl in Ctrl._value2member_map_ else frame.ctrl
    out: dict[str, Any] = {"ctrl": ctrl, "ns": frame.ns, "nr": frame.nr}
    if frame.ctrl == Ctrl.INFO:
        out["len"] = len(frame.payload)
        try:
            msg = decode_message(frame.payload)
        except ProtocolError as exc:
            out["payload"] = frame.payload.hex()
            out["error"] = str(exc)
        else:
            out["op"] = message_name(msg)
            out["opcode"] = msg.OPCODE
            out["fields"] = message_to_dict(msg)
    return out


@click.command(short_help="Decode CTI frames from hex into JSON, one per frame.")
@click.argument("hex_text", metavar="HEX...", nargs=-1)
@click.option(
    "--file",
    "capture",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A capture of `acd run --capture` (each frame with its time and direction),"
    " or raw bytes as they crossed the line.",
)
def decode(hex_text: tuple[str, ...], capture: Path | None) -> None:
    """Decode CTI frames: one JSON object per frame, then any garbage as a count.

    HEX may contain spaces or colons; `-` reads hex text from standard input.
    A capture file's frames carry "t" (Unix time) and "d" (rx: from the switch,
    tx: to it), each direction decoded on its own (rotated files are read too).
    Exit 1 if no intact frame is found or a frame holds an invalid message.

    \b
    Examples:
      acd decode 10 02 01 00 00 00 03 d2 00 06 86 03 10 03
      acd encode DeflectCall --sample | acd decode -
      acd decode --file line.cap
    """
    if capture is not None and hex_text:
        fail("give HEX or --file, not both")
    if capture is not None and _is_capture(capture):
        _decode_capture(capture)
        return
    if capture is not None:
        data = capture.read_bytes()
    elif hex_text == ("-",):
        data = parse_hex(sys.stdin.read())
    elif hex_text:
        data = parse_hex(" ".join(hex_text))
    else:
        fail("nothing to decode: give HEX, '-' or --file PATH")
    decoder = FrameDecoder()
    invalid = _emit_frames(decoder.feed(data), {})
    _emit_garbage(decoder, {})
    _verdict(decoder.frames, len(data), invalid)


def _is_capture(path: Path) -> bool:
    """Whether ``path`` starts with the header line of an ``acd run --capture`` file."""
    with path.open("rb") as fh:
        first = fh.readline(4096)
    try:
        header = json.loads(first)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(header, dict) and header.get("capture") == CAPTURE_FORMAT


def _decode_capture(path: Path) -> None:
    """Each chunk's frames with its time and direction; damaged lines as errors."""
    decoders = {"rx": FrameDecoder(), "tx": FrameDecoder()}
    invalid = damaged = size = 0
    for item in read_capture(path):
        if isinstance(item, CaptureError):
            damaged += 1
            emit_json({"file": item.file, "line": item.line, "error": item.error})
            continue
        size += len(item.data)
        invalid += _emit_frames(decoders[item.d].feed(item.data), {"t": item.t, "d": item.d})
    for direction, decoder in decoders.items():
        _emit_garbage(decoder, {"d": direction})
    _verdict(sum(d.frames for d in decoders.values()), size, invalid, damaged)


def _emit_frames(frames: list[Frame], extra: dict[str, Any]) -> int:
    """Print each frame (after ``extra``); return how many hold an invalid message."""
    invalid = 0
    for frame in frames:
        out = frame_to_dict(frame)
        invalid += "error" in out
        emit_json({**extra, **out})
    return invalid


def _emit_garbage(decoder: FrameDecoder, extra: dict[str, Any]) -> None:
    garbage = {
        "dropped_bytes": decoder.dropped_bytes,
        "bad_crc": decoder.bad_crc,
        "bad_length": decoder.bad_length,
        "incomplete_bytes": decoder.pending,
    }
    if any(garbage.values()):
        emit_json({**extra, **garbage})


def _verdict(frames: int, size: int, invalid: int, damaged: int = 0) -> None:
    if not frames:
        fail(f"no intact frame in {size} bytes")
    if invalid:
        fail(f"{invalid} frame(s) hold an invalid message")
    if damaged:
        fail(f"{damaged} damaged line(s) in the capture")


def _field_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    fields = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            fail(f"expected field=value, got {pair!r}")
        fields[name] = value
    return fields


def _catalogue() -> list[dict[str, Any]]:
    return [
        {"op": name, "opcode": OPCODES[name], "fields": list(message_to_dict(sample(name)))}
        for name in MESSAGE_TYPES
    ]


@click.command()
@click.argument("op", required=False)
@click.argument("fields", metavar="[FIELD=VALUE]...", nargs=-1)
@click.option("--sample", "use_sample", is_flag=True, help="Start from the spec's example.")
@click.option("--list", "list_ops", is_flag=True, help="List the operations and their fields.")
@click.option(
    "--ctrl",
    type=click.Choice([c.name for c in Ctrl], case_sensitive=False),
    default="INFO",
    show_default=True,
    help="Frame type (frames other than INFO carry no message).",
)
@click.option("--ns", type=click.IntRange(0, 255), default=0, show_default=True)
@click.option("--nr", type=click.IntRange(0, 255), default=0, show_default=True)
@json_option
def encode(
    op: str | None,
    fields: tuple[str, ...],
    use_sample: bool,
    list_ops: bool,
    ctrl: str,
    ns: int,
    nr: int,
    as_json: bool,
) -> None:
    """Encode one CTI frame and print it in hex.

    Field values: numbers, enum names in lowercase, true/false, lists as a,b,c.
    With --sample, given fields replace the example's.

    \b
    Examples:
      acd encode --list
      acd encode DeflectCall --sample
      acd encode DeflectCall invoke_id=6 call_id=1042 device=201 --ns 3 --nr 1
      acd encode --ctrl HEARTBEAT --nr 4
    """
    if list_ops:
        if as_json:
            emit_json(_catalogue())
        else:
            for entry in _catalogue():
                click.echo(f"{entry['opcode']:4} {entry['op']:22} {' '.join(entry['fields'])}")
        return
    kind = Ctrl[ctrl.upper()]
    payload = b""
    if kind is Ctrl.INFO:
        if op is None:
            fail("give an operation (see acd encode --list)")
        if op not in MESSAGE_TYPES:
            fail(f"unknown operation {op!r} (see acd encode --list)")
        values: dict[str, Any] = message_to_dict(sample(op)) if use_sample else {}
        values.update(_field_pairs(fields))
        try:
            payload = encode_message(message_from_dict(op, values))
        except ProtocolError as exc:
            fail(str(exc))
    elif op is not None or fields:
        fail(f"a {kind.name} frame carries no message")
    wire = encode_frame(kind, ns, nr, payload)
    if as_json:
        emit_json({"hex": wire.hex(" "), **frame_to_dict(Frame(kind, ns, nr, payload))})
    else:
        click.echo(wire.hex(" "))

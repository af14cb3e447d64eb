"""docs/cti-protocol.md cannot drift: its hex examples, opcodes and enum values are checked."""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli
from protocols.framing import Ctrl, FrameDecoder
from protocols.messages import (
    MESSAGE_TYPES,
    CallState,
    Cause,
    ErrorCode,
    LampMode,
    SystemStatusCode,
    decode_message,
    sample,
)

SPEC = (Path(__file__).parents[2] / "docs" / "cti-protocol.md").read_text(encoding="utf-8")
EXAMPLES = re.findall(
    r"^\$ acd encode (.*)\n([0-9a-f]{2}(?: [0-9a-f]{2})*)$", SPEC, flags=re.MULTILINE
)


def test_the_spec_has_examples_for_every_message():
    samples = {args.split()[0] for args, _ in EXAMPLES if args.endswith(" --sample")}
    assert samples == set(MESSAGE_TYPES)
    assert len(EXAMPLES) > len(MESSAGE_TYPES) + 10


@pytest.mark.parametrize(("args", "hex_text"), EXAMPLES, ids=[a for a, _ in EXAMPLES])
def test_hex_example_is_what_acd_encode_prints_and_decodes_back(args, hex_text):
    result = CliRunner().invoke(cli, ["encode", *shlex.split(args)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == hex_text
    decoder = FrameDecoder()
    (frame,) = decoder.feed(bytes.fromhex(hex_text))
    assert decoder.dropped_bytes == decoder.pending == 0
    if frame.ctrl == Ctrl.INFO:
        msg = decode_message(frame.payload)
        name = args.split()[0]
        assert type(msg).__name__ == name
        if args == f"{name} --sample":
            assert msg == sample(name)
    else:
        assert frame.payload == b""


@pytest.mark.parametrize("name", sorted(MESSAGE_TYPES))
def test_opcode_heading(name):
    opcode = MESSAGE_TYPES[name].OPCODE
    assert f"#### {name} — opcode {opcode} (0x{opcode:02x})\n" in SPEC


@pytest.mark.parametrize("enum", [CallState, SystemStatusCode, LampMode, ErrorCode, Cause])
def test_enum_values(enum):
    section = SPEC.split(f"#### {enum.__name__}\n", 1)[1].split("####", 1)[0]
    rows = re.findall(r"^\| (\d+) \| `(\w+)` \|$", section, flags=re.MULTILINE)
    assert rows == [(str(m.value), m.name) for m in enum]


def test_ctrl_values():
    for ctrl in Ctrl:
        name = "INFO (I-frame)" if ctrl is Ctrl.INFO else ctrl.name.replace("_", "-")
        assert f"| 0x{ctrl.value:02x} | {name} |" in SPEC

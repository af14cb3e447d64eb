"""docs/cti-protocol.md cannot drift: its hex examples, opcodes and enum values are checked."""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.config import LinkConfig
from acd.runtime.bridge import controller_link
from firmware_sim.scenario import LinkSettings
from protocols import link
from protocols.framing import Ctrl, FrameDecoder, encode_frame
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


CONFIGURATION = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text("utf-8")
TIMERS = re.findall(
    r"^\| [^|]+ \| `(\w+)` \| ([\d.]+)(?: s)? \| [^|]+ \| [^|]+ \|$",
    SPEC.split("### 4.2 ", 1)[1].split("### 4.3", 1)[0],
    flags=re.MULTILINE,
)


def test_link_timers_have_one_truth_spec_code_configuration_and_simulator():
    assert [key for key, _ in TIMERS] == ["window", "t1", "n2", "heartbeat", "reset_interval"]
    section = CONFIGURATION.split("## `[link]`", 1)[1].split("\n## ", 1)[0]
    ends = (link.Link(link.Role.CONTROLLER), link.Link(link.Role.SWITCH))
    for key, default in TIMERS:
        value = getattr(link, key.upper())
        assert float(default) == value, key
        assert getattr(LinkConfig(), key) == getattr(LinkSettings(), key) == value, key
        assert all(getattr(end, key) == value for end in ends), key
        assert re.search(rf"^\| `{key}` \| \w+ \| `{default}` \|", section, re.MULTILINE), key


@pytest.mark.parametrize("interval", [None, 0.5])
def test_the_controller_repeats_reset_every_reset_interval(interval):
    cfg = LinkConfig() if interval is None else LinkConfig(reset_interval=interval)
    expected = link.RESET_INTERVAL if interval is None else interval
    controller = controller_link(cfg)
    controller.start(100.0)
    resets = [(100.0, controller.data_to_send())]
    for _ in range(3):
        now = controller.next_deadline()
        controller.handle_timer(now)
        resets.append((now, controller.data_to_send()))
    reset = encode_frame(Ctrl.RESET, 0, 0)
    assert resets == [(100.0 + i * expected, reset) for i in range(4)]


def test_the_call_model_section_has_a_diagram_per_request_and_checked_examples():
    model = SPEC.split("## 9. Call model\n", 1)[1].split("\n## 10. ", 1)[0]
    checked = [args for args, _ in EXAMPLES if f"$ acd encode {args}\n" in model]
    assert len(checked) >= 15  # each one checked by the test above
    for request in ("QueueCall", "DeflectCall", "RingDevices", "ClearConnection"):
        assert f"C->>S: {request}(" in model
    assert "C->>S: SingleStepTransfer(" in model and model.count("sequenceDiagram") >= 6

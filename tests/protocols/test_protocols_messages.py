"""The message catalogue: round trips, JSON form, and garbage in."""

import dataclasses
import enum
import typing

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from protocols.errors import DecodeError, EncodeError
from protocols.messages import (
    MESSAGE_TYPES,
    NOT_YET,
    OPCODES,
    CallInfo,
    CallState,
    DeflectCall,
    FallbackCall,
    RingDevices,
    SnapshotCallsResult,
    decode_message,
    encode_message,
    message_from_dict,
    message_name,
    message_to_dict,
    sample,
)

# A string field holds at most 255 UTF-8 bytes: 60 characters of up to 4 bytes fit.
_text = st.text(max_size=60)


def _strategy(hint):
    if typing.get_origin(hint) is typing.Annotated:
        return st.integers(0, 2 ** (8 * typing.get_args(hint)[1].sizeof()) - 1)
    if hint is str:
        return _text
    if hint is bool:
        return st.booleans()
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return st.sampled_from(hint)
    if hint == tuple[str, ...]:
        return st.lists(_text, max_size=4).map(tuple)
    for cls in (CallInfo, FallbackCall):
        if hint == tuple[cls, ...]:
            return st.lists(_fields_of(cls), max_size=4).map(tuple)
    raise AssertionError(hint)


def _fields_of(cls):
    hints = typing.get_type_hints(cls, include_extras=True)
    return st.builds(cls, *(_strategy(hints[f.name]) for f in dataclasses.fields(cls)))


messages = st.sampled_from(sorted(MESSAGE_TYPES)).flatmap(
    lambda name: _fields_of(MESSAGE_TYPES[name])
)


@given(messages)
@example(DeflectCall(0, 0, ""))
@example(DeflectCall(0xFFFF, 0xFFFFFFFF, "é" * 127))
@example(RingDevices(1, 2, (), 0))
@example(SnapshotCallsResult(3, (CallInfo(1, CallState.queued, "", "", ""),)))
def test_round_trip(msg):
    payload = encode_message(msg)
    assert payload[0] == OPCODES[message_name(msg)]
    assert int.from_bytes(payload[1:3], "big") == msg.invoke_id
    decoded = decode_message(payload)
    assert decoded == msg
    assert type(decoded) is type(msg)


@given(messages)
def test_json_round_trip(msg):
    assert message_from_dict(message_name(msg), message_to_dict(msg)) == msg


@given(messages, st.binary(min_size=1, max_size=8))
@example(sample("ConnectionCleared"), b"\xa5")
@example(sample("SnapshotCallsResult"), b"\x00")
def test_every_strict_prefix_is_truncated_and_more_bytes_are_extra(msg, more):
    payload = encode_message(msg)
    name = message_name(msg)
    with pytest.raises(DecodeError, match=r"^empty payload$"):
        decode_message(payload[:0])
    # a message with an optional trailer (§5.1) is whole without it
    whole = encode_message(dataclasses.replace(msg, fallback=())) if name == _TRAILED else None
    for cut in range(1, len(payload)):  # whatever the field the cut falls in
        if payload[:cut] == whole:
            assert decode_message(whole) == dataclasses.replace(msg, fallback=())
            continue
        with pytest.raises(DecodeError, match=rf"^{name}: truncated$"):
            decode_message(payload[:cut])
    if name == _TRAILED and not msg.fallback:
        return  # more bytes are read as the trailer: see the test below
    with pytest.raises(DecodeError, match=rf"^{name}: {len(more)} extra bytes$"):
        decode_message(payload + more)


_TRAILED = "SnapshotCallsResult"


def test_the_fallback_trailer_is_optional_and_sent_only_when_not_empty():
    plain = sample("SnapshotCallsResult")
    ended = FallbackCall(1043, "0561", "3900", "202", 95_000, 80_000, 2_000)
    waiting = FallbackCall(1044, "0562", "3900", "", 4_000, NOT_YET, NOT_YET)
    trailed = dataclasses.replace(plain, fallback=(ended, waiting))
    assert encode_message(trailed).startswith(encode_message(plain))
    assert decode_message(encode_message(trailed)) == trailed
    assert decode_message(encode_message(plain) + b"\x00") == plain  # an empty trailer
    with pytest.raises(DecodeError, match=r"^SnapshotCallsResult: truncated$"):
        decode_message(encode_message(plain) + b"\x01")
    with pytest.raises(DecodeError, match=r"^SnapshotCallsResult: 1 extra bytes$"):
        decode_message(encode_message(trailed) + b"\x00")


def test_a_payload_cut_before_a_field_is_truncated_not_a_bad_value():
    # ConnectionCleared without its cause, a string cut in the middle of a character:
    # decoding never looks beyond the payload, so nothing there is taken for a value
    with pytest.raises(DecodeError, match=r"^ConnectionCleared: truncated$"):
        decode_message(bytes.fromhex("83 00 01 00 00 04 12 00"))
    with pytest.raises(DecodeError, match=r"^DeflectCall: truncated$"):
        decode_message(encode_message(DeflectCall(1, 2, "é"))[:-1])
    with pytest.raises(DecodeError, match=r"^ConnectionCleared: 200 is not a valid Cause$"):
        decode_message(bytes.fromhex("83 00 01 00 00 04 12 00 c8"))


@given(st.binary(max_size=64))
def test_arbitrary_bytes_decode_or_raise_decode_error(payload):
    try:
        msg = decode_message(payload)
    except DecodeError:
        return
    assert encode_message(msg)[0] == payload[0]


def test_unknown_opcode_and_bad_enum_value():
    with pytest.raises(DecodeError, match="unknown opcode 255"):
        decode_message(b"\xff\x00\x01")
    payload = bytearray(encode_message(sample("SystemStatus")))
    payload[-1] = 200  # no such SystemStatusCode
    with pytest.raises(DecodeError, match="SystemStatus"):
        decode_message(bytes(payload))


def test_encode_rejects_values_that_do_not_fit():
    with pytest.raises(EncodeError, match="DeflectCall"):
        encode_message(DeflectCall(0x10000, 1, "201"))
    with pytest.raises(EncodeError):
        encode_message(DeflectCall(1, 1, "x" * 256))
    with pytest.raises(EncodeError, match="not a message"):
        encode_message("DeflectCall")  # type: ignore[arg-type]


def test_catalogue_is_complete_and_opcodes_unique():
    assert len(set(OPCODES.values())) == len(OPCODES) == 33
    for name, cls in MESSAGE_TYPES.items():
        msg = sample(name)
        assert type(msg) is cls
        assert dataclasses.fields(cls)[0].name == "invoke_id"
        with pytest.raises(dataclasses.FrozenInstanceError):
            msg.invoke_id = 1  # type: ignore[misc]


def test_csta_operation_codes_are_reused():
    assert OPCODES["ClearConnection"] == 5
    assert OPCODES["SingleStepTransfer"] == 50
    assert OPCODES["MonitorStart"] == 71
    assert OPCODES["SnapshotDevice"] == 74


def test_message_from_dict_takes_command_line_strings():
    msg = message_from_dict(
        "RingDevices", {"invoke_id": "7", "call_id": "0x412", "devices": "201,202", "timeout_s": 20}
    )
    assert msg == RingDevices(7, 0x412, ("201", "202"), 20)
    assert message_to_dict(sample("ConnectionCleared"))["cause"] == "normal"
    hook = message_from_dict("HookState", {"invoke_id": 1, "device": "201", "off_hook": "true"})
    assert hook.off_hook is True


@pytest.mark.parametrize(
    ("name", "fields", "problem"),
    [
        ("Nope", {}, "unknown message"),
        ("KeyReady", {"invoke_id": 1}, "missing field"),
        ("KeyReady", {"invoke_id": 1, "device": "2", "x": 1}, "unknown field"),
        ("KeyReady", {"invoke_id": "one", "device": "2"}, "expected an integer"),
        ("SystemStatus", {"invoke_id": 1, "status": "sleepy"}, "expected one of"),
        ("KeyReady", {"invoke_id": 1, "device": 2}, "expected a string"),
        ("HookState", {"invoke_id": 1, "device": "2", "off_hook": "maybe"}, "true or false"),
        ("SnapshotCallsResult", {"invoke_id": 1, "calls": 3}, "expected a list"),
    ],
)
def test_message_from_dict_errors(name, fields, problem):
    with pytest.raises(EncodeError, match=problem):
        message_from_dict(name, fields)

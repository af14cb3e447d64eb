"""The CTI message catalogue: frozen dataclasses, their Construct schemas and the codec.

A payload is ``opcode u8 | invoke_id u16 | fields``, big-endian. Field types are read
from each dataclass's annotations (``U8``, ``U16``, ``U32``, ``str``, ``bool``, an
``IntEnum``, ``tuple[str, ...]``, ``tuple[CallInfo, ...]`` or ``tuple[FallbackCall, ...]``),
so the dataclass is the one source of truth; the Construct schema of every message is
built and compiled once at import and ``decode_message`` dispatches on the opcode through
a dict. A last field with a default is an optional trailer: sent only when it differs
from its default, read only when bytes are left (spec §5.1).

Opcodes reuse ECMA-285 (CSTA phase III) operation codes where the operation exists;
events are ``128 + `` the CSTA event-type number; the rest are private codes >= 200.
``docs/cti-protocol.md`` is the normative description.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import typing
from dataclasses import dataclass, field, fields
from io import BytesIO
from typing import Annotated, Any, ClassVar

import construct as c

from protocols.errors import DecodeError, EncodeError

U8 = Annotated[int, c.Int8ub]
"""An unsigned 8-bit field."""
U16 = Annotated[int, c.Int16ub]
"""An unsigned 16-bit field."""
U32 = Annotated[int, c.Int32ub]
"""An unsigned 32-bit field."""

_STRING = c.PascalString(c.Int8ub, "utf8")


class CallState(enum.IntEnum):
    """State of a call at a device (CSTA LocalConnectionState values where one exists)."""

    cleared = 0
    offered = 1
    alerting = 2
    connected = 3
    held = 4
    queued = 5


class SystemStatusCode(enum.IntEnum):
    """Application-level status of one side (CSTA SystemStatus values)."""

    initializing = 0
    enabled = 1
    normal = 2
    messages_lost = 3
    disabled = 4
    partially_disabled = 5
    overload_imminent = 6
    overload_reached = 7
    overload_relieved = 8


class LampMode(enum.IntEnum):
    """Mode of a handset lamp."""

    off = 0
    on = 1
    flash = 2


class ErrorCode(enum.IntEnum):
    """Why a request was refused (names after CSTA UniversalFailure, private values)."""

    generic = 1
    not_supported = 2
    invalid_parameter = 3
    invalid_device = 4
    invalid_call = 5
    invalid_state = 20
    device_busy = 30
    resource_busy = 31


class Cause(enum.IntEnum):
    """Why an event happened (CSTA EventCause values)."""

    busy = 3
    caller_abandon = 5  # CSTA callCancelled
    no_answer = 10  # CSTA callNotAnswered
    dest_not_obtainable = 13
    network = 20  # CSTA networkCongestion
    new_call = 22
    no_available_agents = 23
    overflow = 26
    redirected = 28
    resources_not_available = 30
    transfer = 32
    normal = 48  # CSTA normalClearing
    reboot = 54  # CSTA switchingFunctionTerminated
    timeout = 56


@dataclass(frozen=True, slots=True)
class CallInfo:
    """One call as reported by a snapshot."""

    call_id: U32
    state: CallState
    calling: str
    called: str
    device: str


NOT_YET = 0xFFFFFFFF
"""`FallbackCall` time meaning "has not happened" (not answered, not ended)."""


@dataclass(frozen=True, slots=True)
class FallbackCall:
    """A call the switch routed itself while the controller was gone (spec §9.7).
    Times are milliseconds before the snapshot answer; `NOT_YET` if it did not happen.
    ``device`` is the handset that answered it ("" if none)."""

    call_id: U32
    calling: str
    called: str
    device: str
    offered_ago: U32
    answered_ago: U32
    ended_ago: U32


@dataclass(frozen=True, slots=True)
class Message:
    """Base of every message. ``invoke_id`` correlates a request with its response."""

    OPCODE: ClassVar[int]
    invoke_id: U16


# --- requests, controller -> switch ------------------------------------------------


@dataclass(frozen=True, slots=True)
class MonitorStart(Message):
    """Start reporting events for ``device`` ("" = every device)."""

    OPCODE: ClassVar[int] = 71
    device: str


@dataclass(frozen=True, slots=True)
class MonitorStop(Message):
    """Stop reporting events for ``device`` ("" = every device)."""

    OPCODE: ClassVar[int] = 73
    device: str


@dataclass(frozen=True, slots=True)
class SnapshotDevice(Message):
    """Ask for the state of one device; answered by `SnapshotDeviceResult`."""

    OPCODE: ClassVar[int] = 74
    device: str


@dataclass(frozen=True, slots=True)
class SnapshotCalls(Message):
    """Ask for every call in progress; answered by `SnapshotCallsResult`."""

    OPCODE: ClassVar[int] = 75


@dataclass(frozen=True, slots=True)
class SystemStatus(Message):
    """Application-level "are you alive" and status report (either direction)."""

    OPCODE: ClassVar[int] = 52
    status: SystemStatusCode


@dataclass(frozen=True, slots=True)
class DeflectCall(Message):
    """Route (deflect) a call to an extension."""

    OPCODE: ClassVar[int] = 8
    call_id: U32
    device: str


@dataclass(frozen=True, slots=True)
class ClearConnection(Message):
    """Drop one party ("" = the caller / whole call); also cancels a ring at a device."""

    OPCODE: ClassVar[int] = 5
    call_id: U32
    device: str


@dataclass(frozen=True, slots=True)
class SingleStepTransfer(Message):
    """Transfer the call from ``device`` to ``to_device``."""

    OPCODE: ClassVar[int] = 50
    call_id: U32
    device: str
    to_device: str


@dataclass(frozen=True, slots=True)
class RingDevices(Message):
    """Ring several extensions at once; the first to answer gets the call."""

    OPCODE: ClassVar[int] = 200
    call_id: U32
    devices: tuple[str, ...]
    timeout_s: U16


@dataclass(frozen=True, slots=True)
class QueueCall(Message):
    """Hold the caller in ``queue`` with an announcement or music."""

    OPCODE: ClassVar[int] = 201
    call_id: U32
    queue: str
    announcement: U16


@dataclass(frozen=True, slots=True)
class PlayAnnouncement(Message):
    """Play an announcement to the caller; ``value`` is the spoken number or 0."""

    OPCODE: ClassVar[int] = 202
    call_id: U32
    announcement: U16
    value: U32


@dataclass(frozen=True, slots=True)
class SetDisplay(Message):
    """Show ``text`` on a handset display."""

    OPCODE: ClassVar[int] = 203
    device: str
    text: str


LOGIN_PROMPT = "Log in again"
"""The display text asking a handset's user to key the login again (with the PIN): the
controller shows it where the switch reports a login it never verified (spec §9.3)."""


@dataclass(frozen=True, slots=True)
class SetLamp(Message):
    """Set a handset lamp."""

    OPCODE: ClassVar[int] = 204
    device: str
    lamp: U8
    mode: LampMode


# --- responses, either direction ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class PositiveAck(Message):
    """The request with this invoke id succeeded."""

    OPCODE: ClassVar[int] = 210


@dataclass(frozen=True, slots=True)
class NegativeAck(Message):
    """The request with this invoke id failed."""

    OPCODE: ClassVar[int] = 211
    error: ErrorCode
    detail: str


@dataclass(frozen=True, slots=True)
class SnapshotDeviceResult(Message):
    """State of one device (``agent_id`` "" if nobody is logged in)."""

    OPCODE: ClassVar[int] = 212
    device: str
    hook_off: bool
    agent_id: str
    calls: tuple[CallInfo, ...]


@dataclass(frozen=True, slots=True)
class SnapshotCallsResult(Message):
    """Every call in progress, then the calls the switch's fallback routed (§9.7)."""

    OPCODE: ClassVar[int] = 213
    calls: tuple[CallInfo, ...]
    fallback: tuple[FallbackCall, ...] = ()


# --- events, switch -> controller (invoke_id is the switch's rolling event id) ------


@dataclass(frozen=True, slots=True)
class Offered(Message):
    """A new call to a service number."""

    OPCODE: ClassVar[int] = 128 + 12
    call_id: U32
    calling: str
    called: str
    trunk: U16


@dataclass(frozen=True, slots=True)
class Queued(Message):
    """The call waits in ``queue``."""

    OPCODE: ClassVar[int] = 128 + 14
    call_id: U32
    queue: str


@dataclass(frozen=True, slots=True)
class Delivered(Message):
    """The call is alerting at a handset."""

    OPCODE: ClassVar[int] = 128 + 4
    call_id: U32
    device: str
    calling: str
    called: str


@dataclass(frozen=True, slots=True)
class Established(Message):
    """The call was answered at ``device``."""

    OPCODE: ClassVar[int] = 128 + 7
    call_id: U32
    device: str
    calling: str


@dataclass(frozen=True, slots=True)
class ConnectionCleared(Message):
    """``device`` left the call ("" = the caller hung up)."""

    OPCODE: ClassVar[int] = 128 + 3
    call_id: U32
    device: str
    cause: Cause


@dataclass(frozen=True, slots=True)
class Diverted(Message):
    """The call moved from one device to another before being answered."""

    OPCODE: ClassVar[int] = 128 + 6
    call_id: U32
    from_device: str
    to_device: str


@dataclass(frozen=True, slots=True)
class Transferred(Message):
    """The answered call was transferred."""

    OPCODE: ClassVar[int] = 128 + 17
    call_id: U32
    from_device: str
    to_device: str


@dataclass(frozen=True, slots=True)
class Failed(Message):
    """The call could not reach ``device``."""

    OPCODE: ClassVar[int] = 128 + 8
    call_id: U32
    device: str
    cause: Cause


@dataclass(frozen=True, slots=True)
class DigitsCollected(Message):
    """The caller's menu choice."""

    OPCODE: ClassVar[int] = 220
    call_id: U32
    digits: str


@dataclass(frozen=True, slots=True)
class KeyLogin(Message):
    """Login key on a handset, with agent id and PIN (a secret: see `shown_fields`)."""

    OPCODE: ClassVar[int] = 230
    device: str
    agent_id: str
    pin: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KeyLogout(Message):
    """Logout key on a handset."""

    OPCODE: ClassVar[int] = 231
    device: str


@dataclass(frozen=True, slots=True)
class KeyReady(Message):
    """Ready key on a handset."""

    OPCODE: ClassVar[int] = 232
    device: str


@dataclass(frozen=True, slots=True)
class KeyNotReady(Message):
    """Not-ready key on a handset, with a reason code."""

    OPCODE: ClassVar[int] = 233
    device: str
    reason: U8


@dataclass(frozen=True, slots=True)
class KeyWrapUpDone(Message):
    """Wrap-up-done key on a handset."""

    OPCODE: ClassVar[int] = 234
    device: str


@dataclass(frozen=True, slots=True)
class KeyEscalate(Message):
    """Escalate key: pass ``call_id`` to a specialist ``group``."""

    OPCODE: ClassVar[int] = 235
    device: str
    call_id: U32
    group: str


@dataclass(frozen=True, slots=True)
class HookState(Message):
    """A handset went off or on hook."""

    OPCODE: ClassVar[int] = 240
    device: str
    off_hook: bool


MESSAGE_TYPES: dict[str, type[Message]] = {
    cls.__name__: cls
    for cls in (
        MonitorStart,
        MonitorStop,
        SnapshotDevice,
        SnapshotCalls,
        SystemStatus,
        DeflectCall,
        RingDevices,
        QueueCall,
        PlayAnnouncement,
        ClearConnection,
        SingleStepTransfer,
        SetDisplay,
        SetLamp,
        PositiveAck,
        NegativeAck,
        SnapshotDeviceResult,
        SnapshotCallsResult,
        Offered,
        Queued,
        Delivered,
        Established,
        ConnectionCleared,
        Diverted,
        Transferred,
        Failed,
        DigitsCollected,
        KeyLogin,
        KeyLogout,
        KeyReady,
        KeyNotReady,
        KeyWrapUpDone,
        KeyEscalate,
        HookState,
    )
}
"""Every message class by name, in catalogue order."""

REQUESTS: tuple[type[Message], ...] = (
    MonitorStart,
    MonitorStop,
    SnapshotDevice,
    SnapshotCalls,
    SystemStatus,
    DeflectCall,
    ClearConnection,
    SingleStepTransfer,
    RingDevices,
    QueueCall,
    PlayAnnouncement,
    SetDisplay,
    SetLamp,
)
"""The catalogue's messages that are requests: each is answered exactly once (spec
§5.2). A message added later says whether it is one (`register`)."""


def refusal(payload: bytes, error: str) -> NegativeAck | None:
    """The answer to an invalid payload (spec §5.1): ``NegativeAck(invalid_parameter)``
    when it has an invoke id and its opcode is a request's or unknown, else None (an
    invalid event or response is reported, never answered)."""
    codec = _BY_OPCODE.get(payload[0]) if payload else None
    if len(payload) < 3 or (codec is not None and not codec.request):
        return None
    detail = error.encode()[:200].decode(errors="ignore")
    return NegativeAck(int.from_bytes(payload[1:3]), ErrorCode.invalid_parameter, detail)


# --- schemas ----------------------------------------------------------------------


def _field_schema(hint: Any) -> tuple[c.Construct, Any]:
    """The Construct for one annotated field and a converter from parsed values (or None)."""
    if typing.get_origin(hint) is Annotated:
        return typing.get_args(hint)[1], None
    if hint is str:
        return _STRING, None
    if hint is bool:
        return c.Flag, None
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        return c.Int8ub, hint
    if hint == tuple[str, ...]:
        return c.PrefixedArray(c.Int8ub, _STRING), tuple
    for cls, (schema, conv) in _RECORDS.items():
        if hint == tuple[cls, ...]:
            return c.PrefixedArray(c.Int8ub, schema), conv
    raise TypeError(f"no wire format for {hint!r}")


def _fields(cls: type) -> list[tuple[str, c.Construct, Any]]:
    hints = typing.get_type_hints(cls, include_extras=True)
    return [(f.name, *_field_schema(hints[f.name])) for f in dataclasses.fields(cls)]


_RECORDS: dict[type, tuple[c.Construct, Any]] = {}
"""The record types a message may list: their Construct and converter from parsed lists."""


def _record(cls: type) -> None:
    fields = _fields(cls)

    def convert(parsed: Any) -> tuple[Any, ...]:
        return tuple(
            cls(*(conv(item[n]) if conv else item[n] for n, _, conv in fields)) for item in parsed
        )

    _RECORDS[cls] = (c.Struct(*(name / sub for name, sub, _ in fields)), convert)


_record(CallInfo)
_record(FallbackCall)


class _Truncated(Exception):
    """A field runs past the end of the payload."""


class _Payload(BytesIO):
    """A payload as the stream the compiled parsers read: a read of more bytes than
    are left raises `_Truncated` (a compiled string parser would otherwise take the
    short read silently), so parsing never looks beyond the payload."""

    __slots__ = ()

    def read(self, size: int | None = -1, /) -> bytes:
        data = _read(self, size)
        if len(data) != size and size is not None and size >= 0:
            raise _Truncated
        return data


_read = BytesIO.read

_CONTEXT = c.Container(_params=c.Container())
"""The (read-only) outer context compiled parsers expect."""


@dataclass(frozen=True, slots=True)
class _Codec:
    cls: type[Message]
    schema: Any  # compiled Construct: opcode, then the fields in order
    parse: Any  # the schema's compiled parse function: (stream, context) -> Container
    names: tuple[str, ...]
    converters: tuple[tuple[str, Any], ...]  # fields whose parsed value needs converting
    request: bool  # answered exactly once (§5.2); else an event or a response
    trailer: Any = None  # compiled Struct of the optional last field, if there is one


def _codec(cls: type[Message], request: bool) -> _Codec:
    fields = _fields(cls)
    optional = [f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING]
    assert optional in ([], [fields[-1][0]]), f"{cls.__name__}: only the last field is optional"
    body = fields[: len(fields) - len(optional)]
    schema = c.Struct(
        "opcode" / c.Const(cls.OPCODE, c.Int8ub), *(name / sub for name, sub, _ in body)
    ).compile()
    trailer = (
        c.Struct(*(n / sub for n, sub, _ in fields[len(body) :])).compile() if optional else None
    )
    converters = tuple((name, conv) for name, _, conv in fields if conv is not None)
    names = tuple(n for n, _, _ in fields)
    return _Codec(cls, schema, schema.parsefunc, names, converters, request, trailer)


_BY_OPCODE: dict[int, _Codec] = {
    cls.OPCODE: _codec(cls, cls in REQUESTS) for cls in MESSAGE_TYPES.values()
}
_BY_CLASS: dict[type[Message], _Codec] = {codec.cls: codec for codec in _BY_OPCODE.values()}
assert len(_BY_OPCODE) == len(MESSAGE_TYPES), "duplicate opcode"

OPCODES: dict[str, int] = {name: cls.OPCODE for name, cls in MESSAGE_TYPES.items()}
"""Opcode of every message by name."""


def register(cls: type[Message], *, request: bool) -> type[Message]:
    """Add a message type to the catalogue (its wire format from its annotations), as
    the module does for its own: a ``request`` is answered exactly once, even when
    invalid (§5.1, §5.2), an event or a response never is. `ValueError` if its name or
    opcode is taken."""
    taken = _BY_OPCODE.get(cls.OPCODE)
    if cls.__name__ in MESSAGE_TYPES or taken is not None:
        clash = taken.cls.__name__ if taken else cls.__name__
        raise ValueError(f"{cls.__name__}: opcode {cls.OPCODE} or name taken by {clash}")
    codec = _codec(cls, request)
    MESSAGE_TYPES[cls.__name__] = cls
    _BY_OPCODE[cls.OPCODE] = _BY_CLASS[cls] = codec
    OPCODES[cls.__name__] = cls.OPCODE
    return cls


# --- codec ------------------------------------------------------------------------


def decode_message(payload: bytes) -> Message:
    """Parse one payload into its message; raise `DecodeError` if it is not exactly one:
    a field running past the end is ``truncated`` (never read from beyond it), bytes
    left over are ``N extra bytes``, then values out of range are named."""
    if not payload:
        raise DecodeError("empty payload")
    codec = _BY_OPCODE.get(payload[0])
    if codec is None:
        raise DecodeError(f"unknown opcode {payload[0]}")
    stream = _Payload(payload)
    try:
        parsed = codec.parse(stream, _CONTEXT)
        if codec.trailer is not None:
            if stream.tell() < len(payload):
                parsed.update(codec.trailer.parsefunc(stream, _CONTEXT))
            else:
                parsed[codec.names[-1]] = []
    except _Truncated:
        raise DecodeError(f"{codec.cls.__name__}: truncated") from None
    except Exception as exc:  # compiled parsers raise UnicodeDecodeError, ConstError...
        raise DecodeError(f"{codec.cls.__name__}: {exc}".splitlines()[0]) from None
    extra = len(payload) - stream.tell()
    if extra:
        raise DecodeError(f"{codec.cls.__name__}: {extra} extra bytes")
    try:
        for name, conv in codec.converters:
            parsed[name] = conv(parsed[name])
    except ValueError as exc:  # a value out of its enumeration
        raise DecodeError(f"{codec.cls.__name__}: {exc}".splitlines()[0]) from None
    return codec.cls(*[parsed[n] for n in codec.names])


def _wire_value(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_wire_value(v) for v in value]
    if isinstance(value, CallInfo | FallbackCall):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    return value


def encode_message(msg: Message) -> bytes:
    """Serialise one message to its payload; raise `EncodeError` if a field does not fit."""
    codec = _BY_CLASS.get(type(msg))
    if codec is None:
        raise EncodeError(f"not a message: {msg!r}")
    fields = {name: _wire_value(getattr(msg, name)) for name in codec.names}
    try:
        payload = codec.schema.build(fields)
        if codec.trailer is not None and fields[codec.names[-1]]:
            payload += codec.trailer.build(fields)
        return payload
    except Exception as exc:
        raise EncodeError(f"{codec.cls.__name__}: {exc}".splitlines()[0]) from None


def message_name(msg: Message) -> str:
    """The catalogue name of a message (its class name)."""
    return type(msg).__name__


# --- JSON form --------------------------------------------------------------------


def _to_json(value: Any) -> Any:
    if isinstance(value, enum.IntEnum):
        return value.name
    if isinstance(value, tuple):
        return [_to_json(v) for v in value]
    if isinstance(value, CallInfo | FallbackCall):
        return {f.name: _to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def shown_fields(msg: Message) -> dict[str, Any]:
    """`message_to_dict` for logs and screens: secret fields (declared ``repr=False``,
    such as a PIN) read ``"****"``."""
    out = message_to_dict(msg)
    for f in fields(msg):
        if not f.repr and f.name in out:
            out[f.name] = "****"
    return out


def message_to_dict(msg: Message) -> dict[str, Any]:
    """The fields of a message as JSON-ready values (enums by lowercase name)."""
    return {name: _to_json(getattr(msg, name)) for name in _BY_CLASS[type(msg)].names}


def _from_json(hint: Any, value: Any, key: str) -> Any:
    if typing.get_origin(hint) is Annotated or hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            value = _int(value, key)
        return value
    if hint is str:
        if not isinstance(value, str):
            raise EncodeError(f"{key}: expected a string, got {value!r}")
        return value
    if hint is bool:
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "false", "0", "no"):
            return value.lower() in ("true", "1", "yes")
        if not isinstance(value, bool):
            raise EncodeError(f"{key}: expected true or false, got {value!r}")
        return value
    if isinstance(hint, type) and issubclass(hint, enum.IntEnum):
        if isinstance(value, str) and value in hint.__members__:
            return hint[value]
        choices = ", ".join(hint.__members__)
        raise EncodeError(f"{key}: expected one of {choices}, got {value!r}")
    if hint == tuple[str, ...]:
        if isinstance(value, str):
            value = [v for v in value.split(",") if v]
        return tuple(_from_json(str, v, key) for v in _list(value, key))
    for cls in _RECORDS:
        if hint == tuple[cls, ...]:
            if isinstance(value, str):  # from a command line: the list as JSON
                try:
                    value = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise EncodeError(f"{key}: not a JSON list ({exc})") from None
            return tuple(_from_dict(cls, v, key) for v in _list(value, key))
    raise TypeError(f"no JSON form for {hint!r}")


def _int(value: Any, key: str) -> int:
    try:
        return int(str(value), 0)
    except ValueError:
        raise EncodeError(f"{key}: expected an integer, got {value!r}") from None


def _list(value: Any, key: str) -> list[Any]:
    if not isinstance(value, list | tuple):
        raise EncodeError(f"{key}: expected a list, got {value!r}")
    return list(value)


def _from_dict(cls: type, fields: Any, where: str) -> Any:
    if not isinstance(fields, dict):
        raise EncodeError(f"{where}: expected an object, got {fields!r}")
    hints = typing.get_type_hints(cls, include_extras=True)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(fields) - set(names))
    if unknown:
        raise EncodeError(f"{where}: unknown field(s) {', '.join(unknown)}")
    required = [f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING]
    missing = [n for n in required if n not in fields]
    if missing:
        raise EncodeError(f"{where}: missing field(s) {', '.join(missing)}")
    return cls(**{n: _from_json(hints[n], fields[n], f"{where}.{n}") for n in names if n in fields})


def message_from_dict(name: str, fields: dict[str, Any]) -> Message:
    """Build a message from its name and JSON-form fields; raise `EncodeError` if invalid.

    Strings are accepted for numbers, booleans and lists (``"201,202"``; a list of
    records as JSON) so that
    ``field=value`` pairs from a command line can be passed as they are.
    """
    cls = MESSAGE_TYPES.get(name)
    if cls is None:
        raise EncodeError(f"unknown message {name!r}")
    return _from_dict(cls, fields, name)


# --- samples used by the specification ----------------------------------------------

_CALL = CallInfo(1042, CallState.alerting, "0561234567", "3900", "201")

_SAMPLES: dict[str, Message] = {
    m.__class__.__name__: m
    for m in (
        MonitorStart(1, ""),
        MonitorStop(2, "201"),
        SnapshotDevice(3, "201"),
        SnapshotCalls(4),
        SystemStatus(5, SystemStatusCode.normal),
        DeflectCall(6, 1042, "201"),
        RingDevices(7, 1042, ("201", "202", "203"), 20),
        QueueCall(8, 1042, "info", 1),
        PlayAnnouncement(9, 1042, 2, 3),
        ClearConnection(10, 1042, ""),
        SingleStepTransfer(11, 1042, "201", "4410"),
        SetDisplay(12, "201", "Queue: 3"),
        SetLamp(13, "201", 1, LampMode.flash),
        PositiveAck(6),
        NegativeAck(6, ErrorCode.device_busy, "201 busy"),
        SnapshotDeviceResult(3, "201", True, "A07", (_CALL,)),
        SnapshotCallsResult(4, (_CALL,)),
        Offered(500, 1042, "0561234567", "3900", 3),
        Queued(501, 1042, "info"),
        Delivered(502, 1042, "201", "0561234567", "3900"),
        Established(503, 1042, "201", "0561234567"),
        ConnectionCleared(504, 1042, "", Cause.normal),
        Diverted(505, 1042, "201", "202"),
        Transferred(506, 1042, "201", "4410"),
        Failed(507, 1042, "202", Cause.busy),
        DigitsCollected(508, 1042, "2"),
        KeyLogin(509, "201", "A07", "1234"),
        KeyLogout(510, "201"),
        KeyReady(511, "201"),
        KeyNotReady(512, "201", 2),
        KeyWrapUpDone(513, "201"),
        KeyEscalate(514, "201", 1042, "urbanisme"),
        HookState(515, "201", True),
    )
}
assert set(_SAMPLES) == set(MESSAGE_TYPES), "every message needs a sample"


def sample(name: str) -> Message:
    """The example message of type ``name`` used in the specification."""
    try:
        return _SAMPLES[name]
    except KeyError:
        raise EncodeError(f"unknown message {name!r}") from None

"""The MQTT topic tree, its JSON payloads and supervisor-command validation (pure).

Topics live under ``<prefix>/<site>/`` (see ``docs/mqtt.md``). Payload builders take
times in seconds (the engine's clock) and write them as integer milliseconds: ``ts``
(when the payload was produced), ``since`` (when the described state began) and ``seq``
(increases with each new payload on a topic during one controller run). Enum values on
the wire are lowercase. Nothing here does I/O; ``drivers/mqtt.py`` publishes.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from acd.core.agents import AgentState, AgentStatus
from acd.core.call_steps import StepKind
from acd.core.records import Outcome

ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
"""Agent, queue, site, alarm and request ids: no ``/``, ``+``, ``#`` or spaces."""

REASON_MIN, REASON_MAX = 0, 99
"""Range of not-ready reason codes a supervisor command may carry."""

MAX_COMMAND_BYTES = 4096
MAX_COMMAND_DEPTH = 16
"""Deepest nesting of arrays and objects accepted in a command (a valid one has 1)."""
MAX_TOPIC_BYTES = 65535
"""The MQTT limit on a topic name, in UTF-8 bytes."""


CallEventKind = StrEnum(
    "CallEventKind", [*((k.name, k.value) for k in StepKind), ("ENDED", "ended")]
)
"""Steps of a call published on ``event/call``: each `acd.core.call_steps.StepKind`, and
``ended`` (a leg's record)."""


LINK_DOWN_ALARM = "link-down"
"""The alarm raised while the PBX link is down."""

STORE_DOWN_ALARM = "store-down"
"""The alarm raised while the call-record store cannot be written (records wait in the
controller's outbox)."""


def answer_rate_alarm(queue_id: str) -> str:
    """The alarm of a queue whose answer rate is below its target."""
    return f"answer-rate-{check_id('queue', queue_id)}"


def pin_locked_alarm(agent_id: str) -> str:
    """The alarm of an agent whose PIN is locked after too many wrong PINs."""
    return f"pin-locked-{check_id('agent', agent_id)}"


def waiting_alarm(queue_id: str) -> str:
    """The alarm of a queue with too many callers waiting."""
    return f"waiting-{check_id('queue', queue_id)}"


class Severity(StrEnum):
    """Alarm severity."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class CommandAction(StrEnum):
    """What a supervisor may ask of an agent."""

    READY = "ready"
    NOT_READY = "not_ready"
    LOGOUT = "logout"


def check_id(kind: str, value: str) -> str:
    """Return ``value`` if it is a valid id, else raise ``ValueError`` naming ``kind``."""
    if not isinstance(value, str) or not ID_PATTERN.fullmatch(value):
        raise ValueError(f"bad {kind} id {value!r}: expected {ID_PATTERN.pattern}")
    return value


@dataclass(frozen=True)
class Topics:
    """Topic names of one site: ``Topics("acd/v1", "townhall").agent_state("7")``."""

    prefix: str
    site: str

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in "+#") or "//" in self.prefix:
            raise ValueError(f"bad topic prefix {self.prefix!r}")
        if self.prefix.startswith("/") or self.prefix.endswith("/"):
            raise ValueError(f"topic prefix {self.prefix!r} must not start or end with /")
        check_id("site", self.site)

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.site}"

    @property
    def status(self) -> str:
        return f"{self.base}/controller/status"

    def agent_state(self, agent_id: str) -> str:
        return f"{self.base}/agent/{check_id('agent', agent_id)}/state"

    def queue_stats(self, queue_id: str) -> str:
        return f"{self.base}/queue/{check_id('queue', queue_id)}/stats"

    @property
    def call_event(self) -> str:
        return f"{self.base}/event/call"

    def alarm(self, name: str) -> str:
        return f"{self.base}/alarm/{check_id('alarm', name)}"

    def agent_command(self, agent_id: str) -> str:
        return f"{self.base}/cmd/agent/{check_id('agent', agent_id)}/set"

    @property
    def agent_command_filter(self) -> str:
        """The subscription that receives every agent command of the site."""
        return f"{self.base}/cmd/agent/+/set"

    @property
    def retained_filters(self) -> tuple[str, ...]:
        """Subscriptions matching every retained state topic of the site but the status."""
        return (f"{self.base}/agent/+/state", f"{self.base}/queue/+/stats", f"{self.base}/alarm/+")

    def reply(self, request_id: str) -> str:
        return f"{self.base}/cmd/reply/{check_id('request', request_id)}"

    @property
    def command_error(self) -> str:
        """Where refusals go when the command carried no usable request id."""
        return f"{self.base}/cmd/error"

    def reply_to_allowed(self, topic: object) -> bool:
        """A ``reply_to`` must lie in this site's reply subtree ``<base>/cmd/reply/...``."""
        root = self.base + "/cmd/reply/"
        return (
            isinstance(topic, str)
            and topic.startswith(root)
            and len(topic) > len(root)
            and valid_topic_name(topic)
            and "//" not in topic
            and not topic.endswith("/")
        )


_NOT_IN_TOPICS = re.compile("[+#\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef]")


def valid_topic_name(topic: object) -> bool:
    """Whether ``topic`` may be published to: a non-empty string of at most 65,535 UTF-8
    bytes without wildcards (``+``, ``#``), lone surrogates, control characters or
    non-characters (MQTT 3.1.1 §1.5.3 and §4.7.3; a broker may disconnect a client that
    publishes to such a topic, and paho raises before sending one)."""
    return (
        isinstance(topic, str)
        and 0 < len(topic) <= MAX_TOPIC_BYTES
        and _NOT_IN_TOPICS.search(topic) is None
        and not any((ord(c) & 0xFFFE) == 0xFFFE for c in topic)  # U+FFFE, U+1FFFF...
        and len(topic.encode()) <= MAX_TOPIC_BYTES
    )


def ms(seconds: float) -> int:
    """Seconds (float) to integer milliseconds, as written in payloads."""
    return round(seconds * 1000)


def wire_enum(value: str | Enum, kind: type[StrEnum]) -> str:
    """The wire value of ``value`` (an enum member, its name or value) in ``kind``:
    lowercase, words joined by ``_`` (``"Not-Ready"`` and ``NOT_READY`` give ``not_ready``)."""
    if isinstance(value, Enum):
        value = value.value if isinstance(value.value, str) else value.name
    text = str(value).lower().replace("-", "_")
    if text not in kind._value2member_map_:
        allowed = ", ".join(m.value for m in kind)
        raise ValueError(f"{kind.__name__}: {value!r} is not one of {allowed}")
    return text


def mask_number(number: str | None, keep: int = 2) -> str | None:
    """Mask a caller number for publication: every digit but the last ``keep`` becomes ``*``.

    Non-digits (``+``, spaces) are kept; ``None`` or an empty number (withheld) is ``None``.
    """
    if not number:
        return None
    digits = sum(c.isdigit() for c in number)
    out, seen = [], 0
    for c in number:
        if c.isdigit():
            seen += 1
            out.append(c if seen > digits - keep else "*")
        else:
            out.append(c)
    return "".join(out)


def encode(payload: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as published."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def _stamp(ts: float, seq: int, since: float | None) -> dict[str, Any]:
    out: dict[str, Any] = {"ts": ms(ts), "seq": seq}
    if since is not None:
        out["since"] = ms(since)
    return out


def status_payload(
    online: bool,
    *,
    ts: float,
    since: float,
    seq: int,
    version: str | None = None,
    counts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    """``controller/status``: ``since`` is when the controller came online (or went off);
    ``counts``: what the bridge had to drop this run (``dropped_events``...)."""
    out: dict[str, Any] = {"online": online, **_stamp(ts, seq, since)}
    if version is not None:
        out["version"] = version
    return {**out, **(counts or {})}


WILL_PAYLOAD: dict[str, Any] = {"online": False, "reason": "connection_lost"}
"""Published by the broker on ``controller/status`` when the controller vanishes."""


def agent_state_payload(
    agent_id: str,
    *,
    status: str | Enum,
    state: str | Enum,
    ts: float,
    since: float,
    seq: int,
    reason: int | None = None,
    device: str | None = None,
    call_id: str | None = None,
    calls_today: int | None = None,
) -> dict[str, Any]:
    """``agent/<id>/state``: ``since`` is when the current status/state began;
    ``calls_today`` counts the calls the agent answered since local midnight."""
    return {
        "agent_id": check_id("agent", agent_id),
        "status": wire_enum(status, AgentStatus),
        "state": wire_enum(state, AgentState),
        "reason": reason,
        "device": device,
        "call_id": call_id,
        "calls_today": calls_today,
        **_stamp(ts, seq, since),
    }


_STATS_RESERVED = frozenset({"queue_id", "ts", "seq", "since"})


def queue_stats_payload(
    queue_id: str,
    figures: Mapping[str, int | float | None],
    *,
    ts: float,
    since: float,
    seq: int,
) -> dict[str, Any]:
    """``queue/<id>/stats``: named figures (``waiting``, ``answer_rate``...) over the
    window that began at ``since``."""
    clash = _STATS_RESERVED.intersection(figures)
    if clash:
        raise ValueError(f"figure names {sorted(clash)} are reserved")
    return {"queue_id": check_id("queue", queue_id), **figures, **_stamp(ts, seq, since)}


def call_event_payload(
    event: str | Enum,
    call_id: str,
    *,
    ts: float,
    since: float,
    seq: int,
    caller: str | None = None,
    mask_caller: bool = True,
    queue_id: str | None = None,
    agent_id: str | None = None,
    device: str | None = None,
    leg: int | None = None,
    outcome: str | Enum | None = None,
    wait_s: float | None = None,
) -> dict[str, Any]:
    """``event/call``: one step of a call; ``since`` is when the call was offered.

    ``device`` is the handset rung, answering or transferred to; ``leg``, ``outcome``
    and ``wait_s`` are those of the record on ``ended``. The caller number is masked
    unless ``mask_caller`` is false (privacy by default).
    """
    return {
        "event": wire_enum(event, CallEventKind),
        "call_id": call_id,
        "caller": mask_number(caller) if mask_caller else caller,
        "queue_id": queue_id,
        "agent_id": agent_id,
        "device": device,
        "leg": leg,
        "outcome": None if outcome is None else wire_enum(outcome, Outcome),
        "wait_s": wait_s,
        **_stamp(ts, seq, since),
    }


def alarm_payload(
    name: str,
    *,
    severity: str | Enum,
    message: str,
    ts: float,
    since: float,
    seq: int,
    value: float | None = None,
    threshold: float | None = None,
) -> dict[str, Any]:
    """``alarm/<name>`` while the alarm is active; ``since`` is when it was raised."""
    return {
        "name": check_id("alarm", name),
        "severity": wire_enum(severity, Severity),
        "message": message,
        "value": value,
        "threshold": threshold,
        **_stamp(ts, seq, since),
    }


def reply_payload(
    request_id: str | None, ok: bool, error: str | None = None, *, ts: float, seq: int
) -> dict[str, Any]:
    """``cmd/reply/<request_id>``: the outcome of a supervisor command."""
    out: dict[str, Any] = {"request_id": request_id, "ok": ok}
    if error is not None:
        out["error"] = error
    return {**out, **_stamp(ts, seq, None)}


@dataclass(frozen=True)
class AgentCommand:
    """A valid supervisor command, handed to the controller."""

    agent_id: str
    action: CommandAction
    reason: int | None
    request_id: str
    reply_topic: str


@dataclass(frozen=True)
class Refusal:
    """A command refused before reaching the controller, and where to say so."""

    error: str
    request_id: str | None
    reply_topic: str


_COMMAND_KEYS = frozenset({"action", "reason", "request_id", "token", "reply_to"})
_BRACKETS = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)|[][{}]', re.S)  # linear time


def nesting_depth(payload: bytes) -> int:
    """The deepest nesting of JSON arrays and objects in ``payload``, without parsing it
    (brackets inside strings do not count; malformed input gives some finite number)."""
    depth = deepest = 0
    for token in _BRACKETS.findall(payload):
        if token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (b"]", b"}"):
            depth -= 1
    return deepest


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _show(value: object, limit: int = 40) -> str:
    """``repr(value)`` cut to ``limit`` characters, for refusal messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse_agent_command(
    topics: Topics, topic: str, payload: bytes, token: str | None = None
) -> AgentCommand | Refusal:
    """Validate a message received on ``cmd/agent/<id>/set``; never raises.

    Checks, in order: size, UTF-8, nesting depth, JSON object, ``request_id``,
    ``reply_to``, unknown keys, token (when one is configured), agent id, action, reason.
    The first failure is the refusal's ``error``; the refusal goes to the reply topic
    when one is known, else to ``cmd/error``.
    """
    reply_topic = topics.command_error
    if len(payload) > MAX_COMMAND_BYTES:
        return Refusal(f"payload larger than {MAX_COMMAND_BYTES} bytes", None, reply_topic)
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        return Refusal(f"malformed JSON: not UTF-8 at byte {exc.start}", None, reply_topic)
    if nesting_depth(payload) > MAX_COMMAND_DEPTH:
        return Refusal(f"JSON nested deeper than {MAX_COMMAND_DEPTH} levels", None, reply_topic)
    try:
        data = json.loads(text, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:
        return Refusal(f"malformed JSON: {exc}", None, reply_topic)
    if not isinstance(data, dict):
        return Refusal("payload must be a JSON object", None, reply_topic)

    request_id = data.get("request_id")
    if not isinstance(request_id, str) or not ID_PATTERN.fullmatch(request_id):
        reply_to = data.get("reply_to")
        if topics.reply_to_allowed(reply_to):
            reply_topic = reply_to
        return Refusal(f"request_id must match {ID_PATTERN.pattern}", None, reply_topic)
    reply_topic = topics.reply(request_id)
    if "reply_to" in data:
        if not topics.reply_to_allowed(data["reply_to"]):
            return Refusal(
                f"reply_to must be a valid topic under {topics.base}/cmd/reply/",
                request_id,
                reply_topic,
            )
        reply_topic = data["reply_to"]

    def refuse(error: str) -> Refusal:
        return Refusal(error, request_id, reply_topic)

    unknown = sorted(set(data) - _COMMAND_KEYS)
    if unknown:
        return refuse(f"unknown key {_show(unknown[0])}")
    if token is not None:
        given = data.get("token")
        if not isinstance(given, str) or not hmac.compare_digest(
            given.encode(errors="surrogatepass"), token.encode()
        ):
            return refuse("bad or missing token")

    parts = topic.split("/")
    base_len = len(topics.base.split("/"))
    if (
        not topic.startswith(topics.base + "/cmd/agent/")
        or len(parts) != base_len + 4
        or parts[-1] != "set"
    ):
        return refuse(f"not an agent command topic: {_show(topic, 200)}")
    agent_id = parts[base_len + 2]
    if not ID_PATTERN.fullmatch(agent_id):
        return refuse(f"bad agent id {_show(agent_id)}")

    action = data.get("action")
    if not isinstance(action, str) or action not in CommandAction._value2member_map_:
        allowed = ", ".join(a.value for a in CommandAction)
        return refuse(f"action must be one of {allowed}, got {_show(action)}")
    action = CommandAction(action)

    reason = data.get("reason")
    if reason is not None:
        if action is not CommandAction.NOT_READY:
            return refuse("reason applies only to not_ready")
        if isinstance(reason, bool) or not isinstance(reason, int):
            return refuse(f"reason must be an integer, got {_show(reason)}")
        if not REASON_MIN <= reason <= REASON_MAX:
            return refuse(f"reason must be within {REASON_MIN}..{REASON_MAX}, got {_show(reason)}")
    return AgentCommand(agent_id, action, reason, request_id, reply_topic)

"""Property: whatever is published on the broker, the bridge answers or ignores it, never
stops, and only a valid command from an authorised client reaches the controller.

Hostile messages (every JSON type in every field, deep nesting, invalid UTF-8, lone
surrogates, oversized payloads, arbitrary topic levels, retained commands, a client
the ACL forbids to command) go through a private Mosquitto with the shipped password
file and ACL to a real `MqttBridge`. After each one a supervisor sends a valid command
and waits for its reply, so the bridge has handled the message before the checks.
A topic that is not valid UTF-8 cannot be tried this way: Mosquitto disconnects the
client that publishes it before anything reaches the bridge.

Quick under the ``ci`` profile (40 examples); ``HYPOTHESIS_PROFILE=deep`` runs 2000.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import aiomqtt
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from acd.config import MqttConfig
from acd.topics import ID_PATTERN, AgentCommand, CommandAction, Topics
from drivers.mosquitto import ACL_EXAMPLE, HOST, mosquitto_binary, secure_mosquitto
from drivers.mqtt import MqttBridge

pytestmark = pytest.mark.mqtt

SITE, TOKEN = "town-hall", "s3cret"  # the site of the shipped ACL
BASE = Topics("acd/v1", SITE).base
USERS = ("acd-townhall", "alice", "wallboard")  # controller, supervisor, not allowed
MAX_BYTES = 4096
ACTIONS = tuple(a.value for a in CommandAction)


@dataclass
class Rig:
    """The bridge and two clients (a supervisor, a wallboard) on the private broker, run
    by an event loop in a thread of their own (hypothesis calls the test synchronously)."""

    loop: asyncio.AbstractEventLoop
    config: MqttConfig
    mqtt: MqttBridge | None = None
    clients: dict[str, aiomqtt.Client] = field(default_factory=dict)
    calls: list[AgentCommand] = field(default_factory=list)
    replies: dict[str, list[dict]] = field(default_factory=dict)
    errors: list[logging.LogRecord] = field(default_factory=list)
    reader: asyncio.Task | None = None
    sent: int = 0

    def run(self, coro: Any, timeout: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def start_bridge(self) -> None:
        """A new bridge (after a failed example: the next ones must not inherit it)."""
        if self.mqtt is not None:
            with contextlib.suppress(Exception):  # what broke it was reported already
                await self.mqtt.stop()
        self.errors.clear()
        self.mqtt = MqttBridge(self.config, SITE, on_command=self.calls.append)
        self.mqtt.start()
        async with asyncio.timeout(10):
            while not self.mqtt.connected:
                await asyncio.sleep(0.01)

    async def start(self, passwords: dict[str, str]) -> None:
        for user in USERS[1:]:
            client = aiomqtt.Client(HOST, self.config.port, username=user, password=passwords[user])
            await client.__aenter__()
            self.clients[user] = client
        await self.clients["alice"].subscribe(f"{BASE}/cmd/#", qos=1)
        self.reader = asyncio.create_task(self._read(self.clients["alice"]))
        await self.start_bridge()

    async def stop(self) -> None:
        self.reader.cancel()
        for client in self.clients.values():
            await client.__aexit__(None, None, None)
        await self.mqtt.stop()

    async def _read(self, client: aiomqtt.Client) -> None:
        """Keep the replies and refusals the bridge publishes, by topic."""
        async for message in client.messages:
            topic = str(message.topic)
            if "/cmd/agent/" not in topic:
                self.replies.setdefault(topic, []).append(json.loads(message.payload))


class _Errors(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord]) -> None:
        super().__init__(logging.ERROR)
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)


@pytest.fixture(scope="module")
def rig(tmp_path_factory) -> Iterator[Rig]:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (make broker installs it)")
    passwords = {user: f"pw-{user}" for user in USERS}
    directory = tmp_path_factory.mktemp("fuzz")
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    logger = logging.getLogger("acd.mqtt")
    with secure_mosquitto(directory, passwords, ACL_EXAMPLE.read_text()) as port:
        config = MqttConfig(
            port=port, username=USERS[0], password=passwords[USERS[0]], cmd_token=TOKEN
        )
        rig = Rig(loop, config)
        handler = _Errors(rig.errors)
        thread.start()
        logger.addHandler(handler)
        try:
            rig.run(rig.start(passwords))
            yield rig
            rig.run(rig.stop())
        finally:
            logger.removeHandler(handler)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)


# -- what may be published ---------------------------------------------------------

HOSTILE_CHARS = ["\ud800", "\udfff", "\x00", "\x01", "\x7f", "\x85", "\ufdd0", "\uffff"]
HOSTILE_TEXT = st.lists(
    st.characters(exclude_categories=()) | st.sampled_from([*HOSTILE_CHARS, "+", "#", "/"]),
    max_size=12,
).map("".join)
ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(-(10**40), 10**40)
    | st.floats()
    | st.text()
    | HOSTILE_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=10,
)
GOOD_ID = st.from_regex(ID_PATTERN, fullmatch=True)
# a topic level Mosquitto accepts from a client (it would disconnect us otherwise)
LEVEL = st.text(
    st.characters(exclude_categories=("Cs", "Cc", "Cn"), exclude_characters="/+#\ufffe"),
    max_size=10,
)
ABSENT = object()


def _good_reason(value: object) -> bool:
    return value is None or (type(value) is int and 0 <= value <= 99)


def _good_id(value: object) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


CONTAINERS = st.lists(ANY_JSON, max_size=3) | st.dictionaries(st.text(), ANY_JSON, max_size=3)
ANY = ANY_JSON | HOSTILE_TEXT | CONTAINERS  # an unhashable value where a string is due
GOOD = {  # values that keep a command valid (ABSENT: the key is left out)
    "action": st.sampled_from(ACTIONS),
    "request_id": GOOD_ID,
    "token": st.just(TOKEN),
    "reason": st.just(ABSENT) | st.none() | st.integers(0, 99),
    "reply_to": st.just(ABSENT)
    | st.lists(st.from_regex(r"[a-zA-Z0-9_é-]{1,8}", fullmatch=True), min_size=1).map(
        lambda levels: f"{BASE}/cmd/reply/" + "/".join(levels)
    ),
}
BAD = {  # values that make it invalid: any JSON value, hostile strings, a missing key
    "action": st.just(ABSENT) | ANY.filter(lambda v: v not in ACTIONS),
    "request_id": st.just(ABSENT) | ANY.filter(lambda v: not _good_id(v)),
    "token": st.just(ABSENT) | ANY.filter(lambda v: v != TOKEN),
    "reason": ANY.filter(lambda v: not _good_reason(v)),
    "reply_to": ANY_JSON
    | st.builds(
        lambda level, c: f"{BASE}/cmd/reply/{level}{c}",
        LEVEL,
        st.sampled_from([*HOSTILE_CHARS, "+", "#", "/"]),
    ),
}


@st.composite
def messages(draw: st.DrawFn) -> dict[str, Any]:
    """A message to publish and the command it must give (None: it must give none).

    A third are valid commands; the others are hostile in one respect (a field, an
    unknown key, the payload's shape, the topic or the client), which reaches the
    deepest checks, or in several at once."""
    aspects = [*GOOD, "extra", "kind", "topic", "user"]
    spoilt = draw(
        st.just(set())
        | st.sampled_from(aspects).map(lambda aspect: {aspect})
        | st.sampled_from(aspects).map(lambda aspect: {aspect})
        | st.sets(st.sampled_from(aspects))
    )
    drawn = {key: draw(BAD[key] if key in spoilt else GOOD[key]) for key in GOOD}
    data = {key: value for key, value in drawn.items() if value is not ABSENT}
    ok = not spoilt.intersection(GOOD)  # the topic, kind and user are judged below
    if data.get("reason") is not None and data.get("action") != "not_ready":
        ok = False  # a reason only goes with not_ready
    if "extra" in spoilt:
        data[draw(st.text().filter(lambda k: k not in GOOD))] = draw(ANY_JSON)
        ok = False
    text = json.dumps(data, ensure_ascii=draw(st.booleans()))
    payload = text.encode("utf-8", "surrogatepass")  # a lone surrogate: invalid UTF-8
    hostile = ["deep", "deep", "utf8", "binary", "oversized"]
    kind = draw(st.sampled_from(hostile if "kind" in spoilt else ["plain", "padded"]))
    if kind == "padded":
        payload += b" " * draw(st.integers(0, MAX_BYTES))
    elif kind == "deep":
        depth = draw(st.integers(1, 20) | st.integers(1000, 2000))
        payload = b"[" * depth + payload + b"]" * depth
    elif kind == "utf8":
        at = draw(st.integers(0, len(payload)))
        junk = draw(st.sampled_from([b"\xff", b"\x80", b"\xc0\x80", b"\xed\xa0\x80", b"\xf5\x80"]))
        payload = payload[:at] + junk + payload[at:]
    elif kind == "binary":
        payload = draw(st.binary(max_size=300))
    elif kind == "oversized":
        payload += b" " * draw(st.integers(MAX_BYTES, 3 * MAX_BYTES))
    ok = ok and kind in ("plain", "padded") and len(payload) <= MAX_BYTES
    try:
        payload.decode()
    except UnicodeDecodeError:
        ok = False
    rest = draw(
        (LEVEL.map(lambda agent: f"{agent}/set") | LEVEL | HOSTILE_TEXT.filter(_publishable))
        if "topic" in spoilt
        else GOOD_ID.map(lambda agent: f"{agent}/set")
    )
    topic = f"{BASE}/cmd/agent/{rest}"
    agent, _, end = rest.partition("/")
    user = "wallboard" if "user" in spoilt else "alice"
    ok = ok and end == "set" and _good_id(agent)
    ok = ok and user == "alice"  # the ACL lets only supervisors command
    expected = None
    if ok:
        reply_to = data.get("reply_to", f"{BASE}/cmd/reply/{data['request_id']}")
        action = CommandAction(data["action"])
        expected = AgentCommand(agent, action, data.get("reason"), data["request_id"], reply_to)
    return {
        "topic": topic,
        "payload": payload,
        "retain": draw(st.booleans()) and draw(st.booleans()),
        "user": user,
        "expected": expected,
    }


def _publishable(text: str) -> bool:
    """Whether Mosquitto takes ``text`` in a topic (else it drops the publisher)."""
    return not any(c in text for c in [*HOSTILE_CHARS, "+", "#", "\ufffe"]) and not any(
        0xD800 <= ord(c) <= 0xDFFF or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text
    )


async def exchange(rig: Rig, message: dict[str, Any]) -> None:
    """Publish ``message``, then a valid command, and wait for the latter's reply."""
    client = rig.clients[message["user"]]
    await client.publish(message["topic"], message["payload"], qos=1, retain=message["retain"])
    if message["retain"]:  # it would come back at the next subscription: clear it
        await client.publish(message["topic"], b"", qos=1, retain=True)
    rig.sent += 1
    sync = f"zz-sync-{rig.sent}"
    command = {"action": "ready", "request_id": sync, "token": TOKEN}
    await rig.clients["alice"].publish(f"{BASE}/cmd/agent/sync/set", json.dumps(command), qos=1)
    async with asyncio.timeout(3):  # a few ms when the bridge is well
        while f"{BASE}/cmd/reply/{sync}" not in rig.replies:
            await asyncio.sleep(0.002)


@given(messages())
@example(
    {
        "topic": f"{BASE}/cmd/agent/7/set",
        "payload": b'{"action": [], "request_id": "x", "token": "s3cret"}',
        "retain": False,
        "user": "alice",
        "expected": None,
    }
)
@example(
    {
        "topic": f"{BASE}/cmd/agent/7/set",
        "payload": b'{"request_id": "x", "x": ' + b"[" * 1500 + b"]" * 1500 + b"}",
        "retain": False,
        "user": "alice",
        "expected": None,
    }
)
@example(
    {
        "topic": f"{BASE}/cmd/agent/7/set",
        "payload": json.dumps(
            {
                "action": "ready",
                "request_id": "x",
                "token": TOKEN,
                "reply_to": f"{BASE}/cmd/reply/\ud800",
            }
        ).encode(),
        "retain": False,
        "user": "alice",
        "expected": None,
    }
)
def test_only_valid_authorised_commands_reach_the_controller(rig, message):
    try:
        check(rig, message)
    except BaseException:
        rig.run(rig.start_bridge())  # a fresh bridge, so that shrinking judges each example
        raise


def check(rig: Rig, message: dict[str, Any]) -> None:
    before = len(rig.calls)
    try:
        rig.run(exchange(rig, message))
    except TimeoutError:
        raise AssertionError("the bridge did not answer the command that followed") from None
    handled = rig.calls[before:]
    assert handled[-1].agent_id == "sync"  # the bridge is alive and has caught up
    expected = [] if message["expected"] is None else [message["expected"]]
    event("a valid command" if expected else "no command")
    assert handled[:-1] == expected  # the controller saw exactly the valid command, if any
    if expected:
        replies = rig.replies[expected[0].reply_topic]
        assert replies[-1]["request_id"] == expected[0].request_id and replies[-1]["ok"]
    assert rig.mqtt.connected and rig.mqtt.counters["connects"] == 1  # never cut off
    assert rig.mqtt.counters["unpublishable"] == 0  # bad reply topics were refused first
    assert not rig.errors, rig.errors[0].getMessage()  # no bug met on the way

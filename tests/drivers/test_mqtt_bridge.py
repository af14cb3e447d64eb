"""The MQTT bridge against the real Mosquitto on 127.0.0.1:1883 (``make broker``).

Each test uses its own random site, so retained messages of one test are invisible to
the others, and clears the retained topics it created. Broker loss is simulated with a
TCP proxy started and stopped by the test, so the real broker keeps running.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import secrets
import socket
import time

import aiomqtt
import pytest

import drivers.mqtt
from acd.config import MqttConfig
from acd.runtime.topics import AgentCommand, Topics, agent_state_payload, encode
from drivers.mqtt import MqttBridge

HOST, PORT = "127.0.0.1", 1883
pytestmark = pytest.mark.mqtt


def run_async(fn):
    """Run an async test in a fresh event loop, bounded by a timeout."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        asyncio.run(asyncio.wait_for(fn(*args, **kwargs), 30))

    return wrapper


async def wait_until(predicate, timeout=5.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def retained(base: str, settle: float = 0.3) -> dict[str, bytes]:
    """The retained messages the broker holds under ``base``."""
    found: dict[str, bytes] = {}
    async with aiomqtt.Client(HOST, PORT) as client:
        await client.subscribe(base + "/#", qos=1)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(settle):
                async for message in client.messages:
                    if message.retain:
                        found[str(message.topic)] = message.payload
    return found


async def clear_retained(base: str) -> None:
    topics = await retained(base)
    async with aiomqtt.Client(HOST, PORT) as client:
        for topic in topics:
            await client.publish(topic, b"", qos=1, retain=True)


@pytest.fixture
def site():
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError:
        pytest.fail(f"no MQTT broker on {HOST}:{PORT}: start one with `make broker`")
    name = "t" + secrets.token_hex(5)
    yield name
    asyncio.run(clear_retained(Topics("acd/v1", name).base))


class Watcher:
    """A client subscribed to a whole site tree, recording what it receives."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.messages: list[tuple[str, bytes, bool]] = []

    async def __aenter__(self) -> Watcher:
        self._client = aiomqtt.Client(HOST, PORT)
        await self._client.__aenter__()
        await self._client.subscribe(self.base + "/#", qos=1)
        self._task = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        async for message in self._client.messages:
            self.messages.append((str(message.topic), message.payload, message.retain))

    async def __aexit__(self, *exc) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        await self._client.__aexit__(None, None, None)

    def on(self, suffix: str) -> list[bytes]:
        return [p for t, p, _ in self.messages if t == f"{self.base}/{suffix}"]

    def json_on(self, suffix: str) -> list:
        return [json.loads(p) if p else None for p in self.on(suffix)]

    async def publish(self, suffix: str, payload: bytes, retain: bool = False) -> None:
        await self._client.publish(f"{self.base}/{suffix}", payload, qos=1, retain=retain)


def bridge(site: str, port: int = PORT, **kwargs) -> MqttBridge:
    options = {k: kwargs.pop(k) for k in ("stats_interval", "cmd_token") if k in kwargs}
    return MqttBridge(
        MqttConfig(port=port, **options),
        site,
        reconnect_initial=0.05,
        reconnect_max=0.2,
        **kwargs,
    )


def agent(agent_id: str, status: str, seq: int) -> dict:
    return agent_state_payload(agent_id, status=status, state="idle", ts=seq, since=0, seq=seq)


@run_async
async def test_birth_snapshot_alarms_and_clean_stop(site):
    mqtt = bridge(site)
    base = mqtt.topics.base
    mqtt.set_agent_state("1", agent("1", "ready", 1))  # before connecting: in the snapshot
    mqtt.alarm("link_down", {"message": "no link"})
    async with Watcher(base) as watch:
        async with mqtt:
            await wait_until(lambda: watch.on("alarm/link_down"), what="snapshot")
            birth = watch.json_on("controller/status")[0]
            assert birth["online"] is True and birth["version"] and birth["ts"] >= birth["since"]
            assert watch.json_on("agent/1/state") == [agent("1", "ready", 1)]
            assert mqtt.connected and mqtt.counters["connects"] == 1
            mqtt.alarm("link_down", None)
            await wait_until(lambda: watch.on("alarm/link_down")[-1:] == [b""], what="clear")
        assert not mqtt.connected
        await wait_until(lambda: len(watch.on("controller/status")) == 2, what="offline")
    offline = watch.json_on("controller/status")[-1]
    assert offline["online"] is False and offline["ts"] and "reason" not in offline  # not the Will
    held = await retained(base)
    assert set(held) == {f"{base}/controller/status", f"{base}/agent/1/state"}
    assert json.loads(held[f"{base}/controller/status"])["online"] is False


@run_async
async def test_will_announces_offline_when_the_connection_is_cut(site, broker_proxy):
    proxy = broker_proxy
    await proxy.start()
    mqtt = bridge(site, proxy.port)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: watch.on("controller/status"), what="birth")
        await proxy.stop()  # no DISCONNECT reaches the broker: it publishes the Will
        await wait_until(lambda: len(watch.on("controller/status")) == 2, what="will")
        assert watch.json_on("controller/status")[-1] == {
            "online": False,
            "reason": "connection_lost",
        }
        await wait_until(lambda: not mqtt.connected, what="disconnect noticed")
        assert mqtt.counters["last_error"]


@run_async
async def test_full_retained_snapshot_after_reconnect(site, broker_proxy):
    proxy = broker_proxy
    await proxy.start()
    mqtt = bridge(site, proxy.port)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        mqtt.set_agent_state("1", agent("1", "ready", 1))
        mqtt.set_agent_state("2", agent("2", "ready", 2))
        mqtt.alarm("link_down", {"message": "no link"})
        await wait_until(lambda: watch.on("alarm/link_down"), what="first publication")
        await proxy.stop()
        await wait_until(lambda: not mqtt.connected, what="disconnect noticed")
        # While the broker is unreachable: state changes, and the broker loses agent 2.
        mqtt.set_agent_state("1", agent("1", "not_ready", 3))
        mqtt.alarm("link_down", None)
        mqtt.call_event({"event": "offered", "call_id": "c1"})
        await watch.publish("agent/2/state", b"", retain=True)
        await asyncio.sleep(0.3)  # several reconnect attempts fail meanwhile
        assert mqtt.counters["connects"] == 1
        await proxy.start()
        await wait_until(lambda: mqtt.counters["connects"] == 2, what="reconnect")
        await wait_until(lambda: watch.on("event/call"), what="queued event")
    assert [s["online"] for s in watch.json_on("controller/status")] == [True, False, True, False]
    held = await retained(mqtt.topics.base)
    base = mqtt.topics.base
    assert json.loads(held[f"{base}/agent/1/state"]) == agent("1", "not_ready", 3)
    assert json.loads(held[f"{base}/agent/2/state"]) == agent("2", "ready", 2)
    assert f"{base}/alarm/link_down" not in held
    assert json.loads(watch.on("event/call")[0]) == {"event": "offered", "call_id": "c1"}


@run_async
async def test_bursts_coalesce_latest_wins(site):
    mqtt = bridge(site)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected and watch.on("controller/status"), what="birth")
        before = mqtt.counters["publishes"]
        for seq in range(1000):
            mqtt.set_agent_state("7", agent("7", "ready" if seq % 2 else "not_ready", seq))
        await wait_until(lambda: watch.on("agent/7/state"), what="agent 7")
        await asyncio.sleep(0.2)
        assert watch.json_on("agent/7/state") == [agent("7", "ready", 999)]
        assert mqtt.counters["publishes"] - before == 1


@run_async
async def test_queue_stats_are_rate_limited_per_queue(site):
    mqtt = bridge(site, stats_interval=0.4)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected, what="connection")
        mqtt.set_queue_stats("sales", {"waiting": 1})
        await wait_until(lambda: watch.on("queue/sales/stats"), what="first stats")
        start = time.monotonic()
        for n in (2, 3):
            mqtt.set_queue_stats("sales", {"waiting": n})
            mqtt.set_queue_stats("support", {"waiting": 10 * n})
        await wait_until(lambda: len(watch.on("queue/sales/stats")) == 2, what="second stats")
        assert time.monotonic() - start >= 0.3
        await asyncio.sleep(0.1)
        assert watch.json_on("queue/sales/stats") == [{"waiting": 1}, {"waiting": 3}]
        assert watch.json_on("queue/support/stats") == [{"waiting": 30}]  # its own interval


@run_async
async def test_a_dead_broker_never_blocks_the_caller():
    with socket.socket() as s:  # a port nobody listens on
        s.bind((HOST, 0))
        dead_port = s.getsockname()[1]
    mqtt = bridge("dead", dead_port, max_events=100)
    lags = []

    async def ticker():
        while True:
            t = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - t - 0.01)

    tick = asyncio.create_task(ticker())
    async with mqtt:
        worst = 0.0
        for seq in range(5000):
            t = time.perf_counter()
            mqtt.set_agent_state(str(seq % 50), agent(str(seq % 50), "ready", seq))
            mqtt.call_event({"seq": seq})
            worst = max(worst, time.perf_counter() - t)
            if seq % 500 == 0:
                await asyncio.sleep(0.05)  # let the bridge try to connect meanwhile
        await wait_until(lambda: mqtt.counters["last_error"], what="a failed connect")
        assert worst < 0.05
        assert not mqtt.connected and mqtt.counters["connects"] == 0
        assert mqtt.counters["dropped_events"] == 4900
        assert mqtt.counters["pending"] == 50 + 100  # latest per agent + bounded events
        t = time.monotonic()
    assert time.monotonic() - t < 1.0  # stopping does not hang either
    tick.cancel()
    assert max(lags) < 0.2


@run_async
async def test_commands_are_validated_handled_and_answered(site):
    calls: list[AgentCommand] = []

    def on_command(command: AgentCommand):
        calls.append(command)
        if command.agent_id == "boom":
            raise RuntimeError("bug")
        if command.agent_id == "8":

            async def later():
                await asyncio.sleep(0.01)
                return None

            return later()
        return None if command.agent_id == "7" else "unknown agent"

    mqtt = bridge(site, cmd_token="s3cret", on_command=on_command)
    good = {"token": "s3cret", "action": "ready"}
    sent = [
        ("7", b"{not json"),
        ("7", encode({**good, "request_id": "r1", "action": "dance"})),
        ("7", encode({**good, "request_id": "r2", "action": "not_ready", "reason": 1000})),
        ("7", encode({**good, "request_id": "r3", "token": "guess"})),
        ("7", encode({**good, "request_id": "r4", "action": "not_ready", "reason": 5})),
        ("99", encode({**good, "request_id": "r5"})),
        (
            "8",
            encode({**good, "request_id": "r6", "reply_to": f"{mqtt.topics.base}/cmd/reply/al/6"}),
        ),
        ("boom", encode({**good, "request_id": "r7", "action": "logout"})),
    ]
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected, what="connection")  # subscriptions done
        for agent_id, payload in sent:
            await watch.publish(f"cmd/agent/{agent_id}/set", payload)
        await wait_until(lambda: watch.on("cmd/reply/r7"), what="last reply")
        assert mqtt.connected  # nothing crashed the loop
    replies = {
        suffix: watch.json_on(suffix)[0]
        for suffix in ["cmd/error"] + [f"cmd/reply/r{i}" for i in (1, 2, 3, 4, 5, 7)]
    }
    replies["cmd/reply/al/6"] = watch.json_on("cmd/reply/al/6")[0]
    assert "malformed JSON" in replies["cmd/error"]["error"]
    assert replies["cmd/error"]["request_id"] is None
    assert "action must be one of" in replies["cmd/reply/r1"]["error"]
    assert "within 0..99" in replies["cmd/reply/r2"]["error"]
    assert "token" in replies["cmd/reply/r3"]["error"]
    assert replies["cmd/reply/r4"]["ok"] is True and "error" not in replies["cmd/reply/r4"]
    assert replies["cmd/reply/r5"]["ok"] is False
    assert replies["cmd/reply/r5"]["error"] == "unknown agent"
    assert replies["cmd/reply/al/6"]["ok"] is True
    assert replies["cmd/reply/r7"]["error"] == "internal error: RuntimeError"
    for i in (1, 2, 3, 4, 5, 7):
        assert replies[f"cmd/reply/r{i}"]["request_id"] == f"r{i}"
    assert replies["cmd/reply/al/6"]["request_id"] == "r6"
    assert [(c.agent_id, c.action, c.reason) for c in calls] == [
        ("7", "not_ready", 5),
        ("99", "ready", None),
        ("8", "ready", None),
        ("boom", "logout", None),
    ]
    assert mqtt.counters["commands"] == 4 and mqtt.counters["refused"] == 6


@run_async
async def test_retained_commands_are_refused(site):
    mqtt = bridge(site, on_command=lambda command: None)
    async with Watcher(mqtt.topics.base) as watch:
        await watch.publish(
            "cmd/agent/7/set", encode({"action": "logout", "request_id": "old"}), retain=True
        )
        async with mqtt:
            await wait_until(lambda: watch.on("cmd/reply/old"), what="reply")
        assert "retained" in watch.json_on("cmd/reply/old")[0]["error"]


@run_async
async def test_a_bug_in_the_bridge_task_is_logged_not_silent(monkeypatch, caplog):
    async def broken(self):
        raise RuntimeError("bug in the bridge")

    monkeypatch.setattr(MqttBridge, "_run", broken)
    mqtt = bridge("crash")
    mqtt.start()
    await asyncio.sleep(0.01)
    assert "bridge stopped by an error" in caplog.text
    with pytest.raises(RuntimeError, match="bug in the bridge"):
        await mqtt.stop()


@run_async
async def test_stale_retained_topics_of_a_previous_run_are_cleared(site):
    mqtt = bridge(site)
    async with Watcher(mqtt.topics.base) as watch:
        for suffix in ("agent/ghost/state", "queue/closed/stats", "alarm/link_down"):
            await watch.publish(suffix, b'{"from": "a previous run"}', retain=True)
        await watch.publish("agent/1/state", b'{"stale": true}', retain=True)
        mqtt.set_agent_state("1", agent("1", "ready", 1))
        mqtt.alarm("answer_rate_low.info", {"message": "below target"})
        async with mqtt:
            await wait_until(lambda: watch.on("alarm/link_down")[-1:] == [b""], what="sweep")
            await wait_until(lambda: watch.on("agent/ghost/state")[-1:] == [b""], what="sweep")
            await wait_until(lambda: watch.on("queue/closed/stats")[-1:] == [b""], what="sweep")
    held = await retained(mqtt.topics.base)
    assert {t.removeprefix(mqtt.topics.base + "/") for t in held} == {
        "controller/status",
        "agent/1/state",
        "alarm/answer_rate_low.info",
    }
    assert json.loads(held[mqtt.topics.agent_state("1")]) == agent("1", "ready", 1)


@run_async
async def test_hostile_commands_are_refused_and_the_bridge_goes_on(site):
    calls: list[AgentCommand] = []
    mqtt = bridge(site, on_command=lambda command: calls.append(command))
    deep = b'{"request_id": "deep", "x": ' + b"[" * 1500 + b"]" * 1500 + b"}"
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected, what="connection")
        await watch.publish("cmd/agent/7/set", b'{"action": [], "request_id": "x"}')
        await watch.publish("cmd/agent/7/set", deep)
        await watch.publish("cmd/agent/7/set", encode({"action": "ready", "request_id": "ok"}))
        await wait_until(lambda: watch.on("cmd/reply/ok"), what="the reply after them")
        assert mqtt.connected and mqtt.counters["connects"] == 1
    assert "action must be one of" in watch.json_on("cmd/reply/x")[0]["error"]
    assert "nested deeper than" in watch.json_on("cmd/error")[0]["error"]
    assert watch.json_on("cmd/reply/ok")[0]["ok"] is True
    assert [c.request_id for c in calls] == ["ok"]


@run_async
async def test_a_bug_handling_one_message_refuses_it_and_the_loop_goes_on(
    site, monkeypatch, caplog
):
    real = drivers.mqtt.parse_agent_command

    def buggy(topics, topic, payload, token):
        if b"boom" in payload:
            raise KeyError("a bug")
        return real(topics, topic, payload, token)

    monkeypatch.setattr(drivers.mqtt, "parse_agent_command", buggy)
    mqtt = bridge(site, on_command=lambda command: None)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected, what="connection")
        for n in range(3):
            await watch.publish("cmd/agent/7/set", b'{"request_id": "boom%d"}' % n)
        await watch.publish("cmd/agent/7/set", encode({"action": "ready", "request_id": "ok"}))
        await wait_until(lambda: watch.on("cmd/reply/ok"), what="the reply after it")
        assert mqtt.connected and mqtt.counters["connects"] == 1
    assert [r["error"] for r in watch.json_on("cmd/error")] == ["internal error"] * 3
    assert mqtt.counters["refused"] == 3
    lines = [r for r in caplog.records if "error handling a message" in r.getMessage()]
    assert len(lines) == 2  # rate-limited: the first, with its traceback, then a summary
    assert lines[0].exc_info[0] is KeyError
    assert "and 2 more like it in" in lines[1].getMessage()  # summarised when stopping


@run_async
async def test_a_reply_to_no_broker_would_take_is_refused_and_never_sent(site):
    mqtt = bridge(site, on_command=lambda command: None)
    root = f"{mqtt.topics.base}/cmd/reply/"
    # paho cannot encode a lone surrogate; Mosquitto disconnects a client that publishes
    # to a topic with a control character or a non-character.
    bad = {"s": root + "\ud800", "c": root + "a\u0001b", "n": root + "\uffff", "w": root + "+"}
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected, what="connection")
        for request_id, reply_to in bad.items():
            command = {"action": "ready", "request_id": request_id, "reply_to": reply_to}
            await watch.publish("cmd/agent/7/set", json.dumps(command).encode())
        await watch.publish("cmd/agent/7/set", encode({"action": "ready", "request_id": "ok"}))
        await wait_until(lambda: watch.on("cmd/reply/ok"), what="the reply after them")
        await asyncio.sleep(0.2)
        assert mqtt.connected and mqtt.counters["connects"] == 1
    for request_id in bad:
        [reply] = watch.json_on(f"cmd/reply/{request_id}")
        assert "reply_to must be a valid topic" in reply["error"]


@run_async
async def test_a_message_the_client_cannot_publish_is_dropped_not_retried(site, caplog):
    mqtt = bridge(site)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected, what="connection")
        # Defence in depth: were an unpublishable topic to reach the outbox anyway.
        mqtt._outbox.put_event(f"{mqtt.topics.base}/cmd/reply/\ud800", b"{}")
        mqtt._outbox.put_event(f"{mqtt.topics.base}/cmd/reply/#", b"{}")
        mqtt.call_event({"event": "offered", "call_id": "c1"})
        await wait_until(lambda: watch.on("event/call"), what="the event after them")
        assert mqtt.connected and mqtt.counters["connects"] == 1
        assert mqtt.counters["unpublishable"] == 2 and mqtt.counters["pending"] == 0
    assert "dropped a message to" in caplog.text


@run_async
async def test_a_flood_of_refused_commands_logs_little_and_never_delays_call_events(site, caplog):
    mqtt = bridge(site, on_command=lambda command: None, max_events=50, max_replies=5)
    base = mqtt.topics.base
    events: list[bytes] = []
    async with aiomqtt.Client(HOST, PORT) as flood, aiomqtt.Client(HOST, PORT) as board, mqtt:
        await board.subscribe(f"{base}/event/call", qos=1)

        async def read():
            async for message in board.messages:
                events.append(message.payload)

        reader = asyncio.create_task(read())
        await wait_until(lambda: mqtt.connected, what="connection")
        for n in range(2000):
            payload = b'{"action": "dance", "request_id": "f%d"}' % n
            await flood.publish(f"{base}/cmd/agent/7/set", payload, qos=0)
            if n % 40 == 0:
                mqtt.call_event({"n": n // 40})  # 50 call events during the flood
        await wait_until(lambda: len(events) == 50, what="every call event")
        await wait_until(lambda: mqtt.counters["refused"] == 2000, what="every refusal")
        reader.cancel()
    assert [json.loads(e)["n"] for e in events] == list(range(50))
    assert mqtt.counters["dropped_events"] == 0
    refused = [r.getMessage() for r in caplog.records if "command refused" in r.getMessage()]
    assert len(refused) <= 3  # one line, then one summary per 10 s
    held = sum(int(line.split("(and ")[1].split()[0]) for line in refused[1:])
    assert 1 + held == 2000


@run_async
async def test_drops_are_counted_and_published_in_the_controller_status(site, broker_proxy):
    proxy = broker_proxy
    await proxy.start()
    await proxy.stop()  # the broker is unreachable while the controller starts
    mqtt = bridge(site, proxy.port, max_events=5, status_interval=0.2)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        for n in range(8):
            mqtt.call_event({"n": n})
        await proxy.start()
        await wait_until(lambda: watch.on("controller/status"), what="birth")
        birth = watch.json_on("controller/status")[0]
        assert birth["dropped_events"] == 3
        assert birth["dropped_replies"] == birth["unpublishable"] == 0
        mqtt._outbox.put_event(f"{mqtt.topics.base}/cmd/reply/#", b"{}")  # cannot be sent
        mqtt.call_event({"n": 8})
        await wait_until(lambda: len(watch.on("controller/status")) == 2, what="update")
        update = watch.json_on("controller/status")[1]
        assert update["online"] is True and update["since"] == birth["since"]
        assert update["seq"] > birth["seq"] and update["unpublishable"] == 1
        assert update["ts"] - birth["ts"] >= 150  # not more often than status_interval
    offline = watch.json_on("controller/status")[-1]
    assert offline["online"] is False and offline["unpublishable"] == 1


@run_async
async def test_the_bridge_is_back_within_seconds_of_a_broker_restart(site, broker_proxy):
    proxy = broker_proxy
    await proxy.start()
    mqtt = MqttBridge(MqttConfig(port=proxy.port), site)  # the default backoff
    async with mqtt:
        await wait_until(lambda: mqtt.connected, what="connection")
        await proxy.stop()
        await wait_until(lambda: not mqtt.connected, what="disconnect noticed")
        await asyncio.sleep(4.0)  # a broker restart; the backoff grows meanwhile
        await proxy.start()
        back = time.monotonic()
        await wait_until(lambda: mqtt.connected, timeout=10, what="reconnection")
        assert time.monotonic() - back < 2.5


@run_async
async def test_a_bug_that_ends_a_session_starts_a_new_one(site, monkeypatch, caplog):
    real, failures = MqttBridge._session, []

    async def session(self, client):
        if not failures:
            failures.append(1)
            raise RuntimeError("bug in a session")
        await real(self, client)

    monkeypatch.setattr(MqttBridge, "_session", session)
    mqtt = bridge(site)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected, what="the second session")
        await wait_until(lambda: watch.on("controller/status"), what="birth")
        assert mqtt.counters["connects"] == 2
        assert mqtt.counters["last_error"] == "internal error: RuntimeError"
    assert "session ended by an error" in caplog.text and "bug in a session" in caplog.text


@run_async
async def test_a_bug_in_refusing_a_message_does_not_end_the_loop_either(site, monkeypatch):
    def buggy(topics, topic, payload, token):
        raise KeyError("a bug")

    real_reply = MqttBridge._reply

    def reply(self, topic, request_id, error):
        if error == "internal error":
            raise ValueError("another bug")
        real_reply(self, topic, request_id, error)

    monkeypatch.setattr(MqttBridge, "_reply", reply)
    real = drivers.mqtt.parse_agent_command
    mqtt = bridge(site, on_command=lambda command: None)
    async with Watcher(mqtt.topics.base) as watch, mqtt:
        await wait_until(lambda: mqtt.connected, what="connection")
        monkeypatch.setattr(drivers.mqtt, "parse_agent_command", buggy)
        await watch.publish("cmd/agent/7/set", b"{}")
        await wait_until(lambda: mqtt.counters["refused"] == 1, what="the refusal")
        monkeypatch.setattr(drivers.mqtt, "parse_agent_command", real)
        await watch.publish("cmd/agent/7/set", encode({"action": "ready", "request_id": "ok"}))
        await wait_until(lambda: watch.on("cmd/reply/ok"), what="the reply after it")
        assert mqtt.connected and mqtt.counters["connects"] == 1


@run_async
async def test_a_pair_s_standby_and_active_share_the_status_the_active_one_s_last(
    site, broker_proxy
):
    """[ha]: a standby publishes only its status (no sweep of the active one's retained
    agent states); the active one notes it, publishes its own again naming it, and
    notes its Will; a standby taking over leaves without publishing offline."""
    await broker_proxy.start()
    active = bridge(site, status_fields={"role": "active", "instance": "pc-a", "standby": None})
    peers: list[dict] = []

    def peer(payload: dict) -> None:
        peers.append(payload)
        alive = payload.get("online") and payload.get("role") == "standby"
        active.update_status(standby=payload["instance"] if alive else None)

    active.on_peer = peer
    active.set_agent_state("1", agent("1", "ready", 1))
    base = active.topics.base
    fields = {"role": "standby", "instance": "pc-b", "active": "pc-a"}
    async with Watcher(base) as watch, active:
        await wait_until(lambda: watch.on("agent/1/state"), what="the active one's snapshot")
        standby = bridge(site, broker_proxy.port, status_fields=fields, mirror=False)
        async with standby:
            await wait_until(lambda: active.status_fields["standby"] == "pc-b", what="peer")
            await wait_until(
                lambda: watch.json_on("controller/status")[-1].get("standby") == "pc-b",
                what="the active one's status naming its standby",
            )
            await broker_proxy.stop()  # the standby's connection is cut: its Will
            await wait_until(lambda: active.status_fields["standby"] is None, what="its Will")
        assert peers[0]["role"] == "standby" and peers[-1]["reason"] == "connection_lost"
        await wait_until(
            lambda: (
                watch.json_on("controller/status")[-1]
                == {**watch.json_on("controller/status")[-1], "instance": "pc-a", "standby": None}
            ),
            what="the active one's status again",
        )
        await broker_proxy.start()
        taking_over = bridge(site, broker_proxy.port, status_fields=fields, mirror=False)
        await taking_over.__aenter__()
        await wait_until(lambda: active.status_fields["standby"] == "pc-b", what="back")
        seen = len(watch.on("controller/status"))
        await taking_over.stop(offline=False)
        await asyncio.sleep(0.3)
        statuses = watch.json_on("controller/status")[seen:]
        assert all(s["instance"] == "pc-a" for s in statuses), statuses  # no offline of pc-b
    assert watch.json_on("agent/1/state") == [agent("1", "ready", 1)]  # never swept


@run_async
async def test_a_fake_status_naming_the_active_controller_is_answered_by_its_own(site, caplog):
    """[ha]: any client may publish a retained ``controller/status`` naming the active
    controller (offline, or as a standby): it publishes its own again (at most once a
    second however many come), and passes its own echoes to no one."""
    active = bridge(site, status_fields={"role": "active", "instance": "pc-a", "standby": None})
    peers: list[dict] = []
    active.on_peer = peers.append
    fakes = [{"online": False, "instance": "pc-a"}, {"online": True, "role": "standby"}]
    async with Watcher(active.topics.base) as watch, active:
        await wait_until(lambda: active.connected, what="connection")
        for n in range(20):
            fake = {**fakes[n % 2], "instance": "pc-a"}
            await watch.publish("controller/status", encode(fake), retain=True)
        await wait_until(
            lambda: watch.json_on("controller/status")[-1].get("role") == "active",
            what="its own status again",
        )
        await asyncio.sleep(1.2)
        ours = [s for s in watch.json_on("controller/status") if s.get("role") == "active"]
        assert 2 <= len(ours) <= 4, ours  # the birth, then at most one a second
        assert json.loads((await retained(active.topics.base))[active.topics.status]) == ours[-1]
    assert peers == []
    assert "names this controller (pc-a) but is not its own" in caplog.text

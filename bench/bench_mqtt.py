"""MQTT bridge: cost of the controller's calls, broker dead vs alive, and throughput.

Needs the Mosquitto on 127.0.0.1:1883 (``make broker``). Figures:

- ``mqtt_call_us_live`` / ``mqtt_call_us_dead``: mean cost of one ``set_agent_state``
  (JSON encoding included) with the broker connected / unreachable, and their ratio
  ``mqtt_call_dead_vs_live`` (about 1: a dead broker does not slow the caller);
- ``mqtt_events_per_s``: call events published and acknowledged by the broker (QoS 1);
- ``mqtt_coalesce_ratio``: messages published / updates made, for bursts of updates
  to 100 agents (latest per topic wins);
- ``mqtt_snapshot_1000_ms``: from start to a subscriber holding 1000 agent states.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import time

import aiomqtt

from acd.config import MqttConfig
from acd.runtime.topics import Topics, agent_state_payload
from drivers.mqtt import MqttBridge

HOST, PORT = "127.0.0.1", 1883
CALLS = 50_000
EVENTS = 20_000


def _payload(agent_id: str, seq: int) -> dict:
    return agent_state_payload(agent_id, status="ready", state="idle", ts=seq, since=0, seq=seq)


def _time_calls(mqtt: MqttBridge) -> float:
    payloads = [(str(i % 100), _payload(str(i % 100), i)) for i in range(CALLS)]
    start = time.perf_counter()
    for agent_id, payload in payloads:
        mqtt.set_agent_state(agent_id, payload)
    return (time.perf_counter() - start) / CALLS * 1e6


async def _wait(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark condition not reached")
        await asyncio.sleep(0.005)


async def _main(site: str) -> dict:
    agents_seen = set()

    async def count(c: aiomqtt.Client) -> None:
        async for message in c.messages:
            agents_seen.add(str(message.topic))

    with socket.socket() as s:
        s.bind((HOST, 0))
        dead_port = s.getsockname()[1]
    async with MqttBridge(MqttConfig(port=dead_port), site) as dead:
        await asyncio.sleep(0.1)
        dead_us = _time_calls(dead)

    mqtt = MqttBridge(MqttConfig(), site, max_events=EVENTS)
    for i in range(1000):
        mqtt.set_agent_state(f"s{i}", _payload(f"s{i}", i))
    async with aiomqtt.Client(HOST, PORT) as sub:
        await sub.subscribe(f"{mqtt.topics.base}/agent/+/state", qos=1)
        reader = asyncio.create_task(count(sub))
        start = time.perf_counter()
        async with mqtt:
            await _wait(lambda: len(agents_seen) >= 1000)
            snapshot_ms = (time.perf_counter() - start) * 1e3
            reader.cancel()
            live_us = _time_calls(mqtt)
            await _wait(lambda: mqtt.counters["pending"] == 0)

            before, updates = mqtt.counters["publishes"], 0
            for burst in range(50):
                for i in range(1000):
                    mqtt.set_agent_state(str(i % 100), _payload(str(i % 100), burst * 1000 + i))
                    updates += 1
                await asyncio.sleep(0.01)
            await _wait(lambda: mqtt.counters["pending"] == 0)
            coalesce = (mqtt.counters["publishes"] - before) / updates

            before = mqtt.counters["publishes"]
            start = time.perf_counter()
            for i in range(EVENTS):
                mqtt.call_event({"event": "offered", "call_id": f"c{i}"})
            await _wait(lambda: mqtt.counters["publishes"] - before >= EVENTS)
            events_per_s = EVENTS / (time.perf_counter() - start)

    return {
        "mqtt_call_us_live": round(live_us, 2),
        "mqtt_call_us_dead": round(dead_us, 2),
        "mqtt_call_dead_vs_live": round(dead_us / live_us, 2),
        "mqtt_events_per_s": round(events_per_s),
        "mqtt_coalesce_ratio": round(coalesce, 4),
        "mqtt_snapshot_1000_ms": round(snapshot_ms, 1),
    }


async def _clear(site: str) -> None:
    """Remove the retained messages the benchmark left on the broker."""
    topics = Topics(MqttConfig.prefix, site)
    agents = [*map(str, range(100)), *(f"s{i}" for i in range(1000))]
    async with aiomqtt.Client(HOST, PORT) as client:
        for topic in [*map(topics.agent_state, agents), topics.status]:
            await client.publish(topic, b"", qos=1, retain=True)


def run() -> dict:
    try:
        socket.create_connection((HOST, PORT), timeout=1).close()
    except OSError:
        return {"mqtt_skipped": f"no broker on {HOST}:{PORT} (make broker)"}
    logging.getLogger("acd.mqtt").setLevel(logging.ERROR)  # the dead broker's retries
    site = "bench" + secrets.token_hex(4)
    try:
        return asyncio.run(_main(site))
    finally:
        asyncio.run(_clear(site))

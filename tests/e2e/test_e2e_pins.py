"""Agent PINs on the live controller: a wrong PIN keyed on a handset of the simulated
switch (real pty) is checked off the event loop, locks the PIN (alarm on the real
Mosquitto) and appears in no log line (text or JSON) and no MQTT payload."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import re
import threading
import uuid

import aiomqtt
import pytest

import acd.runtime.controller
from acd.config import PinPolicy
from acd.logs import JsonFormatter
from acd.runtime.controller import Controller
from acd.runtime.store_sqlite import SqliteStore as CallStore
from acd.runtime.topics import pin_locked_alarm

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]
WRONG = "1112"  # agent 1001's PIN is 1111


def shows(pin: str, text: str | bytes) -> bool:
    """Whether ``text`` holds ``pin`` as a number of its own (not inside a timestamp,
    as 1796436012.811121 holds 1112)."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return re.search(rf"(?<!\d){pin}(?!\d)", text) is not None


async def collect(config, into: list[tuple[str, bytes]], subscribed: asyncio.Event) -> None:
    """Every message published under ``<prefix>/#`` (topic, payload)."""
    async with aiomqtt.Client("127.0.0.1", 1883, identifier=f"t-{uuid.uuid4().hex[:8]}") as c:
        await c.subscribe(f"{config.mqtt.prefix}/#", qos=1)
        subscribed.set()
        async for message in c.messages:
            into.append((str(message.topic), bytes(message.payload)))


def test_a_wrong_pin_locks_raises_an_alarm_and_is_shown_nowhere(
    broker, kit, sim_thread, tmp_path, monkeypatch, caplog
):
    sc = kit.hour_scenario(volume=10, start="08:59", end="09:03", speed=120)
    late = sc.start_s + 30.0  # keyed while the controller runs, not found at resync

    def wrong(a):
        return dataclasses.replace(a, pin=WRONG, shift=dataclasses.replace(a.shift, start_s=late))

    agents = tuple(wrong(a) if a.agent_id == "1001" else a for a in sc.agents)
    sim = sim_thread(dataclasses.replace(sc, agents=agents))
    config = kit.site_config(tmp_path, sim.url)
    config = dataclasses.replace(config, pins=PinPolicy(attempts=1, lockout=600.0))
    threads: list[str] = []
    real_verify = acd.runtime.controller.verify_pin

    def verify(pin, pin_hash):
        threads.append(threading.current_thread().name)
        return real_verify(pin, pin_hash)

    monkeypatch.setattr(acd.runtime.controller, "verify_pin", verify)
    published: list[tuple[str, bytes]] = []

    async def main() -> Controller:
        subscribed = asyncio.Event()
        collector = asyncio.create_task(collect(config, published, subscribed))
        await asyncio.wait_for(subscribed.wait(), 10)
        controller = Controller(
            config, store=CallStore(config.store.path), clock=sim.engine_clock()
        )
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop))
        try:
            await kit.wait_until(lambda: not sim.thread.is_alive(), 60, "the end of the run")
            await asyncio.sleep(0.5)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            collector.cancel()
        return controller

    with caplog.at_level(logging.DEBUG):
        controller = asyncio.run(main())

    assert controller.engine.wrong_pins("1001") == 1
    assert threads and set(threads) == {"acd-pin_0"}  # every hash off the loop's thread
    alarm = f"{config.mqtt.prefix}/{config.site.id}/alarm/{pin_locked_alarm('1001')}"
    raised = [json.loads(p) for t, p in published if t == alarm and p]
    assert raised and "1001" in raised[0]["message"] and "locked" in raised[0]["message"]
    assert any("wrong PIN" in r.getMessage() for r in caplog.records)
    text = caplog.text
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert not shows(WRONG, text) and not shows("1111", text)
    assert not [line for line in lines if shows(WRONG, line)]
    assert not [(t, p) for t, p in published if shows(WRONG, p) or shows(WRONG, t)]

"""The live monitor survives a broker outage (a TCP proxy to Mosquitto cut and restored)
and redraws in place."""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import secrets
import sys
import time

import aiomqtt
import pytest

from acd.cli.monitor import _live
from acd.runtime.topics import agent_state_payload, encode
from acd.tools.monitor_view import MonitorState
from drivers.mqtt_client import connection

pytestmark = pytest.mark.mqtt
ANSI = re.compile(r"\x1b\[[0-9;]*m")
HOST, PORT = "127.0.0.1", 1883


async def _until(predicate, what: str, timeout: float = 8.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def _retain(site: str, agent_id: str, present: bool = True) -> None:
    topic = f"acd/v1/{site}/agent/{agent_id}/state"
    payload = b""
    if present:
        now = time.time()
        payload = encode(
            agent_state_payload(agent_id, status="ready", state="idle", ts=now, since=now, seq=1)
        )
    async with aiomqtt.Client(HOST, PORT) as client:
        await client.publish(topic, payload, qos=1, retain=True)


async def _scenario(site: str, proxy) -> list[str]:
    await _retain(site, "1001")
    await _retain(site, "1002")
    await proxy.start()
    conn = connection(None, site, HOST, proxy.port, env={})
    state = MonitorState(conn.topics)
    seen: list[str] = []
    task = asyncio.create_task(_live(conn, state, 0.05))
    try:
        await _until(lambda: state.broker == "up" and len(state.agents) == 2, "first picture")
        seen.append(state.broker)
        await proxy.stop()
        await _until(lambda: state.broker == "down", "broker down")
        seen.append(state.broker)
        await _retain(site, "1002", present=False)  # gone while we were away
        await _retain(site, "1003")
        await proxy.start()
        await _until(lambda: state.broker == "up" and "1003" in state.agents, "reconnection")
        seen.append(state.broker)
        assert sorted(state.agents) == ["1001", "1003"]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await proxy.stop()
        for agent_id in ("1001", "1003"):
            await _retain(site, agent_id, present=False)
    return seen


def test_monitor_reconnects_and_redraws_in_place(monkeypatch, broker_proxy):
    screen = io.StringIO()
    monkeypatch.setattr(sys, "stdout", screen)
    site = f"test-{secrets.token_hex(4)}"
    seen = asyncio.run(asyncio.wait_for(_scenario(site, broker_proxy), 30))
    assert seen == ["up", "down", "up"]
    frames = [ANSI.sub("", f) for f in screen.getvalue().split("\x1b[H")[1:]]
    assert len(frames) >= 3
    assert all("\x1b[2J" not in f and f.endswith("\x1b[J") for f in frames)  # no full clear
    assert all(line.endswith("\x1b[K") for f in frames for line in f.split("\r\n")[:-1])
    assert any("broker: down" in f for f in frames)
    assert all(len(line) <= 80 + 3 for f in frames for line in f.split("\r\n"))

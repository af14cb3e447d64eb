"""`acd demo` end to end: the simulated day over a pty, then the day's report; its
broker is a private Mosquitto with a password file and the shipped ACL.

The demo runs as a process; the test reads the credentials it prints, watches the
broker as the wallboard, is refused anonymously, and sends a supervisor command."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sqlite3
import subprocess
import sys

import aiomqtt
import pytest
from click.testing import CliRunner

from acd.cli import cli
from drivers.mosquitto import mosquitto_binary

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]
WATCH = re.compile(r"mosquitto_sub -p (\d+) -u wallboard -P (\S+) -t '([^']+)/#'")
ALICE = re.compile(r"ACD_MQTT_PASSWORD=(\S+)")


async def watch(port: int, password: str, base: str, alice_pw: str) -> tuple[dict, dict]:
    """Anonymous refused; the wallboard sees the controller online and agent states;
    alice's command reaches the controller (an unknown agent is its refusal)."""
    with pytest.raises(aiomqtt.MqttError, match=r"(?i)authori"):
        async with aiomqtt.Client("127.0.0.1", port, timeout=5):
            pass
    seen: dict[str, bytes] = {}
    async with aiomqtt.Client("127.0.0.1", port, username="wallboard", password=password) as c:
        await c.subscribe(f"{base}/#", qos=1)
        async with asyncio.timeout(20):
            async for message in c.messages:
                seen[str(message.topic)] = bytes(message.payload)
                if f"{base}/controller/status" in seen and any("/agent/" in t for t in seen):
                    break
    async with aiomqtt.Client("127.0.0.1", port, username="alice", password=alice_pw) as c:
        await c.subscribe(f"{base}/cmd/reply/r-demo", qos=1)
        command = json.dumps({"action": "ready", "request_id": "r-demo"})
        messages = aiter(c.messages)
        for _ in range(40):  # until the controller has subscribed to commands
            await c.publish(f"{base}/cmd/agent/9999/set", command, qos=1)
            try:
                async with asyncio.timeout(0.5):
                    return seen, json.loads((await anext(messages)).payload)
            except TimeoutError:
                continue
    raise AssertionError("no reply from the demo's controller")


def test_demo_runs_the_day_on_a_private_broker_and_reports_it_against_the_target(tmp_path):
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (make broker installs it)")
    db = tmp_path / "day.db"
    cmd = [sys.executable, "-m", "acd", "demo", "--calls", "60", "--speed", "8000", "--db", str(db)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("ACD_MQTT_PASSWORD", None)
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env) as proc:
        head = [proc.stdout.readline() for _ in range(3)]
        found = WATCH.search(head[1])
        assert "password file" in head[0] and found, head
        port, password, base = int(found[1]), found[2], found[3]
        seen, reply = asyncio.run(watch(port, password, base, ALICE.search(head[2])[1]))
        out = proc.stdout.read()
    assert proc.returncode == 0, out
    assert json.loads(seen[f"{base}/controller/status"])["online"] is True
    assert (reply["ok"], reply["error"]) == (False, "unknown agent '9999'")  # it got there
    assert "report, 2026-03-10 (Europe/Paris)" in out and "Target: 99.0 % answered" in out
    assert "12:00" in out and "total" in out and "Target " in out.split("total")[-1]
    assert f"Call records kept in {db}" in out
    with sqlite3.connect(db) as conn:
        (legs,) = conn.execute("SELECT count(*) FROM calls WHERE leg = 1").fetchone()
    assert legs >= 40

    again = CliRunner().invoke(cli, ["demo", "--calls", "60", "--db", str(db)])
    assert (again.exit_code, again.stderr) == (
        1,
        f"Error: {db} already holds calls of 2026-03-10: the report would count them twice;"
        " give another --db, or --append to add this run to them\n",
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM calls WHERE leg = 1").fetchone() == (legs,)


def test_demo_help_shows_an_example():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0 and "acd demo --calls 700" in result.output

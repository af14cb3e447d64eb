"""The bridge against a private Mosquitto with the password file and the ACL of docs/mqtt.md.

The broker is started on a free loopback port for this module and stopped at its end.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import aiomqtt
import pytest

from acd.config import MqttConfig
from acd.topics import encode
from drivers.mqtt import MqttBridge

HOST = "127.0.0.1"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "mqtt.md"
USERS = ("acd-townhall", "alice", "wallboard")
pytestmark = pytest.mark.mqtt


def documented_acl() -> str:
    """The ACL file example of docs/mqtt.md (the block after the `/etc/mosquitto/acl` line)."""
    text = DOCS.read_text()
    match = re.search(r"`/etc/mosquitto/acl`.*?```conf\n(.*?)```", text, re.S)
    assert match, "docs/mqtt.md has no ACL example"
    return match.group(1)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    passwd_tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not (Path(mosquitto).exists() and Path(passwd_tool).exists()):
        pytest.skip("mosquitto is not installed (make broker installs it)")
    d = tmp_path_factory.mktemp("mosquitto")
    passwd = d / "passwd"
    passwd.touch()
    for user in USERS:
        subprocess.run([passwd_tool, "-b", str(passwd), user, f"pw-{user}"], check=True)
    (d / "acl").write_text(documented_acl())
    with socket.socket() as s:
        s.bind((HOST, 0))
        port = s.getsockname()[1]
    (d / "mosquitto.conf").write_text(
        f"listener {port} {HOST}\nallow_anonymous false\npersistence false\n"
        f"password_file {passwd}\nacl_file {d / 'acl'}\nuser root\n"  # root: read tmp files
    )
    proc = subprocess.Popen(
        [mosquitto, "-c", str(d / "mosquitto.conf")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 5
        while True:
            with contextlib.suppress(OSError):
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"private mosquitto did not start: {proc.stderr.read()!r}")
            time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def client(port: int, user: str) -> aiomqtt.Client:
    return aiomqtt.Client(HOST, port, username=user, password=f"pw-{user}")


def townhall(port: int, password: str) -> MqttBridge:
    config = MqttConfig(port=port, username="acd-townhall", password=password)
    return MqttBridge(
        config,
        "townhall",
        on_command=lambda command: None,
        reconnect_initial=0.05,
        reconnect_max=0.2,
    )


async def collect(c: aiomqtt.Client, into: list) -> None:
    async for message in c.messages:
        into.append((str(message.topic), message.payload))


def test_a_wrong_password_is_reported_and_retried(broker):
    async def main():
        async with townhall(broker, "wrong") as mqtt:
            deadline = time.monotonic() + 5
            while not mqtt.counters["last_error"] and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.3)
            assert not mqtt.connected and mqtt.counters["connects"] == 0
            assert "authori" in mqtt.counters["last_error"].lower()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_documented_acl_lets_supervisors_command_and_wallboards_read(broker):
    base = "acd/v1/townhall"

    async def main():
        alice_got, board_got = [], []
        async with (
            client(broker, "alice") as alice,
            client(broker, "wallboard") as board,
            townhall(broker, "pw-acd-townhall") as mqtt,
        ):
            await alice.subscribe(base + "/#", qos=1)
            await board.subscribe(base + "/#", qos=1)
            tasks = [
                asyncio.create_task(collect(alice, alice_got)),
                asyncio.create_task(collect(board, board_got)),
            ]
            deadline = time.monotonic() + 5
            while not mqtt.connected and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            mqtt.set_agent_state("7", {"status": "ready"})
            await asyncio.sleep(0.2)  # the bridge's subscription is in place
            command = {"action": "logout"}
            await board.publish(
                f"{base}/cmd/agent/7/set", encode({**command, "request_id": "board"}), qos=1
            )
            await alice.publish(
                f"{base}/cmd/agent/7/set", encode({**command, "request_id": "alice"}), qos=1
            )
            await alice.publish(f"{base}/agent/7/state", b'{"forged": true}', qos=1)
            deadline = time.monotonic() + 5
            while f"{base}/cmd/reply/alice" not in dict(alice_got):
                assert time.monotonic() < deadline, "no reply to alice"
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            assert mqtt.counters["commands"] == 1  # the wallboard's command was dropped
        alice_topics = dict(alice_got)
        assert json.loads(alice_topics[f"{base}/cmd/reply/alice"])["ok"] is True
        assert f"{base}/cmd/reply/board" not in alice_topics
        assert [p for t, p in alice_got if t == f"{base}/agent/7/state"] == [b'{"status":"ready"}']
        board_topics = {t for t, _ in board_got}
        assert f"{base}/agent/7/state" in board_topics
        assert not any("/cmd/" in t for t in board_topics)

    asyncio.run(asyncio.wait_for(main(), 20))

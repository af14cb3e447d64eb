"""The bridge against private Mosquittos: the password file and ACL of docs/mqtt.md, and TLS.

Each broker runs on a free loopback port for this module and is stopped at its end.
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


MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
PASSWD_TOOL = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def private_mosquitto(directory: Path, port: int, settings: str):
    """Run a Mosquitto on ``port`` with ``settings`` until the block ends."""
    if not Path(MOSQUITTO).exists():
        pytest.skip("mosquitto is not installed (make broker installs it)")
    conf = directory / "mosquitto.conf"
    conf.write_text(f"listener {port} {HOST}\npersistence false\nuser root\n{settings}")
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
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
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    """Password file and the documented ACL; ``user root`` lets it read the temp files."""
    if not Path(PASSWD_TOOL).exists():
        pytest.skip("mosquitto_passwd is not installed")
    d = tmp_path_factory.mktemp("mosquitto")
    passwd = d / "passwd"
    passwd.touch()
    for user in USERS:
        subprocess.run([PASSWD_TOOL, "-b", str(passwd), user, f"pw-{user}"], check=True)
    (d / "acl").write_text(documented_acl())
    port = free_port()
    settings = f"allow_anonymous false\npassword_file {passwd}\nacl_file {d / 'acl'}\n"
    with private_mosquitto(d, port, settings):
        yield port


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tls_broker(tmp_path_factory):
    """A TLS listener with a certificate signed by a throw-away CA: (port, CA file)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("mosquitto-tls")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=acd test CA", cwd=d)  # fmt: skip
    openssl("req", *ec, "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=127.0.0.1", cwd=d)  # fmt: skip
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.crt", "-days", "1", "-extfile", "san.ext",
            cwd=d)  # fmt: skip
    (d / "server.key").chmod(0o644)
    port = free_port()
    settings = f"allow_anonymous true\ncertfile {d / 'server.crt'}\nkeyfile {d / 'server.key'}\n"
    with private_mosquitto(d, port, settings):
        yield port, str(d / "ca.crt")


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


def test_documented_acl_lets_the_controller_clear_a_stale_alarm(broker):
    topic = "acd/v1/townhall/alarm/stale"

    async def main():
        async with client(broker, "acd-townhall") as previous_run:
            await previous_run.publish(topic, b'{"message": "old"}', qos=1, retain=True)
        seen = []
        async with client(broker, "wallboard") as board, townhall(broker, "pw-acd-townhall"):
            await board.subscribe(topic, qos=1)
            reader = asyncio.create_task(collect(board, seen))
            deadline = time.monotonic() + 5
            while (topic, b"") not in seen:
                assert time.monotonic() < deadline, seen
                await asyncio.sleep(0.02)
            reader.cancel()
        assert seen[0] == (topic, b'{"message": "old"}')

    asyncio.run(asyncio.wait_for(main(), 20))


def test_tls_with_the_configured_ca(tls_broker):
    port, ca_file = tls_broker

    async def main():
        config = MqttConfig(port=port, tls=True, ca_file=ca_file)
        async with MqttBridge(config, "tls", reconnect_initial=0.05) as mqtt:
            deadline = time.monotonic() + 5
            while mqtt.counters["publishes"] < 1:
                assert time.monotonic() < deadline, mqtt.counters
                await asyncio.sleep(0.02)
            assert mqtt.connected

    asyncio.run(asyncio.wait_for(main(), 20))


def test_tls_refuses_a_server_the_ca_did_not_sign(tls_broker, tmp_path):
    port, _ = tls_broker
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", "other.key", "-out", "other.crt", "-days", "1",
            "-subj", "/CN=other CA", cwd=tmp_path)  # fmt: skip

    async def main():
        config = MqttConfig(port=port, tls=True, ca_file=str(tmp_path / "other.crt"))
        async with MqttBridge(config, "tls", reconnect_initial=0.05) as mqtt:
            deadline = time.monotonic() + 5
            while not mqtt.counters["last_error"]:
                assert time.monotonic() < deadline, mqtt.counters
                await asyncio.sleep(0.02)
            assert not mqtt.connected and mqtt.counters["connects"] == 0
            assert "certificate" in mqtt.counters["last_error"].lower()

    asyncio.run(asyncio.wait_for(main(), 20))

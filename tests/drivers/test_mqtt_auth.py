"""The bridge against private Mosquittos: the shipped configuration (examples/mosquitto:
password file, ACL, a TLS listener) and a broker that requires client certificates.

Each broker runs on free loopback ports for this module and is stopped at its end; the
certificates are made here with the ``openssl`` command.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import aiomqtt
import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.config import MqttConfig, load_config
from acd.errors import ConfigError
from acd.runtime.topics import encode
from drivers.mosquitto import (
    ACL_EXAMPLE,
    CONF_EXAMPLE,
    HOST,
    free_port,
    mosquitto_binary,
    password_line,
    run_as_us,
    running_mosquitto,
    write_private,
)
from drivers.mqtt import MqttBridge
from drivers.tls import tls_context

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs" / "mqtt.md"
EXAMPLE = ROOT / "examples" / "town-hall.toml"
USERS = ("acd-townhall", "alice", "bob", "wallboard")
BASE = "acd/v1/town-hall"
pytestmark = pytest.mark.mqtt


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


EC = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(d: Path, name: str) -> None:
    openssl("req", "-x509", *EC, "-keyout", f"{name}.key", "-out", f"{name}.crt",
            "-days", "1", "-subj", f"/CN={name}", cwd=d)  # fmt: skip


def make_cert(d: Path, name: str, cn: str, ca: str, ext: str | None = None) -> None:
    """``name.crt``/``name.key`` for ``cn``, signed by the CA ``ca``."""
    openssl("req", *EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={cn}",
            cwd=d)  # fmt: skip
    extra = ()
    if ext is not None:
        (d / f"{name}.ext").write_text(ext)
        extra = ("-extfile", f"{name}.ext")
    openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.crt", "-CAkey", f"{ca}.key",
            "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", *extra, cwd=d)  # fmt: skip


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:
    """A CA with a broker certificate (127.0.0.1) and a client certificate for
    ``acd-townhall``, and another CA with a client certificate of its own."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("certs")
    make_ca(d, "ca")
    make_cert(d, "broker", "127.0.0.1", "ca", "subjectAltName=IP:127.0.0.1\n")
    make_cert(d, "client", "acd-townhall", "ca")
    make_ca(d, "rogue-ca")
    make_cert(d, "rogue", "acd-townhall", "rogue-ca")
    return d


def require_mosquitto() -> None:
    if mosquitto_binary() is None:
        pytest.skip("mosquitto is not installed (make broker installs it)")


@pytest.fixture(scope="module")
def broker(tmp_path_factory, certs):
    """Mosquitto with exactly the shipped examples/mosquitto/acd.conf and acl: only the
    /etc/mosquitto paths and the two listeners' ports point at this test's files."""
    require_mosquitto()
    d = tmp_path_factory.mktemp("mosquitto")
    (d / "certs").mkdir()
    for name in ("broker.crt", "broker.key", "ca.crt"):
        shutil.copy(certs / name, d / "certs" / name)
    write_private(d / "passwd", "".join(password_line(u, f"pw-{u}") + "\n" for u in USERS))
    shutil.copy(ACL_EXAMPLE, d / "acl")
    port, tls_port = free_port(), free_port()
    text = CONF_EXAMPLE.read_text()
    for old, new in (
        ("/etc/mosquitto/", f"{d}/"),
        ("listener 1883 127.0.0.1\n", f"listener {port} 127.0.0.1\n"),
        ("listener 8883\n", f"listener {tls_port} 127.0.0.1\n"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    conf = write_private(d / "mosquitto.conf", text + run_as_us())
    with running_mosquitto(conf, port):  # one process: both listeners are up
        yield SimpleNamespace(port=port, tls_port=tls_port, ca=str(certs / "ca.crt"))


def client(port: int, user: str, **options) -> aiomqtt.Client:
    return aiomqtt.Client(HOST, port, username=user, password=f"pw-{user}", **options)


def townhall(config: MqttConfig) -> MqttBridge:
    return MqttBridge(
        config, "town-hall", on_command=lambda command: None, reconnect_initial=0.05,
        reconnect_max=0.2,
    )  # fmt: skip


def controller_config(port: int, password: str = "pw-acd-townhall", **settings) -> MqttConfig:
    return MqttConfig(port=port, username="acd-townhall", password=password, **settings)


async def collect(c: aiomqtt.Client, into: list) -> None:
    async for message in c.messages:
        into.append((str(message.topic), message.payload))


async def until(predicate, what: str, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


def test_docs_show_the_shipped_broker_files():
    text = DOCS.read_text()
    for path in (CONF_EXAMPLE, ACL_EXAMPLE):
        assert f"```conf\n{path.read_text()}```" in text, f"docs/mqtt.md does not show {path}"


def test_shipped_conf_refuses_anonymous_clients_on_both_listeners(broker):
    async def main():
        for port, tls in ((broker.port, None), (broker.tls_port, tls_context(
            MqttConfig(tls=True, ca_file=broker.ca)))):  # fmt: skip
            with pytest.raises(aiomqtt.MqttError, match=r"(?i)authori"):
                async with aiomqtt.Client(HOST, port, tls_context=tls, timeout=5):
                    pass

    asyncio.run(asyncio.wait_for(main(), 20))


def test_a_wrong_password_is_reported_and_retried(broker):
    async def main():
        async with townhall(controller_config(broker.port, "wrong")) as mqtt:
            await until(lambda: mqtt.counters["last_error"], "an error")
            await asyncio.sleep(0.3)
            assert not mqtt.connected and mqtt.counters["connects"] == 0
            assert "authori" in mqtt.counters["last_error"].lower()

    asyncio.run(asyncio.wait_for(main(), 20))


def test_the_town_hall_example_logs_in_with_its_password_env(broker, monkeypatch):
    monkeypatch.setenv("ACD_MQTT_PASSWORD", "pw-acd-townhall")
    config = dataclasses.replace(load_config(EXAMPLE).mqtt, port=broker.port)

    async def main():
        async with townhall(config) as mqtt:
            await until(lambda: mqtt.connected, "the connection")
            assert mqtt.counters["last_error"] is None

    asyncio.run(asyncio.wait_for(main(), 20))


def test_documented_acl_lets_supervisors_command_and_wallboards_read(broker):
    async def main():
        alice_got, board_got = [], []
        async with (
            client(broker.port, "alice") as alice,
            client(broker.port, "wallboard") as board,
            townhall(controller_config(broker.port)) as mqtt,
        ):
            await alice.subscribe(BASE + "/#", qos=1)
            await board.subscribe(BASE + "/#", qos=1)
            tasks = [
                asyncio.create_task(collect(alice, alice_got)),
                asyncio.create_task(collect(board, board_got)),
            ]
            await until(lambda: mqtt.connected, "the controller")
            mqtt.set_agent_state("7", {"status": "ready"})
            command = {"action": "logout"}
            await board.publish(
                f"{BASE}/cmd/agent/7/set", encode({**command, "request_id": "board"}), qos=1
            )
            await alice.publish(
                f"{BASE}/cmd/agent/7/set", encode({**command, "request_id": "alice"}), qos=1
            )
            await alice.publish(f"{BASE}/agent/7/state", b'{"forged": true}', qos=1)
            await until(lambda: f"{BASE}/cmd/reply/alice" in dict(alice_got), "alice's reply")
            await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            assert mqtt.counters["commands"] == 1  # the wallboard's command was dropped
        alice_topics = dict(alice_got)
        assert json.loads(alice_topics[f"{BASE}/cmd/reply/alice"])["ok"] is True
        assert f"{BASE}/cmd/reply/board" not in alice_topics
        assert [p for t, p in alice_got if t == f"{BASE}/agent/7/state"] == [b'{"status":"ready"}']
        board_topics = {t for t, _ in board_got}
        assert f"{BASE}/agent/7/state" in board_topics
        assert not any("/cmd/" in t for t in board_topics)

    asyncio.run(asyncio.wait_for(main(), 20))


def test_documented_acl_lets_the_controller_clear_a_stale_alarm(broker):
    topic = f"{BASE}/alarm/stale"

    async def main():
        async with client(broker.port, "acd-townhall") as previous_run:
            await previous_run.publish(topic, b'{"message": "old"}', qos=1, retain=True)
        seen = []
        async with (
            client(broker.port, "wallboard") as board,
            townhall(controller_config(broker.port)),
        ):
            await board.subscribe(topic, qos=1)
            reader = asyncio.create_task(collect(board, seen))
            await until(lambda: (topic, b"") in seen, "the clear")
            reader.cancel()
        assert seen[0] == (topic, b'{"message": "old"}')

    asyncio.run(asyncio.wait_for(main(), 20))


def test_tls_with_the_configured_ca(broker):
    async def main():
        config = controller_config(broker.tls_port, tls=True, ca_file=broker.ca)
        async with townhall(config) as mqtt:
            await until(lambda: mqtt.connected, "the TLS connection")

    asyncio.run(asyncio.wait_for(main(), 20))


def test_tls_refuses_a_server_the_ca_did_not_sign(broker, certs):
    async def main():
        config = controller_config(broker.tls_port, tls=True, ca_file=str(certs / "rogue-ca.crt"))
        async with townhall(config) as mqtt:
            await until(lambda: mqtt.counters["last_error"], "an error")
            assert not mqtt.connected and mqtt.counters["connects"] == 0
            assert "certificate" in mqtt.counters["last_error"].lower()

    asyncio.run(asyncio.wait_for(main(), 20))


@pytest.fixture(scope="module")
def cert_broker(tmp_path_factory, certs):
    """A TLS listener that requires a client certificate from the CA and takes its
    common name as the user name; the shipped ACL applies."""
    require_mosquitto()
    d = tmp_path_factory.mktemp("mosquitto-certs")
    shutil.copy(ACL_EXAMPLE, d / "acl")
    port = free_port()
    conf = write_private(
        d / "mosquitto.conf",
        f"listener {port} {HOST}\nallow_anonymous false\nacl_file {d / 'acl'}\n"
        f"cafile {certs / 'ca.crt'}\ncertfile {certs / 'broker.crt'}\n"
        f"keyfile {certs / 'broker.key'}\nrequire_certificate true\n"
        f"use_identity_as_username true\npersistence false\n{run_as_us()}",
    )
    with running_mosquitto(conf, port):
        yield port


def cert_config(port: int, certs: Path, cert: str | None) -> MqttConfig:
    return MqttConfig(
        port=port,
        tls=True,
        ca_file=str(certs / "ca.crt"),
        cert_file=None if cert is None else str(certs / f"{cert}.crt"),
        key_file=None if cert is None else str(certs / f"{cert}.key"),
    )


def test_a_client_certificate_from_the_ca_logs_in_and_gets_commands(cert_broker, certs):
    async def main():
        got = []
        config = cert_config(cert_broker, certs, "client")
        assert config.authenticated
        async with townhall(config) as mqtt:
            await until(lambda: mqtt.connected, "the connection with a client certificate")
            tls = tls_context(config)
            async with aiomqtt.Client(HOST, cert_broker, tls_context=tls, timeout=5) as c:
                # the certificate's CN is the user name: the ACL lets acd-townhall read this
                await c.subscribe(f"{BASE}/controller/status", qos=1)
                reader = asyncio.create_task(collect(c, got))
                await until(lambda: got, "the retained status")
                reader.cancel()
        assert json.loads(got[0][1])["online"] is True

    asyncio.run(asyncio.wait_for(main(), 20))


@pytest.mark.parametrize("cert", [None, "rogue"])
def test_no_or_a_foreign_client_certificate_is_refused(cert_broker, certs, cert):
    """The broker's refusal comes after the TLS 1.3 handshake, so the client only sees
    no CONNACK: a short timeout (the controller's own certificate connects well within)."""

    async def connect(config: MqttConfig) -> None:
        async with aiomqtt.Client(HOST, cert_broker, tls_context=tls_context(config), timeout=1):
            pass

    async def main():
        await connect(cert_config(cert_broker, certs, "client"))
        with pytest.raises(aiomqtt.MqttError):
            await connect(cert_config(cert_broker, certs, cert))

    asyncio.run(asyncio.wait_for(main(), 20))


@pytest.mark.parametrize(
    ("files", "key", "problem"),
    [
        ({"cert_file": "missing.crt"}, "mqtt.cert_file", "cannot read"),
        ({"cert_file": "client.crt", "key_file": "missing.key"}, "mqtt.key_file", "cannot read"),
        ({"cert_file": "client.crt", "key_file": "rogue.key"}, "mqtt.cert_file", "private key"),
        ({"cert_file": "ca.srl"}, "mqtt.cert_file", "not a certificate"),
        ({"ca_file": "ca.srl"}, "mqtt.ca_file", "no CA certificate"),
    ],
)
def test_bad_certificate_files_are_errors_naming_the_key(certs, files, key, problem):
    config = MqttConfig(tls=True, **{k: str(certs / v) for k, v in files.items()})
    with pytest.raises(ConfigError) as info:
        tls_context(config)
    assert info.value.key == key and problem in info.value.problem


def test_acd_run_stops_at_once_on_a_missing_client_certificate(tmp_path):
    site = tmp_path / "site.toml"
    text = EXAMPLE.read_text().replace(
        'password_env = "ACD_MQTT_PASSWORD"',
        f'tls = true\ncert_file = "{tmp_path / "nope.crt"}"',
    )
    site.write_text(text.replace('username = "acd-townhall"', ""))
    result = CliRunner().invoke(
        cli, ["run", "--config", str(site), "--link", "/dev/ttyNOPE7", "--db", str(tmp_path / "x")]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        f"Error: {site}: mqtt.cert_file: cannot read {tmp_path / 'nope.crt'}:"
        " No such file or directory"
    ]

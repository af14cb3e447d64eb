"""`acd mqtt clear --site ID` on the real broker: asks, removes only that site's retained
topics, refuses while its controller is online."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid

import pytest
from click.testing import CliRunner

from acd.cli import cli
from drivers.mqtt_client import connection
from drivers.mqtt_retained import retained_topics

BROKER = ("127.0.0.1", 1883)


def _broker_up() -> bool:
    try:
        socket.create_connection(BROKER, timeout=0.5).close()
        return True
    except OSError:
        return False


pytestmark = pytest.mark.skipif(not _broker_up(), reason="no MQTT broker on 127.0.0.1:1883")


async def _publish(messages: dict[str, bytes]) -> None:
    import aiomqtt

    async with aiomqtt.Client(*BROKER, identifier=f"t-{uuid.uuid4().hex[:8]}") as c:
        for topic, payload in messages.items():
            await c.publish(topic, payload, qos=1, retain=True)


def _site(site: str, online: bool = False) -> dict[str, bytes]:
    base = f"acd/v1/{site}"
    return {
        f"{base}/controller/status": json.dumps({"online": online}).encode(),
        f"{base}/agent/1001/state": b'{"status": "ready"}',
        f"{base}/queue/front-desk/stats": b'{"waiting": 0}',
        f"{base}/alarm/link-down": b'{"severity": "critical"}',
    }


def _left(site: str) -> set[str]:
    return set(asyncio.run(retained_topics(connection(None, site))))


def _clear(site: str, *options: str, answer: str = ""):
    return CliRunner().invoke(cli, ["mqtt", "clear", "--site", site, *options], input=answer)


def test_clear_asks_then_removes_only_that_sites_retained_topics():
    old, other = f"old-{uuid.uuid4().hex[:8]}", f"keep-{uuid.uuid4().hex[:8]}"
    asyncio.run(_publish(_site(old) | _site(other)))
    try:
        no = _clear(old, answer="n\n")
        assert no.exit_code == 1 and "Remove 4 retained topics" in no.output
        assert _left(old) == set(_site(old))  # nothing removed
        yes = _clear(old, answer="y\n")
        assert yes.exit_code == 0, yes.output
        assert f"removed 4 retained topics under acd/v1/{old}/" in yes.output
        assert _left(old) == set() and _left(other) == set(_site(other))
        again = _clear(old, "--yes")
        assert again.exit_code == 0 and "no retained topics" in again.output
    finally:
        _clear(other, "--yes", "--force")
    assert _left(other) == set()


def test_clear_is_refused_while_the_sites_controller_is_online():
    site = f"live-{uuid.uuid4().hex[:8]}"
    asyncio.run(_publish(_site(site, online=True)))
    refused = _clear(site, "--yes")
    assert refused.exit_code == 1 and "is online" in refused.output
    assert _left(site) == set(_site(site))
    forced = _clear(site, "--yes", "--force")
    assert forced.exit_code == 0 and _left(site) == set()

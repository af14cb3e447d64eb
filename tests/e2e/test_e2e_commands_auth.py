"""Supervisor commands reach the controller only over an authenticated broker connection.

The real `Controller` (on a silent pty: no switch needed to answer commands) and the
real supervisor client (`drivers.mqtt_client`) through Mosquitto: the machine's
anonymous broker, and a private one with the password file and the shipped ACL."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import tty
import uuid
from pathlib import Path

import pytest

from acd.config import MqttConfig, load_config
from acd.runtime.controller import UNAUTHENTICATED, Controller
from acd.runtime.topics import CommandAction
from drivers.mqtt_client import CommandRefused, Connection, send_agent_command

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(60)]
CONFIG = Path(__file__).resolve().parents[2] / "examples" / "town-hall.toml"


@contextlib.contextmanager
def silent_pty():
    master, slave = os.openpty()
    tty.setraw(master)
    try:
        yield os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


def refusal(controller_mqtt: MqttConfig, supervisor: MqttConfig) -> str:
    """Run the controller with ``controller_mqtt``; send `ready 9999` as ``supervisor``
    (retried until the controller has subscribed) and return why it was refused."""
    config = dataclasses.replace(load_config(CONFIG), mqtt=controller_mqtt)

    async def main(url: str) -> str:
        controller = Controller(config, url=url, reconnect_initial=0.05)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop))
        try:
            for _ in range(40):
                try:
                    conn = Connection(supervisor, config.site.id)
                    await send_agent_command(conn, "9999", CommandAction.READY, timeout=0.5)
                except CommandRefused as exc:
                    if not str(exc).startswith("no reply"):
                        return str(exc)
            raise AssertionError("the controller never answered")
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)

    with silent_pty() as url:
        return asyncio.run(main(url))


def anonymous(**settings) -> MqttConfig:
    return MqttConfig(prefix=f"test-{uuid.uuid4().hex[:8]}", **settings)


def test_commands_over_an_anonymous_connection_are_refused(broker, caplog):
    mqtt = anonymous()
    with caplog.at_level(logging.WARNING, logger="acd"):
        assert refusal(mqtt, mqtt) == f"refused: {UNAUTHENTICATED}"
    assert f"supervisor commands refused: {UNAUTHENTICATED}" in caplog.text


def test_a_lab_may_allow_anonymous_commands_and_is_warned(broker, caplog):
    mqtt = anonymous(allow_anonymous_commands=True)
    with caplog.at_level(logging.WARNING, logger="acd"):
        assert refusal(mqtt, mqtt) == "refused: unknown agent '9999'"  # the engine's answer
    assert "allow_anonymous_commands = true (a lab set-up)" in caplog.text


def test_commands_over_an_authenticated_connection_reach_the_controller(secure_broker):
    controller, alice = secure_broker.mqtt("acd-townhall"), secure_broker.mqtt("alice")
    assert refusal(controller, alice) == "refused: unknown agent '9999'"

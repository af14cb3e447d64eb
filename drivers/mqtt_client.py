"""One-shot MQTT clients for the supervisor tools: read the retained state, send a command.

Credentials come from the configuration (``[mqtt]``: username, password or
password_env, cmd_token or cmd_token_env) and, overriding it, from the environment:
``ACD_MQTT_USERNAME``, ``ACD_MQTT_PASSWORD``, ``ACD_MQTT_TOKEN``. Never from a command
line option, which would land in the shell history and the process list.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from typing import Any

import aiomqtt

from acd.errors import AcdError
from acd.runtime.topics import CommandAction, Topics, check_id, encode
from drivers.mqtt import new_client, payload_bytes
from drivers.settings import MqttSettings

TIMEOUT = 5.0


class BrokerError(AcdError):
    """The broker cannot be reached or refused us."""


class CommandRefused(AcdError):
    """The controller refused a supervisor command, or did not answer in time."""


@dataclass(frozen=True)
class Connection:
    """Where the broker is, who we are there, and which site's tree to use."""

    mqtt: MqttSettings
    site: str

    @property
    def topics(self) -> Topics:
        return Topics(self.mqtt.prefix, self.site)

    @property
    def where(self) -> str:
        return f"{self.mqtt.host}:{self.mqtt.port}"


def connection(
    mqtt: MqttSettings | None,
    site: str | None = None,
    host: str | None = None,
    port: int | None = None,
    env: dict[str, str] | None = None,
) -> Connection:
    """``mqtt`` (the configuration's, default settings if None), then the environment,
    then the options; ``site`` is the site id."""
    env = dict(os.environ if env is None else env)
    mqtt = MqttSettings() if mqtt is None else mqtt
    if site is None:
        raise AcdError("which site? give --site ID or --config FILE (or set ACD_CONFIG)")
    try:
        check_id("site", site)
    except ValueError as exc:
        raise AcdError(str(exc)) from None
    mqtt = replace(
        mqtt,
        host=host or mqtt.host,
        port=port or mqtt.port,
        username=env.get("ACD_MQTT_USERNAME", mqtt.username),
        password=env.get("ACD_MQTT_PASSWORD", mqtt.password),
        cmd_token=env.get("ACD_MQTT_TOKEN", mqtt.cmd_token),
        client_id=None,
    )
    return Connection(mqtt, site)


def broker_error(conn: Connection, exc: aiomqtt.MqttError) -> BrokerError:
    """Plain words for a failed connection."""
    text = str(exc) or type(exc).__name__
    if "Not authorized" in text or "Bad user name or password" in text:
        return BrokerError(
            f"broker {conn.where} refused us: {text} (check ACD_MQTT_USERNAME/PASSWORD)"
        )
    return BrokerError(f"cannot reach the broker at {conn.where}: {text}")


@contextlib.asynccontextmanager
async def connected(conn: Connection, role: str) -> AsyncIterator[aiomqtt.Client]:
    """A connected client; connection failures become `BrokerError`."""
    try:
        async with new_client(
            conn.mqtt, f"acd-{role}-{secrets.token_hex(4)}", timeout=TIMEOUT
        ) as c:
            yield c
    except aiomqtt.MqttError as exc:
        raise broker_error(conn, exc) from None


async def read_retained(
    conn: Connection,
    on_message: Callable[[str, bytes, bool], None],
    settle: float = 0.3,
    timeout: float = TIMEOUT,
) -> None:
    """Subscribe to the site's tree and pass every message to ``on_message(topic,
    payload, retained)`` until
    ``settle`` seconds pass without one (the retained state has arrived) or ``timeout``."""
    end = time.monotonic() + timeout
    async with connected(conn, "read") as c:
        await c.subscribe(conn.topics.base + "/#", qos=1)
        messages = aiomqtt_messages(c)
        while (left := end - time.monotonic()) > 0:
            try:
                async with asyncio.timeout(min(settle, left)):
                    topic, payload, retained = await anext(messages)
            except TimeoutError:
                return
            on_message(topic, payload, retained)


async def aiomqtt_messages(c: aiomqtt.Client) -> AsyncIterator[tuple[str, bytes, bool]]:
    """``(topic, payload bytes, retained)`` of every message the client receives."""
    async for message in c.messages:
        yield str(message.topic), payload_bytes(message), bool(message.retain)


async def send_agent_command(
    conn: Connection,
    agent_id: str,
    action: CommandAction,
    reason: int | None = None,
    timeout: float = TIMEOUT,
) -> dict[str, Any]:
    """Publish a command on ``cmd/agent/<id>/set`` and wait for its reply.

    Returns the reply when the controller accepted it; raises `CommandRefused` with the
    controller's reason, or when no reply came within ``timeout`` seconds.
    """
    topics = conn.topics
    try:
        topic = topics.agent_command(agent_id)
    except ValueError as exc:
        raise AcdError(str(exc)) from None
    request_id = f"r-{secrets.token_hex(6)}"
    reply_topic = topics.reply(request_id)
    command: dict[str, Any] = {"action": action.value, "request_id": request_id}
    if reason is not None:
        command["reason"] = reason
    if conn.mqtt.cmd_token is not None:
        command["token"] = conn.mqtt.cmd_token
    async with connected(conn, "cmd") as c:
        await c.subscribe(reply_topic, qos=1)
        await c.publish(topic, encode(command), qos=1, retain=False)
        try:
            async with asyncio.timeout(timeout):
                async for _topic, payload, _retained in aiomqtt_messages(c):
                    reply = _reply(payload)
                    if reply is None or reply.get("request_id") != request_id:
                        continue
                    if reply.get("ok") is True:
                        return reply
                    raise CommandRefused(f"refused: {reply.get('error') or 'no reason given'}")
        except TimeoutError:
            raise CommandRefused(
                f"no reply within {timeout:g} s: is the controller (acd run) connected to "
                f"the broker at {conn.where} for site {conn.site!r}?"
            ) from None
    raise CommandRefused("the broker closed the connection before the reply")


def _reply(payload: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None

"""The retained messages of a site's topic tree: list them, clear them (`acd mqtt clear`)."""

from __future__ import annotations

import json

from drivers.mqtt_client import Connection, connected, read_retained


async def retained_topics(conn: Connection, settle: float = 0.5) -> dict[str, bytes]:
    """Every retained topic under ``<prefix>/<site>/`` with its payload (read until the
    broker has been quiet for ``settle`` s)."""
    found: dict[str, bytes] = {}

    def keep(topic: str, payload: bytes, retained: bool) -> None:
        if retained and payload:
            found[topic] = payload

    await read_retained(conn, keep, settle=settle)
    return found


def controller_online(conn: Connection, topics: dict[str, bytes]) -> bool:
    """True when the site's retained controller status says it is online."""
    try:
        return bool(json.loads(topics.get(conn.topics.status, b"{}")).get("online"))
    except (ValueError, AttributeError):
        return False


async def clear(conn: Connection, topics: list[str]) -> list[str]:
    """Publish an empty retained payload (QoS 1) on each topic, then read the tree again:
    the topics still retained (none unless something republished them)."""
    async with connected(conn, "clear") as c:
        for topic in topics:
            await c.publish(topic, b"", qos=1, retain=True)
    return sorted(await retained_topics(conn))

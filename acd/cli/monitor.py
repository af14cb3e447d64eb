"""`acd monitor`: a live terminal view of one site from its MQTT topics."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sys
import time
from typing import TYPE_CHECKING, Any

import click

from acd.cli.common import config_option, emit_json, is_tty, json_option, timeout_option
from acd.config import Config, load_config
from acd.tools.monitor_view import MonitorState, configured_state, render

if TYPE_CHECKING:
    from drivers.mqtt_client import Connection

EPILOG = """\b
Examples:
  acd monitor --config site.toml          # live view, Ctrl-C to quit
  acd monitor --site town-hall --once     # one snapshot of the retained state
  acd monitor --config site.toml --once --json | jq '.queues[0].answer_rate'
\b
Credentials: [mqtt] of the configuration, or ACD_MQTT_USERNAME / ACD_MQTT_PASSWORD.
"""

site_option = click.option("--site", envvar="ACD_SITE", help="Site id (default: [site] id).")
host_option = click.option("--host", help="Broker host (default: [mqtt] host, 127.0.0.1).")
port_option = click.option("--port", type=click.IntRange(1, 65535), help="Broker port.")


def load_site(config_path: str | None) -> Config | None:
    """The configuration, when one is given."""
    return load_config(config_path) if config_path else None


def broker_connection(
    config: Config | None, site: str | None, host: str | None, port: int | None
) -> Connection:
    """The broker of ``config``'s [mqtt] (if any) for ``site`` (default: its [site] id),
    then the environment, then ``host`` and ``port``."""
    from drivers.mqtt_client import connection

    if config is None:
        return connection(None, site, host, port)
    return connection(config.mqtt, site or config.site.id, host, port)


def read_snapshot(
    config: Config | None, site: str | None, host: str | None, port: int | None, timeout: float
) -> dict[str, Any]:
    """Connect, take the retained state (waiting up to ``timeout``), return its snapshot."""
    from drivers.mqtt_client import read_retained

    conn = broker_connection(config, site, host, port)
    state = configured_state(conn.topics, config)

    def on_message(topic: str, payload: bytes, retained: bool) -> None:
        state.apply(topic, payload, time.time(), retained)

    asyncio.run(read_retained(conn, on_message, timeout=timeout))
    state.broker = "up"
    return state.snapshot(time.time())


@click.command(
    short_help="Live view of agents, queues, controller and alarms (MQTT).", epilog=EPILOG
)
@config_option
@site_option
@host_option
@port_option
@click.option("--once", is_flag=True, help="Print one snapshot and exit.")
@timeout_option("--once: seconds to wait for the retained state.")
@click.option(
    "--interval",
    type=click.FloatRange(0.1, 60),
    default=0.5,
    show_default=True,
    help="Seconds between redraws at most.",
)
@json_option
def monitor(
    config_path: str | None,
    site: str | None,
    host: str | None,
    port: int | None,
    once: bool,
    timeout: float,
    interval: float,
    as_json: bool,
) -> None:
    """Live view of agents, queues, controller, link and alarms from MQTT.

    Redraws in place (fits an 80x24 terminal, works over SSH); survives broker
    restarts, showing "broker: down" while it reconnects. Answer rate and service
    level below target show in red.
    """
    config = load_site(config_path)
    if once or as_json:
        snap = read_snapshot(config, site, host, port, timeout)
        if as_json:
            emit_json(snap)
        else:
            size = shutil.get_terminal_size()
            for line in render(snap, size.columns, size.lines, colour=is_tty()):
                click.echo(line)
        return
    conn = broker_connection(config, site, host, port)
    state = configured_state(conn.topics, config)
    out = sys.stdout
    out.write("\x1b[?25l\x1b[2J")  # hide the cursor, clear once
    try:
        asyncio.run(_live(conn, state, interval))
    except KeyboardInterrupt:
        pass
    finally:
        out.write("\x1b[?25h\n")
        out.flush()


def draw(state: MonitorState) -> None:
    """One frame: cursor home, each line cleared to its end, the rest of the screen too."""
    size = shutil.get_terminal_size()
    lines = render(state.snapshot(time.time()), size.columns, size.lines - 1, colour=True)
    sys.stdout.write("\x1b[H" + "".join(line + "\x1b[K\r\n" for line in lines) + "\x1b[J")
    sys.stdout.flush()


async def _live(conn: Connection, state: MonitorState, interval: float) -> None:
    from drivers.backoff import Backoff
    from drivers.mqtt import RECONNECT_INITIAL, RECONNECT_MAX
    from drivers.mqtt_client import BrokerError, aiomqtt_messages, connected

    changed = asyncio.Event()

    async def painter() -> None:
        while True:
            draw(state)
            changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), 1.0)  # at least once a second
            await asyncio.sleep(interval)

    task = asyncio.create_task(painter())
    backoff = Backoff(RECONNECT_INITIAL, RECONNECT_MAX)
    try:
        while True:
            try:
                async with connected(conn, "monitor") as client:
                    # the retained state comes again: forget what may have gone since
                    state.agents, state.queues, state.alarms = {}, {}, {}
                    state.controller, state.broker = None, "up"
                    backoff.reset()
                    changed.set()
                    await client.subscribe(conn.topics.base + "/#", qos=1)
                    async for topic, payload, retained in aiomqtt_messages(client):
                        if state.apply(topic, payload, time.time(), retained):
                            changed.set()
            except BrokerError:
                pass
            state.broker = "down"
            changed.set()
            await asyncio.sleep(backoff.delay)
            backoff.grow()
    finally:
        task.cancel()

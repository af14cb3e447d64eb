"""`acd demo --ha`: a hot-standby pair fails over on this machine.

The simulated switch serves the reference weekday from 10:00 over TCP (as a serial
device server would); two `acd run` with ``[ha] enabled`` (``pc-a``, then ``pc-b``)
share the PostgreSQL database of ``--db`` and the demo's broker. ``pc-a`` takes the
lease and routes, ``pc-b`` waits; then ``pc-a`` is killed (SIGKILL) and ``pc-b`` takes
over; ``pc-a`` comes back as the standby. Their log lines about the pair and the
``controller/status`` messages are printed as they come, then the time from the kill to
the first call ``pc-b`` routed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import click

SHOWN = (
    "hot standby:",
    "lease",
    "standby",
    "PBX port",
    "link up",
    "resynchronised",
    "restoring",
    "database sessions",
    "controller stopped",
)
"""Log lines of the two controllers the demo prints (the pair's story)."""


class _Controller:
    """One `acd run` of the pair, its stderr in a file read as it grows."""

    def __init__(self, name: str, command: list[str], directory: Path, env: dict) -> None:
        self.name = name
        self.log = directory / f"{name}-{uuid.uuid4().hex[:6]}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                command, stdout=subprocess.DEVNULL, stderr=out, cwd=directory, env=env
            )
        self._read = 0

    def new_lines(self) -> list[str]:
        """Lines written since the last call."""
        text = self.log.read_text(errors="replace")
        done = text.rfind("\n", self._read) + 1
        lines, self._read = text[self._read : done].splitlines(), max(done, self._read)
        return lines

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


async def run_pair(config, sc, db: str, broker, directory: Path) -> tuple[float, float]:
    """Play the failover (see the module docstring); the seconds from the kill of the
    active controller to the standby's link up, and to the first call it routed."""
    from firmware_sim.runner import ServedSwitch
    from protocols import messages as m

    switch = ServedSwitch(sc, tcp=True)
    start = dt.datetime.combine(sc.day, dt.time()) + dt.timedelta(seconds=sc.start_s)
    config_file = directory / "pair.toml"
    config_file.write_text(_pair_toml(config, db, broker))
    env = dict(os.environ)
    if broker is not None:
        env["ACD_MQTT_PASSWORD"] = broker.passwords[config.mqtt.username]
    running: list[_Controller] = []

    def launch(name: str) -> _Controller:
        command = [
            *(sys.executable, "-m", "acd", "run", "--config", str(config_file)),
            *("--link", switch.url, "--instance", name, "--speed", f"{sc.speed:g}"),
            *("--start", start.isoformat(), "--origin", repr(switch.origin)),
        ]
        if broker is None:
            command.append("--no-mqtt")
        running.append(_Controller(name, command, directory, env))
        return running[-1]

    async def until(predicate, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            show()
            for c in running:
                if c.proc.poll() not in (None, -signal.SIGKILL):
                    last = (seen.get(c.name) or ["(nothing logged)"])[-1].removeprefix("Error: ")
                    raise click.ClickException(f"demo --ha: {c.name} stopped: {last.strip()}")
            if time.monotonic() > end:
                raise click.ClickException(f"demo --ha: no {what} within {timeout:g} s")
            await asyncio.sleep(0.05)
        show()

    seen: dict[str, list[str]] = {}

    def show() -> None:
        for c in running:
            for line in c.new_lines():
                seen.setdefault(c.name, []).append(line)
                if any(key in line for key in SHOWN):
                    click.echo(f"[{c.name}] {line[11:]}")

    def said(c: _Controller, text: str) -> bool:
        return any(text in line for line in seen.get(c.name, []))

    watch = None
    if broker is not None:
        watch = asyncio.create_task(_watch_status(config, broker))
    try:
        a = launch("pc-a")
        await until(lambda: said(a, "resynchronised"), 30, "active controller")
        b = launch("pc-b")
        await until(lambda: said(b, "the active controller is pc-a"), 30, "standby")
        await asyncio.sleep(3.0)  # calls through pc-a
        show()
        click.echo("--- kill -9 pc-a (the active controller)")
        a.stop(signal.SIGKILL)
        killed, killed_at = time.monotonic(), time.time()

        def routed() -> float | None:
            for t, x in list(switch.endpoint.produced):
                if t > killed + 0.05 and isinstance(x, m.Delivered | m.Queued):
                    return t - killed
            return None

        await until(lambda: routed() is not None, 30, "call routed by pc-b")
        took = routed()
        up = next(line for line in seen["pc-b"] if line[24:].endswith("link up"))
        linked = dt.datetime.strptime(up[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp() - killed_at
        click.echo(
            f"--- pc-b: link up {linked:.2f} s, first call routed {took:.2f} s after the kill"
        )
        await asyncio.sleep(2.0)
        click.echo("--- pc-a starts again")
        a = launch("pc-a")
        await until(lambda: said(a, "the active controller is pc-b"), 30, "pc-a as standby")
        await asyncio.sleep(2.0)
        click.echo("--- stop both (systemctl stop acd on each PC)")
        for c in (a, b):
            c.stop()
        show()
        return linked, took
    finally:
        for c in running:
            c.stop(signal.SIGKILL)
        switch.stop()
        if watch is not None:
            watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watch


async def _watch_status(config, broker) -> None:
    """Print each ``controller/status`` as the wallboard account sees it."""
    from acd.runtime.topics import Topics
    from drivers.mqtt import new_client, payload_bytes

    topics = Topics(config.mqtt.prefix, config.site.id)
    mqtt = dataclasses.replace(
        config.mqtt, username="wallboard", password=broker.passwords["wallboard"]
    )
    with contextlib.suppress(Exception):
        async with new_client(mqtt, f"acd-demo-{uuid.uuid4().hex[:6]}") as client:
            await client.subscribe(topics.status, qos=1)
            async for message in client.messages:
                status = json.loads(payload_bytes(message) or b"{}")
                keep = ("online", "role", "instance", "standby", "active", "reason")
                shown = {k: status[k] for k in keep if k in status}
                click.echo(f"[mqtt] controller/status {json.dumps(shown)}")


def _pair_toml(config, db: str, broker) -> str:
    """The shipped site file for the pair: its store ``db``, ``[ha]`` on, MQTT on the
    demo's broker (the controller's account, password from ACD_MQTT_PASSWORD)."""
    from acd.shipped import example

    text = example("town-hall.toml").read_text()
    text = text.replace('url = "town-hall.db"', f'url = "{db}"')
    if broker is not None:
        text = text.replace("port = 1883", f"port = {broker.port}")
    return text + "\n[ha]\nenabled = true\n"

"""`acd demo`: the reference site's day in scaled time, then the day's report."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import socket
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from acd.cli.common import config_option, fail, is_tty
from acd.shipped import example

EPILOG = """\b
Examples:
  acd demo                          # a weekday at 250 calls in about 80 s
  acd demo --calls 700 --speed 400  # the busy day, a bit slower
  acd demo --db day.db && acd report --db day.db

\b
The simulated switch runs on a pseudo-terminal and the controller opens it like a
real serial port. MQTT goes to Mosquitto on 127.0.0.1:1883 when one listens, else
to an in-process broker (the 'broker' extra, amqtt) on loopback, else is left out.
"""

BROKER = ("127.0.0.1", 1883)
EXAMPLE = example("town-hall.toml")


def _broker_listening() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(BROKER, timeout=0.5):
        return True
    return False


@contextlib.asynccontextmanager
async def _broker():
    """Yield how MQTT is served: "mosquitto", "amqtt" (in process) or None."""
    if _broker_listening():
        yield "mosquitto"
        return
    try:
        from amqtt.broker import Broker
    except ImportError:
        yield None
        return
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"{BROKER[0]}:{BROKER[1]}"}},
            "sys_interval": 0,
            "auth": {"allow-anonymous": True},
        }
    )
    await broker.start()
    try:
        yield "amqtt"
    finally:
        await broker.shutdown()


@click.command(epilog=EPILOG)
@config_option
@click.option(
    "--scenario",
    default="town-hall-weekday-250",
    show_default=True,
    help="Simulator scenario (file or shipped name).",
)
@click.option("--calls", type=click.IntRange(min=0), help="Calls in the day (default: scenario's).")
@click.option(
    "--speed",
    type=click.FloatRange(min=1.0),
    default=500.0,
    show_default=True,
    help="Simulated seconds per second.",
)
@click.option("--seed", type=int, help="Random seed of the simulated day.")
@click.option(
    "--db", "db_path", type=click.Path(dir_okay=False), help="Keep the call records here."
)
@click.option(
    "--append", is_flag=True, help="Add the day to a --db that already holds calls of that day."
)
def demo(
    config_path: str | None,
    scenario: str,
    calls: int | None,
    speed: float,
    seed: int | None,
    db_path: str | None,
    append: bool,
) -> None:
    """Run the reference customer's day: simulated switch, controller and broker.

    The town hall (examples/town-hall.toml) and its simulated weekday run in scaled
    time; a tty shows live progress (calls, answer rate, agents ready). At the end
    the day's report, hour by hour, is checked against the 99 % answer-rate target.
    """
    from firmware_sim.scenario import load_scenario
    from firmware_sim.traffic import DayPlan

    from acd.calendar import midnight
    from acd.config import load_config
    from acd.reporting import ReportSettings, day_window, render_text, store_report
    from acd.store import CallStore
    from acd.topics import Topics

    config = load_config(config_path or EXAMPLE)
    sc = load_scenario(scenario)
    if seed is not None:
        sc = dataclasses.replace(sc, seed=seed)
    if calls is not None:
        week = {d: DayPlan(float(calls), plan.profile) for d, plan in sc.traffic.week.items()}
        sc = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic, week=week))
    sc = dataclasses.replace(sc, speed=speed)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s")

    keep = db_path is not None
    with contextlib.ExitStack() as stack:
        if db_path is None:
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="acd-demo-"))
            db_path = str(Path(tmp) / "demo.db")
        store = CallStore(db_path, config.store.mask_callers, config.store.group)
        stack.enter_context(store)
        window = day_window(sc.day, ZoneInfo(config.site.timezone))
        if not append and next(store.calls(*window), None) is not None:
            fail(
                f"{db_path} already holds calls of {sc.day}: the report would count them"
                " twice; give another --db, or --append to add this run to them"
            )
        mqtt = asyncio.run(_run_day(config, sc, store, midnight(sc.day, config.site.timezone)))
        if mqtt is None:
            click.echo("MQTT: no broker on 127.0.0.1:1883 and no amqtt: ran without MQTT.")
        else:
            base = Topics(config.mqtt.prefix, config.site.id).base
            click.echo(f"MQTT: published to {mqtt} on 127.0.0.1:1883, topics {base}/#")
        report = store_report(store, ReportSettings.from_config(config), *window)
        click.echo(render_text(report, "hour"))
        if keep:
            click.echo(f"Call records kept in {db_path} (acd report --db {db_path}).")


async def _run_day(config, sc, store, epoch: float) -> str | None:
    """Serve the simulated switch on a pty from a thread and run the controller on it
    until the simulated day is over; return how MQTT was served."""
    from firmware_sim.runner import ServedSwitch

    from acd.controller import Controller, EngineClock

    switch = ServedSwitch(sc)
    link = dataclasses.replace(
        config.link, url=switch.url, t1=0.2, heartbeat=1.0, reset_interval=0.3
    )
    try:
        async with _broker() as mqtt:
            cfg = dataclasses.replace(config, link=link)
            clock = EngineClock(switch.origin, epoch + sc.start_s, sc.speed)
            controller = Controller(cfg, store=store, clock=clock, mqtt=mqtt is not None)
            stop = asyncio.Event()
            task = asyncio.create_task(controller.run(stop))
            show = is_tty()
            while switch.thread.is_alive() and not task.done():
                if show:
                    _progress(controller, switch.clock.sim(time.monotonic()))
                await asyncio.sleep(0.25)
            await _drain(controller)
            stop.set()
            await task
            if show:
                sys.stdout.write("\n")
    finally:
        switch.stop()
    return mqtt


async def _drain(controller, timeout: float = 5.0) -> None:
    """Let the calls still in the controller end (the switch has stopped)."""
    end = time.monotonic() + timeout
    while sum(controller.engine.active_legs().values()) and time.monotonic() < end:
        await asyncio.sleep(0.1)


def _progress(controller, sim_seconds: float) -> None:
    engine = controller.engine
    offered = answered = waiting = 0
    for queue in (q.id for q in controller.config.queues.values() if q.numbers):
        f = engine.queue_figures(queue)
        offered += f.offered
        answered += f.answered
        waiting += f.waiting
    ready = sum(1 for a in engine.agent_states() if a.status == "ready" and a.device is not None)
    rate = f"{answered / offered:6.1%}" if offered else "     -"
    h, m = divmod(int(sim_seconds) // 60, 60)
    sys.stdout.write(
        f"\r{h:02d}:{m:02d}  calls {offered:4d}  answered {answered:4d} ({rate})"
        f"  waiting {waiting:2d}  agents ready {ready:2d} "
    )
    sys.stdout.flush()

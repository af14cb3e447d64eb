"""`acd demo`: the reference site's day in scaled time, then the day's report."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import click

from acd.cli.common import config_option, fail, is_tty
from acd.shipped import example

if TYPE_CHECKING:
    from acd.config import Config
    from acd.runtime.topics import Topics

EPILOG = """\b
Examples:
  acd demo                          # a weekday at 250 calls in about 80 s
  acd demo --calls 700 --speed 400  # the busy day, a bit slower
  acd demo --db day.db && acd report --db day.db
  acd demo --ha --db postgresql://acd@localhost/acd_demo   # a pair fails over

\b
The simulated switch runs on a pseudo-terminal and the controller opens it like a
real serial port. MQTT goes to a private Mosquitto started for the run on a free
loopback port, with a password file (random passwords, printed) and the ACL of
examples/mosquitto/acl: nothing is anonymous, the controller logs in as its
account. Without mosquitto installed (make broker installs it), MQTT is left out.

\b
--ha plays a hot-standby pair instead (docs/operations.md, Running a pair): the
switch over TCP (the busy weekday unless --scenario) from 10:00 at 60x (or
--speed), two `acd run` with [ha] on the PostgreSQL database of --db (pc-a
active, pc-b standby), pc-a killed with SIGKILL, pc-b taking over, pc-a back as
the standby; their log lines and controller/status as they come, and how long
the standby took to route its first call. The database must exist (e.g.
`createdb -h 127.0.0.1 -U postgres acd_demo`); a run takes about 15 s.
"""

EXAMPLE = example("town-hall.toml")


@dataclasses.dataclass(frozen=True)
class DemoBroker:
    """The demo's private Mosquitto: its port and the accounts of its password file."""

    port: int
    passwords: dict[str, str]

    def lines(self, topics: Topics) -> list[str]:
        """What it is and how to watch it while the demo runs."""
        pw = self.passwords
        return [
            f"MQTT: a private Mosquitto on 127.0.0.1:{self.port} with a password file and the"
            " ACL of examples/mosquitto/acl (nothing anonymous; stopped at the end)",
            f"  watch: mosquitto_sub -p {self.port} -u wallboard -P {pw['wallboard']}"
            f" -t '{topics.base}/#' -v",
            f"  supervise: ACD_MQTT_USERNAME=alice ACD_MQTT_PASSWORD={pw['alice']}"
            f" acd monitor --port {self.port} --site {topics.site}",
        ]


@contextlib.contextmanager
def _broker(config: Config, directory: Path) -> Iterator[tuple[Config, DemoBroker | str]]:
    """Yield ``(config, DemoBroker)``: the configuration logged in to a private Mosquitto
    (password file, the shipped ACL for this site); or ``(config without MQTT, why)``."""
    from drivers.mosquitto import MosquittoError, secure_mosquitto, site_acl

    if not config.mqtt.enabled:
        yield config, "MQTT: off ([mqtt] enabled = false)"
        return
    user = config.mqtt.username or "acd-townhall"
    passwords = {name: secrets.token_hex(8) for name in (user, "alice", "wallboard")}
    acl = site_acl(config.mqtt.prefix, config.site.id, user)
    with contextlib.ExitStack() as stack:
        try:
            port = stack.enter_context(secure_mosquitto(directory, passwords, acl))
        except MosquittoError as exc:
            off = dataclasses.replace(config.mqtt, enabled=False)
            yield dataclasses.replace(config, mqtt=off), f"MQTT: left out: {exc}"
            return
        mqtt = dataclasses.replace(
            config.mqtt, host="127.0.0.1", port=port, username=user, password=passwords[user],
            tls=False, cert_file=None, key_file=None, cmd_token=None,
        )  # fmt: skip
        yield dataclasses.replace(config, mqtt=mqtt), DemoBroker(port, passwords)


@click.command(short_help="The reference day: simulated switch, controller, broker.", epilog=EPILOG)
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
@click.option(
    "--web",
    "web_listen",
    metavar="HOST:PORT",
    is_flag=False,
    flag_value="127.0.0.1:8080",
    help="Also serve the wallboard and console there (default 127.0.0.1:8080), user 'demo'"
    " with a random password (printed); try --speed 20 to watch the floor.",
)
@click.option(
    "--ha",
    is_flag=True,
    help="Play a hot-standby pair failing over (needs --db postgresql://...).",
)
def demo(
    config_path: str | None,
    scenario: str,
    calls: int | None,
    speed: float,
    seed: int | None,
    db_path: str | None,
    append: bool,
    web_listen: str | None,
    ha: bool,
) -> None:
    """Run the reference customer's day: simulated switch, controller and broker.

    The town hall (examples/town-hall.toml) and its simulated weekday run in scaled
    time; a tty shows live progress (calls, answer rate, agents ready). At the end
    the day's report, hour by hour, is checked against the 99 % answer-rate target.
    """
    from acd.config import load_config
    from acd.core.calendar import midnight
    from acd.planning.reporting import ReportSettings, day_window, render_text, store_report
    from acd.runtime.store import open_store
    from acd.runtime.topics import Topics
    from firmware_sim.scenario import load_scenario
    from firmware_sim.traffic import DayPlan

    config = load_config(config_path or EXAMPLE)
    sc = load_scenario(scenario)
    if seed is not None:
        sc = dataclasses.replace(sc, seed=seed)
    if calls is not None:
        week = {d: DayPlan(float(calls), plan.profile) for d, plan in sc.traffic.week.items()}
        sc = dataclasses.replace(sc, traffic=dataclasses.replace(sc.traffic, week=week))
    sc = dataclasses.replace(sc, speed=speed)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s %(message)s")
    if ha:
        context = click.get_current_context()
        if context.get_parameter_source("scenario") is click.core.ParameterSource.DEFAULT:
            sc = dataclasses.replace(load_scenario("town-hall-weekday-700"), seed=sc.seed)
        given = context.get_parameter_source("speed")
        _pair_demo(config, config_path, sc, db_path, web_listen, given)
        return

    keep = db_path is not None
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="acd-demo-")))
        if db_path is None:
            db_path = str(tmp / "demo.db")
        store = open_store(
            db_path, mask_callers=config.store.mask_callers, group=config.store.group
        )
        stack.enter_context(store)
        window = day_window(sc.day, ZoneInfo(config.site.timezone))
        if not append and next(store.calls(*window), None) is not None:
            fail(
                f"{db_path} already holds calls of {sc.day}: the report would count them"
                " twice; give another --db, or --append to add this run to them"
            )
        config, broker = stack.enter_context(_broker(config, tmp / "mosquitto"))
        if isinstance(broker, DemoBroker):
            for line in broker.lines(Topics(config.mqtt.prefix, config.site.id)):
                click.echo(line)
        else:
            click.echo(broker)
        web = None
        if web_listen is not None:
            if not isinstance(broker, DemoBroker):
                fail("--web needs the demo's broker (mosquitto): make broker installs it")
            web = _web_site(config, broker, web_listen, db_path)
        asyncio.run(_run_day(config, sc, store, midnight(sc.day, config.site.timezone), web))
        report = store_report(store, ReportSettings.from_config(config), *window)
        click.echo(render_text(report, "hour"))
        if keep:
            click.echo(f"Call records kept in {db_path} (acd report --db {db_path}).")


def _pair_demo(config, config_path, sc, db_path, web_listen, speed_source) -> None:
    """``--ha``: `acd.cli.demo_ha`, on the demo's broker when mosquitto is there."""
    from acd.cli.demo_ha import run_pair
    from acd.runtime.store import scheme_of
    from acd.runtime.topics import Topics

    if db_path is None or scheme_of(db_path) not in ("postgresql", "postgres"):
        fail("--ha needs --db postgresql://... (the pair shares its records and lease there)")
    if config_path is not None or web_listen is not None:
        fail("--ha plays the reference site alone: give neither --config nor --web")
    if speed_source is click.core.ParameterSource.DEFAULT:
        sc = dataclasses.replace(sc, speed=60.0)
    sc = dataclasses.replace(sc, start_s=10 * 3600.0, end_s=12 * 3600.0)
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="acd-demo-ha-")))
        config, broker = stack.enter_context(_broker(config, tmp / "mosquitto"))
        if isinstance(broker, DemoBroker):
            for line in broker.lines(Topics(config.mqtt.prefix, config.site.id)):
                click.echo(line)
        else:
            click.echo(broker)
            broker = None
        linked, routed = asyncio.run(run_pair(config, sc, db_path, broker, tmp))
    click.echo(
        f"Failover: pc-b held the PBX link {linked:.2f} s after the kill of pc-a and routed"
        f" its first call {routed:.2f} s after it. Call records kept in {db_path}."
    )


def _web_site(
    config: Config, broker: DemoBroker, listen: str, db: str
) -> tuple[Config, str, dict, str]:
    """``(config, listen, env, line to print)`` of the demo's `acd web`: one supervisor
    ``demo`` with a random password, the broker's ``alice`` account, reports from ``db``."""
    from acd.core.pins import hash_pin
    from acd.webconfig import WebConfig, WebUser, parse_listen

    try:
        parse_listen(listen)
    except ValueError as exc:
        fail(f"--web {exc}")
    password = secrets.token_urlsafe(9)
    user = WebUser("demo", "supervisor", hash_pin(password))
    web = WebConfig(listen=listen, sites=(config.site.id,), users={"demo": user})
    env = {"ACD_MQTT_USERNAME": "alice", "ACD_MQTT_PASSWORD": broker.passwords["alice"]}
    line = f"web: http://{listen}/ and /wallboard: user demo, password {password}"
    store = dataclasses.replace(config.store, url=db)
    return dataclasses.replace(config, web=web, store=store), listen, env, line


async def _run_day(config, sc, store, epoch: float, web=None) -> None:
    """Serve the simulated switch on a pty from a thread and run the controller on it
    until the simulated day is over (and `acd web` beside it when ``web`` is given)."""
    from acd.runtime.clock import Clock
    from acd.runtime.controller import Controller
    from firmware_sim.runner import ServedSwitch

    web_stop = asyncio.Event()
    web_task = None
    if web is not None:
        from drivers.web import serve

        listening = asyncio.Event()
        web_task = asyncio.create_task(serve(web[0], web[1], web_stop, web[2], listening))
        ready = asyncio.create_task(listening.wait())
        await asyncio.wait((web_task, ready), return_when=asyncio.FIRST_COMPLETED)
        if web_task.done():
            web_task.result()  # could not listen: say why
        click.echo(web[3])
    switch = ServedSwitch(sc)
    link = dataclasses.replace(
        config.link, url=switch.url, t1=0.2, heartbeat=1.0, reset_interval=0.3
    )
    try:
        cfg = dataclasses.replace(config, link=link)
        clock = Clock(epoch + sc.start_s, switch.origin, sc.speed)
        controller = Controller(cfg, store=store, clock=clock)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop))
        show = is_tty()
        while switch.thread.is_alive() and not task.done():
            if show:
                _progress(controller, switch.clock.at(time.monotonic()))
            await asyncio.sleep(0.25)
        await _drain(controller)
        stop.set()
        await task
        if show:
            sys.stdout.write("\n")
    finally:
        switch.stop()
        web_stop.set()
        if web_task is not None:
            await web_task


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

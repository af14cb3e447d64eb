"""`acd run`: the controller (PBX link, engine, call records, MQTT)."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from acd.cli.common import config_option, fail
from acd.config import Config, MqttConfig
from acd.errors import ConfigError
from acd.logs import LEVELS

EPILOG = """\b
Examples:
  acd run --config /etc/acd/town-hall.toml
  acd run --config site.toml --link /dev/pts/7 --log-level debug
  acd run --config site.toml --link socket://10.0.0.5:4001 --log-json
  acd run --config site.toml --db /var/lib/acd/acd.db --log-json
  acd run --config site.toml --capture /var/log/acd/line.cap
  acd run --config site.toml --link /dev/pts/1 --sim-clock   # on acd sim's clock

\b
--capture records every byte in and out of the PBX link (JSON lines, rotated at
10 MB, 5 old files kept); read it back with `acd replay FILE`.

\b
A port that cannot be opened at start is an error (exit 1). Once running, a lost
port (cable pulled, device server down) is reopened with backoff and logged: the
controller never exits on a line fault. SIGTERM or Ctrl-C stops it cleanly;
SIGHUP re-reads the configuration file (agents, queues, skills, calendars, menus,
announcements, alarm thresholds) without dropping a call: a file that fails the check
is refused with one log line and the running configuration stays.

\b
With [ha] enabled = true (and a postgresql:// store) two `acd run` on two PCs
make a hot-standby pair: the one holding the lease opens the PBX link, the other
waits as standby and takes over (docs/operations.md, Running a pair). Two on one
machine need --instance to tell them apart:
  acd run --config pair.toml --instance pc-a
"""


def parse_extensions(text: str) -> tuple[str, ...]:
    """``"201-203,301"`` → ``("201", "202", "203", "301")`` (as ``link.extensions``)."""
    from acd.config import expand_extensions

    try:
        return expand_extensions([p for p in text.split(",") if p.strip()])
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--extensions") from None


def check_mqtt(mqtt: MqttConfig, source: str) -> None:
    """Stop at start-up (`ConfigError` naming the key) on a secret whose environment
    variable is unset, or on a TLS file that cannot be used."""
    from drivers.tls import tls_context

    for key, problem in mqtt.unset_env():
        raise ConfigError(key, problem, source)
    try:
        tls_context(mqtt)
    except ConfigError as exc:
        raise ConfigError(exc.key, exc.problem, source) from None


@click.command(epilog=EPILOG)
@config_option
@click.option("--link", "url", help="PBX port URL, overriding link.url of the config.")
@click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    help="Call-record store: a file or a URL (default: [store] url).",
)
@click.option(
    "--extensions",
    help="Handsets to snapshot when the link comes up (201-206,301-305), "
    "overriding link.extensions of the config.",
)
@click.option(
    "--capture",
    "capture_path",
    type=click.Path(dir_okay=False),
    help="Record every byte in and out of the PBX link to this file.",
)
@click.option("--no-mqtt", is_flag=True, help="Run without the MQTT broker.")
@click.option(
    "--instance",
    help="This controller's name in a pair ([ha]), overriding ha.instance (default: the"
    " host name).",
)
@click.option(
    "--log-level", type=click.Choice(LEVELS), default="info", show_default=True, help="Log level."
)
@click.option("--log-json", is_flag=True, help="Log JSON lines instead of text.")
@click.option(
    "--speed",
    type=click.FloatRange(min=0.001),
    default=1.0,
    help="Engine seconds per second (against a scaled simulated switch).",
)
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M"]),
    help="Engine local time at --origin (against a simulated switch).",
)
@click.option(
    "--origin", type=float, help="CLOCK_MONOTONIC seconds at which the engine reads --start."
)
@click.option(
    "--sim-clock",
    is_flag=True,
    help="Follow the clock (day, time, speed) of the `acd sim` serving --link, "
    "instead of this machine's.",
)
def run(
    config_path: str | None,
    url: str | None,
    db_path: str | None,
    extensions: str | None,
    capture_path: str | None,
    no_mqtt: bool,
    instance: str | None,
    log_level: str,
    log_json: bool,
    speed: float,
    start: dt.datetime | None,
    origin: float | None,
    sim_clock: bool,
) -> None:
    """Run the ACD controller against the PBX.

    Reads the site configuration (--config or ACD_CONFIG), opens the PBX link, keeps
    call records in the store ([store] url or --db) and publishes agent
    states, queue figures, call events and alarms over MQTT.
    """
    from acd.config import load_config
    from acd.files import create_private
    from acd.logs import setup_logging
    from acd.runtime.clock import Clock
    from acd.runtime.controller import Controller
    from acd.runtime.outbox import default_spool
    from acd.runtime.store import controller_lock, open_store
    from acd.tools.simclock import follow
    from drivers.capture import CaptureWriter

    if config_path is None:
        fail("no configuration: give --config FILE or set ACD_CONFIG")
    config = load_config(config_path)
    if instance is not None:
        config = _with_instance(config, instance)
    if config.mqtt.enabled and not no_mqtt:
        check_mqtt(config.mqtt, config_path)
    setup_logging(log_level, log_json)
    clock = None
    tz = ZoneInfo(config.site.timezone)
    link = url or config.link.url
    clock_set = start is not None or speed != 1.0 or origin is not None
    if sim_clock:
        if clock_set:
            fail("--sim-clock sets the clock: give it without --start, --speed or --origin")
        clock = follow(link, tz)
        # say which clock: the tour's 10:00 is not this machine's time
        now = dt.datetime.fromtimestamp(clock.at(time.monotonic()), tz).replace(tzinfo=None)
        logging.getLogger("acd.controller").info(
            "engine clock: %s at %gx (the clock of acd sim on %s)",
            now.isoformat(" ", "seconds"),
            clock.speed,
            link,
        )
    elif clock_set:
        when = start.replace(tzinfo=tz).timestamp() if start is not None else time.time()
        clock = Clock(when, time.monotonic() if origin is None else origin, speed)
    capture = None
    if capture_path is not None:
        try:  # a capture that cannot be written is an error now, not at the first byte
            Path(capture_path).parent.mkdir(parents=True, exist_ok=True)
            create_private(capture_path, config.store.group)
        except OSError as exc:
            fail(f"capture: cannot write {capture_path}: {exc.strerror}")
        engine_clock = None
        if clock is not None:  # so that a replay runs the engine on the same clock
            engine_clock = {
                "unix": time.time(),
                "engine": clock.at(time.monotonic()),
                "speed": clock.speed,
            }
        capture = CaptureWriter(
            capture_path,
            port=link,
            group=config.store.group,
            engine_clock=engine_clock,
        )
    db = db_path or config.store.url
    options = {
        "mask_callers": config.store.mask_callers,
        "group": config.store.group,
        "password_env": config.store.password_env,
    }
    handsets = None if extensions is None else parse_extensions(extensions)
    if config.ha.enabled:
        try:
            _run_pair(config, config_path, db, options, url, handsets, clock, no_mqtt, capture)
        finally:
            if capture is not None:
                capture.close()
        return
    held = contextlib.ExitStack()  # one controller per database; restore waits for it
    held.enter_context(controller_lock(db, password_env=config.store.password_env))
    store = open_store(db, **options)
    controller = Controller(
        config,
        url=url,
        store=store,
        spool=default_spool(config.store.outbox, db),
        extensions=handsets,
        clock=clock,
        mqtt=not no_mqtt,
        capture=capture,
    )

    async def main() -> None:
        stop = _stop_on_signals()
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, controller.reload, config_path)
        await controller.run(stop)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        store.close()
        held.close()
        if capture is not None:
            capture.close()


def _with_instance(config: Config, instance: str) -> Config:
    """``config`` with ``ha.instance`` set (checked as in the file)."""
    from acd.config import instance_problem

    problem = instance_problem(instance)
    if problem is not None:
        raise click.BadParameter(problem, param_hint="--instance")
    return dataclasses.replace(config, ha=dataclasses.replace(config.ha, instance=instance))


def _stop_on_signals() -> asyncio.Event:
    """An event SIGTERM and SIGINT set (in the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def _run_pair(config, config_path, db, options, url, handsets, clock, no_mqtt, capture) -> None:
    """``[ha] enabled``: this process is one of a pair (`acd.runtime.pair`): standby until it
    holds the lease, then the controller, each time on a new store session."""
    from acd.errors import AcdError
    from acd.runtime.clock import Clock
    from acd.runtime.controller import Controller
    from acd.runtime.outbox import default_spool
    from acd.runtime.pair import Pair
    from acd.runtime.store import open_store, scheme_of
    from acd.runtime.store_pg import PgLease

    if scheme_of(db) not in ("postgresql", "postgres"):
        fail(f"[ha] enabled: the store must be a postgresql:// database, not {db}")
    ha = config.ha
    name = ha.name()
    options = {**options, "idle_timeout": ha.lease_timeout, "instance": name}
    with open_store(db, **options) as store:  # the schema made or upgraded: errors now
        version = store.server_version
    if version < 140000:
        fail(
            f"[ha] enabled: the lease needs PostgreSQL 14 or later (idle_session_timeout),"
            f" the server is {version // 10000}.{version % 10000}"
        )
    log = logging.getLogger("acd.controller")
    log.info(
        "hot standby: %s, lease checked every %g s, the link closed %g s after the last"
        " confirmed check, the lease freed by the database after %g s of silence",
        name,
        ha.check_interval,
        ha.fence_after,
        ha.lease_timeout,
    )

    def new_lease() -> PgLease:
        return PgLease(db, name, ha.lease_timeout, ha.check_interval, options["password_env"])

    spool = default_spool(config.store.outbox, db)
    if not config.store.outbox:  # the two of a pair on one machine keep theirs apart
        spool = spool.with_name(f"{spool.stem}-{name}{spool.suffix}")

    def new_controller(lease, notifier) -> Controller:
        term_clock = None
        if clock is not None:  # the same time, its engine starting now
            now = time.monotonic()
            term_clock = Clock(clock.at(now), now, clock.speed)
        return Controller(
            config,
            url=url,
            store=open_store(db, **options),
            spool=spool,
            extensions=handsets,
            clock=term_clock,
            mqtt=not no_mqtt,
            capture=capture,
            notifier=notifier,
            lease=lease,
        )

    async def main() -> None:
        stop = _stop_on_signals()
        pair = Pair(config, new_lease, new_controller, clock=clock, mqtt=not no_mqtt)

        def reload() -> None:
            if pair.controller is not None:
                pair.controller.reload(config_path)
            else:
                log.info("standby: SIGHUP ignored (reload the active controller)")

        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, reload)
        await pair.run(stop)

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    except AcdError as exc:
        fail(str(exc))

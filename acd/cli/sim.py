"""`acd sim`: the simulated switch on a pseudo-terminal or a TCP port."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
import signal
import sys
import time

import click

from acd.cli.common import emit_json, fail
from acd.errors import AcdError
from acd.runtime.clock import Clock
from acd.tools.simclock import publish

EPILOG = """\b
Examples:
  acd sim --pty                                  # prints the pty path, then logs
  acd sim --tcp 5020 --speed 60                  # a day in 11 minutes, socket://host:5020
  acd sim --pty --scenario town-hall-saturday-700 --seed 7
  acd sim --pty --fault bit-errors:rate=1e-4 --fault cable:at=10:00,duration=5

\b
Live faults: SIGUSR1 pulls the cable for 5 s, SIGUSR2 reboots the switch
(kill -USR1 PID). Ctrl-C or SIGTERM stops with a summary.

\b
The simulated clock (--day, --start, --speed) is not this machine's: run the
controller with `acd run --link URL --sim-clock` to follow it.
"""


@click.command(epilog=EPILOG)
@click.option("--pty", "use_pty", is_flag=True, help="Serve on a new pseudo-terminal.")
@click.option("--tcp", "tcp_port", type=click.IntRange(0, 65535), help="Serve on this TCP port.")
@click.option("--host", default="127.0.0.1", show_default=True, help="TCP address to bind.")
@click.option(
    "--scenario",
    default="town-hall-weekday-250",
    show_default=True,
    help="Scenario file, or the name of a shipped scenario.",
)
@click.option("--speed", type=click.FloatRange(min=0.001), help="Simulated seconds per second.")
@click.option("--seed", type=int, help="Random seed (default: the scenario's).")
@click.option("--day", type=click.DateTime(["%Y-%m-%d"]), help="Day to simulate (YYYY-MM-DD).")
@click.option(
    "--start",
    "start",
    help="Simulated time of day to start at (HH:MM); after the scenario's end, the run goes"
    " on to midnight.",
)
@click.option("--duration", type=click.FloatRange(min=0.0), help="Simulated seconds to run.")
@click.option("--fault", "faults", multiple=True, help="KIND[:KEY=VALUE,...], repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Also log requests and responses.")
def sim(
    use_pty: bool,
    tcp_port: int | None,
    host: str,
    scenario: str,
    speed: float | None,
    seed: int | None,
    day: dt.datetime | None,
    start: str | None,
    duration: float | None,
    faults: tuple[str, ...],
    as_json: bool,
    verbose: bool,
) -> None:
    """Run the simulated switch (PBX trunks and agent handsets).

    With --pty the first line of standard output is the path of the serial port the
    controller should open; log lines follow.
    """
    from firmware_sim.faults import FaultSpec, parse_clock, parse_fault_option
    from firmware_sim.runner import (
        PtyTransport,
        SwitchEndpoint,
        TcpTransport,
        clock_text,
        serve,
    )
    from firmware_sim.scenario import load_scenario

    if use_pty == (tcp_port is not None):
        fail("choose one transport: --pty or --tcp PORT")
    sc = load_scenario(scenario)
    changes: dict[str, object] = {}
    if seed is not None:
        changes["seed"] = seed
    if speed is not None:
        changes["speed"] = speed
    if day is not None:
        changes["day"] = day.date()
    if start is not None:
        try:
            changes["start_s"] = parse_clock(start)
        except ValueError as exc:
            fail(f"--start: {exc}")
    sc = dataclasses.replace(sc, **changes)
    if duration is not None:
        sc = dataclasses.replace(sc, end_s=sc.start_s + duration)
    elif sc.end_s <= sc.start_s:  # --start after the scenario's end: the rest of the day
        sc = dataclasses.replace(sc, end_s=DAY)
    extra = tuple(parse_fault_option(f) for f in faults)

    # signals are caught before the path is printed: a client may signal at once
    stopping: list[str] = []
    live: list[FaultSpec] = []

    def on_signal(signum: int, frame: object) -> None:
        if signum == signal.SIGUSR1:
            live.append(FaultSpec("cable", duration=5.0))
        elif signum == signal.SIGUSR2:
            live.append(FaultSpec("reboot"))
        else:
            stopping.append(signal.Signals(signum).name)

    # put back at the end: `acd sim` may run inside another program (a test runner), whose
    # own Ctrl-C and SIGTERM handling and logging must work again afterwards
    restore = contextlib.ExitStack()
    click.get_current_context().call_on_close(restore.close)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
        restore.callback(signal.signal, sig, signal.signal(sig, on_signal))

    try:
        transport = PtyTransport() if use_pty else TcpTransport(tcp_port, host)
    except OSError as exc:
        raise AcdError(f"cannot open the transport: {exc}") from None
    origin = time.monotonic()  # the simulated clock starts: shared before the url is printed
    clock = Clock(sc.start_s, origin, sc.speed)
    shared = contextlib.ExitStack()  # for `acd run --sim-clock`
    shared.enter_context(publish(transport.url, sc.day, clock))
    click.echo(transport.url)
    sys.stdout.flush()

    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger = logging.getLogger("firmware_sim")
    restore.callback(setattr, logger, "propagate", logger.propagate)
    restore.callback(logger.setLevel, logger.level)
    restore.callback(logger.removeHandler, handler)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False

    endpoint = SwitchEndpoint(sc, clock, extra)

    def should_stop() -> bool:
        while live:
            endpoint.inject(live.pop(0), time.monotonic())
        return bool(stopping)

    logger.info(
        "%s: %s %s from %s at %gx, seed %d, serving %s",
        sc.name,
        sc.day.isoformat(),
        sc.day.strftime("%A"),
        clock_text(sc.start_s),
        sc.speed,
        sc.seed,
        transport.url,
    )
    endpoint.start(origin)
    try:
        serve(endpoint, transport, should_stop)
    finally:
        shared.close()
        transport.close()
    # a day run to its end ended at its end, however late this process got there
    ended = endpoint.clock.at(time.monotonic()) if stopping else sc.end_s
    summary = {
        "scenario": sc.name,
        "stopped_by": stopping[0] if stopping else "end of run",
        "sim_time": clock_text(ended),
        **endpoint.summary(),
    }
    if as_json:
        emit_json(summary)
    else:
        click.echo("\n".join(summary_lines(summary)))


DAY = 86_400.0  # s in a simulated day


def summary_lines(summary: dict) -> list[str]:
    """The end-of-run summary in words: the counts that are not zero, per section."""
    lines = [
        f"summary: {summary['scenario']}, {summary['stopped_by']} at {summary['sim_time']}"
        " (simulated clock)"
    ]
    for section in ("calls", "messages", "link", "faults"):
        counts = summary[section].items()
        text = ", ".join(f"{n:,} {key.replace('_', ' ')}" for key, n in counts if n)
        lines.append(f"  {section + ':':<10}{text or 'none'}")
    return lines

"""Calls while the controller is gone (issue 14): the switch's fallback over an outage.

``fallback_calls_stranded``: the reference weekday at 700 calls, run in process in
virtual time by the real bridge and engine against the simulated switch with its
``[fallback]`` on (front desk 201-206, longest-idle, after 30 s, announcement 3). The
controller is gone for 60 s at 10:00: every event of the switch is lost meanwhile; the
switch sees its link down 15 s later (three missed heartbeats of the default 5 s,
docs/cti-protocol.md §4.4), so the calls of those 15 s fall back by the unanswered
``Offered`` rule; then the controller is back (resynchronisation, §9.2 and §9.7). A
call offered during the outage is *stranded* if by 11:00 it was neither answered nor
abandoned by its caller: must be 0. Beside it: how many calls the fallback routed and
announced, and how many fallback legs the controller recorded once back.

``failover_s``: a hot-standby pair (``[ha]``, docs/operations.md, Running a pair) as
real processes on loopback: two ``acd run`` of the reference site on one PostgreSQL
database (a new one per run on 127.0.0.1:5432), the simulated switch over TCP (a serial
device server; the busy weekday from 10:00 at 60x, its fallback off), default link
timers (t1 1 s, heartbeat 5 s, RESET every 3 s) and default ``[ha]`` timers (check
0.5 s, lease_timeout 4 s). Once the standby waits, the active one is killed (SIGKILL);
the figure is the wall time from the kill to the first call the standby routes (the
first ``Delivered`` or ``Queued`` the switch produces after it), median of
``FAILOVER_RUNS``; ``failover_max_s`` the slowest. Target: 5 s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

from acd.config import load_config
from acd.core.calendar import midnight
from acd.core.commands import CallEnded
from acd.core.engine import Engine
from acd.runtime.bridge import Bridge
from firmware_sim.fallback import FallbackSettings
from firmware_sim.scenario import load_scenario
from protocols import messages as m

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "town-hall.toml"
START, OUTAGE, GONE, END = 9.5 * 3600, 10 * 3600.0, 60.0, 11 * 3600.0
NOTICED = 15.0  # s until the switch sees its link down (3 heartbeats of 5 s)
FALLBACK = FallbackSettings(
    True, 30.0, ("201", "202", "203", "204", "205", "206"), "longest-idle", 3
)


class Day:
    """Switch and controller joined by two in-order queues (no latency)."""

    def __init__(self) -> None:
        sc = load_scenario("town-hall-weekday-700")
        sc = dataclasses.replace(sc, switch=dataclasses.replace(sc.switch, fallback=FALLBACK))
        self.epoch = midnight(sc.day, "Europe/Paris")
        self.switch = sc.build_switch()
        extensions = tuple(a.extension for a in sc.agents)
        self.bridge = Bridge(Engine(load_config(CONFIG), self.epoch + START), extensions)
        self.now = START
        self.to_switch: deque[m.Message] = deque()
        self.to_controller: deque[m.Message] = deque()
        self.seen: list[tuple[float, m.Message]] = []  # every switch message, sent or lost
        self.recorded: list = []
        self.up = False
        self.switch.start(START)

    def _from_switch(self, out: list[m.Message]) -> None:
        self.seen += ((self.now, x) for x in out)
        if self.up:
            self.to_controller.extend(out)

    def _take(self, step) -> None:
        self.bridge.check_pins(step, self.epoch + self.now)
        self.recorded += [n.record for n in step.notes if isinstance(n, CallEnded)]
        self.to_switch.extend(step.requests)

    def controller(self, up: bool) -> None:
        """The controller's end of the link comes up (with the switch's) or is gone."""
        self.up = up
        if up:
            self.switch.link_changed(True, self.now)
            self._take(self.bridge.link_up(self.epoch + self.now))
        else:
            self.bridge.link_down()
            self.to_switch.clear()
            self.to_controller.clear()

    def run_until(self, until: float) -> None:
        while True:
            while self.to_switch or self.to_controller:
                if self.to_switch:
                    self._from_switch(self.switch.handle(self.to_switch.popleft(), self.now))
                else:
                    message = self.to_controller.popleft()
                    self._take(self.bridge.from_switch(message, self.epoch + self.now))
            due = [self.switch.next_deadline()]
            if self.up and (t := self.bridge.next_deadline()) is not None:
                due.append(t - self.epoch)
            nxt = min((t for t in due if t is not None), default=None)
            if nxt is None or nxt > until:
                self.now = until
                return
            self.now = max(self.now, nxt)
            self._from_switch(self.switch.advance(self.now))
            if self.up:
                self._take(self.bridge.advance(self.epoch + self.now))


FAILOVER_RUNS = 5
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"


def _wait(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > end:
            raise RuntimeError(f"failover bench: no {what} in {timeout} s")
        time.sleep(0.02)


def failover_once(directory: Path) -> float:
    """One kill of the active controller of a pair: s until the standby routes a call."""
    from acd.runtime.store_pg import scratch_database
    from firmware_sim.runner import ServedSwitch

    sc = load_scenario("town-hall-weekday-700")
    sc = dataclasses.replace(sc, start_s=10 * 3600.0, end_s=11 * 3600.0, speed=60.0)
    switch = ServedSwitch(sc, tcp=True)
    procs: list[subprocess.Popen] = []
    try:
        with scratch_database(PG_SERVER, "acd_bench_ha") as db:
            config = directory / "site.toml"
            text = CONFIG.read_text().replace('url = "town-hall.db"', f'url = "{db}"')
            config.write_text(text + "\n[ha]\nenabled = true\n")
            start = dt.datetime.combine(sc.day, dt.time()) + dt.timedelta(seconds=sc.start_s)

            def launch(name: str) -> Path:
                log = directory / f"{name}.log"
                command = [
                    *(sys.executable, "-m", "acd", "run", "--config", str(config)),
                    *("--link", switch.url, "--no-mqtt", "--instance", name),
                    *("--speed", f"{sc.speed:g}", "--start", start.isoformat()),
                    *("--origin", repr(switch.origin)),
                ]
                with open(log, "wb") as out:
                    procs.append(
                        subprocess.Popen(
                            command, stdout=subprocess.DEVNULL, stderr=out, cwd=directory
                        )
                    )
                return log

            a = launch("pc-a")
            _wait(lambda: "resynchronised" in a.read_text(), 30, "active controller")
            b = launch("pc-b")
            _wait(lambda: "the active controller is pc-a" in b.read_text(), 30, "standby")
            time.sleep(1.0)  # calls flowing through pc-a
            procs[0].kill()
            killed = time.monotonic()
            procs[0].wait(5)

            def routed() -> float | None:
                for t, x in list(switch.endpoint.produced):
                    if t > killed + 0.05 and isinstance(x, m.Delivered | m.Queued):
                        return t
                return None

            _wait(lambda: routed() is not None, 30, "call routed by the standby")
            return routed() - killed
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        switch.stop()


def failover() -> dict:
    """`failover_once` ``FAILOVER_RUNS`` times: the median and the slowest."""
    times = []
    for _ in range(FAILOVER_RUNS):
        with tempfile.TemporaryDirectory(prefix="acd-bench-ha-") as directory:
            times.append(failover_once(Path(directory)))
    return {
        "failover_s": round(statistics.median(times), 2),
        "failover_max_s": round(max(times), 2),
        "failover_runs": [round(t, 2) for t in times],
    }


def run() -> dict:
    return {**fallback(), **failover()}


def fallback() -> dict:
    day = Day()
    day.controller(True)
    day.run_until(OUTAGE)
    day.controller(False)
    day.run_until(OUTAGE + NOTICED)
    day.switch.link_changed(False, day.now)
    day.run_until(OUTAGE + GONE)
    day.controller(True)
    day.run_until(END)
    fate: dict[int, str] = {}
    for t, x in day.seen:
        if isinstance(x, m.Offered) and OUTAGE <= t < OUTAGE + GONE:
            fate.setdefault(x.call_id, "")
        elif isinstance(x, m.Established) and x.call_id in fate:
            fate[x.call_id] = fate[x.call_id] or "answered"
        elif isinstance(x, m.ConnectionCleared) and x.call_id in fate and not x.device:
            fate[x.call_id] = fate[x.call_id] or "abandoned"
    legs = [r for r in day.recorded if r.fallback]
    return {
        "fallback_outage_calls": len(fate),
        "fallback_calls_stranded": sum(1 for f in fate.values() if not f),
        "fallback_calls_routed": day.switch.stats.fallback,
        "fallback_calls_announced": day.switch.stats.fallback_announced,
        "fallback_legs_recorded": len(legs),
        "fallback_legs_answered": sum(1 for r in legs if r.answered_at is not None),
    }

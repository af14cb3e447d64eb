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
"""

from __future__ import annotations

import dataclasses
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


def run() -> dict:
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

"""Helpers for the tools' tests: a simulated session captured on the wire."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from acd.config import load_config
from acd.core.calendar import midnight
from acd.core.engine import Engine
from acd.core.events import PinChecked
from acd.core.pins import verify_pin
from acd.runtime.bridge import Bridge
from acd.runtime.clock import Clock
from drivers.capture import CaptureWriter
from firmware_sim.runner import SwitchEndpoint
from firmware_sim.scenario import load_scenario
from protocols import messages as m
from protocols.link import Link, LinkDown, LinkUp, MessageReceived, Role

ROOT = Path(__file__).resolve().parents[3]
TOWN_HALL = ROOT / "examples" / "town-hall.toml"


class QueueEverything:
    """The least a controller does: queue every offered call (callers then abandon)."""

    def link_up(self, now: float) -> list[m.Message]:
        return [m.MonitorStart(1, "")]

    def link_down(self) -> None:
        pass

    def from_switch(self, msg: m.Message, now: float) -> list[m.Message]:
        if isinstance(msg, m.Offered):
            return [m.QueueCall(msg.invoke_id, msg.call_id, "front-desk", 1)]
        return []

    def advance(self, now: float) -> list[m.Message]:
        return []

    def next_deadline(self) -> float | None:
        return None


class EngineController:
    """The real engine behind the bridge, as the live controller runs them; its PIN
    checks take ``pin_delay`` s (the controller's PIN thread), 0: answered at once."""

    def __init__(
        self, now: float, extensions: tuple[str, ...] = ("201", "202"), pin_delay: float = 0.0
    ) -> None:
        self.bridge = Bridge(Engine(load_config(TOWN_HALL), now), extensions, ack_timeout=8.0)
        self.bridge.link_down()  # until the first link up, as acd.runtime.controller does
        self.pin_delay = pin_delay
        self.checks: list[tuple[float, object]] = []  # (due, VerifyPin)

    def _requests(self, step, now: float) -> list[m.Message]:
        if self.pin_delay:
            self.checks += [(now + self.pin_delay, c) for c in step.checks]
            step.checks.clear()
        else:
            self.bridge.check_pins(step, now)
        return step.requests

    def link_up(self, now: float) -> list[m.Message]:
        return self.bridge.link_up(now).requests

    def link_down(self) -> None:
        self.bridge.link_down()

    def from_switch(self, msg: m.Message, now: float) -> list[m.Message]:
        return self._requests(self.bridge.from_switch(msg, now), now)

    def advance(self, now: float) -> list[m.Message]:
        requests = self._requests(self.bridge.advance(now), now)
        for due, check in [x for x in self.checks if x[0] <= now]:
            self.checks.remove((due, check))
            ok = verify_pin(check.pin, check.pin_hash)
            requests += self._requests(self.bridge.command(PinChecked(now, check.check, ok)), now)
        return requests

    def next_deadline(self) -> float | None:
        due = [d for d in (self.bridge.next_deadline(), *(c[0] for c in self.checks)) if d]
        return min(due, default=None)


class CapturedSession:
    """The simulated switch and a controller-side link in virtual time, every byte
    between them written to a capture file (``rx``: switch → controller). Capture and
    engine time is ``base + wire time``, ``base`` being the simulated start instant."""

    def __init__(
        self, capture: CaptureWriter, engine: bool, start_s: float, faults=(), pin_delay=0.0
    ) -> None:
        sc = load_scenario("town-hall-weekday-250")
        sc = dataclasses.replace(sc, start_s=start_s, speed=1.0)
        self.base = midnight(sc.day, "Europe/Paris") + start_s
        self.endpoint = SwitchEndpoint(sc, Clock(sc.start_s, 0.0, 1.0), faults)
        self.link = Link(Role.CONTROLLER, t1=1.0, n2=3, heartbeat=5.0)
        self.capture = capture
        self.controller = (
            EngineController(self.base, pin_delay=pin_delay) if engine else QueueEverything()
        )
        self.now = 0.0
        self.received: list[m.Message] = []
        self.sent: list[m.Message] = []
        self.endpoint.start(0.0)
        self.link.start(0.0)

    def run(self, seconds: float, max_steps: int = 2_000_000) -> None:
        end = self.now + seconds
        ep, link = self.endpoint, self.link
        for _ in range(max_steps):
            ep.handle_timer(self.now)
            link.handle_timer(self.now)
            self._send(self.controller.advance(self.base + self.now))
            for _ in range(100):
                a = link.data_to_send()
                if a:
                    self.capture("tx", a, self.base + self.now)
                    ep.receive_data(a, self.now)
                b = ep.data_to_send(self.now)
                if b:
                    self.capture("rx", b, self.base + self.now)
                    link.receive_data(b, self.now)
                self._events()
                if not a and not b:
                    break
            ours = self.controller.next_deadline()
            timers = (ep.next_deadline(), link.next_deadline(), ours and ours - self.base)
            deadlines = [d for d in timers if d is not None]
            if self.now >= end:
                return
            self.now = min(max(min(deadlines, default=end), self.now + 1e-6), end)
        raise AssertionError("virtual session did not finish")

    def _send(self, requests: list[m.Message]) -> None:
        for request in requests:
            self.sent.append(request)
            self.link.send(request, self.now)

    def _events(self) -> None:
        while (event := self.link.next_event()) is not None:
            if isinstance(event, LinkUp):
                self._send(self.controller.link_up(self.base + self.now))
            elif isinstance(event, LinkDown):
                self.controller.link_down()
            elif isinstance(event, MessageReceived):
                self.received.append(event.message)
                self._send(self.controller.from_switch(event.message, self.base + self.now))


@pytest.fixture
def captured_session(tmp_path: Path):
    """``make(seconds, engine=False, start_s=9 h, faults=(), **writer options)``: run a
    captured session; return it and the capture's path."""

    def make(
        seconds: float, engine: bool = False, start_s=9 * 3600.0, faults=(), pin_delay=0.0, **kw
    ):
        path = tmp_path / "line.cap"
        with CaptureWriter(path, **kw) as writer:
            session = CapturedSession(writer, engine, start_s, faults, pin_delay)
            session.run(seconds)
        return session, path

    return make

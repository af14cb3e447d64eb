"""Helpers for the tools' tests: a simulated session captured on the wire."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import pytest
from firmware_sim.runner import Clock, SwitchEndpoint
from firmware_sim.scenario import load_scenario

from drivers.capture import CaptureWriter
from protocols import messages as m
from protocols.link import Link, MessageReceived, Role

EPOCH = 1_795_857_600.0
"""Unix time of wire time 0 in the virtual sessions (a Monday, 08:00 UTC+1)."""

Handler = Callable[[m.Message, float], list[m.Message]]


def queue_everything(msg: m.Message, now: float) -> list[m.Message]:
    """The least a controller does: queue every offered call (callers then abandon)."""
    if isinstance(msg, m.Offered):
        return [m.QueueCall(msg.invoke_id, msg.call_id, "front-desk", 1)]
    return []


class CapturedSession:
    """The simulated switch and a controller-side link in virtual time, every byte
    between them written to a capture file (``rx``: switch → controller)."""

    def __init__(self, capture: CaptureWriter, handler: Handler, start: str = "09:00") -> None:
        sc = load_scenario("town-hall-weekday-250")
        hh, mm = map(int, start.split(":"))
        sc = dataclasses.replace(sc, start_s=hh * 3600 + mm * 60, speed=1.0)
        self.endpoint = SwitchEndpoint(sc, Clock(sc.start_s, 0.0, 1.0))
        self.link = Link(Role.CONTROLLER, t1=sc.link.t1, n2=sc.link.n2)
        self.capture = capture
        self.handler = handler
        self.now = 0.0
        self.received: list[m.Message] = []
        self.sent: list[m.Message] = []
        self.endpoint.start(0.0)
        self.link.start(0.0)

    def run(self, seconds: float, max_steps: int = 1_000_000) -> None:
        end = self.now + seconds
        ep, link = self.endpoint, self.link
        for _ in range(max_steps):
            ep.handle_timer(self.now)
            link.handle_timer(self.now)
            for _ in range(100):
                a = link.data_to_send()
                if a:
                    self.capture("tx", a, EPOCH + self.now)
                    ep.receive_data(a, self.now)
                b = ep.data_to_send(self.now)
                if b:
                    self.capture("rx", b, EPOCH + self.now)
                    link.receive_data(b, self.now)
                self._events()
                if not a and not b:
                    break
            deadlines = [d for d in (ep.next_deadline(), link.next_deadline()) if d is not None]
            if self.now >= end:
                return
            self.now = min(max(min(deadlines, default=end), self.now + 1e-6), end)
        raise AssertionError("virtual session did not finish")

    def _events(self) -> None:
        while (event := self.link.next_event()) is not None:
            if isinstance(event, MessageReceived):
                self.received.append(event.message)
                for reply in self.handler(event.message, EPOCH + self.now):
                    self.sent.append(reply)
                    self.link.send(reply, self.now)


@pytest.fixture
def captured_session(tmp_path: Path):
    """``make(seconds, handler=queue_everything)``: run a session, return it and the file."""

    def make(seconds: float, handler: Handler = queue_everything, **kw):
        path = tmp_path / "line.cap"
        with CaptureWriter(path, **kw) as writer:
            session = CapturedSession(writer, handler)
            session.run(seconds)
        return session, path

    return make

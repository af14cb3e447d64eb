"""Helpers for the simulated switch's tests: virtual and pty runs with a toy router."""

from __future__ import annotations

import dataclasses
import select
import time
from pathlib import Path

import pytest
import serial

from acd.runtime.clock import Clock
from firmware_sim.runner import (
    SwitchEndpoint,
)
from firmware_sim.scenario import Scenario, load_scenario
from protocols import messages as m
from protocols.link import Link, LinkUp, MessageReceived, Role
from protocols.testing import ToyRouter


class VirtualRun:
    """The switch endpoint and a controller-side link joined in memory, virtual time."""

    def __init__(
        self,
        scenario: Scenario,
        faults=(),
        acd: ToyRouter | None = None,
        status_every: float | None = None,
        peer_role: Role = Role.CONTROLLER,
    ) -> None:
        self.endpoint = SwitchEndpoint(scenario, Clock(scenario.start_s, 0.0, 1.0), faults)
        self.peer = Link(peer_role, t1=scenario.link.t1, n2=scenario.link.n2)
        self.acd = acd or ToyRouter()
        self.now = 0.0
        self.received: list[m.Message] = []
        self.sent: list[m.Message] = []
        self.ups = 0
        self.status_every = status_every  # s between SystemStatus requests (keep-alive)
        self._next_status = status_every
        self.endpoint.start(0.0)
        self.peer.start(0.0)

    def send(self, msg: m.Message) -> None:
        self.sent.append(msg)
        self.peer.send(msg, self.now)

    def run_until(self, wire_end: float, max_steps: int = 2_000_000) -> None:
        ep, peer = self.endpoint, self.peer
        for _ in range(max_steps):
            if self._next_status is not None and self.now >= self._next_status:
                self._next_status = self.now + self.status_every
                if peer.is_up:
                    self.send(self.acd.request(m.SystemStatus, m.SystemStatusCode.normal))
            ep.handle_timer(self.now)
            peer.handle_timer(self.now)
            for _ in range(100):
                a = peer.data_to_send()
                if a:
                    ep.receive_data(a, self.now)
                b = ep.data_to_send(self.now)
                if b:
                    peer.receive_data(b, self.now)
                self._events()
                if not a and not b:
                    break
            timers = (ep.next_deadline(), peer.next_deadline(), self._next_status)
            deadlines = [d for d in timers if d is not None]
            nxt = min(deadlines, default=wire_end)
            if self.now >= wire_end:
                return
            self.now = min(max(nxt, self.now + 1e-6), wire_end)
        raise AssertionError("virtual run did not finish")

    def _events(self) -> None:
        while (event := self.peer.next_event()) is not None:
            if isinstance(event, LinkUp):
                self.ups += 1
                for agent in self.endpoint.scenario.agents:  # who is logged in where
                    self.send(self.acd.request(m.SnapshotDevice, agent.extension))
            elif isinstance(event, MessageReceived):
                self.received.append(event.message)
                for req in self.acd.on_message(event.message):
                    self.send(req)


class SerialPeer:
    """A controller-side test peer: pyserial on the simulator's pty (or a ``socket://``
    URL) and a `protocols` link."""

    def __init__(self, url: str) -> None:
        self.port = serial.serial_for_url(url, 115200, timeout=0)
        self.link = Link(Role.CONTROLLER, t1=0.3, n2=5, heartbeat=1.0, reset_interval=0.5)
        self.link.start(time.monotonic())
        self.inbox: list[m.Message] = []
        self.received: list[m.Message] = []
        self.sent: list[m.Message] = []
        self.up = False
        self.invoke = 0

    def pump(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while True:
            now = time.monotonic()
            self.link.handle_timer(now)
            out = self.link.data_to_send()
            if out:
                self.port.write(out)
            wait = min(0.05, max(0.0, end - now))
            ready, _, _ = select.select([self.port.fileno()], [], [], wait)
            if ready:
                data = self.port.read(4096)
                self.link.receive_data(data, time.monotonic())
            while (ev := self.link.next_event()) is not None:
                if isinstance(ev, LinkUp):
                    self.up = True
                elif isinstance(ev, MessageReceived):
                    self.inbox.append(ev.message)
                    self.received.append(ev.message)
            if time.monotonic() >= end:
                return

    def wait_for(self, pred, timeout: float = 5.0) -> m.Message:
        """The first message of the inbox matching ``pred`` (removed with those before it)."""
        end = time.monotonic() + timeout
        while True:
            for i, msg in enumerate(self.inbox):
                if pred(msg):
                    del self.inbox[: i + 1]
                    return msg
            if time.monotonic() >= end:
                names = [type(x).__name__ for x in self.inbox]
                raise AssertionError(f"timed out; inbox holds {names}")
            self.pump(0.05)

    def request(self, cls: type[m.Message], *fields: object, timeout: float = 5.0) -> m.Message:
        """Send a request and return its response (PositiveAck, NegativeAck or result)."""
        self.invoke += 1
        msg = cls(self.invoke, *fields)
        self.sent.append(msg)
        self.link.send(msg, time.monotonic())
        invoke = self.invoke
        kinds = (m.PositiveAck, m.NegativeAck, m.SnapshotCallsResult, m.SnapshotDeviceResult)
        return self.wait_for(lambda x: isinstance(x, kinds) and x.invoke_id == invoke, timeout)

    def close(self) -> None:
        self.port.close()


HERE = Path(__file__).resolve().parent

SCRIPTED = """
name = "scripted"
[run]
start = "08:00"
end = "09:00"
seed = 3
[link]
t1 = 0.3
n2 = 5
heartbeat = 1.0
reset_interval = 0.5
[switch]
trunks = 2
service_numbers = ["3000"]
extensions = ["299"]
[traffic]
[callers]
patience = { kind = "fixed", value = 600 }
[behaviours.quick]
answer_delay = { kind = "fixed", value = 0.3 }
handling = { kind = "fixed", value = 0.8 }
wrap_up = { kind = "fixed", value = 0.3 }
[behaviours.long]
answer_delay = { kind = "fixed", value = 0.3 }
handling = { kind = "fixed", value = 600 }
wrap_up = { kind = "fixed", value = 0.3 }
[shifts.all-day]
start = "07:00"
end = "20:00"
[[agents]]
id = "1001"
extension = "201"
pin = "1111"
behaviour = "quick"
shift = "all-day"
[[agents]]
id = "1002"
extension = "202"
pin = "2222"
behaviour = "long"
shift = "all-day"
[[agents]]
id = "2001"
extension = "301"
pin = "9001"
behaviour = "long"
shift = "all-day"
"""


def write_scenario(tmp_path: Path, text: str, name: str = "test.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def scripted(tmp_path: Path):
    """The scripted scenario, with extra ``[[calls]]`` appended by the test."""

    def make(calls: str = "", speed: float = 1.0) -> Scenario:
        sc = load_scenario(write_scenario(tmp_path, SCRIPTED + calls))
        return dataclasses.replace(sc, speed=speed)

    return make


@pytest.fixture
def serial_peer():
    peers: list[SerialPeer] = []

    def open_peer(url: str) -> SerialPeer:
        peer = SerialPeer(url)
        peers.append(peer)
        return peer

    yield open_peer
    for peer in peers:
        peer.close()


@pytest.fixture
def virtual_run():
    return VirtualRun


@pytest.fixture
def mini_acd():
    return ToyRouter

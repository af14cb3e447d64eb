"""PBX drivers: the registry, `[link] protocol`, and a second driver run by the controller.

The toy protocol here is plain text lines (``OFFER 5 0611 3000``); it is registered
from the test and a real `Controller` routes a call with it over a real pty, without
a line of the controller knowing it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import select
import time
import tty
from collections import deque
from dataclasses import fields
from pathlib import Path

import pytest

from acd.config import Config, read_toml
from acd.core import commands as cmd
from acd.core import events as ev
from acd.core.calendar import midnight
from acd.core.call_steps import CallStep, CallSteps, StepKind
from acd.core.pins import Pin
from acd.errors import ConfigError
from acd.runtime import pbx
from acd.runtime.clock import Clock
from acd.runtime.controller import Controller
from protocols.link import LinkUp, MessageReceived

ROOT = Path(__file__).resolve().parents[3]
TUESDAY_9 = midnight(dt.date(2026, 3, 10), "Europe/Paris") + 9 * 3600.0  # open


class LineLink:
    """Text lines over the port; up once the switch says ``HELLO`` back."""

    def __init__(self) -> None:
        self._in = b""
        self._out = bytearray()
        self._events: deque = deque()

    def start(self, now: float) -> None:
        self._out += b"HELLO\n"

    def receive_data(self, data: bytes, now: float) -> None:
        *lines, self._in = (self._in + data).split(b"\n")
        for line in lines:
            words = tuple(line.decode().split())
            if words == ("HELLO",):
                self._events.append(LinkUp())
            elif words:
                self._events.append(MessageReceived(words, line))

    def send(self, request: str, now: float) -> None:
        self._out += request.encode() + b"\n"

    def data_to_send(self) -> bytes:
        data = bytes(self._out)
        self._out.clear()
        return data

    def next_event(self):
        return self._events.popleft() if self._events else None

    def next_deadline(self) -> None:
        return None

    def handle_timer(self, now: float) -> None:
        pass


class LineSession:
    """Lines to engine events; every engine command a line (``RouteCall 5 201``)."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.steps = CallSteps()

    def _apply(self, outputs, now: float, event=None) -> pbx.Step:
        step = pbx.Step()
        for out in self.steps.after(event, outputs, now):
            if isinstance(out, cmd.Command):
                values = (str(getattr(out, f.name)) for f in fields(out))
                step.requests.append(" ".join((type(out).__name__, *values)))
            elif type(out) is cmd.VerifyPin:
                step.checks.append(out)
            else:
                step.notes.append(out)
        return step

    def _handle(self, event: ev.Event) -> pbx.Step:
        return self._apply(self.engine.handle(event), event.at, event)

    def from_switch(self, words: tuple[str, ...], now: float) -> pbx.Step:
        kind, *a = words
        events = {
            "LOGIN": lambda: ev.Login(now, a[0], a[1], Pin(a[2])),
            "OFFER": lambda: ev.CallOffered(now, int(a[0]), a[2], a[1]),
            "ANSWER": lambda: ev.Answered(now, int(a[0]), a[1]),
            "CLEAR": lambda: ev.Cleared(now, int(a[0]), ""),
        }
        return self._handle(events[kind]())

    def link_up(self, now: float) -> pbx.Step:
        return pbx.Step()

    def link_down(self) -> None:
        pass

    def invalid(self, payload: bytes, error: str) -> pbx.Step:
        return pbx.Step()

    def command(self, event: ev.Event) -> pbx.Step:
        return self._handle(event)

    def advance(self, now: float) -> pbx.Step:
        return self._apply(self.engine.advance(now), now)

    def next_deadline(self) -> float | None:
        return self.engine.next_deadline()

    def restore(self, sessions, now: float) -> pbx.Step:
        return self._apply(self.engine.import_sessions(now, sessions), now)

    def reload(self, config, now: float) -> pbx.Step:
        return self._apply(self.engine.reload(config, now), now)


class LineDriver(pbx.PbxDriver):
    def link(self, cfg):
        return LineLink()

    def session(self, engine, cfg, extensions, speed):
        return LineSession(engine)


@pytest.fixture
def lines():
    pbx.register("toy-lines", LineDriver)
    yield "toy-lines"
    pbx.unregister("toy-lines")


def _config(**link) -> Config:
    data = read_toml(ROOT / "examples" / "town-hall.toml")
    data["link"] = {**data.get("link", {}), **link}
    return Config.from_dict(data, "site.toml")


def test_the_cti_protocol_is_the_default_and_an_unknown_one_names_the_key_and_the_known(lines):
    assert _config().link.protocol == "acd-cti" == pbx.DEFAULT
    assert {"acd-cti", "toy-lines"} <= set(pbx.known())
    with pytest.raises(ConfigError, match=r"link\.protocol.*acd-cti, toy-lines.*'csta3'"):
        _config(protocol="csta3")
    from acd.runtime.bridge import CtiDriver

    assert isinstance(pbx.driver("acd-cti"), CtiDriver)


class ToySwitch:
    """The switch's end of the pty: reads the controller's lines, writes its own."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.lines: list[str] = []
        self._buffer = b""

    def say(self, line: str) -> None:
        os.write(self.fd, line.encode() + b"\n")

    def expect(self, prefix: str, timeout: float = 10.0) -> str:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for line in self.lines:
                if line.startswith(prefix):
                    return line
            ready, _, _ = select.select([self.fd], [], [], 0.05)
            if ready:
                *got, self._buffer = (self._buffer + os.read(self.fd, 4096)).split(b"\n")
                self.lines += [g.decode() for g in got]
        raise AssertionError(f"no {prefix!r} line from the controller; got {self.lines}")


def test_a_second_driver_registered_from_outside_routes_a_call_through_the_controller(lines):
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    switch = ToySwitch(master)
    notes: list = []
    try:
        controller = Controller(
            _config(protocol=lines),
            url=os.ttyname(slave),
            mqtt=False,
            clock=Clock(TUESDAY_9, time.monotonic()),
        )
        report = controller._report
        controller._report = lambda n, stored: (notes.extend(n), report(n, stored))

        def play() -> None:
            switch.expect("HELLO")
            switch.say("HELLO")
            switch.say("LOGIN 201 1001 1111")
            switch.expect("Lamp 201 ready on")
            switch.say("OFFER 5 0611 3000")
            switch.expect("RouteCall 5 201")
            switch.say("ANSWER 5 201")
            switch.say("CLEAR 5")

        async def main() -> None:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            run = asyncio.ensure_future(controller.run(stop))
            try:
                await loop.run_in_executor(None, play)
                for _ in range(100):
                    if any(getattr(n, "event", None) == StepKind.ANSWERED for n in notes):
                        break
                    await asyncio.sleep(0.02)
            finally:
                stop.set()
                await run

        asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    assert controller.link_is_up and controller.counters["messages_in"] == 4
    assert "QueueCall 5 front-desk 1" in switch.lines
    steps = [(n.event, n.call_id, n.caller, n.device) for n in notes if type(n) is CallStep]
    assert steps == [
        (StepKind.OFFERED, 5, "0611", None),
        (StepKind.QUEUED, 5, "0611", None),
        (StepKind.RINGING, 5, "0611", "201"),
        (StepKind.ANSWERED, 5, "0611", "201"),
    ]


def test_an_installed_driver_is_found_by_its_entry_point(monkeypatch):
    from importlib.metadata import EntryPoint

    ep = EntryPoint("toy-lines", f"{__name__}:LineDriver", pbx.ENTRY_POINTS)

    def entry_points(group, name=None):
        return [e for e in (ep,) if e.group == group and name in (None, e.name)]

    monkeypatch.setattr(pbx, "entry_points", entry_points)
    assert "toy-lines" in pbx.known()
    assert type(pbx.driver("toy-lines")).__name__ == "LineDriver"
    with pytest.raises(ConfigError, match=r"link\.protocol: must be one of acd-cti, toy-lines"):
        pbx.driver("nope")

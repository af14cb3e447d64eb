"""Runs the simulated switch on a wire: link layer, faults, transports and clocks.

`SwitchEndpoint` is the switch's end of the wire, still sans-I/O: bytes and wire time
in, bytes out. It joins a `Switch` (simulated time) to a `protocols.link.Link` (wire
time) through an `acd.runtime.clock.Clock`, applies the faults, and, like a real PBX, keeps
sending RESET every few seconds until the controller answers (its link has the
bringing-up role).
Events the switch produces while the link is down are discarded and counted, as a real
PBX does; the controller resynchronises with snapshots.

The transports do the I/O: `PtyTransport` (``os.openpty`` in raw mode),
`TcpTransport` (one client at a time, as a serial device server; ``socket://host:port``),
each with the ``url`` the controller opens with pyserial, and `serve`, the selector
loop that drives an endpoint over either in real or scaled time; `ServedSwitch` runs
`serve` in a background thread (the demo, the tests). In-process runs drive an endpoint
directly with virtual time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import selectors
import socket
import threading
import time
import tty
from collections.abc import Callable
from dataclasses import asdict

from acd.runtime.clock import Clock
from firmware_sim.faults import FaultInjector, FaultSpec, clock_text
from firmware_sim.scenario import Scenario
from protocols.link import BadMessage, Link, LinkDown, LinkUp, MessageReceived, Role
from protocols.messages import (
    Message,
    NegativeAck,
    PositiveAck,
    SnapshotCallsResult,
    SnapshotDeviceResult,
    message_name,
    refusal,
    shown_fields,
)

log = logging.getLogger("firmware_sim")

REBOOT_SECONDS = 2.0
"""Wire seconds a rebooting switch stays silent before it calls for a link again."""


class SwitchEndpoint:
    """Switch + link + faults: feed it bytes and wire time, write out what it returns."""

    def __init__(
        self,
        scenario: Scenario,
        clock: Clock,
        faults: tuple[FaultSpec, ...] = (),
    ) -> None:
        self.scenario = scenario
        self.clock = clock
        self.switch = scenario.build_switch()
        self.faults = FaultInjector(random.Random(f"faults:{scenario.seed}"))
        self._scheduled = sorted(
            scenario.faults + faults, key=lambda f: -1.0 if f.at is None else f.at
        )
        self._silent_until = -float("inf")
        self.link = self._new_link()
        self.received: list[Message] = []  # every application message from the controller
        self.sent: list[Message] = []  # every application message handed to the link
        self.discarded = 0  # switch events dropped while the link was down
        self.produced: list[tuple[float, Message]] = []  # (wire time, message): sent or not
        self.link_ups = 0
        self.link_downs = 0
        self._old_link_stats: list[dict[str, int]] = []

    @property
    def reboots(self) -> int:
        return self.faults.stats.reboots

    def _new_link(self) -> Link:
        s = self.scenario.link
        return Link(Role.CONTROLLER, s.window, s.t1, s.n2, s.heartbeat, s.reset_interval)

    # --- driving --------------------------------------------------------------------

    def start(self, now: float) -> None:
        """Plan the simulated day and start calling for the link."""
        self.switch.start(self.clock.at(now))
        self.link.start(now)
        self.handle_timer(now)

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the controller at wire time ``now``."""
        if now < self._silent_until:
            return
        data = self.faults.incoming(data, now)
        if data:
            self.link.receive_data(data, now)
            self._pump(now)

    def data_to_send(self, now: float) -> bytes:
        """Bytes to write to the controller now."""
        if now < self._silent_until:
            return b""
        return self.faults.outgoing(self.link.data_to_send(), now)

    def next_deadline(self) -> float | None:
        """Wire time at which `handle_timer` has work (link, switch, faults)."""
        times = [self.link.next_deadline(), self.faults.next_deadline()]
        sim_next = self.switch.next_deadline()
        if sim_next is not None:
            times.append(self.clock.when(sim_next))
        if self._scheduled and self._scheduled[0].at is not None:
            times.append(self.clock.when(self._scheduled[0].at))
        if self._silent_until > -float("inf"):
            times.append(self._silent_until)
        due = [t for t in times if t is not None]
        return min(due) if due else None

    def handle_timer(self, now: float) -> None:
        """Run what is due at wire time ``now``: faults, people and traffic, the link."""
        sim_now = self.clock.at(now)
        while self._scheduled and (self._scheduled[0].at or -1.0) <= sim_now:
            self.inject(self._scheduled.pop(0), now)
        if self._silent_until <= now and self._silent_until > -float("inf"):
            self._silent_until = -float("inf")
            self.link.start(now)
        self._send(self.switch.advance(sim_now), now)
        self.link.handle_timer(now)
        self.faults.handle_timer(now)
        self._pump(now)

    def inject(self, spec: FaultSpec, now: float) -> None:
        """Start a fault now (scheduled by the scenario or triggered live)."""
        log.info("%s fault %s started %s", self._stamp(now), spec.kind, spec.describe())
        if spec.kind != "reboot":
            self.faults.activate(spec, now)
            return
        self.faults.stats.reboots += 1
        self.switch.reboot()
        self.switch.link_changed(False, self.clock.at(now))
        self._old_link_stats.append(asdict(self.link.stats))
        self.link = self._new_link()
        self._silent_until = now + (REBOOT_SECONDS if spec.duration is None else spec.duration)

    def finished(self, now: float) -> bool:
        """True once the simulated clock has reached the scenario's end."""
        return self.clock.at(now) >= self.scenario.end_s

    # --- messages -------------------------------------------------------------------

    def _send(self, messages: list[Message], now: float) -> None:
        self.produced += ((now, m) for m in messages)
        if not self.link.is_up:
            self.discarded += len(messages)
            for m in messages:
                log.info("%s -x %s (link down: not sent)", self._stamp(now), _brief(m))
            return
        for m in messages:
            level = logging.DEBUG if isinstance(m, _RESPONSES) else logging.INFO
            if log.isEnabledFor(level):
                log.log(level, "%s -> %s", self._stamp(now), _brief(m))
            self.sent.append(m)
            self.link.send(m, now)

    def _pump(self, now: float) -> None:
        while (event := self.link.next_event()) is not None:
            if isinstance(event, MessageReceived):
                if log.isEnabledFor(logging.DEBUG):
                    log.debug("%s <- %s", self._stamp(now), _brief(event.message))
                self.received.append(event.message)
                self._send(self.switch.handle(event.message, self.clock.at(now)), now)
            elif isinstance(event, BadMessage):
                log.warning("bad message from the controller: %s", event.error)
                nak = refusal(event.payload, event.error)
                if nak is not None:  # a request: answered, as every request is
                    self.switch.stats.rejected += 1
                    self._send([nak], now)
            elif isinstance(event, LinkUp):
                self.link_ups += 1
                log.info("%s link up", self._stamp(now))
                self.switch.link_changed(True, self.clock.at(now))
            elif isinstance(event, LinkDown):
                self.link_downs += 1
                log.info("%s link down: %s", self._stamp(now), event.reason)
                self.switch.link_changed(False, self.clock.at(now))

    def _stamp(self, now: float) -> str:
        return clock_text(self.clock.at(now))

    def summary(self) -> dict[str, object]:
        """Counts of calls, messages, link and faults, for the end-of-run summary."""
        link = {k: 0 for k in asdict(self.link.stats)}
        for stats in [*self._old_link_stats, asdict(self.link.stats)]:
            for k, v in stats.items():
                link[k] += v
        return {
            "calls": asdict(self.switch.stats),
            "messages": {
                "received": len(self.received),
                "sent": len(self.sent),
                "discarded_link_down": self.discarded,
            },
            "link": {"ups": self.link_ups, "downs": self.link_downs, **link},
            "faults": asdict(self.faults.stats),
        }


_RESPONSES = (PositiveAck, NegativeAck, SnapshotCallsResult, SnapshotDeviceResult)


def _brief(message: Message) -> str:
    fields = shown_fields(message)  # no PIN in a log line
    return f"{message_name(message)} " + " ".join(f"{k}={v}" for k, v in fields.items())


class PtyTransport:
    """A pseudo-terminal pair in raw mode; the controller opens ``path``."""

    def __init__(self) -> None:
        self.master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self.master)
        os.set_blocking(self.master, False)
        self.path = os.ttyname(self._slave)
        self.url = self.path  # what the controller opens (pyserial)
        self.overflow = 0  # bytes lost because nobody read the slave side

    def fds(self) -> list[int]:
        return [self.master]

    def on_readable(self, fd: int) -> bytes:
        try:
            return os.read(self.master, 4096)
        except (BlockingIOError, OSError):
            return b""

    def write(self, data: bytes) -> None:
        try:
            written = os.write(self.master, data)
        except BlockingIOError:
            written = 0
        self.overflow += len(data) - written

    def close(self) -> None:
        for fd in (self.master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)


class TcpTransport:
    """A TCP server for one client at a time, like a serial device server."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.server = socket.create_server((host, port))
        self.server.setblocking(False)
        self.port = self.server.getsockname()[1]
        self.url = f"socket://{host}:{self.port}"  # what the controller opens (pyserial)
        self.client: socket.socket | None = None

    def fds(self) -> list[int]:
        fds = [self.server.fileno()]
        if self.client is not None:
            fds.append(self.client.fileno())
        return fds

    def on_readable(self, fd: int) -> bytes:
        if fd == self.server.fileno():
            conn, peer = self.server.accept()
            if self.client is not None:
                conn.close()  # the port is in use: one client at a time
                return b""
            conn.setblocking(False)
            self.client = conn
            log.info("client connected from %s:%s", *peer[:2])
            return b""
        try:
            data = self.client.recv(4096) if self.client else b""
        except (BlockingIOError, InterruptedError):
            return b""
        except OSError:
            data = b""
        if not data:
            log.info("client disconnected")
            self._drop_client()
        return data

    def write(self, data: bytes) -> None:
        if self.client is None or not data:
            return
        try:
            self.client.sendall(data)
        except OSError:
            self._drop_client()

    def _drop_client(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def close(self) -> None:
        self._drop_client()
        self.server.close()


Transport = PtyTransport | TcpTransport


def serve(
    endpoint: SwitchEndpoint,
    transport: Transport,
    should_stop: Callable[[], bool],
    now: Callable[[], float] = time.monotonic,
    max_sleep: float = 0.2,
) -> None:
    """Drive ``endpoint`` over ``transport`` in real (or scaled) time until told to stop
    or the simulated day ends. The endpoint must have been started at ``now()``.
    Everything due before the day's end is run, even if this thread was not scheduled
    for a while (a loaded machine, a very high speed): the last turn runs at the end."""
    sel = selectors.DefaultSelector()
    registered: set[int] = set()
    end = endpoint.clock.when(endpoint.scenario.end_s)
    try:
        while not should_stop():
            fds = set(transport.fds())
            for fd in registered - fds:
                sel.unregister(fd)
            for fd in fds - registered:
                sel.register(fd, selectors.EVENT_READ)
            registered = fds
            t = min(now(), end)
            endpoint.handle_timer(t)
            transport.write(endpoint.data_to_send(t))
            if t >= end:
                break
            deadline = endpoint.next_deadline()
            timeout = max_sleep if deadline is None else min(max(deadline - t, 0.0), max_sleep)
            for key, _ in sel.select(timeout):
                data = transport.on_readable(key.fd)
                if data:
                    t = min(now(), end)
                    endpoint.receive_data(data, t)
                    transport.write(endpoint.data_to_send(t))
    finally:
        sel.close()


class ServedSwitch:
    """A scenario's switch served on a fresh pty (or TCP port) from a background thread,
    in scaled wall time from now, until its day ends or `stop`."""

    def __init__(self, scenario: Scenario, faults: tuple[FaultSpec, ...] = (), tcp: bool = False):
        self.transport: Transport = TcpTransport(0) if tcp else PtyTransport()
        self.url = self.transport.url
        self.origin = time.monotonic()
        self.endpoint = SwitchEndpoint(
            scenario, Clock(scenario.start_s, self.origin, scenario.speed), faults
        )
        self.endpoint.start(self.origin)
        self._halt = threading.Event()
        self.thread = threading.Thread(
            target=serve, args=(self.endpoint, self.transport, self._halt.is_set), daemon=True
        )
        self.thread.start()

    @property
    def clock(self) -> Clock:
        return self.endpoint.clock

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop serving and close the transport; True if the thread ended in time."""
        self._halt.set()
        self.thread.join(timeout)
        self.transport.close()
        return not self.thread.is_alive()

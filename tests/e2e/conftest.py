"""End-to-end helpers: the simulated switch in a thread on a real pty or TCP port, the
reference site's configuration pointed at it, retained MQTT reads, a TCP proxy, an
RFC 2217 serial device server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import aiomqtt
import pytest
import serial
import serial.rfc2217

from acd.config import Config, load_config
from acd.core.calendar import midnight
from acd.runtime.clock import Clock
from firmware_sim.runner import ServedSwitch
from firmware_sim.scenario import Scenario, load_scenario
from firmware_sim.traffic import DAY_NAMES, DayPlan, Profile, WeeklyTraffic
from protocols import messages as m

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "examples" / "town-hall.toml"
DAY = dt.date(2026, 3, 10)  # a Tuesday
EPOCH = midnight(DAY, "Europe/Paris")
BROKER = ("127.0.0.1", 1883)


def broker_up() -> bool:
    with contextlib.suppress(OSError), socket.create_connection(BROKER, timeout=0.5):
        return True
    return False


@pytest.fixture
def broker() -> tuple[str, int]:
    """The Mosquitto of the development machines (the test is skipped without it)."""
    if not broker_up():
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    return BROKER


def hour_scenario(
    volume: int,
    start: str = "08:55",
    end: str = "10:40",
    speed: float = 300.0,
    seed: int = 5,
    faults=(),
) -> Scenario:
    """The reference weekday with all its traffic (``volume`` calls) between 09:00 and
    10:00, run from ``start`` to ``end`` (every call is over by then)."""
    sc = load_scenario("town-hall-weekday-250")
    plan = DayPlan(float(volume), Profile(9 * 3600.0, (100.0,)))
    traffic = WeeklyTraffic({d: plan for d in DAY_NAMES[:5]}, public_holidays=False)
    hh, mm = (int(x) for x in start.split(":"))
    eh, em = (int(x) for x in end.split(":"))
    link = dataclasses.replace(sc.link, t1=0.2, heartbeat=1.0, reset_interval=0.3)
    return dataclasses.replace(
        sc,
        day=DAY,
        start_s=hh * 3600.0 + mm * 60,
        end_s=eh * 3600.0 + em * 60,
        seed=seed,
        speed=speed,
        traffic=traffic,
        link=link,
        faults=tuple(faults),
    )


@pytest.fixture
def sim_class() -> type[ServedSwitch]:
    """`sim_thread` serves `SimThread`s here."""
    return SimThread


class SimThread(ServedSwitch):
    """The simulated switch served from a background thread, with the controller's side
    of its clock."""

    def engine_clock(self) -> Clock:
        """The controller's clock, aligned with the simulated one."""
        return Clock(EPOCH + self.clock.start, self.origin, self.clock.speed)

    def run_command(self, config: Path, db: Path, *options: str) -> list[str]:
        """`acd run` on this switch without MQTT, its clock aligned with the simulated one."""
        start = dt.datetime.combine(DAY, dt.time()) + dt.timedelta(seconds=self.clock.start)
        return [
            *(sys.executable, "-m", "acd", "run", "--config", str(config), "--link", self.url),
            *("--db", str(db), "--no-mqtt", "--speed", f"{self.clock.speed:g}"),
            *("--start", start.isoformat(), "--origin", repr(self.origin), *options),
        ]


def calls_over(sim: SimThread, traffic_end: float = 10 * 3600.0) -> bool:
    """Whether every call of the run has ended: the run is over, or its traffic is
    (``traffic_end``, switch time: `hour_scenario`'s 10:00 by default) and the switch
    holds no call. A test need not wait for the rest of the simulated day."""
    if not sim.thread.is_alive():
        return True
    return sim.clock.at(time.monotonic()) >= traffic_end and not sim.endpoint.switch.active_calls


def offered_ids(sim: SimThread) -> set[int]:
    """The calls the simulated switch told a controller of so far: offered while the
    link was up, or in progress in a snapshot it answered (a call offered before a
    controller came up is taken over at link-up: docs/cti-protocol.md 9.2)."""
    ids = set()
    for x in list(sim.endpoint.sent):
        if isinstance(x, m.Offered):
            ids.add(x.call_id)
        elif isinstance(x, m.SnapshotCallsResult | m.SnapshotDeviceResult):
            ids.update(c.call_id for c in x.calls)
    return ids


def site_config(tmp_path: Path, url: str, broker_port: int = 1883) -> Config:
    """The reference site on ``url``, its own MQTT prefix and database."""
    cfg = load_config(CONFIG)
    link = dataclasses.replace(
        cfg.link, url=url, t1=0.2, n2=5, heartbeat=1.0, reset_interval=0.3, reconnect_max=0.5
    )
    mqtt = dataclasses.replace(
        cfg.mqtt, port=broker_port, prefix=f"test-{uuid.uuid4().hex[:8]}", stats_interval=0.2
    )
    store = dataclasses.replace(cfg.store, url=str(tmp_path / "acd.db"))
    return dataclasses.replace(cfg, link=link, mqtt=mqtt, store=store)


async def retained(
    config: Config, topic_filter: str, quiet: float = 0.7, limit: float = 10.0
) -> dict[str, bytes]:
    """The retained messages under ``<prefix>/<site>/<topic_filter>``: read until the
    broker has been quiet for ``quiet`` s (at most ``limit`` s in all, on a busy machine)."""
    out: dict[str, bytes] = {}
    base = f"{config.mqtt.prefix}/{config.site.id}/"
    mqtt = config.mqtt  # the controller's broker and account: it may read its own tree
    async with aiomqtt.Client(
        mqtt.host, mqtt.port, username=mqtt.username, password=mqtt.password,
        identifier=f"t-{uuid.uuid4().hex[:8]}",
    ) as client:  # fmt: skip
        await client.subscribe(base + topic_filter, qos=1)
        messages = aiter(client.messages)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(limit):
                while True:
                    try:
                        message = await asyncio.wait_for(anext(messages), quiet)
                    except TimeoutError:
                        break
                    if message.payload:
                        out[str(message.topic)[len(base) :]] = bytes(message.payload)
                    else:  # cleared meanwhile
                        out.pop(str(message.topic)[len(base) :], None)
    return out


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGTERM ``proc`` and return its exit code; killed (and the test failed) if it
    has not exited within ``timeout`` s, so that no process outlives the test."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        raise AssertionError(f"process {proc.pid} ignored SIGTERM for {timeout} s") from None


async def wait_until(predicate, timeout: float, what: str = "", step: float = 0.05) -> None:
    """Poll ``predicate`` in the running loop until true; fail after ``timeout`` s
    saying ``what`` was awaited."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        await asyncio.sleep(step)


def engine_agents(controller) -> dict[str, tuple[str, str, str | None]]:
    """Agent id → (status, state, device) as the engine has them, in wire spelling."""
    return {
        a.agent_id: (str(a.status).replace("-", "_"), str(a.state).replace("-", "_"), a.device)
        for a in controller.engine.agent_states()
    }


async def settled_agents(config: Config, controller, timeout: float = 15.0) -> dict[str, dict]:
    """The retained agent states once they equal the engine's and the engine did not
    change while they were read (calls may still be ending: retried until ``timeout``)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while True:
        before = engine_agents(controller)
        states = await retained(config, "agent/+/state")
        payloads = {t.split("/")[1]: json.loads(v) for t, v in states.items()}
        published = {a: (p["status"], p["state"], p["device"]) for a, p in payloads.items()}
        if before == published == engine_agents(controller):
            return payloads
        if loop.time() > end:
            raise AssertionError(
                f"retained agent states never settled to the engine's in {timeout} s:"
                f" published {published}, engine {engine_agents(controller)}"
            )


class _PtyLine(serial.Serial):
    """A pty as a device server's serial port: a pty has no modem lines, so they read as
    a cable's with the far end on (CTS, DSR, CD up) and setting DTR or RTS does nothing."""

    cts = dsr = cd = True
    ri = False

    def _update_dtr_state(self) -> None:
        pass

    def _update_rts_state(self) -> None:
        pass


class Rfc2217Server:
    """A real RFC 2217 serial device server in a thread, in front of the pty ``device``
    (e.g. the simulated switch's): pyserial's `serial.rfc2217.PortManager` between one
    TCP client at a time and the port, as pyserial's rfc2217_server example."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.url = f"rfc2217://127.0.0.1:{self.server.getsockname()[1]}"
        self.sessions = 0
        self._halt = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self._halt.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            self.sessions += 1
            with conn, _PtyLine(self.device, timeout=0.05) as port:
                self._session(conn, port)

    def _session(self, conn: socket.socket, port: serial.SerialBase) -> None:
        lock = threading.Lock()

        def send(data: bytes) -> None:
            with lock:
                conn.sendall(data)

        manager = serial.rfc2217.PortManager(port, SimpleNamespace(write=send))
        ended = threading.Event()

        def to_client() -> None:
            with contextlib.suppress(OSError, serial.SerialException):
                while not ended.is_set():
                    if data := port.read(port.in_waiting or 1):
                        send(b"".join(manager.escape(data)))

        pump = threading.Thread(target=to_client, daemon=True)
        pump.start()
        conn.settimeout(0.1)
        with contextlib.suppress(OSError, serial.SerialException):
            while not self._halt.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    continue
                if not data:
                    break
                port.write(b"".join(manager.filter(data)))
        ended.set()
        pump.join(5)

    def stop(self) -> None:
        self._halt.set()
        self.thread.join(5)
        self.server.close()


@pytest.fixture
def rfc2217_server():
    """``start(device)``: an `Rfc2217Server` in front of ``device``, stopped after the test."""
    started: list[Rfc2217Server] = []

    def start(device: str) -> Rfc2217Server:
        started.append(Rfc2217Server(device))
        return started[-1]

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """The helpers of this module, for the tests (a conftest is not importable)."""
    return SimpleNamespace(
        SimThread=SimThread,
        EPOCH=EPOCH,
        DAY=DAY,
        CONFIG=CONFIG,
        hour_scenario=hour_scenario,
        calls_over=calls_over,
        offered_ids=offered_ids,
        site_config=site_config,
        retained=retained,
        wait_until=wait_until,
        settled_agents=settled_agents,
        stop_process=stop_process,
    )

"""Controller parts: the engine clock, extension lists, log lines, a silent line."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
import tty
from pathlib import Path

import click
import pytest

from acd.cli.run import parse_extensions
from acd.config import load_config
from acd.logs import JsonFormatter
from acd.runtime.clock import Clock
from acd.runtime.controller import Controller
from acd.runtime.topics import LINK_DOWN_ALARM, STORE_DOWN_ALARM

ROOT = Path(__file__).resolve().parents[3]


def test_engine_clock_runs_speed_times_faster_and_maps_back():
    clock = Clock(start=1_773_129_600.0, origin=100.0, speed=60.0)
    assert clock.at(100.0) == 1_773_129_600.0
    assert clock.at(101.5) == 1_773_129_690.0
    assert clock.when(clock.at(123.25)) == pytest.approx(123.25)


def test_extensions_ranges_keep_leading_zeros_and_reject_nonsense():
    assert parse_extensions("201-203, 301,0098-0100") == (
        "201",
        "202",
        "203",
        "301",
        "0098",
        "0099",
        "0100",
    )
    assert parse_extensions("") == ()
    for bad in ("205-201", "2a-3b", "20-301"):
        with pytest.raises(click.BadParameter, match="not EXT or FIRST-LAST"):
            parse_extensions(bad)


def test_json_log_lines_carry_the_event_fields():
    record = logging.LogRecord("acd.controller", logging.INFO, "", 0, "call %d ended", (5,), None)
    record.call_id = 5
    record.outcome = "answered"
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "call 5 ended" and line["level"] == "info"
    assert (line["call_id"], line["outcome"], line["logger"]) == (
        5,
        "answered",
        "acd.controller",
    )


def _config(**sections):
    from acd.config import Config, read_toml

    data = read_toml(ROOT / "examples" / "town-hall.toml")
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Config.from_dict(data, "site.toml")


def test_link_extensions_expand_ranges_and_bad_ones_name_the_key():
    from acd.errors import ConfigError

    config = _config(link={"extensions": ["201-203", "0098-0099", " 305 "]})
    assert config.link.extensions == ("201", "202", "203", "0098", "0099", "305")
    assert _config().link.extensions == tuple(map(str, [*range(201, 207), *range(301, 306)]))
    for bad in (["205-201"], ["20-301"], [""], [7], "201-206"):
        with pytest.raises(ConfigError, match=r"link\.extensions"):
            _config(link={"extensions": bad})


def test_alarms_section_replaces_the_defaults_and_names_bad_keys():
    from acd.config import AlarmsConfig
    from acd.errors import ConfigError

    default = _config(alarms={}).alarms
    assert default.target(_config().queues["front-desk"]) == 0.99  # the queue's own target
    assert default.target(_config().queues["civil-status"]) == 0.95
    config = _config(alarms={"answer_rate_target": 0.9, "waiting_threshold": 2})
    assert config.alarms.target(config.queues["front-desk"]) == 0.9
    assert config.alarms.waiting_threshold == 2
    assert AlarmsConfig().answer_rate_window == 3600.0
    cases = {
        "answer_rate_window": 0,
        "answer_rate_min_calls": 1.5,
        "answer_rate_target": 1.2,
        "waiting_threshold": -1,
        "window": 60,
    }
    for key, value in cases.items():
        with pytest.raises(ConfigError, match=rf"alarms\.{key}"):
            _config(alarms={key: value})


def test_a_silent_line_raises_the_link_down_alarm_and_says_what_to_check(caplog):
    """A port that opens but where no switch answers (wrong cable, baud rate, parity)."""
    master, slave = os.openpty()
    tty.setraw(master)
    try:
        config = load_config(ROOT / "examples" / "town-hall.toml")
        controller = Controller(config, url=os.ttyname(slave), mqtt=False, silent_warning=0.2)

        async def main() -> None:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(1.0, stop.set)
            await controller.run(stop)

        with caplog.at_level(logging.WARNING, logger="acd"):
            asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    assert not controller.link_is_up
    assert LINK_DOWN_ALARM in controller.alarms.active
    assert "no answer from the switch" in caplog.text and "acd port test" in caplog.text


def test_a_refused_supervisor_command_says_why_in_plain_words(caplog):
    """`acd agent not-ready 1002 --reason 5` with no reason 5: the reply and the log say
    so (no enum repr, no dataclass repr)."""
    from acd.core.agents import AgentSession, AgentStatus
    from acd.runtime.topics import AgentCommand, CommandAction

    controller = Controller(load_config(ROOT / "examples" / "town-hall.toml"), url="", mqtt=False)

    async def main() -> str | None:
        controller._loop = asyncio.get_running_loop()
        session = AgentSession("1002", "202", AgentStatus.READY, 0, controller.now())
        controller._take(controller.bridge.restore([session], controller.now()))
        reply = controller.command(AgentCommand("1002", CommandAction.NOT_READY, 5, "r", "t"))
        await asyncio.sleep(0.01)  # the notifications are reported on the next loop turn
        return reply

    with caplog.at_level(logging.INFO, logger="acd"):
        reply = asyncio.run(main())
    why = "unknown reason code 5 (known: 0, 1 break, 2 lunch, 3 back-office, 9 no-answer)"
    assert reply == why
    assert f"supervisor command not_ready 1002: refused: {why}" in caplog.messages
    assert f"engine refused SetAgentStatus agent_id=1002 status=not_ready reason=5: {why}" in (
        caplog.messages
    )


def test_the_watchdog_is_fed_only_while_the_link_pump_keeps_up(tmp_path, caplog):
    """A link timer that fails (the pump stalls: its deadline stays overdue) starves the
    watchdog, so that systemd restarts the controller; before that it is fed."""
    import socket

    from drivers.systemd import Notifier

    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    master, slave = os.openpty()
    tty.setraw(master)
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "100000"})
    config = _config(link={"reset_interval": 1.0})  # a reset falls due within the test
    controller = Controller(config, url=os.ttyname(slave), mqtt=False, notifier=notifier)
    controller.stall_limit = 0.3
    fed: list[float] = []  # loop times a WATCHDOG=1 was received
    broke_at = interval = 0.0

    def broken(now: float) -> None:
        raise RuntimeError("pump bug")

    async def main() -> None:
        nonlocal broke_at, interval
        loop = asyncio.get_running_loop()
        loop.add_reader(sock, lambda: sock.recv(4096) == b"WATCHDOG=1" and fed.append(loop.time()))
        stop = asyncio.Event()
        task = asyncio.ensure_future(controller.run(stop))
        await asyncio.sleep(0.6)
        broke_at, interval = loop.time(), controller.link.reset_interval
        controller.link.handle_timer = broken  # the link's resets are never handled again
        await asyncio.sleep(2.5)
        stop.set()
        await task
        loop.remove_reader(sock)

    try:
        with caplog.at_level(logging.ERROR, logger="acd"):
            asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
        sock.close()
    assert len([t for t in fed if t < broke_at]) >= 4
    # the link's next reset falls due within its interval; stall_limit later, no more food
    assert fed[-1] < broke_at + interval + controller.stall_limit + 0.2 < broke_at + 2.5
    assert caplog.text.count("watchdog not fed: link pump stalled") == 1


def test_records_wait_in_the_outbox_spool_while_the_store_refuses_writes(tmp_path, caplog):
    """Commits that fail (here SQLite refusing writes, as on a full disk or a locked
    file): the records go to the outbox spool, are reported as kept, the store-down alarm
    is raised; once the store takes writes again they are written, in order and once,
    the spool deleted and the alarm cleared."""
    from acd.core.commands import CallEnded
    from acd.runtime.bridge import Step
    from acd.runtime.store_sqlite import SqliteStore as CallStore

    from .test_store import answered

    store = CallStore(tmp_path / "cdr.db")
    store._conn.execute("PRAGMA query_only = ON")  # every write now fails in SQLite
    spool = tmp_path / "outbox.jsonl"
    controller = Controller(
        load_config(ROOT / "examples" / "town-hall.toml"),
        url="",
        mqtt=False,
        store=store,
        spool=spool,
    )

    async def until(predicate) -> None:
        for _ in range(500):
            if predicate():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("timed out")

    async def main() -> None:
        controller._loop = asyncio.get_running_loop()
        controller._take(Step(notes=[CallEnded(0.0, answered(7))]))
        await until(lambda: controller.counters["records"] == 1)  # acknowledged: spooled
        assert spool.exists() and STORE_DOWN_ALARM in controller.alarms.active
        assert spool.stat().st_mode & 0o777 == 0o600
        controller._take(Step(notes=[CallEnded(1.0, answered(8))]))
        await until(lambda: controller.counters["records"] == 2)
        assert [r.call_id for r in store.calls()] == []
        # in the writer thread, between two of its tries
        controller._writer.submit(store._conn.execute, "PRAGMA query_only = OFF").result()
        await until(lambda: STORE_DOWN_ALARM not in controller.alarms.active)
        controller._writer.shutdown(wait=True)

    with caplog.at_level(logging.INFO, logger="acd"):
        asyncio.run(main())
    assert [r.call_id for r in store.calls()] == [7, 8]
    store.close()
    assert not spool.exists()
    assert controller.counters["store_errors"] >= 1
    lines = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert lines[0] == (
        "ERROR",
        "call-record store unreachable: attempt to write a readonly database; records wait"
        f" in the spool {spool}, routing goes on",
    )
    assert ("INFO", "call 7 leg 1 in front-desk: answered after 12 s with 1001") in lines
    assert any(m.startswith("call-record store back after") for _, m in lines)
    assert lines[-1] == ("INFO", "alarm store-down cleared")


def test_a_spool_that_cannot_be_written_is_logged_once_per_interval(tmp_path, caplog):
    """Store and spool both failing (a full disk): each write tries the spool again,
    but its error is one line per interval, not one per batch."""
    from acd.core.commands import CallEnded
    from acd.runtime.bridge import Step
    from acd.runtime.store_sqlite import SqliteStore as CallStore

    from .test_store import answered

    store = CallStore(tmp_path / "cdr.db")
    store._conn.execute("PRAGMA query_only = ON")  # every write now fails in SQLite
    (tmp_path / "file").write_text("")
    controller = Controller(
        load_config(ROOT / "examples" / "town-hall.toml"),
        url="",
        mqtt=False,
        store=store,
        spool=tmp_path / "file" / "outbox.jsonl",  # under a file: never writable
    )

    async def main() -> None:
        controller._loop = asyncio.get_running_loop()
        for n in range(20):
            controller._take(Step(notes=[CallEnded(float(n), answered(n + 1))]))
            await asyncio.sleep(0.01)
        for _ in range(500):
            if controller.outbox.waiting == 20 and not controller._committing:
                break
            await asyncio.sleep(0.01)
        controller._writer.shutdown(wait=True)

    with caplog.at_level(logging.INFO, logger="acd"):
        asyncio.run(main())
    store.close()
    assert controller.outbox.waiting == 20 and controller.counters["records"] == 0
    spool_lines = [m for m in caplog.messages if "outbox spool cannot be written" in m]
    assert len(spool_lines) == 1, spool_lines


def test_every_queue_s_figures_are_in_the_retained_snapshot_before_any_call(
    broker_proxy, monkeypatch
):
    """A wallboard connecting after a (re)start, or after the broker lost its retained
    messages, sees every queue's figures at once, not only after that queue's first call."""
    import dataclasses
    import uuid

    import aiomqtt

    from acd.runtime.topics import Topics
    from drivers import mqtt as mqtt_driver

    # the local broker sends its retained topics at once: a 0.5 s sweep, not 2 s
    monkeypatch.setattr(mqtt_driver, "SWEEP_SECONDS", 0.5)

    config = load_config(ROOT / "examples" / "town-hall.toml")
    master, slave = os.openpty()
    tty.setraw(master)

    async def held(base: str) -> dict[str, dict]:
        """The retained queue figures under ``base``, read until quiet for 0.5 s."""
        out: dict[str, dict] = {}
        async with aiomqtt.Client("127.0.0.1", 1883) as client:
            await client.subscribe(f"{base}/queue/+/stats", qos=1)
            with contextlib.suppress(TimeoutError):
                while True:
                    message = await asyncio.wait_for(anext(aiter(client.messages)), 0.5)
                    queue = str(message.topic).split("/")[-2]
                    if message.payload:
                        out[queue] = json.loads(message.payload)
                    else:
                        out.pop(queue, None)
        return out

    async def main() -> tuple[dict, dict, str]:
        await broker_proxy.start()
        mqtt = dataclasses.replace(
            config.mqtt, port=broker_proxy.port, prefix=f"test-{uuid.uuid4().hex[:8]}"
        )
        cfg = dataclasses.replace(config, mqtt=mqtt)
        base = Topics(mqtt.prefix, cfg.site.id).base
        async with aiomqtt.Client("127.0.0.1", 1883) as client:  # a previous run's figures
            for queue in ("front-desk", "gone"):
                await client.publish(f"{base}/queue/{queue}/stats", b'{"old": 1}', retain=True)
        controller = Controller(cfg, url=os.ttyname(slave), silent_warning=60.0)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop))
        try:
            while controller.mqtt is None or not controller.mqtt.connected:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.8)  # the stale-topic sweep is over
            first = await held(base)
            async with aiomqtt.Client("127.0.0.1", 1883) as client:  # the broker forgets
                for queue in first:
                    await client.publish(f"{base}/queue/{queue}/stats", b"", retain=True)
            await broker_proxy.stop()
            while controller.mqtt.connected:
                await asyncio.sleep(0.05)
            await broker_proxy.start()
            while not controller.mqtt.connected:
                await asyncio.sleep(0.05)
            again = await held(base)
        finally:
            stop.set()
            await asyncio.wait_for(task, 10)
            await broker_proxy.stop()
        return first, again, base

    if not _broker_up():
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    try:
        first, again, _ = asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)
    assert sorted(first) == sorted(again) == sorted(config.queues)  # "gone" was cleared
    for figures in (*first.values(), *again.values()):
        assert figures["waiting"] == figures["offered"] == 0 and "old" not in figures
        assert figures["answer_rate"] is None and figures["agents_logged_in"] == 0


def _broker_up() -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", 1883), 0.5):
        return True
    return False


@pytest.mark.parametrize("stopping", [True, False])
def test_a_switch_stopped_with_the_controller_raises_no_link_down_alarm(stopping):
    """Ctrl-C reaching the simulated switch a moment before the controller: its port
    going away is not an alarm. A port lost while the controller runs on still is."""
    from firmware_sim.runner import ServedSwitch
    from firmware_sim.scenario import load_scenario

    switch = ServedSwitch(load_scenario("town-hall-weekday-250"))
    config = load_config(ROOT / "examples" / "town-hall.toml")
    controller = Controller(config, url=switch.url, mqtt=False, reconnect_initial=5.0)

    async def main() -> None:
        stop = asyncio.Event()
        task = asyncio.ensure_future(controller.run(stop))
        for _ in range(500):
            await asyncio.sleep(0.01)
            if controller.link_is_up:
                break
        switch.stop()  # the pty closes: the controller's port is lost
        await asyncio.sleep(0.1 if stopping else 1.0)
        stop.set()
        await task

    try:
        asyncio.run(main())
    finally:
        switch.stop()
    assert controller.counters["port_losses"] == 1
    assert (LINK_DOWN_ALARM in controller.alarms.active) is not stopping


def test_a_background_task_that_fails_ends_the_run_with_its_error_after_the_shutdown(caplog):
    """Controller.run's tasks share one TaskGroup: a bug in one is not lost (it was
    only a 'Task exception was never retrieved' at exit) and nothing outlives run."""
    master, slave = os.openpty()
    tty.setraw(master)
    try:
        config = load_config(ROOT / "examples" / "town-hall.toml")
        controller = Controller(config, url=os.ttyname(slave), mqtt=False, silent_warning=0.1)

        def broken_alarm(*args, **kwargs):
            raise RuntimeError("alarm bug")

        controller._alarm = broken_alarm  # the silent-line watch raises its alarm at 0.1 s

        async def main() -> set:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(5.0, stop.set)
            with pytest.raises(ExceptionGroup) as raised:
                await controller.run(stop)
            assert not stop.is_set()  # ended by the failure, not by the stop
            assert [type(e) for e in raised.value.exceptions] == [RuntimeError]
            return asyncio.all_tasks() - {asyncio.current_task()}

        with caplog.at_level(logging.INFO, logger="acd"):
            assert asyncio.run(main()) == set()
    finally:
        os.close(master)
        os.close(slave)
    assert not controller.port.is_open and "controller stopped" in caplog.text


class _SilentLease:
    """An `acd.runtime.store.Lease` whose database stops answering after ``answers``
    checks (each later check hangs until ``release``)."""

    instance = "pc-a"

    def __init__(self, answers: int) -> None:
        import threading

        self.answers = answers
        self.release = threading.Event()
        self.closed = False

    def acquire(self) -> bool:
        return True

    def confirm(self) -> None:
        if self.answers <= 0:
            self.release.wait(10)  # the database's answer, much too late
            return
        self.answers -= 1

    def holder(self) -> str | None:
        return self.instance

    def fence_others(self) -> list[str]:
        return []

    def close(self) -> None:
        self.closed = True


def test_a_lease_the_database_no_longer_confirms_closes_the_port_at_once(tmp_path, caplog):
    """[ha]: the database goes silent; fence_after later the controller closes the PBX
    port (its RESETs on the silent line stop) and ends its run, fenced; systemd is told
    the status, not STOPPING (the process goes on as the standby)."""
    import socket

    from drivers.systemd import Notifier

    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    master, slave = os.openpty()
    tty.setraw(master)
    os.set_blocking(master, False)
    lease = _SilentLease(answers=3)
    config = _config(
        link={"reset_interval": 0.05},
        store={"url": "postgresql://acd@db.example/acd"},
        ha={"enabled": True, "check_interval": 0.1, "lease_timeout": 1.0},
    )
    notifier = Notifier({"NOTIFY_SOCKET": path})
    controller = Controller(
        config, url=os.ttyname(slave), mqtt=False, lease=lease, notifier=notifier
    )
    written: list[tuple[float, int]] = []

    async def main() -> float:
        loop = asyncio.get_running_loop()
        loop.add_reader(master, lambda: written.append((loop.time(), len(os.read(master, 4096)))))
        stop = asyncio.Event()
        started = loop.time()
        await asyncio.wait_for(controller.run(stop), 5.0)  # ends by itself: fenced
        loop.remove_reader(master)
        return started

    try:
        with caplog.at_level(logging.INFO, logger="acd"):
            started = asyncio.run(main())
    finally:
        lease.release.set()
        os.close(master)
        os.close(slave)
    told = []
    with contextlib.suppress(BlockingIOError):
        while True:
            told.append(sock.recv(4096).decode())
    sock.close()
    assert told[-1] == "STATUS=lease lost: the database did not confirm the lease for 0.5 s"
    assert not any("STOPPING" in t for t in told), told
    for _ in range(100):  # closed in the lease thread, once its hung check is over
        if lease.closed:
            break
        time.sleep(0.01)
    assert controller.fenced and "did not confirm the lease for 0.5 s" in controller.fenced
    assert "pc-a closes the PBX link now" in caplog.text
    # three checks answered (0.1 s apart), then silence: the port is closed 0.5 s after
    # the last answered one was sent; the RESETs of the silent line stop with it
    last = max(t for t, _ in written)
    assert started + 0.5 < last < started + 1.5, (last - started, written)
    assert len(written) >= 5 and lease.closed


def test_fake_standby_statuses_on_the_broker_are_refused_or_logged_once(caplog):
    """[ha]: any client may publish on ``controller/status``: a payload naming no valid
    instance is refused (the status keeps its standby), and a standby flapping at the
    broker's pace gives one line each way per interval, not one per message."""
    controller = Controller(load_config(ROOT / "examples" / "town-hall.toml"), url="", mqtt=False)
    standby = {"online": True, "role": "standby", "instance": "pc-b"}

    async def main() -> None:
        controller._peer(standby)
        for fake in ({"x": 1}, [1], "a" * 500, "", "bad name", None):
            controller._peer({**standby, "instance": fake})
        assert controller.standby == "pc-b"
        for _ in range(100):
            controller._peer({"online": False, "instance": "pc-b"})
            controller._peer(standby)
        assert controller.standby == "pc-b"

    with caplog.at_level(logging.INFO, logger="acd"):
        asyncio.run(main())
    assert caplog.messages.count("standby controller pc-b is waiting") == 1
    assert caplog.messages.count("standby controller pc-b is gone") == 1
    refused = [m for m in caplog.messages if "controller/status refused" in m]
    assert refused == ["mqtt: controller/status refused: instance {'x': 1} is no controller's name"]

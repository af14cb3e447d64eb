"""A hot-standby pair as real processes (``[ha]``, docs/operations.md, Running a pair):
two `acd run` on one PostgreSQL database and the simulated switch over TCP (a serial
device server), MQTT on the machine's Mosquitto.

- kill -9 of the active one mid-traffic: the standby holds the PBX link within the
  lease wait and the link timers + 2 s, every call of the gap is answered (by the
  switch's fallback or the standby) or abandoned by its caller, the records in the
  database agree with the switch's own account (none lost, none twice), the agents are
  still logged in, and MQTT says who is active;
- a partition between the active one and PostgreSQL (a TCP proxy cut): it closes the
  link before the standby takes the lease, so two never route at once."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import json
import re
import socket
import subprocess
import threading
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from firmware_sim.fallback import FallbackSettings
from protocols import messages as m

from .test_e2e_fallback import fates
from .test_e2e_restart import wait_for
from .test_e2e_restarts import switch_account

pytestmark = pytest.mark.timeout(90)

FRONT_DESK = ("201", "202", "203", "204", "205", "206")
CHECK, LEASE = 0.1, 1.0  # [ha] check_interval and lease_timeout of these tests
FENCE = LEASE / 2


def pair_config(kit, tmp_path: Path, prefix: str, db: str) -> Path:
    """The reference site with short link timers, its own MQTT prefix on the machine's
    broker (anonymous: commands are refused, states published), its records in ``db``
    and ``[ha]`` on."""
    text = kit.CONFIG.read_text()
    text = (
        text.replace("t1 = 1.0", "t1 = 0.2")
        .replace("heartbeat = 5.0", "heartbeat = 1.0")
        .replace("reset_interval = 3.0", "reset_interval = 0.3")
        .replace('prefix = "acd/v1"', f'prefix = "{prefix}"')
        .replace('url = "town-hall.db"', f'url = "{db}"')
    )
    text = re.sub(r'\nusername = "acd-townhall".*', "", text)
    text = re.sub(r'\npassword_env = "ACD_MQTT_PASSWORD".*', "", text)
    text += f"\n[ha]\nenabled = true\ncheck_interval = {CHECK}\nlease_timeout = {LEASE}\n"
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def command(sim, config: Path, db: str, name: str) -> list[str]:
    """`acd run` of controller ``name`` on the switch, with MQTT (`run_command` has none)."""
    cmd = sim.run_command(config, db, "--instance", name)  # type: ignore[arg-type]
    cmd.remove("--no-mqtt")
    return cmd


def logged_at(log: Path, text: str) -> float | None:
    """Unix time of the first log line holding ``text``, None if none yet."""
    for line in log.read_text().splitlines():
        if text in line:
            stamp = dt.datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f")
            return stamp.timestamp()
    return None


def rung_twice(produced: list[tuple[float, m.Message]]) -> list[tuple[float, int, set]]:
    """(time, call, devices) whenever the switch had a call at two handsets at once
    (ringing or connected): a call routed twice, by two controllers or by the
    fallback and a controller."""
    at: dict[int, set[str]] = {}
    twice = []
    for t, x in produced:
        if isinstance(x, m.Delivered | m.Established):
            devices = at.setdefault(x.call_id, set())
            if isinstance(x, m.Established):
                devices.intersection_update({x.device})
            devices.add(x.device)
        elif isinstance(x, m.Diverted | m.Transferred):
            at.get(x.call_id, set()).discard(x.from_device)
        elif isinstance(x, m.ConnectionCleared | m.Failed):
            if x.device:
                at.get(x.call_id, set()).discard(x.device)
            else:
                at.pop(x.call_id, None)
        else:
            continue
        if len(at.get(getattr(x, "call_id", -1), ())) > 1:
            twice.append((t, x.call_id, set(at[x.call_id])))
    return twice


def stored(db: str) -> dict[int, list[tuple[int, str, bool]]]:
    """Call id -> its stored legs (leg, outcome, fallback)."""
    out: dict[int, list[tuple[int, str, bool]]] = {}
    with psycopg.connect(db) as conn:
        for call_id, leg, outcome, fallback in conn.execute(
            "SELECT call_id, leg, outcome, fallback FROM calls"
        ):
            out.setdefault(call_id, []).append((leg, outcome, bool(fallback)))
    return out


def mqtt_status(kit, config: Path) -> dict:
    """The retained ``controller/status`` of the site."""
    from acd.config import load_config

    cfg = load_config(config)
    got = asyncio.run(kit.retained(cfg, "controller/status", quiet=0.4))
    return json.loads(got["controller/status"])


def logged_in(kit, config: Path) -> set[str]:
    """The agents the retained ``agent/+/state`` say are logged in."""
    from acd.config import load_config

    cfg = load_config(config)
    states = asyncio.run(kit.retained(cfg, "agent/+/state", quiet=0.4))
    return {t.split("/")[1] for t, v in states.items() if json.loads(v)["status"] != "logged_out"}


class PgProxy:
    """A TCP proxy in front of PostgreSQL, in threads: `cut` makes it a black hole (the
    bytes both ways are dropped, the connections stay open, as in a network partition:
    neither end hears a close); `heal` resets the connections of the cut and forwards
    again."""

    def __init__(self, upstream: tuple[str, int] = ("127.0.0.1", 5432)) -> None:
        self.upstream = upstream
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.1)
        self.port = self.server.getsockname()[1]
        self.cut_at: float | None = None
        self._socks: list[socket.socket] = []
        self._halt = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, db_url: str) -> str:
        return db_url.replace(":5432/", f":{self.port}/")

    def _accept(self) -> None:
        while not self._halt.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                up = socket.create_connection(self.upstream)
            except OSError:
                conn.close()
                continue
            self._socks += [conn, up]
            for src, dst in ((conn, up), (up, conn)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                if self.cut_at is None:
                    dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def cut(self) -> None:
        self.cut_at = time.time()

    def heal(self) -> None:
        socks, self._socks = self._socks, []
        for sock in socks:  # RST: the connections of the partition are dead
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")
                sock.close()
        self.cut_at = None

    def close(self) -> None:
        self._halt.set()
        self.heal()
        self.server.close()


@pytest.fixture
def pair(kit, sim_thread, tmp_path, pg_url, broker):
    """Start the switch (fallback on, TCP) and helpers to launch named controllers."""
    fallback = FallbackSettings(True, 20.0, FRONT_DESK, "longest-idle", 3)
    sc = kit.hour_scenario(volume=360, start="08:57", end="09:18", speed=120)
    sc = dataclasses.replace(sc, switch=dataclasses.replace(sc.switch, fallback=fallback))
    sim = sim_thread(sc, tcp=True)
    config = pair_config(kit, tmp_path, f"test-{uuid.uuid4().hex[:8]}", pg_url)
    procs: dict[str, subprocess.Popen] = {}

    def launch(name: str, db: str = pg_url) -> Path:
        log = tmp_path / f"{name}.log"
        with open(log, "wb") as out:
            procs[name] = subprocess.Popen(
                command(sim, config, db, name),
                stdout=subprocess.DEVNULL,
                stderr=out,
                cwd=tmp_path,  # the outbox spools of the two
            )
        return log

    yield sim, config, launch, procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_kill_9_of_the_active_controller_the_standby_takes_over(kit, pair, pg_url):
    sim, config, launch, procs = pair
    a_log = launch("pc-a")
    wait_for(lambda: logged_at(a_log, "resynchronised"), 15, "pc-a active")
    first_up = time.monotonic()
    b_log = launch("pc-b")
    wait_for(lambda: logged_at(b_log, "the active controller is pc-a"), 10, "pc-b standby")
    pair_a = {"online": True, "role": "active", "instance": "pc-a", "standby": "pc-b"}
    wait_for(lambda: pair_a.items() <= mqtt_status(kit, config).items(), 5, "pc-a, standby pc-b")
    wait_for(lambda: sum(map(len, stored(pg_url).values())) >= 5, 15, "5 stored records")
    agents = logged_in(kit, config)
    assert len(agents) >= 4, agents

    procs["pc-a"].kill()  # SIGKILL, mid-traffic
    killed = time.time()
    killed_wire = time.monotonic()
    procs["pc-a"].wait(5)
    wait_for(lambda: logged_at(b_log, "resynchronised"), 10, "pc-b active")
    took_over = logged_at(b_log, "link up") - killed
    # the lease is free at once (the session's socket closed), seen at the next check,
    # then fence_after s of wait, then the link's reset: within the link timers + 2 s
    assert 0 < took_over <= CHECK + FENCE + 0.3 + 2.0, took_over
    relinked = min(
        t
        for t, x in list(sim.endpoint.produced)
        if isinstance(x, m.SnapshotCallsResult) and t > killed_wire
    )
    b_text = b_log.read_text()
    assert re.search(r"restoring \d+ agent sessions", b_text), b_text
    wait_for(lambda: not sim.thread.is_alive(), 40, "the end of the simulated day")
    time.sleep(0.5)  # the last records are committed
    wait_for(lambda: mqtt_status(kit, config).get("instance") == "pc-b", 5, "pc-b in status")
    status = mqtt_status(kit, config)
    assert (status["online"], status["role"]) == (True, "active")
    assert agents <= logged_in(kit, config)  # still logged in
    assert kit.stop_process(procs["pc-b"]) == 0
    for log in (a_log, b_log):
        assert "Traceback" not in log.read_text()

    # every call offered during the gap: answered (fallback or pc-b) or abandoned by its
    # caller; no call ever at two handsets at once (routed by two)
    gap = fates(list(sim.endpoint.produced), killed_wire, relinked)
    assert all(gap.values()), gap
    assert rung_twice(list(sim.endpoint.produced)) == []
    # the records agree with the switch: a call it ended while a controller ran has
    # exactly one first leg, answered if and only if it connected it
    account = switch_account(list(sim.endpoint.produced))
    records = stored(pg_url)
    assert len(account) > 40
    problems = []
    for call_id, a in account.items():
        legs = records.get(call_id, [])
        if a["offered"] < first_up:
            continue  # before any controller: the switch's fallback at start, not this test's

        if a["ended"] is None or killed_wire - 0.2 <= a["ended"] <= relinked:
            if len({leg for leg, _, _ in legs}) != len(legs):
                problems.append((call_id, "a leg twice", legs))
            continue  # ended while no controller listened: reported or not, never twice
        if [leg for leg, _, _ in legs].count(1) != 1:
            problems.append((call_id, "not recorded once", a, legs))
        elif a["answered"] != any(o == "answered" for _, o, _ in legs):
            problems.append((call_id, "answered at the switch?", a, legs))
    assert problems == [], problems[:5]


def test_a_partition_from_postgresql_fences_the_active_one_before_the_standby_starts(
    kit, pair, pg_url
):
    sim, config, launch, procs = pair
    proxy = PgProxy()
    try:
        a_log = launch("pc-a", proxy.url(pg_url))
        wait_for(lambda: logged_at(a_log, "resynchronised"), 15, "pc-a active")
        b_log = launch("pc-b")
        wait_for(lambda: logged_at(b_log, "the active controller is pc-a"), 10, "pc-b standby")
        wait_for(lambda: sum(map(len, stored(pg_url).values())) >= 2, 15, "2 stored records")

        proxy.cut()  # pc-a no longer reaches PostgreSQL, nor PostgreSQL pc-a
        wait_for(lambda: logged_at(b_log, "resynchronised"), 10, "pc-b active")
        fenced = logged_at(a_log, "closes the PBX link now")
        taken = logged_at(b_log, "lease taken: pc-b")
        opened = logged_at(b_log, "PBX port socket://")
        assert fenced is not None, a_log.read_text()[-3000:]
        # pc-a stopped routing first: half the lease timeout after its last confirmed
        # check; PostgreSQL freed the lease only after lease_timeout of silence
        assert proxy.cut_at < fenced <= proxy.cut_at + FENCE + CHECK + 0.3
        assert fenced < proxy.cut_at + LEASE <= taken + 0.1
        assert fenced + FENCE <= opened
        status = mqtt_status(kit, config)
        assert (status["role"], status["instance"]) == ("active", "pc-b")

        proxy.heal()  # pc-a finds the database again: standby
        wait_for(lambda: logged_at(a_log, "the active controller is pc-b"), 10, "pc-a standby")
        wait_for(lambda: mqtt_status(kit, config).get("standby") == "pc-a", 5, "pc-a in status")
        time.sleep(0.5)  # pc-b routes on, pc-a does not take over
        assert logged_at(a_log, "lease taken: pc-a") < fenced  # its first term only
        for name in ("pc-a", "pc-b"):
            assert kit.stop_process(procs[name]) == 0
        assert rung_twice(list(sim.endpoint.produced)) == []
    finally:
        proxy.close()
    for log in (a_log, b_log):
        assert "Traceback" not in log.read_text()


def test_postgresql_restarted_the_active_one_takes_its_lease_again_the_standby_waits(
    kit, pair, own_pg
):
    sim, config, launch, procs = pair
    # a fence window (lease_timeout / 2 = 2 s) longer than the restart
    config.write_text(config.read_text().replace(f"lease_timeout = {LEASE}", "lease_timeout = 4.0"))
    a_log = launch("pc-a", own_pg.url)
    wait_for(lambda: logged_at(a_log, "resynchronised"), 15, "pc-a active")
    b_log = launch("pc-b", own_pg.url)
    wait_for(lambda: logged_at(b_log, "the active controller is pc-a"), 10, "pc-b standby")
    time.sleep(0.5)
    began = time.monotonic()
    own_pg.stop("immediate")  # a crash of the server, then its restart
    own_pg.start()
    restart = time.monotonic() - began
    back = time.monotonic()
    wait_for(lambda: logged_at(a_log, "lease taken again by pc-a"), 10, "pc-a's lease again")
    wait_for(lambda: logged_at(b_log, "the database answers again"), 10, "pc-b reconnected")
    time.sleep(2.5)  # past pc-b's wait: pc-a holds the lease
    assert restart < 1.5, f"the restart took {restart:.1f} s: longer than the test assumes"
    assert logged_at(a_log, "closes the PBX link") is None, a_log.read_text()[-2000:]
    assert logged_at(b_log, "lease taken: pc-b") is None, b_log.read_text()[-2000:]
    assert any(
        t > back and isinstance(x, m.Delivered | m.Queued) for t, x in list(sim.endpoint.produced)
    ), "pc-a routed no call after the restart"
    for name in ("pc-b", "pc-a"):
        assert kit.stop_process(procs[name]) == 0
    assert "Traceback" not in a_log.read_text() + b_log.read_text()


def test_acd_demo_ha_shows_a_pair_failing_over(pg_url):
    from click.testing import CliRunner

    from acd.cli import cli

    result = CliRunner().invoke(cli, ["demo", "--ha", "--db", pg_url])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "lease taken: pc-a is the active controller" in out
    assert "standby: pc-b waits; the active controller is pc-a" in out
    assert "--- kill -9 pc-a" in out and "lease taken: pc-b is the active controller" in out
    assert "standby: pc-a waits; the active controller is pc-b" in out
    found = re.search(
        r"held the PBX link (\S+) s after the kill of pc-a and routed its first call (\S+) s", out
    )
    assert found, out
    linked, routed = float(found[1]), float(found[2])
    assert 0 < linked <= routed < 10, out
    if "[mqtt]" in out:  # the demo's own Mosquitto (make broker installs it)
        assert '"role": "active", "instance": "pc-b", "standby": "pc-a"' in out


@pytest.mark.parametrize(
    ("args", "why"),
    [
        ([], "--ha needs --db postgresql://"),
        (["--db", "day.db"], "--ha needs --db postgresql://"),
        (["--db", "postgresql://acd@db/acd", "--web"], "give neither --config nor --web"),
    ],
)
def test_acd_demo_ha_refuses_what_a_pair_cannot_run_on(args, why):
    from click.testing import CliRunner

    from acd.cli import cli

    result = CliRunner().invoke(cli, ["demo", "--ha", *args])
    assert result.exit_code == 1 and why in result.output and "Traceback" not in result.output


def test_acd_demo_ha_says_why_a_controller_stopped(pg_url):
    """A database that does not exist: pc-a's own one-line error, at once (not a timeout)."""
    from click.testing import CliRunner

    from acd.cli import cli

    missing = pg_url.rsplit("/", 1)[0] + f"/acd_missing_{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    result = CliRunner().invoke(cli, ["demo", "--ha", "--db", missing])
    assert result.exit_code == 1, result.output
    assert "demo --ha: pc-a stopped:" in result.output, result.output
    assert "does not exist" in result.output and "Traceback" not in result.output
    assert time.monotonic() - started < 20, "waited for the 30 s timeout"

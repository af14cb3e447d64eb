"""The README tour, its commands read from README.md: `acd sim --pty --start 10:00 &`
then `acd run ... --sim-clock` on the pty it printed. The controller must judge calls on
the simulated switch's clock, not this machine's: the tour works at any hour. Run as
written (10:00) and with the simulation starting at the current local time; the only
change is ``--speed 120`` on `acd sim`, so that ten simulated minutes take five seconds."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.config import load_config
from acd.core.calendar import Calendar
from acd.errors import AcdError

ROOT = Path(__file__).resolve().parents[2]
TOUR = "**Run the controller against a (simulated) switch.**"
ROUTING = ("QueueCall", "DeflectCall", "PlayAnnouncement", "ClearConnection", "SingleStepTransfer")

pytestmark = pytest.mark.timeout(120)
SPEED = 120
"""The tours' `acd sim --speed`: simulated seconds per second."""
LIMIT = 60.0
"""Wall seconds a tour may run at most (two simulated hours at 120x)."""


def tour_commands() -> tuple[list[str], dict[str, str], list[str]]:
    """The tour's `acd sim` and `acd run` arguments and its exported variables."""
    block = ROOT.joinpath("README.md").read_text().split(TOUR)[1]
    block = block.split("```console\n")[1].split("```")[0]
    commands = [line[2:] for line in block.splitlines() if line.startswith("$ ")]
    sim = next(shlex.split(c.rstrip(" &")) for c in commands if c.startswith("acd sim"))
    run = next(shlex.split(c) for c in commands if c.startswith("acd run"))
    exports = [c.split(" ", 1)[1] for c in commands if c.startswith("export ")]
    return sim, dict(e.split("=", 1) for e in exports), run


def _acd(args: list[str]) -> list[str]:
    assert args[0] == "acd"
    return [sys.executable, "-m", "acd", *args[1:]]


def _run_tour(
    tmp_path: Path, start: str | None, done: Callable[[Path, Path], bool], *options: str
) -> Path:
    """Run the tour (``--start`` replaced by ``start`` if given, ``options`` added to
    `acd run`) until ``done(database, controller log)`` (at most ``LIMIT`` s: a loaded
    machine may take seconds to start the controller); return its database."""
    sim, exports, run = tour_commands()
    if start is not None:
        sim[sim.index("--start") + 1] = start
    (tmp_path / "examples").symlink_to(ROOT / "examples")  # the tour runs in a checkout
    env = {**os.environ, **exports}
    sim_log, db = tmp_path / "sim.log", tmp_path / run[run.index("--db") + 1]
    with open(sim_log, "w") as out:
        switch = subprocess.Popen(
            [*_acd(sim), "--speed", str(SPEED)], cwd=tmp_path, stdout=out, env=env
        )
    procs = [switch]
    try:
        end = time.monotonic() + LIMIT
        while not sim_log.read_text().endswith("\n"):  # its first line is the pty to open
            assert time.monotonic() < end and switch.poll() is None, sim_log.read_text()
            time.sleep(0.05)
        pty = sim_log.read_text().splitlines()[0]
        assert pty.startswith("/dev/pts/"), pty
        run[run.index("--link") + 1] = pty
        with open(tmp_path / "run.log", "w") as log:
            command = [*_acd(run), *options]
            procs.insert(0, subprocess.Popen(command, cwd=tmp_path, stderr=log, env=env))
        while not done(db, tmp_path / "run.log") and time.monotonic() < end:
            assert procs[0].poll() is None, (tmp_path / "run.log").read_text()[-2000:]
            time.sleep(0.1)
    finally:
        for proc in procs:  # the controller first: it stores what it knows
            proc.terminate()
            assert proc.wait(20) == 0, (tmp_path / "run.log").read_text()[-2000:]
    assert db.exists(), (tmp_path / "run.log").read_text()[-2000:]
    return db


def _rows(db: Path, query: str) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(query).fetchall()


def _stored(*queries: tuple[str, int]) -> Callable[[Path, Path], bool]:
    """``done`` for `_run_tour`: each ``(query, n)`` has ``n`` rows in the database."""

    def done(db: Path, log: Path) -> bool:
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
                return all(len(conn.execute(q).fetchall()) >= n for q, n in queries)
        except sqlite3.OperationalError:  # not created yet
            return False

    return done


def _logged(text: str, then: float) -> Callable[[Path, Path], bool]:
    """``done`` for `_run_tour`: ``then`` s after the controller logged ``text``."""
    seen: list[float] = []

    def done(db: Path, log: Path) -> bool:
        if not seen and text in log.read_text():
            seen.append(time.monotonic())
        return bool(seen) and time.monotonic() > seen[0] + then

    return done


ROUTED = ("SELECT 1 FROM calls WHERE agent_id <> ''", 1)


def test_readme_tour_as_written_routes_calls_at_any_hour(tmp_path):
    db = _run_tour(tmp_path, None, _stored(("SELECT 1 FROM calls", 2), ROUTED))
    config = load_config(ROOT / "examples" / "town-hall.toml")
    tz = ZoneInfo(config.site.timezone)
    calls = _rows(db, "SELECT call_id, queued_at, outcome, agent_id FROM calls")
    assert len(calls) >= 2, calls  # 10:00:43 and 10:02:29 with the scenario's seed
    for _, queued_at, outcome, _ in calls:
        local = dt.datetime.fromtimestamp(queued_at, tz)
        assert local.date() == dt.date(2026, 3, 10) and 10 <= local.hour < 11, local
        assert outcome != "closed"
    assert any(agent for *_, agent in calls)  # offered to an agent


def test_readme_tour_from_the_current_local_time(tmp_path):
    now, launched = dt.datetime.now(), time.monotonic()
    now = min(now, now.replace(hour=23, minute=30))  # a simulated day ends at midnight
    db = _run_tour(tmp_path, now.strftime("%H:%M"), _logged("resynchronised", 3.0))
    ran = dt.timedelta(seconds=SPEED * (time.monotonic() - launched))  # simulated
    config = load_config(ROOT / "examples" / "town-hall.toml")
    tz = ZoneInfo(config.site.timezone)
    logged = (tmp_path / "run.log").read_text()
    clock = re.search(rf"engine clock: (\S+ \S+) at {SPEED}x \(the clock of acd sim on ", logged)
    assert clock, logged
    at = dt.datetime.fromisoformat(clock.group(1))
    started = dt.datetime.combine(dt.date(2026, 3, 10), now.time().replace(second=0))
    assert started <= at < started + ran, at  # the switch's clock when the line was logged
    calendar = Calendar(config.calendars["town-hall"], tz)
    for queued_at, outcome in _rows(db, "SELECT queued_at, outcome FROM calls"):
        assert (outcome == "closed") == (not calendar.is_open(queued_at)), outcome


def test_engine_replay_of_a_tour_capture_agrees_at_any_hour(tmp_path):
    db = _run_tour(tmp_path, None, _stored(ROUTED), "--capture", "line.cap")
    calls = _rows(db, "SELECT outcome, agent_id FROM calls")
    assert calls and not [c for c in calls if c[0] == "closed"]
    assert any(agent for _, agent in calls)  # routed to a handset: DeflectCall captured
    config = str(ROOT / "examples" / "town-hall.toml")
    replayed = CliRunner().invoke(
        cli, ["replay", str(tmp_path / "line.cap"), "--engine", "--json", "--config", config]
    )
    diffs = json.loads(replayed.output)["differences"]
    # the calls routed the same way (lamp and display updates may differ in order and
    # number: a live link paces them, the replay sends them at once)
    assert not [d for d in diffs if d["op"] in ROUTING], diffs


def test_sim_clock_without_a_simulator_is_a_one_line_error(tmp_path):
    from acd.runtime.clock import Clock
    from acd.tools.simclock import clock_file, follow, publish

    url = f"/dev/pts/nope-{os.getpid()}"
    args = ["run", "--config", str(ROOT / "examples" / "town-hall.toml"), "--no-mqtt"]
    result = CliRunner().invoke(
        cli, [*args, "--link", url, "--db", str(tmp_path / "a.db"), "--sim-clock"]
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [
        f"Error: --sim-clock: no acd sim serves {url} (start `acd sim --pty` first and give"
        " --link the port it printed)"
    ]
    clock = Clock(10 * 3600.0, time.monotonic(), 60.0)  # 10:00 on the simulated day
    paris = ZoneInfo("Europe/Paris")
    engine = Clock(dt.datetime(2026, 3, 10, 10, tzinfo=paris).timestamp(), clock.origin, 60.0)
    with publish(url, dt.date(2026, 3, 10), clock) as path:
        assert path == clock_file(url) and follow(url, paris) == engine
        stale = path.read_text().replace(f'"pid": {os.getpid()}', '"pid": 999999999')
        path.write_text(stale)  # a simulator killed without cleaning up
        with pytest.raises(AcdError, match="no acd sim serves"):
            follow(url, paris)
    assert not clock_file(url).exists()

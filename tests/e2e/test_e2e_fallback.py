"""Switch fallback with a real `acd run` (docs/cti-protocol.md §9.7): the controller is
killed (SIGKILL), the simulated switch routes the calls itself over the gap, and the
controller restarted later records them with ``fallback`` set and `acd report` counts
them."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import subprocess
import sys
import time

import pytest

from firmware_sim.fallback import FallbackSettings
from protocols import messages as m

from .test_e2e_restart import records, wait_for
from .test_e2e_restarts import switch_account

pytestmark = pytest.mark.timeout(120)

FRONT_DESK = ("201", "202", "203", "204", "205", "206")


def fates(produced: list[tuple[float, m.Message]], since: float, until: float) -> dict:
    """Call id → "answered" / "abandoned" / None, for the calls the switch offered
    between wire times ``since`` and ``until`` (its events sent or not)."""
    out: dict[int, str | None] = {}
    for t, x in produced:
        if isinstance(x, m.Offered) and since <= t <= until:
            out.setdefault(x.call_id, None)
        elif isinstance(x, m.Established) and x.call_id in out:
            out[x.call_id] = out[x.call_id] or "answered"
        elif isinstance(x, m.ConnectionCleared) and x.call_id in out and not x.device:
            out[x.call_id] = out[x.call_id] or "abandoned"
    return out


def fallback_legs(db) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(
            "SELECT call_id, leg, outcome, agent_id, device, arrived_at, answered_at, ended_at"
            " FROM calls WHERE fallback = 1"
        ).fetchall()


def test_calls_during_a_controller_gap_go_to_the_fallback_and_are_recorded_after_restart(
    kit, sim_thread, tmp_path
):
    fallback = FallbackSettings(True, 30.0, FRONT_DESK, "longest-idle", 3)
    sc = kit.hour_scenario(volume=90, start="08:58", end="10:30", speed=200)
    sim = sim_thread(
        dataclasses.replace(sc, switch=dataclasses.replace(sc.switch, fallback=fallback))
    )
    config = tmp_path / "site.toml"
    config.write_text(kit.CONFIG.read_text().replace("t1 = 1.0", "t1 = 0.2"))
    db = tmp_path / "acd.db"
    command = sim.run_command(config, db)
    switch = sim.endpoint.switch

    with open(tmp_path / "first.log", "wb") as log:
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(lambda: db.exists() and len(records(db)) >= 3, 30, "3 stored records")
        finally:
            first.kill()  # SIGKILL
            first.wait(10)
    killed_at = time.monotonic()  # the switch's wire time
    routed_before = switch.stats.fallback
    # the switch notices (heartbeats) and routes the calls itself; some end meanwhile
    wait_for(lambda: switch.stats.fallback >= routed_before + 6, 40, "6 calls routed by fallback")

    second_log = tmp_path / "second.log"
    with open(second_log, "wb") as log:
        second = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(lambda: "resynchronised" in second_log.read_text(), 30, "the resync")
            relinked_at = min(
                t
                for t, x in list(sim.endpoint.produced)
                if isinstance(x, m.SnapshotCallsResult) and t > killed_at
            )
            # every call offered during the gap is answered or abandoned: none stranded
            wait_for(
                lambda: all(fates(list(sim.endpoint.produced), killed_at, relinked_at).values()),
                30,
                "every call of the gap answered or abandoned",
            )
            wait_for(lambda: len(fallback_legs(db)) >= 3, 20, "3 fallback legs stored")
        finally:
            assert kit.stop_process(second) == 0
    log_text = second_log.read_text()
    assert "Traceback" not in log_text and "(switch fallback)" in log_text
    gap = fates(list(sim.endpoint.produced), killed_at, relinked_at)
    assert len(gap) >= 6 and all(gap.values()), gap

    legs = fallback_legs(db)
    for call_id, _leg, outcome, agent_id, device, arrived, answered, ended in legs:
        assert outcome in ("answered", "abandoned"), (call_id, outcome)
        if outcome == "answered":
            assert agent_id and device in FRONT_DESK and arrived <= answered <= ended
    answered = [c for c, _leg, outcome, *_ in legs if outcome == "answered"]
    assert answered, legs
    report = subprocess.run(
        [sys.executable, "-m", "acd", "report", "--db", str(db), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    counts = json.loads(report.stdout)["fallback"]
    assert counts["calls"] == len(legs) and counts["answered"] == len(answered)


def test_calls_the_fallback_answered_before_the_first_start_are_recorded_once(
    kit, sim_thread, tmp_path
):
    # the switch routes calls itself from its start; the controller starts later, fresh
    # (no sessions: the logins keyed before it are not accepted): every call offered
    # before it linked up has one first leg, ended before or after
    fallback = FallbackSettings(True, 10.0, FRONT_DESK, "longest-idle", 3)
    sc = kit.hour_scenario(volume=300, start="08:59", end="09:08", speed=150)
    sim = sim_thread(
        dataclasses.replace(sc, switch=dataclasses.replace(sc.switch, fallback=fallback))
    )
    config = tmp_path / "site.toml"
    config.write_text(kit.CONFIG.read_text().replace("t1 = 1.0", "t1 = 0.2"))
    db = tmp_path / "acd.db"
    wait_for(lambda: sim.endpoint.switch.stats.fallback >= 6, 20, "6 calls routed by fallback")
    with open(tmp_path / "run.log", "wb") as log:
        proc = subprocess.Popen(sim.run_command(config, db), stdout=subprocess.DEVNULL, stderr=log)
        try:
            wait_for(lambda: not sim.thread.is_alive(), 20, "the end of the day")
            time.sleep(0.3)  # the last records are committed
        finally:
            assert kit.stop_process(proc) == 0
    produced = list(sim.endpoint.produced)
    first_up = min(t for t, x in produced if isinstance(x, m.SnapshotCallsResult))
    early = {
        call_id: a
        for call_id, a in switch_account(produced).items()
        if a["offered"] < first_up and a["ended"] is not None
    }
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        stored = conn.execute("SELECT call_id, leg, outcome, fallback FROM calls").fetchall()
    firsts = {c: [(o, f) for cid, leg, o, f in stored if cid == c and leg == 1] for c in early}
    assert len(early) >= 6 and any(a["ended"] > first_up for a in early.values()), early
    for call_id, a in early.items():
        assert len(firsts[call_id]) == 1, (call_id, a, firsts[call_id])
        ((outcome, _),) = firsts[call_id]
        assert (outcome == "answered") == a["answered"], (call_id, a, outcome)

"""``acd report`` on a database written by a known simulated day gives the figures the
engine computed.

The day: the real engine with the town-hall configuration, driven in-process in virtual
time by the simulator's models (the weekday-250 scenario's traffic, callers, agents'
behaviours and shifts). Every engine step's notifications go to a real SQLite store, one
commit per step, as the controller does. The report read back from the file must equal
``acd.core.figures`` over the engine's own records and the engine's live queue counts.
"""

from __future__ import annotations

import heapq
import itertools
import json
import random
from dataclasses import replace
from datetime import datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.config import load_config
from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded, Refused, RingDevices, RouteCall
from acd.core.engine import Engine
from acd.core.events import (
    Answered,
    CallOffered,
    Cleared,
    Escalate,
    Login,
    Logout,
    NotReady,
    Ready,
    WrapUpDone,
)
from acd.core.figures import grouped, staffed_seconds
from acd.planning.reporting import ReportSettings, day_window, store_report
from acd.runtime.bridge import handle_checking_pins
from acd.runtime.store import open_readonly, open_store
from firmware_sim.people import answer_delay, draw_caller, escalation
from firmware_sim.scenario import load_scenario
from firmware_sim.traffic import arrival_times

ROOT = Path(__file__).resolve().parents[3]
CONFIG = ROOT / "examples" / "town-hall.toml"
TZ = ZoneInfo("Europe/Paris")
DAY = "2026-03-10"


def simulate_day(db: str | Path, seed: int = 1):
    """Run the scenario's day through the engine into the store ``db`` (a file or a
    URL); return the engine, its records and its agent notifications."""
    config = load_config(CONFIG)
    scenario = load_scenario("town-hall-weekday-250")
    midnight = datetime.combine(scenario.day, time(), TZ).timestamp()
    rng = random.Random(seed)
    engine = Engine(config, midnight + scenario.start_s)
    agents = {a.extension: a for a in scenario.agents}
    pending: list[tuple[float, int, object]] = []
    order = itertools.count()
    legs: dict[int, int] = {}  # call id -> token of the caller's current wait (0: connected)
    records, notes = [], []

    def push(at: float, item: object) -> None:
        heapq.heappush(pending, (at, next(order), item))

    for a in scenario.agents:
        shift = a.shift
        push(midnight + shift.start_s, Login(0, a.extension, a.agent_id, a.pin))
        for b in shift.breaks:
            push(midnight + b.start_s, NotReady(0, a.extension, b.reason))
            push(midnight + b.start_s + b.duration_s, Ready(0, a.extension))
        push(midnight + shift.end_s, Logout(0, a.extension))
    plan = scenario.traffic.plan_for(scenario.day)
    arrivals = [7.9 * 3600, *arrival_times(plan, rng)]  # one call before opening
    for call_id, at in enumerate(arrivals, start=1):
        caller = draw_caller(scenario.callers, rng)
        push(midnight + at, CallOffered(0, call_id, "3000", caller.calling))
        legs[call_id] = token = next(order)
        push(midnight + at + caller.patience, ("hangup", call_id, token))

    with open_store(str(db)) as store:
        for _ in range(200_000):
            deadline = engine.next_deadline()
            if not pending and deadline is None:
                break
            if deadline is not None and (not pending or deadline < pending[0][0]):
                now, item = deadline, None
            else:
                now, _, item = heapq.heappop(pending)
            if item is None:
                out = engine.advance(now)
            elif isinstance(item, tuple):  # the caller gives up, if still waiting there
                _, call_id, token = item
                if legs.get(call_id) != token:
                    continue
                out = engine.handle(Cleared(now, call_id))
            else:
                out = handle_checking_pins(engine, replace(item, at=now))
                refused = any(isinstance(o, Refused) for o in out)
                if isinstance(item, Logout) and refused:
                    push(now + 30.0, item)  # on a call: log out after it
                elif isinstance(item, Escalate) and not refused:  # waits again, for leg n
                    legs[item.call_id] = token = next(order)
                    patience = scenario.callers.patience.sample(rng)
                    push(now + patience, ("hangup", item.call_id, token))
            store.record_outputs(out)
            for o in out:
                if isinstance(o, CallEnded):
                    records.append(o.record)
                elif isinstance(o, AgentChanged):
                    notes.append(o)
                    _agent_reacts(o, agents, rng, push, legs)
                elif isinstance(o, RouteCall | RingDevices):
                    devices = o.devices if isinstance(o, RingDevices) else (o.device,)
                    for device in devices:
                        delay = answer_delay(agents[device].behaviour, rng)
                        if delay is not None:
                            push(now + delay, Answered(0, o.call_id, device))
        else:
            raise AssertionError("the day did not end")
    return engine, records, notes


def _agent_reacts(note: AgentChanged, agents, rng, push, legs) -> None:
    """What the simulated agent does next: talk then hang up or escalate, wrap up, press
    ready again after a missed ring."""
    agent = agents.get(note.device)
    if agent is None:
        return
    behaviour, now = agent.behaviour, note.at
    if note.state is AgentState.ON_CALL and note.since == now:
        legs[note.call_id] = 0  # connected: the caller no longer gives up
        end = now + behaviour.handling.sample(rng)
        group = escalation(behaviour, rng)
        if group is not None:
            push(end, Escalate(0, note.device, note.call_id, group))
        else:
            push(end, Cleared(0, note.call_id, note.device))
    elif note.state is AgentState.WRAP_UP and note.since == now:
        push(now + behaviour.wrap_up.sample(rng), WrapUpDone(0, note.device))
    elif note.status is AgentStatus.NOT_READY and note.reason == 9 and note.since == now:
        push(now + behaviour.ready_after_miss, Ready(0, note.device))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def day(request, tmp_path_factory):
    """The simulated day in an SQLite file, then in a PostgreSQL database."""
    if request.param == "sqlite":
        db = str(tmp_path_factory.mktemp("report") / "day.db")
    else:
        db = request.getfixturevalue("pg_module_database")
    engine, records, notes = simulate_day(db)
    return db, engine, records, notes


def test_the_simulated_day_is_a_real_day(day):
    _, _, records, notes = day
    outcomes = {str(r.outcome) for r in records}
    assert len(records) > 200
    assert {"answered", "abandoned", "closed"} <= outcomes
    assert any(r.escalated_to for r in records) and any(r.leg == 2 for r in records)
    assert any(n.status is AgentStatus.NOT_READY for n in notes)


def test_report_figures_equal_the_engines(day):
    db, engine, records, notes = day
    config = load_config(CONFIG)
    settings = ReportSettings.from_config(config)
    since, until = day_window(datetime.fromisoformat(DAY).date(), TZ)
    with open_readonly(db) as store:
        report = store_report(store, settings, since, until)
    options = {
        "sl_threshold": {q.id: q.sl_threshold for q in config.queues.values()},
        "short_abandon": config.acd.short_abandon,
    }
    end = max(max(r.ended_at for r in records), notes[-1].at)
    for by in ("hour", "day"):
        staffed = staffed_seconds(notes, end, by, TZ)
        expected = grouped(records, by, TZ, staffed=staffed, **options)
        got = {row.key: row.figures for row in report.rows[by] if row.key in expected}
        assert got == expected
    expected = grouped(records, "queue", TZ, **options)
    assert {row.key: row.figures for row in report.rows["queue"]} == expected
    for queue, figures in expected.items():  # the engine's live counts of the day
        live = engine.queue_figures(queue)
        assert live.waiting == 0
        for name in (
            "offered",
            "answered",
            "answered_in_sl",
            "abandoned",
            "short_abandoned",
            "overflowed",
            "closed",
            "rejected",
            "failed",
        ):
            assert getattr(live, name) == getattr(figures, name), (queue, name)
    by_queue = {row.key: row for row in report.rows["queue"]}
    for queue, target in (("front-desk", 0.99), ("civil-status", 0.95)):
        assert by_queue[queue].met is (by_queue[queue].figures.answer_rate >= target)
    hours = [row.key[11:] for row in report.rows["hour"]]
    assert hours[0] == "07" and "18" in hours  # agents log in at 07:55, calls until 19:00
    assert max(row.agents_ready for row in report.rows["hour"]) <= 6 + 5


def test_acd_report_cli_on_the_day(day, tmp_path):
    db, _, records, _ = day
    runner = CliRunner()
    args = ["report", "--db", str(db), "--config", str(CONFIG), "--day", DAY]
    result = runner.invoke(cli, [*args, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total"]["calls"] == len(records)
    assert data["target"] == 0.99
    assert sum(h["offered"] for h in data["hour"]) == data["total"]["offered"]

    result = runner.invoke(cli, [*args, "--csv", str(tmp_path / "day.csv")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert max(map(len, lines)) <= 80
    header = next(i for i, line in enumerate(lines) if line.startswith("hour "))
    assert lines[header + 1].startswith("07:00")
    total = next(line for line in lines if line.startswith("total")).split()
    assert int(total[1]) == data["total"]["offered"]
    csv_lines = (tmp_path / "day.csv").read_text().splitlines()
    assert csv_lines[0].startswith("hour,calls,offered")
    assert len(csv_lines) == len(data["hour"]) + 2

    result = runner.invoke(cli, [*args, "--by", "queue", "--queue", "front-desk"])
    assert result.exit_code == 0, result.output
    assert "front-desk" in result.output and "civil-status" not in result.output.split("SL")[-1]

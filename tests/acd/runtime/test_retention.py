"""Retention: purging call detail keeps the figures, so a report across the purge
boundary equals the report made before the purge; the detail and the personal data are
gone."""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
from datetime import datetime
from pathlib import Path

import pytest

from acd.config import load_config
from acd.planning.reporting import ReportSettings, day_window, render_text, store_report, to_csv
from acd.runtime.retention import cutoff, purge
from acd.runtime.store import open_readonly, open_store
from acd.runtime.store_sqlite import SqliteStore as CallStore

_spec = importlib.util.spec_from_file_location(
    "report_day", Path(__file__).parents[1] / "planning" / "test_report_day.py"
)
_day = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_day)  # its simulated day (a test module is not importable)
CONFIG, DAY, TZ, simulate_day = _day.CONFIG, _day.DAY, _day.TZ, _day.simulate_day


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    db = tmp_path_factory.mktemp("retention") / "day.db"
    simulate_day(db, seed=3)
    return db


@pytest.fixture(scope="module")
def simulated_pg(pg_module_database):
    simulate_day(pg_module_database, seed=3)
    return pg_module_database


@pytest.fixture(params=["sqlite", "postgresql"])
def day_copy(request, tmp_path):
    """A copy of the simulated day: an SQLite file, then a PostgreSQL database (made
    from the simulated one as its template), dropped after."""
    if request.param == "sqlite":
        db = tmp_path / "acd.db"
        shutil.copy(request.getfixturevalue("simulated"), db)
        yield str(db)
        return
    from acd.runtime.store_pg import scratch_database

    server, template = request.getfixturevalue("simulated_pg").rsplit("/", 1)
    with scratch_database(server, "acd_test_copy", template=template) as url:
        yield url


def _report(db, queue=None):
    config = load_config(CONFIG)
    settings = ReportSettings.from_config(config, queue=queue)
    since, until = day_window(datetime.fromisoformat(DAY).date(), TZ)
    with open_readonly(db) as store:
        return store_report(store, settings, since, until)


def _flat(value, path=""):
    """``(path, value)`` of every leaf of a JSON-like value."""
    if isinstance(value, dict):
        return [x for k, v in value.items() for x in _flat(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [x for i, v in enumerate(value) for x in _flat(v, f"{path}[{i}]")]
    return [(path, value)]


def _same_figures(a, b) -> None:
    """Equal reports, floats to 1e-12 (sums of hours vs sums of legs), the agents-ready
    step chart and the per-agent rows aside (not kept for purged hours: the kept figures
    name no agent)."""
    one, two = a.to_dict(), b.to_dict()
    for data in (one, two):
        data.pop("agents_ready_series")
        data.pop("agent")
    one, two = _flat(one), _flat(two)
    assert [p for p, _ in one] == [p for p, _ in two]
    for (path, x), (_, y) in zip(one, two, strict=True):
        if isinstance(x, float) and isinstance(y, float):
            assert math.isclose(x, y, rel_tol=1e-12, abs_tol=1e-9), path
        else:
            assert x == y, path


@pytest.mark.parametrize("queue", [None, "front-desk"])
def test_a_report_across_the_purge_boundary_equals_the_report_before(day_copy, queue):
    db = day_copy
    before = _report(db, queue)
    noon = datetime.fromisoformat(f"{DAY}T12:00").replace(tzinfo=TZ).timestamp()
    with open_store(db) as store:
        legs = sum(1 for _ in store.calls())
        deleted = purge(store, noon, load_config(CONFIG))
        assert 0 < deleted["calls"] < legs and deleted["agent_changes"] > 0
        assert next(store.calls(until=noon), None) is None
        assert not store.queue_log(until=noon)
        assert all(c.at >= noon for c in store.agent_changes())
    after = _report(db, queue)
    assert render_text(after) == render_text(before)
    for by in ("hour", "day", "queue"):
        assert to_csv(after, by) == to_csv(before, by)
    _same_figures(after, before)
    # a second purge later in the day adds to the figures kept by the first
    with open_store(db) as store:
        purge(store, noon + 4 * 3600, load_config(CONFIG))
    assert render_text(_report(db, queue)) == render_text(before)


def test_cutoff_is_the_local_midnight_retention_days_ago():
    now = datetime.fromisoformat("2026-12-05T01:30").replace(tzinfo=TZ).timestamp()
    expected = datetime.fromisoformat("2026-12-03T00:00").replace(tzinfo=TZ).timestamp()
    assert cutoff(now, 2, "Europe/Paris") == expected


def test_report_json_of_a_purged_day_still_has_its_rows(day_copy):
    db = day_copy
    with open_store(db) as store:
        purge(store, datetime.fromisoformat(f"{DAY}T23:59").replace(tzinfo=TZ).timestamp())
    data = json.loads(json.dumps(_report(db).to_dict()))
    assert data["total"]["calls"] > 200 and len(data["hour"]) >= 10


def test_acd_run_purges_old_detail_and_captures_at_start(simulated, tmp_path, caplog):
    """The controller (real pty, no switch answering) purges at start: the simulated day
    is older than retention_days = 30, so its legs go and its report stays the same."""
    import asyncio
    import dataclasses
    import logging
    import os
    import time
    import tty

    from acd.runtime.controller import Controller
    from drivers.capture import CaptureWriter

    db = tmp_path / "acd.db"
    shutil.copy(simulated, db)
    before = _report(db)
    capture = tmp_path / "line.cap"
    capture.write_text("")
    old = [tmp_path / "line.cap.1", tmp_path / "line.cap.2"]
    for n, path in enumerate(old):
        path.write_text("")
        age = time.time() - (10 + 40 * n) * 86400.0  # 10 and 50 days
        os.utime(path, (age, age))
    config = load_config(CONFIG)
    config = dataclasses.replace(
        config,
        store=dataclasses.replace(config.store, retention_days=30, capture_retention_days=30),
    )
    master, slave = os.openpty()
    tty.setraw(master)
    try:
        store = CallStore(db)
        controller = Controller(
            config, url=os.ttyname(slave), store=store, mqtt=False, capture=CaptureWriter(capture)
        )

        async def main() -> None:
            stop = asyncio.Event()
            asyncio.get_running_loop().call_later(1.0, stop.set)
            await controller.run(stop)

        with caplog.at_level(logging.INFO, logger="acd"):
            asyncio.run(main())
        store.close()
    finally:
        os.close(master)
        os.close(slave)
    with open_readonly(db) as kept:
        assert next(kept.calls(), None) is None
    assert render_text(_report(db)) == render_text(before)
    assert "retention: purged before" in caplog.text
    assert old[0].exists() and not old[1].exists()


def test_records_purge_and_export_on_the_command_line(simulated, tmp_path):
    import sqlite3

    from click.testing import CliRunner

    from acd.cli import cli

    db = tmp_path / "acd.db"
    shutil.copy(simulated, db)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE calls SET caller = '0612345678' WHERE id IN (1, 2)")
        masked = conn.execute("SELECT caller FROM calls WHERE id = 3").fetchone()[0]
    site = ["--config", str(CONFIG), "--db", str(db)]
    out = CliRunner().invoke(cli, ["records", "export", *site, "--caller", "0612345678", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)
    assert data["masked"] is False and len(data["calls"]) == 2
    assert {c["caller"] for c in data["calls"]} == {"0612345678"}
    assert data["calls"][0]["arrived_at"].startswith(DAY)
    full = "06" + masked.replace("*", "9")[2:]  # a full number whose masked form was stored
    out = CliRunner().invoke(cli, ["records", "export", *site, "--caller", full])
    assert out.exit_code == 0 and "numbers are stored masked" in out.output

    report = ["report", *site, "--day", DAY]
    first = CliRunner().invoke(cli, report).output
    out = CliRunner().invoke(cli, ["records", "purge", *site, "--before", "2026-03-11"])
    assert out.exit_code == 0, out.output
    assert out.output.startswith("purged before 2026-03-11: ") and "figures are kept" in out.output
    assert CliRunner().invoke(cli, report).output == first
    gone = CliRunner().invoke(cli, ["records", "export", *site, "--caller", "0612345678"])
    assert gone.output.strip().endswith("no call of 0612345678 stored")
    bad = CliRunner().invoke(cli, ["records", "purge", *site, "--before", "11/03/2026"])
    assert bad.exit_code == 2 and "dates look like 2026-03-10" in bad.output

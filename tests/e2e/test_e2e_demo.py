"""`acd demo` end to end: the simulated day over a pty, then the day's report."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from acd.cli import cli

pytestmark = pytest.mark.timeout(120)


def test_demo_runs_the_day_and_reports_it_against_the_target(tmp_path):
    db = tmp_path / "day.db"
    result = CliRunner().invoke(cli, ["demo", "--calls", "60", "--speed", "2500", "--db", str(db)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "report, 2026-03-10 (Europe/Paris)" in out and "Target: 99.0 % answered" in out
    assert "12:00" in out and "total" in out and "Target " in out.split("total")[-1]
    assert f"Call records kept in {db}" in out
    with sqlite3.connect(db) as conn:
        (legs,) = conn.execute("SELECT count(*) FROM calls WHERE leg = 1").fetchone()
    assert legs >= 40

    again = CliRunner().invoke(cli, ["demo", "--calls", "60", "--db", str(db)])
    assert (again.exit_code, again.stderr) == (
        1,
        f"Error: {db} already holds calls of 2026-03-10: the report would count them twice;"
        " give another --db, or --append to add this run to them\n",
    )
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM calls WHERE leg = 1").fetchone() == (legs,)


def test_demo_help_shows_an_example():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0 and "acd demo --calls 700" in result.output

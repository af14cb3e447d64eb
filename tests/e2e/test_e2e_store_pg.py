"""The controller on a PostgreSQL store, end to end: `acd demo` routes a simulated day
over a pty into a PostgreSQL database, and `acd report` reads the same day back."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.runtime.store import open_readonly

pytestmark = pytest.mark.timeout(120)
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "town-hall.toml"


def test_a_day_routed_into_postgresql_reports_as_it_was_run(pg_url):
    result = CliRunner().invoke(cli, ["demo", "--calls", "60", "--speed", "10000", "--db", pg_url])
    assert result.exit_code == 0, result.output
    assert f"Call records kept in {pg_url}" in result.output
    with open_readonly(pg_url) as store:
        legs = [r for r in store.calls() if r.leg == 1]
        assert len(legs) >= 40 and len({r.call_id for r in legs}) == len(legs)
        assert next(store.agent_changes(), None) is not None
    site = ["--config", str(EXAMPLE), "--db", pg_url]
    report = CliRunner().invoke(cli, ["report", *site, "--day", "2026-03-10"])
    assert report.exit_code == 0, report.output
    demo_total = next(line for line in result.output.splitlines() if line.startswith("total"))
    assert (
        demo_total.split()[:3]
        == next(line for line in report.output.splitlines() if line.startswith("total")).split()[:3]
    )

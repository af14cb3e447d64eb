"""`acd schedule` through the real click group: table, JSON, files, one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli

NEED = "start,agents\n" + "".join(
    f"2026-12-0{d} {h:02d}:{m:02d},{2 if 10 <= h < 12 else 1}\n"
    for d in (7, 8)
    for h in range(8, 14)
    for m in (0, 30)
)

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "town-hall.toml"
PIN = "scrypt$16384$8$1$c2FsdA$" + "A" * 43  # shape only: schedule never checks a PIN


def run(*args: str):
    return CliRunner().invoke(cli, ["schedule", *args])


@pytest.fixture
def need(tmp_path):
    path = tmp_path / "need.csv"
    path.write_text(NEED)
    return path


def test_a_free_head_count_table_csv_and_chart(need, tmp_path):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "shifts.csv", tmp_path / "cover.png"
    result = run("--requirements", str(need), "--agents", "2", "--contract-hours", "10",
                 "--out", str(out), "--png", str(png))  # fmt: skip
    assert result.exit_code == 0, result.output
    for label in ("required", "shortfall", "over-staffing", "LP bound", "gap", "Mon 2026-12-07"):
        assert label in result.output
    rows = list(csv.DictReader(out.open()))
    assert rows and list(rows[0]) == ["agent", "day", "start", "end", "break_start", "break_end"]
    assert {r["agent"] for r in rows} <= {"agent-01", "agent-02"}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_json_and_named_agents_from_the_config(need, tmp_path):
    config = tmp_path / "site.toml"
    config.write_text(
        "[queues.info]\n"
        f'[agents.ann]\npin_hash = "{PIN}"\nskills = {{ info = 1 }}\ncontract_hours = 8\n'
        f'[agents.bob]\npin_hash = "{PIN}"\nskills = {{ info = 1 }}\n'
        "[schedule]\nshift_hours = [4]\n"
    )
    result = run("--requirements", str(need), "--config", str(config), "--contract-hours", "4",
                 "--json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["lp_bound"] <= data["objective"] + 1e-6
    worked = {}
    for shift in data["shifts"]:
        worked[shift["agent"]] = worked.get(shift["agent"], 0) + 4
        assert shift["break_start"] is None  # 4-hour shifts only: no pause needed
    assert worked.get("ann", 0) <= 8 and worked.get("bob", 0) <= 4
    assert set(data["shortfall_by_day"]) == {"2026-12-07", "2026-12-08"}


def test_the_shipped_town_hall_agents(need, tmp_path):
    out = tmp_path / "shifts.csv"
    result = run("--requirements", str(need), "--config", str(EXAMPLE), "--out", str(out),
                 "--queue", "front-desk")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "6 named agents (210 contract hours)" in result.output
    agents = {row["agent"] for row in csv.DictReader(out.open())}
    assert agents and agents <= {"1001", "1002", "1003", "1004", "1005", "1006"}
    # the specialists have no contract hours: every agent needs them, or --contract-hours
    everyone = run("--requirements", str(need), "--config", str(EXAMPLE))
    assert everyone.exit_code == 1
    assert "agents.2001.contract_hours is required to schedule" in everyone.output
    unknown = run("--requirements", str(need), "--config", str(EXAMPLE), "--queue", "nope")
    assert unknown.exit_code == 1 and "no queue 'nope' (queues: civil-status" in unknown.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give one of --requirements FILE or --forecast FILE"),
        (["--agents", "3"], "--agents needs --contract-hours"),
        (["--agents", "3", "--contract-hours", "35", "--aht", "180"], "--aht goes with --forecast"),
        (["--agents", "3", "--contract-hours", "35", "--confidence", "0.8"],
         "--confidence goes with --forecast (the requirement file gives agents)"),
        (["--agents", "3", "--contract-hours", "35", "--threshold", "30"],
         "--threshold goes with --forecast"),
        (["--agents", "3", "--contract-hours", "35", "--config", str(EXAMPLE), "--queue", "x"],
         "--queue picks the named agents of --config: not with --agents N"),
        (["--agents", "3", "--contract-hours", "35", "--shift-hours", "4,x"], "--shift-hours"),
        (["--agents", "3", "--contract-hours", "35", "--shift-hours", "7"], "no shift fits"),
    ],
)  # fmt: skip
def test_errors_are_one_line(need, args, message):
    result = run("--requirements", str(need), *args) if args else run()
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_forecast_errors_are_one_line(tmp_path):
    forecast = tmp_path / "f.csv"
    forecast.write_text("start,mean,lo80,hi80\n2026-12-07 08:00,10,8,12\n2026-12-07 09:00,x,1,2\n")
    base = ["--forecast", str(forecast), "--agents", "2", "--contract-hours", "35"]
    for extra, message in (
        ([], "--forecast needs --aht"),
        (["--aht", "180"], "--forecast needs a target"),
        (["--aht", "180", "--min-answer-rate", "0.99"], "needs --patience"),
        (["--aht", "180", "--patience", "60", "--min-answer-rate", "0.99"], "f.csv:3: mean"),
    ):
        result = run(*base, *extra)
        assert result.exit_code == 1, result.output
        assert message in result.output
        assert len(result.output.strip().splitlines()) == 1
    missing = run("--requirements", str(tmp_path / "none.csv"), "--agents", "2",
                  "--contract-hours", "35")  # fmt: skip
    assert missing.exit_code == 1 and "cannot read" in missing.output

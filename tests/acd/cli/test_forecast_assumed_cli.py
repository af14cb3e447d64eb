"""`acd forecast --profile --per-day`: a forecast before any record exists."""

import json
from pathlib import Path

from click.testing import CliRunner

from acd.cli import cli
from acd.planning.demand import load_forecast

PROFILE = str(Path(__file__).resolve().parents[3] / "examples" / "profile-weekday.csv")


def run(*args: str):
    return CliRunner().invoke(cli, ["forecast", *args])


def test_assumed_week_of_the_reference_town_hall(tmp_path):
    out = tmp_path / "week.csv"
    result = run(
        "--profile", PROFILE, "--per-day", "500", "--start", "2026-12-07",
        "--interval", "15", "--day-sd", "0.1", "--out", str(out),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "Mon 2026-12-07      500" in result.output
    assert "Sat 2026-12-12      250" in result.output  # 08:00-13:00: half the day's shares
    assert "total             2750" in result.output
    fc = load_forecast(out)
    assert fc.interval_s == 900 and len(fc.intervals) == 5 * 44 + 20
    assert all(abs(c - 0.01) < 1e-4 for c in fc.day_spread().values())


def test_assumed_json_and_errors(tmp_path):
    result = run("--profile", PROFILE, "--per-day", "250", "--start", "2026-12-07", "--json")
    data = json.loads(result.output)
    assert len(data["intervals"]) == 60 and data["day_sd"] == 0.0
    assert sum(i["mean"] for i in data["intervals"]) == 1375
    for args, message in [
        (["--profile", PROFILE], "--profile and --per-day go together"),
        (["--profile", PROFILE, "--per-day", "5", "--history", "x.csv"], "not with --history"),
        (["--profile", PROFILE, "--per-day", "5", "--interval", "45"], "interval must divide"),
        (
            ["--profile", PROFILE, "--per-day", "5", "--queue", "front-desk"],
            "--queue is for the call records: --profile assumes the traffic",
        ),
        (
            ["--profile", PROFILE, "--per-day", "5", "--holidays", "none"],
            "--holidays is for a forecast from history",
        ),
    ]:
        result = run(*args)
        assert result.exit_code == 1 and message in result.output, (args, result.output)

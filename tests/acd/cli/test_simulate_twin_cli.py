"""`acd simulate --schedule --forecast`: the twin through the click group."""

import json

from click.testing import CliRunner

from acd.cli import cli
from tests.acd.planning.test_demand import forecast_text

SCHEDULE = """agent,day,start,end,break_start,break_end
A1,2026-12-07,08:00,12:00,10:00,10:15
A2,2026-12-07,08:00,12:00,,
A1,2026-12-08,08:00,12:00,,
A2,2026-12-08,08:00,12:00,,
A2,2026-12-14,08:00,12:00,,
"""


def files(tmp_path):
    fc, sc = tmp_path / "forecast.csv", tmp_path / "shifts.csv"
    fc.write_text(forecast_text([10, 20, 20, 10], sd_factor=0.1, days=2))
    sc.write_text(SCHEDULE)
    return ["--forecast", str(fc), "--schedule", str(sc)]


def run(*args: str):
    return CliRunner().invoke(cli, ["simulate", *args])


ARGS = ["--aht", "180", "--patience", "120", "--weeks", "6"]


def test_twin_table(tmp_path):
    result = run(*files(tmp_path), *ARGS)
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Twin: 2 agents of" in out and "(15.8 agent-hours on the phones)" in out
    assert "(2 days, 120 calls forecast, day level ±10 %)" in out
    assert "target 99 % answered" in out
    assert "Mon 2026-12-07" in out and "Tue 2026-12-08" in out
    assert "weeks reaching 99 %" in out and "of 6" in out
    assert "days reaching 99 %" in out and "of 12" in out
    assert "Schedule days outside the forecast, not simulated: 2026-12-14." in out


def test_twin_json_is_reproducible(tmp_path):
    args = [*files(tmp_path), *ARGS, "--target", "0.8", "--json"]
    first, second = run(*args), run(*args, "--jobs", "2")
    assert first.exit_code == 0, first.output
    a, b = json.loads(first.output), json.loads(second.output)
    assert a["mode"] == "twin" and a["target"] == 0.8 and a["weeks"] == 6
    assert a["weeks_met"]["n"] == 6 and a["days_met"]["n"] == 12
    assert 0 <= a["weeks_met"]["low"] <= a["weeks_met"]["share"] <= a["weeks_met"]["high"] <= 1
    assert a["calls_simulated"] > 0 and 0.5 < a["answer_rate"] <= 1
    for key in ("weeks_met", "days_met", "answer_rate", "calls_simulated"):
        assert a[key] == b[key]  # the same figures for any number of jobs


def test_twin_errors(tmp_path):
    both = files(tmp_path)
    cases = [
        (both[:2] + ARGS, "needs --forecast FILE and one of --schedule FILE, --requirements"),
        ([*both, "--patience", "120"], "give --aht for the twin"),
        (both + ARGS + ["--agents", "3"], "--agents: not with the twin"),
        (both + ARGS + ["--replications", "3"], "--replications: not with the twin"),
        (["--agents", "3", "--aht", "1", "--patience", "1", "--weeks", "3"], "--weeks is for"),
        (both + ARGS + ["--target", "1.5"], "target must be in ]0, 1]"),
        ([*both[:2], "--schedule", str(tmp_path / "none.csv"), *ARGS], "cannot read the schedule"),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_day_without_shifts_is_named(tmp_path):
    fc, sc = tmp_path / "forecast.csv", tmp_path / "shifts.csv"
    fc.write_text(forecast_text([10, 20], days=2))
    sc.write_text("agent,day,start,end,break_start,break_end\nA1,2026-12-07,08:00,10:00,,\n")
    result = run("--forecast", str(fc), "--schedule", str(sc), *ARGS)
    assert result.exit_code == 0, result.output
    assert (
        "No shift on Tue 2026-12-08, though calls are forecast: none is answered." in result.output
    )
    tuesday = next(line for line in result.output.splitlines() if "Tue 2026-12-08" in line)
    assert tuesday.split()[2:4] == ["0.00", "%"]  # answered
    data = json.loads(run("--forecast", str(fc), "--schedule", str(sc), *ARGS, "--json").output)
    assert data["unstaffed_days"] == ["2026-12-08"]
    assert data["answer_rate_by_day"]["2026-12-08"] == 0.0
    assert data["answer_rate_by_day"]["2026-12-07"] > 0.5


def test_a_requirement_played_exactly(tmp_path):
    fc, need = tmp_path / "forecast.csv", tmp_path / "need.csv"
    fc.write_text(forecast_text([10, 20], days=1))
    need.write_text("start,agents\n2026-12-07T08:00,2\n2026-12-07T09:00,3\n")
    result = run("--forecast", str(fc), "--requirements", str(need), *ARGS)
    assert result.exit_code == 0, result.output
    assert f"Twin: the requirement {need} played exactly (5.0 agent-hours on the phones)" in (
        result.output
    )
    both = run("--forecast", str(fc), "--requirements", str(need), "--schedule", str(need), *ARGS)
    assert both.exit_code == 1 and "one of --schedule FILE, --requirements FILE" in both.output


def test_judged_on_the_service_level(tmp_path):
    args = [*files(tmp_path), *ARGS, "--json"]
    on_sl = json.loads(run(*args, "--sl", "0.5").output)
    assert on_sl["target_metric"] == "sl_offered" and on_sl["target"] == 0.5
    answered = json.loads(run(*args).output)
    assert answered["target_metric"] == "answer_rate"
    assert on_sl["calls_simulated"] == answered["calls_simulated"]  # the same weeks
    text = run(*files(tmp_path), *ARGS, "--sl", "0.5").output
    assert "target 50 % answered within 20 s (of offered calls)" in text
    assert "weeks reaching 50 % in 20 s" in text
    both = run(*files(tmp_path), *ARGS, "--sl", "0.5", "--target", "0.9")
    assert both.exit_code == 1 and "not both" in both.output

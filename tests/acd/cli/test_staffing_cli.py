"""`acd staffing` through the real click group: tables, JSON, per-hour plans, errors."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli

EXAMPLE_PROFILE = Path(__file__).resolve().parents[3] / "examples" / "profile-weekday.csv"
ERLANG_A = ["--calls", "84", "--aht", "240", "--patience", "60"]  # 84 calls an hour, patient 60 s


def run(*args: str):
    return CliRunner().invoke(cli, ["staffing", *args])


def test_published_example_as_a_table():
    result = run(
        *[
            "--calls",
            "100",
            "--interval",
            "1800",
            "--aht",
            "180",
            "--sl",
            "0.8",
            "--shrinkage",
            "0.3",
        ]
    )
    assert result.exit_code == 0, result.output
    lines = {line.split("  ")[1].strip(): line for line in result.output.splitlines()[1:]}
    assert lines["traffic"].split()[-2:] == ["10.00", "erlangs"]
    assert lines["agents on the phones"].split()[-1] == "14"
    assert "20 (shrinkage 30.00 %)" in lines["agents scheduled"]
    assert lines["P(wait)"].endswith("17.41 %")
    assert "88.84 % of offered calls" in lines["answered within 20 s"]
    assert lines["ASA (answered calls)"].endswith("7.8 s")
    assert "Erlang C" in result.output.splitlines()[0]


def test_json_has_the_documented_keys():
    result = run(*["--calls", "100", "--interval", "1800", "--aht", "180", "--sl", "0.8", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for key in (
        "agents",
        "agents_scheduled",
        "traffic_erlangs",
        "p_wait",
        "sl_offered",
        "sl_answered",
        "asa_s",
        "p_abandon",
        "answer_rate",
        "occupancy",
    ):
        assert key in data
    assert data["agents"] == 14 and data["agents_scheduled"] == 14
    assert data["p_wait"] == pytest.approx(0.1741319336, abs=1e-10)
    assert data["sl_offered"] == pytest.approx(0.8883500192, abs=1e-10)
    assert data["asa_s"] == pytest.approx(7.835937, abs=1e-6)
    assert data["model"] == "erlang_c" and data["unmet"] == []


def test_erlang_a_staffing_for_the_answer_rate_target():
    data = json.loads(run(*ERLANG_A, "--min-answer-rate", "0.99", "--json").output)
    assert data["model"] == "erlang_a"
    assert data["answer_rate"] >= 0.99
    fewer = json.loads(run(*ERLANG_A, "--json", "--agents", str(data["agents"] - 1)).output)
    assert fewer["answer_rate"] < 0.99
    assert data["p_abandon"] == pytest.approx(data["mean_wait_s"] / 60)


def test_evaluating_a_team_reports_missed_targets():
    args = [*ERLANG_A, "--agents", "6", "--min-answer-rate", "0.99"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "MISSED: answer_rate >= 0.99" in result.output
    data = json.loads(run(*args, "--json").output)
    assert data["agents"] == 6 and data["unmet"] == ["answer_rate >= 0.99"]


def test_per_hour_plan_over_the_reference_week():
    args = ["--profile", str(EXAMPLE_PROFILE), "--per-day", "700", "--aht", "240"]
    args += ["--patience", "60", "--min-answer-rate", "0.99"]
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "mon, tue, wed, thu, fri" in result.output and "\nsat\n" in result.output
    assert "18-19" in result.output
    data = json.loads(run(*args, "--json").output)
    hours = data["hours"]
    assert {h["day"] for h in hours} == {"mon", "tue", "wed", "thu", "fri", "sat"}
    assert len(hours) == 5 * 11 + 5
    assert sum(h["calls"] for h in hours if h["day"] == "mon") == pytest.approx(700)
    peak = next(h for h in hours if h["day"] == "tue" and h["hour"] == 10)
    assert peak["calls"] == pytest.approx(84) and peak["answer_rate"] >= 0.99
    assert all(h["unmet"] == [] for h in hours)


def test_per_hour_plan_takes_opening_hours_from_a_site_config(tmp_path):
    config = tmp_path / "site.toml"
    config.write_text('[calendars.main.hours]\nmon = "08:30-12:00"\nwed = ["09:00-10:00"]\n')
    args = ["--profile", str(EXAMPLE_PROFILE), "--per-day", "300", "--aht", "200"]
    data = json.loads(run(*args, "--sl", "0.8", "--config", str(config), "--json").output)
    spans = [(h["day"], h["hour"], h["open_minutes"]) for h in data["hours"]]
    assert spans == [
        ("mon", 8, 30),
        ("mon", 9, 60),
        ("mon", 10, 60),
        ("mon", 11, 60),
        ("wed", 9, 60),
    ]
    assert data["hours"][0]["calls"] == pytest.approx(300 * 0.07 / 2)
    missing = run(*args, "--sl", "0.8", "--config", str(config), "--calendar", "other")
    assert missing.exit_code == 1 and "no calendar 'other'" in missing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ("--calls 100 --aht -5 --sl 0.8", "AHT must be a positive"),
        ("--calls 100 --aht 180 --sl 0.8 --shrinkage 1", "shrinkage must be in [0, 1["),
        ("--calls 100 --aht 180", "give a target"),
        ("--aht 180 --sl 0.8", "give --calls"),
        ("--calls 100 --aht 180 --sl 0.8 --per-day 300", "--per-day needs --profile"),
        ("--calls 100 --interval 1800 --aht 180 --agents 9", "9 agents cannot carry 10 erlangs"),
        ("--calls 1e9 --aht 180 --sl 0.8", "no team of up to 100000 agents"),
        ("--calls 100 --aht 180 --sl 1.2", "sl must be in"),
        ("--calls 100 --aht 180 --max-asa 20 --sl-kind wait", "--sl-kind goes with --sl"),
        ("--calls 100 --aht 180 --sl 0.8 --calendar main", "--calendar goes with --profile"),
        (
            f"--profile {EXAMPLE_PROFILE} --per-day 300 --aht 200 --sl 0.8 --interval 1800",
            "--interval goes with --calls: a profile is staffed hour by hour",
        ),
    ],
)
def test_user_errors_are_one_line_exit_1(args, message):
    result = run(*args.split())
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_bad_profile_file_names_the_line(tmp_path):
    profile = tmp_path / "profile.csv"
    profile.write_text("hour,share\n08,7\n9,eleven\n")
    result = run("--profile", str(profile), "--per-day", "250", "--aht", "240", "--sl", "0.8")
    assert result.exit_code == 1
    assert f"{profile}:3: share must be a number, got 'eleven'" in result.output
    missing = run(
        "--profile", str(tmp_path / "x.csv"), "--per-day", "1", "--aht", "1", "--sl", "0.8"
    )
    assert missing.exit_code == 1 and "cannot read the profile" in missing.output


def test_help_shows_an_example():
    result = run("--help")
    assert result.exit_code == 0
    assert "acd staffing --calls 100 --interval 1800 --aht 180" in result.output

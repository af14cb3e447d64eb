"""`acd simulate`: tables, JSON, sweeps and user errors (click's CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli

CONFIG = str(Path(__file__).resolve().parents[3] / "examples" / "town-hall.toml")
TEAM = ["--agents", "6", "--aht", "180", "--patience", "120"]


def run(*args: str):
    return CliRunner().invoke(cli, ["simulate", *args])


def test_table_shows_hours_overall_erlang_a_and_the_target_in_words():
    result = run(*TEAM, "--calls-per-day", "400", "--replications", "3")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "answer rate (95 % CI)" in out and "Erlang A" in out
    lines = out.splitlines()
    assert [ln[:5] for ln in lines if ln[:2].isdigit() and ln[2:5] == ":00"] == [
        f"{h:02d}:00" for h in range(8, 19)
    ]
    assert any(ln.startswith("all ") for ln in lines)
    assert "the simulated system is that model" in out
    assert "Target: the 99 % target" in out
    assert "Warning" not in out
    assert "\r" not in out  # no progress line when not on a terminal


def test_json_carries_intervals_per_hour_and_the_erlang_a_expectation():
    result = run(*TEAM, "--calls-per-day", "300", "--replications", "3", "--days", "2", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mode"] == "flags" and data["queue"] == "front-desk"
    assert len(data["days"]) == 2 and data["replications"] == 3 and data["seed"] == 1
    rate = data["overall"]["answer_rate"]
    assert rate["n"] == 3 and 0 <= rate["low"] <= rate["mean"] <= rate["high"] <= 1
    assert sorted(data["hours"]) == [f"{h:02d}" for h in range(8, 19)]
    assert data["verdict"] in ("holds", "uncertain", "does not hold")
    model = data["erlang_a"]
    assert model["applies"] and model["exact"] and model["agents"] == 6
    assert 0.95 < model["overall"]["answer_rate"] <= 1
    assert data["calls_simulated"] > 2 * 3 * 300 * 0.8


def test_same_seed_same_figures():
    args = (*TEAM, "--calls-per-day", "300", "--replications", "2", "--json")
    first, again = json.loads(run(*args).output), json.loads(run(*args).output)
    other = json.loads(run(*args, "--seed", "2").output)
    assert first["overall"] == again["overall"]
    assert first["overall"] != other["overall"]


def test_sweep_answers_which_daily_volume_still_reaches_the_target():
    result = run(*TEAM, "--sweep-calls", "100:500:200", "--replications", "3", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [p["calls_per_day"] for p in data["sweep"]] == [100, 300, 500]
    holding = [p["calls_per_day"] for p in data["sweep"] if p["verdict"] == "holds"]
    assert data["highest_holding"] == (max(holding) if holding else None)
    models = [p["erlang_a_answer_rate"] for p in data["sweep"]]
    assert models == sorted(models, reverse=True)
    offered = [p["overall"]["offered"]["mean"] for p in data["sweep"]]
    assert offered == sorted(offered) and 80 < offered[0] < 120
    for p in data["sweep"]:
        rate = p["overall"]["answer_rate"]
        assert rate["low"] <= rate["mean"] <= rate["high"]


def test_sweep_table_names_the_highest_volume():
    result = run(*TEAM, "--sweep-calls", "50,100", "--replications", "3")
    assert result.exit_code == 0, result.output
    assert "calls/day" in result.output and "target" in result.output
    assert "Highest volume that holds" in result.output or "No volume" in result.output


def test_scenario_with_the_site_configuration():
    result = run(
        "--scenario", "town-hall-saturday-250", "--config", CONFIG, "--replications", "2",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["mode"] == "scenario" and data["scenario"] == "town-hall-saturday-250"
    assert sorted(data["hours"]) == ["08", "09", "10", "11", "12"]
    assert data["erlang_a"]["applies"] and not data["erlang_a"]["exact"]
    assert any("take breaks" in note for note in data["erlang_a"]["notes"])
    assert data["erlang_a"]["hours"]["10"]["agents"] < data["erlang_a"]["agents"]
    assert data["warnings"] == []  # the shipped scenario fits the site's wrap-up


def test_help_shows_examples():
    result = run("--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and "--sweep-calls 250:700:50" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--agents", "6", "--aht", "180"], "give --patience, --calls-per-day or --sweep-calls"),
        (["--scenario", "town-hall-saturday-250", "--agents", "6"], "--agents: not with"),
        (["--scenario", "town-hall-saturday-250"], "--scenario needs the site's configuration"),
        ([*TEAM, "--sweep-calls", "700:250:50"], "--sweep-calls must be FIRST:LAST:STEP"),
        ([*TEAM, "--sweep-calls", "a,b"], "--sweep-calls must be"),
        (
            [*TEAM, "--calls-per-day", "300", "--sweep-calls", "100,200"],
            "--calls-per-day and --sweep-calls exclude each other: the sweep sets the volume",
        ),
        ([*TEAM, "--calls-per-day", "300", "--sd", "30"], "--sd is for --distribution"),
        ([*TEAM, "--calls-per-day", "300", "--replications", "0"], "at least 1"),
        ([*TEAM, "--calls-per-day", "300", "--days", "0"], "days must be at least 1"),
        ([*TEAM, "--calls-per-day", "300", "--profile", "/nonexistent.csv"], "cannot read"),
        (["--scenario", "/nonexistent.toml", "--config", CONFIG], "not found"),
        ([*TEAM, "--calls-per-day", "300", "--config", CONFIG, "--queue", "nope"], "no queue"),
    ],
)
def test_user_errors_are_one_line_exit_1(args, message):
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_lognormal_handling_and_a_profile_file(tmp_path):
    profile = tmp_path / "profile.csv"
    profile.write_text("hour,share\n09,1\n10,3\n")
    result = run(
        *TEAM, "--calls-per-day", "100", "--distribution", "lognormal", "--sd", "60",
        "--profile", str(profile), "--replications", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert sorted(data["hours"]) == ["09", "10"]
    assert data["hours"]["10"]["offered"]["mean"] > data["hours"]["09"]["offered"]["mean"]
    assert data["erlang_a"]["notes"] == ["handling times are not exponential"]


def test_progress_line_only_on_a_terminal(monkeypatch):
    monkeypatch.setattr("acd.cli.progress.is_tty", lambda: True)
    result = CliRunner().invoke(
        cli, ["simulate", *TEAM, "--calls-per-day", "100", "--replications", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "simulated days: " in result.stderr and "\r" in result.stderr
    assert "simulated days" not in result.stdout
    # on the terminal (both streams): the line is erased before the first line of results
    assert result.output.split("What-if")[0].endswith("\r\x1b[K")

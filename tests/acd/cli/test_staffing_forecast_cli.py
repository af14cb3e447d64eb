"""`acd staffing --forecast`: the plan, the team's gap, --out and --json, errors."""

import json
from pathlib import Path

from click.testing import CliRunner

from acd.cli import cli
from tests.acd.planning.test_demand import forecast_text

ARGS = ["--aht", "180", "--patience", "120", "--min-answer-rate", "0.99"]


def run(*args: str):
    return CliRunner().invoke(cli, ["staffing", *args])


def write_forecast(tmp_path, sd_factor=0.15, days=6):
    path = tmp_path / "forecast.csv"
    path.write_text(forecast_text([20, 45, 50, 40, 30], sd_factor=sd_factor, days=days))
    return str(path)


def test_plan_with_the_team_gap(tmp_path):
    fc = write_forecast(tmp_path)
    out = tmp_path / "need.csv"
    result = run(
        "--forecast", fc, *ARGS, "--agents", "6", "--contract-hours", "35", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Erlang A (M/M/n+M) per interval (60-minute intervals)" in text
    assert "a day's level varies by 15 % (1 s.d.)" in text
    assert "Mon 2026-12-07" in text and "Sat 2026-12-12" in text
    assert "Week from Mon 2026-12-07 (6 days, 1,110 calls forecast)" in text
    needs = out.read_text().splitlines()
    assert needs[0] == "start,agents"
    assert len(needs) == 1 + 30
    hours = sum(int(line.split(",")[1]) for line in needs[1:])
    assert f"agent-hours on the phones        {hours:.1f}" in text
    assert "team: 6 x 35 h                   210.0" in text
    word = "short by" if hours > 210 else "spare"
    assert f"{word}" in text and f"{abs(hours - 210):.1f} agent-hours" in text
    assert f"{abs(hours - 210) / 35:.1f} full-time equivalents of 35 h" in text


def test_json_matches_the_csv(tmp_path):
    fc = write_forecast(tmp_path)
    out = tmp_path / "need.csv"
    result = run(
        "--forecast", fc, *ARGS, "--agents", "6", "--contract-hours", "35",
        "--shrinkage", "0.2", "--confidence", "0.8", "--out", str(out), "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["confidence"] == 0.8 and data["reached"]
    assert 0 < data["quantile"] < 1
    (week,) = data["weeks"]
    assert week["probability"] >= 0.8
    assert week["agent_hours"] == sum(i["agents"] for i in data["intervals"])
    assert week["paid_hours"] == week["agent_hours"] / 0.8
    assert week["short_hours"] == week["paid_hours"] - 210
    assert week["short_fte"] == week["short_hours"] / 35
    rows = [line.split(",") for line in out.read_text().splitlines()[1:]]
    assert [(i["start"], str(i["agents"])) for i in data["intervals"]] == [tuple(r) for r in rows]
    assert all(i["answer_rate"] >= 0.99 for i in data["intervals"])


def test_errors_are_one_line(tmp_path):
    fc = write_forecast(tmp_path)
    cases = [
        (["--forecast", fc, "--aht", "180", "--patience", "120"], "give a target"),
        (["--forecast", fc, *ARGS, "--agents", "6"], "--agents and --contract-hours go together"),
        (["--forecast", fc, *ARGS, "--calls", "5"], "--forecast and --calls exclude each other"),
        (["--forecast", str(tmp_path / "none.csv"), *ARGS], "cannot read the forecast"),
        (["--forecast", fc, *ARGS, "--confidence", "1.5"], "confidence must be in ]0, 1["),
        (["--calls", "5", *ARGS, "--out", "x.csv"], "--out goes with --forecast"),
        (["--forecast", fc, *ARGS, "--quantile", "0.8", "--confidence", "0.9"], "exclude each"),
        (["--calls", "5", *ARGS, "--confidence", "0.8"], "--confidence goes with --forecast"),
        (["--forecast", fc, *ARGS, "--interval", "1800"], "--interval goes with --calls"),
        (["--forecast", fc, *ARGS, "--calendar", "main"], "--calendar goes with --profile"),
        (
            ["--forecast", fc, *ARGS, "--agents", "6", "--contract-hours", "200"],
            "contract hours must be in ]0, 168]",
        ),
    ]
    for args, message in cases:
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.output, (args, result.output)
        assert "Traceback" not in result.output


def test_a_given_quantile(tmp_path):
    result = run("--forecast", write_forecast(tmp_path), *ARGS, "--quantile", "0.8")
    assert result.exit_code == 0, result.output
    assert "at the 80.0 % quantile of its level (--quantile)." in " ".join(result.output.split())


def test_the_example_of_the_docs_is_what_the_command_prints(tmp_path, monkeypatch):
    root = Path(__file__).resolve().parents[3]
    monkeypatch.chdir(tmp_path)
    week = tmp_path / "week.csv"
    examples = root / "examples"
    made = CliRunner().invoke(cli, ["forecast", "--history", str(examples / "counts-town-hall.csv"),
                                    "--config", str(examples / "town-hall.toml"),
                                    "--out", str(week)])  # fmt: skip
    assert made.exit_code == 0, made.output
    doc = (root / "docs" / "planning.md").read_text(encoding="utf-8")
    section = doc.split("## Staffing from a forecast", 1)[1]
    block = section.split("```", 2)[1].strip("\n").splitlines()
    assert block[0].startswith("$ acd staffing --forecast week.csv") and block[1].endswith(
        "need.csv"
    )
    printed = block[2:]
    result = run("--forecast", "week.csv", *ARGS, "--agents", "6", "--contract-hours", "35",
                 "--out", "need.csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == printed

"""``acd forecast`` from a CSV of counts and from a real SQLite call-record store: the
CSV written, the JSON, the backtest printout, and errors as one line."""

from __future__ import annotations

import csv
import json
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.core.records import CallRecord, Outcome
from acd.planning.forecast import Holidays, generate, history_csv
from acd.runtime.store_sqlite import SqliteStore

PARIS = ZoneInfo("Europe/Paris")


@pytest.fixture
def examples_dir():
    return Path(__file__).resolve().parents[3] / "examples"


def run(*args: str):
    result = CliRunner().invoke(cli, ["forecast", *args], prog_name="acd")
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def generated():
    return generate(date(2026, 1, 5), 12, per_day=200, step=30, seed=11)


@pytest.fixture
def counts_csv(tmp_path, generated):
    path = tmp_path / "counts.csv"
    path.write_text(history_csv(generated.history))
    return path


def test_forecast_from_a_csv_writes_one_row_per_interval(tmp_path, counts_csv):
    out = tmp_path / "forecast.csv"
    code, stdout, stderr = run("--history", str(counts_csv), "--out", str(out))
    assert code == 0, stderr
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["start", "mean", "lo80", "hi80"]
    assert rows[0]["start"] == "2026-03-30T08:00"  # Monday after the history's last week
    assert len(rows) == 5 * 20 + 6  # Mon-Fri 8-18 h and Saturday 9-12 h, 30 minutes
    for row in rows:
        lo, mean, hi = float(row["lo80"]), float(row["mean"]), float(row["hi80"])
        assert 0 <= lo <= mean <= hi
    assert "Mon 2026-03-30" in stdout and f"forecast: {out} (106 intervals)" in stdout
    assert "80 % interval calibrated on 8 held-out weeks" in stdout


def test_json_and_backtest(counts_csv):
    code, stdout, stderr = run("--history", str(counts_csv), "--days", "14", "--json",
                               "--backtest", "3")  # fmt: skip
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["interval_minutes"] == 30 and data["holidays"] == "FR"
    assert [d["day"] for d in data["days"]][:2] == ["2026-03-30", "2026-03-31"]
    easter = next(d for d in data["days"] if d["day"] == "2026-04-06")
    assert easter["closed"] == "Lundi de Pâques" and easter["mean"] == 0
    assert len(data["intervals"]) == sum(1 for _ in data["intervals"])
    bt = data["backtest"]
    assert bt["weeks"] == 3 and 0 < bt["wape"] < bt["naive_wape"]
    assert 0 <= bt["coverage80"] <= 1


def test_backtest_printout_compares_with_the_last_week(counts_csv):
    code, stdout, _ = run("--history", str(counts_csv), "--backtest", "4")
    assert code == 0
    assert "Backtest: the last 4 weeks" in stdout
    assert "this forecast" in stdout and "repeating the last week" in stdout
    assert "than repeating the last week" in stdout


def test_the_shipped_example_counts(examples_dir):
    code, stdout, stderr = run("--history", str(examples_dir / "counts-town-hall.csv"),
                               "--config", str(examples_dir / "town-hall.toml"),
                               "--backtest", "8", "--json")  # fmt: skip
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["history"]["first"] == "2026-06-01" and data["interval_minutes"] == 30
    assert data["intervals"][0]["start"] == "2026-11-30T08:00"  # the town hall opens at 8
    assert data["backtest"]["wape_ratio"] < 0.75


def test_the_example_of_the_docs_is_what_the_command_prints(tmp_path, examples_dir, monkeypatch):
    monkeypatch.chdir(examples_dir.parent)
    doc = (examples_dir.parent / "docs" / "planning.md").read_text(encoding="utf-8")
    section = doc.split("## Forecast", 1)[1]
    block = section.split("```", 2)[1].strip("\n").splitlines()
    command = [block[0]]
    while command[-1].endswith("\\"):
        command.append(block[len(command)])
    assert "--backtest 8 --out week.csv" in command[-1]
    printed = block[len(command) :]
    code, stdout, _ = run("--history", "examples/counts-town-hall.csv",
                          "--config", "examples/town-hall.toml",
                          "--backtest", "8", "--out", str(tmp_path / "week.csv"))  # fmt: skip
    assert code == 0
    assert stdout.replace(str(tmp_path / "week.csv"), "week.csv").splitlines() == printed


def _records(generated) -> list[CallRecord]:
    records, call_id = [], 0
    for day in sorted(generated.history.days):
        for minute, calls in sorted(generated.history.days[day].items()):
            start = datetime.combine(day, datetime.min.time(), PARIS) + timedelta(minutes=minute)
            for k in range(int(calls)):
                call_id += 1
                at = start.timestamp() + 60 * k % 1800
                records.append(CallRecord(call_id, 1, "front-desk", "", "3000", 1, at, at,
                                          at + 30, Outcome.ABANDONED))  # fmt: skip
                if k % 5 == 0:  # an escalation: a second leg of the same call
                    records.append(CallRecord(call_id, 2, "back-office", "", "3000", 1, at,
                                              at + 30, at + 60, Outcome.ABANDONED))  # fmt: skip
    evening = datetime(2026, 3, 2, 21, tzinfo=PARIS).timestamp()
    records.append(CallRecord(call_id + 1, 1, "front-desk", "", "3000", 1, evening, evening,
                              evening + 5, Outcome.CLOSED))  # fmt: skip
    return records


@pytest.fixture
def store_and_config(tmp_path, generated):
    db = tmp_path / "acd.db"
    with SqliteStore(db) as store, store.transaction():
        for record in _records(generated):
            store.record_call(record)
    plain = tmp_path / "plain.toml"
    plain.write_text(f'[site]\ntimezone = "Europe/Paris"\n[store]\nurl = "{db}"\n')
    config = tmp_path / "site.toml"
    config.write_text(
        plain.read_text() + '[calendars.main]\nholidays = "FR"\n'
        '[calendars.main.hours]\nmon = ["08:00-18:00"]\ntue = ["08:00-18:00"]\n'
        'wed = ["08:00-18:00"]\nthu = ["08:00-18:00"]\nfri = ["08:00-18:00"]\n'
        'sat = ["09:00-12:00"]\n'
    )
    return db, plain, config


def test_forecast_from_the_call_records(tmp_path, store_and_config, generated):
    db, plain, config = store_and_config
    code, stdout, stderr = run("--db", str(db), "--config", str(plain), "--interval", "30",
                               "--json")  # fmt: skip
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["history"]["first"] == "2026-01-05" and data["history"]["last"] == "2026-03-28"
    # first legs only, closed calls left out: the same history as the counts
    assert {i["start"][11:] for i in data["intervals"]} == {
        f"{h:02d}:{m:02d}" for h in range(8, 18) for m in (0, 30)
    }
    total = sum(d["mean"] for d in data["days"])
    weekly = sum(sum(c.values()) for c in generated.history.days.values()) / 12
    assert 0.8 * weekly < total < 1.25 * weekly
    code, stdout, stderr = run("--config", str(config), "--interval", "60", "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert data["interval_minutes"] == 60
    saturday = [i for i in data["intervals"] if i["start"].startswith("2026-04-04")]
    assert [i["start"][11:] for i in saturday] == ["09:00", "10:00", "11:00"]
    code, stdout, stderr = run("--config", str(config), "--queue", "back-office", "--json")
    assert code == 0, stderr
    back = sum(d["mean"] for d in json.loads(stdout)["days"])
    assert 0.1 * total < back < 0.35 * total  # one call in five escalates


def test_the_day_in_progress_is_forecast_not_learnt(tmp_path):
    today = datetime.now(PARIS).date()
    recent = generate(
        today - timedelta(days=20), 3, per_day=100, step=60, seed=1,
        hours={w: (480, 1080) for w in range(7)}, weekday_factors=(1,) * 7,
        holidays=Holidays("none"),
    )  # fmt: skip
    db = tmp_path / "live.db"
    with SqliteStore(db) as store, store.transaction():
        for record in _records(recent):
            store.record_call(record)
    plain = tmp_path / "plain.toml"
    plain.write_text(f'[site]\ntimezone = "Europe/Paris"\n[store]\nurl = "{db}"\n')
    code, stdout, stderr = run("--config", str(plain), "--json")
    assert code == 0, stderr
    data = json.loads(stdout)
    assert today in recent.history.days  # the store has calls of today ...
    assert data["history"]["last"] == (today - timedelta(days=1)).isoformat()  # ... not over
    assert data["days"][0]["day"] == today.isoformat()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "Error: give --history FILE.csv, --db FILE, or --config (see 'acd forecast -h')."),
        (["--history", "missing.csv"], "Error: missing.csv: No such file or directory"),
        (["--history", "{csv}", "--db", "x.db"], "Error: --history and --db exclude each other"),
        (
            ["--history", "{csv}", "--backtest", "20"],
            "Error: a backtest of 20 weeks needs 154 days of history, it has 83",
        ),
        (["--history", "{bad}"], "Error: {bad}:3: calls must be a count, zero or more, got '-2'"),
        (["--history", "{csv}", "--calendar", "x"], "Error: --calendar needs --config"),
        (["--history", "{csv}", "--interval", "15"], "Error: --interval is for the call records"),
        (["--history", "{csv}", "--start", "2026-12-07"], "Error: --start goes with --profile"),
        (["--history", "{csv}", "--day-sd", "0.1"], "Error: --day-sd goes with --profile"),
        (["--db", "{db}", "--interval", "7"], "Error: interval of 7 min does not divide a day"),
        (["--db", "{db}", "--queue", "nope"], "Error: {db}: no call in queue 'nope'"),
        (["--history", "{csv}", "--days", "0"], "Error: Invalid value for '--days'"),
    ],
)
def test_errors_are_one_line(tmp_path, counts_csv, args, message):
    bad = tmp_path / "bad.csv"
    bad.write_text("start,calls\n2026-03-02T08:00,1\n2026-03-02T09:00,-2\n")
    db = tmp_path / "one.db"
    with SqliteStore(db) as store:
        store.record_call(CallRecord(1, 1, "front-desk", "", "3000", 1, 1.78e9, 1.78e9, 1.78e9 + 9,
                                     Outcome.ABANDONED))  # fmt: skip
    names = {"csv": str(counts_csv), "bad": str(bad), "db": str(db)}
    args = [a.format(**names) for a in args]
    code, _, stderr = run(*args)
    assert code in (1, 2)
    assert stderr.startswith(message.format(**names)), stderr
    assert len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr

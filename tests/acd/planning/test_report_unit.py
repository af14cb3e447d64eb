"""Reports on small hand-made days: windows, agents ready, target flags, outputs and the
errors of ``acd report``."""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded
from acd.core.records import CallRecord, Outcome
from acd.errors import AcdError
from acd.planning.report_charts import plot
from acd.planning.reporting import (
    ReportSettings,
    build_report,
    day_window,
    render_text,
    store_report,
    to_csv,
)
from acd.runtime.store import open_store

TZ = ZoneInfo("Europe/Paris")
T8, _ = day_window(date(2026, 3, 10), TZ)
T8 += 8 * 3600  # 08:00 local
SETTINGS = ReportSettings(timezone="Europe/Paris", target=0.99, site="Test site")


def leg(call_id: int, at: float, outcome: Outcome, wait: float, talk: float = 100.0):
    answered = outcome is Outcome.ANSWERED
    return CallRecord(
        call_id, 1, "front-desk", "", "3000", 1, at, at, at + wait + (talk if answered else 0),
        outcome,
        answered_at=at + wait if answered else None,
        released_at=at + wait + talk if answered else None,
        wrapup_end=at + wait + talk if answered else None,
    )  # fmt: skip


def note(at: float, agent: str, status: str) -> AgentChanged:
    return AgentChanged(at, agent, "20" + agent[-1], AgentStatus(status), 0, AgentState.IDLE,
                        None, at)  # fmt: skip


# 08:xx: 4 offered, 3 answered (2 within 20 s), 1 abandoned; a short abandon apart.
# 09:xx: 2 offered, 2 answered. A call of the previous day is outside the window.
RECORDS = [
    leg(1, T8 + 60, Outcome.ANSWERED, 5),
    leg(2, T8 + 120, Outcome.ANSWERED, 15),
    leg(3, T8 + 300, Outcome.ANSWERED, 45),
    leg(4, T8 + 400, Outcome.ABANDONED, 30),
    leg(5, T8 + 500, Outcome.ABANDONED, 2),
    leg(6, T8 + 3700, Outcome.ANSWERED, 1),
    leg(7, T8 + 3800, Outcome.ANSWERED, 3),
    leg(8, T8 - 86400, Outcome.ANSWERED, 3),
]
# agent a ready all the time from 07:30; b ready 08:00-08:30; c logged out all day
CHANGES = [
    note(T8 - 1800, "a1", "ready"),
    note(T8, "b2", "ready"),
    note(T8 + 1800, "b2", "not_ready"),
    note(T8 + 1800, "c3", "logged_out"),
    note(T8 + 2 * 3600, "a1", "logged_out"),
]


def day_report(**settings):
    since, until = day_window(date(2026, 3, 10), TZ)
    s = ReportSettings(**{**SETTINGS.__dict__, **settings})
    return build_report(RECORDS, CHANGES, s, since, until)


def test_hours_figures_targets_and_agents_ready():
    report = day_report()
    hours = {r.key[11:]: r for r in report.rows["hour"]}
    assert list(hours) == ["07", "08", "09"]
    h8, h9 = hours["08"].figures, hours["09"].figures
    assert (h8.offered, h8.answered, h8.abandoned, h8.short_abandoned) == (4, 3, 1, 1)
    assert (h8.answered_in_sl, h8.answer_rate, h8.sl_offered) == (2, 0.75, 0.5)
    assert (h9.offered, h9.answer_rate) == (2, 1.0)
    assert hours["07"].figures.calls == 0 and hours["07"].met is None
    assert (hours["08"].met, hours["09"].met) == (False, True)
    assert hours["07"].agents_ready == 0.5  # a from 07:30
    assert hours["08"].agents_ready == 1.5  # a all hour, b half
    assert hours["09"].agents_ready == 1.0
    assert hours["08"].figures.occupancy == pytest.approx(300 / 5400)
    assert report.total.figures.calls == 7 and report.total.met is False
    assert [r.key for r in report.rows["day"]] == ["2026-03-10"]
    assert report.rows["day"][0].agents_ready == pytest.approx((1800 + 5400 + 3600) / 3 / 3600)
    assert report.ready_series == [(T8 - 1800, 1), (T8, 2), (T8 + 1800, 1), (T8 + 7200, 0)]
    later = build_report(RECORDS, CHANGES, SETTINGS, since=T8 + 900)
    assert later.ready_series == [(T8 + 900, 2), (T8 + 1800, 1), (T8 + 7200, 0)]
    assert [r.key for r in report.rows["queue"]] == ["front-desk"]


def test_the_totals_staffed_time_is_the_windows_whatever_the_periods():
    """From 08:00, a's 07:30-08:00 is outside: 500 s of calls in a's 2 h and b's 30 min,
    as the hours shown say; the day, week and month rows reach back to 07:30."""
    _, until = day_window(date(2026, 3, 10), TZ)
    report = build_report(RECORDS, CHANGES, SETTINGS, since=T8, until=until)
    hours = [r.figures for r in report.rows["hour"]]
    assert report.total.figures.occupancy == pytest.approx(500 / (7200 + 1800))
    assert report.total.figures.handling / report.total.figures.occupancy == pytest.approx(
        sum(h.handling / h.occupancy for h in hours)
    )
    for by in ("day", "week", "month"):
        assert report.rows[by][0].figures.occupancy == pytest.approx(500 / (9000 + 1800))


def test_threshold_per_queue_and_target():
    report = day_report(sl_threshold={"front-desk": 60.0}, target=0.6)
    h8 = report.rows["hour"][1]
    assert h8.figures.sl_offered == 0.75 and h8.met is True


def test_dst_day_and_window():
    start, end = day_window(date(2026, 3, 29), TZ)  # clocks go forward: a 23 h day
    assert end - start == 23 * 3600
    report = build_report(RECORDS, CHANGES, SETTINGS, since=T8 + 3600)
    assert report.total.figures.calls == 2
    assert [r.key[11:] for r in report.rows["hour"]] == ["09"]


def test_store_report_equals_the_report_of_the_same_data(store_url):
    with open_store(store_url) as store:
        store.record_outputs([CallEnded(r.ended_at, r) for r in RECORDS] + CHANGES)
        for since, until in [(None, None), (T8 + 900, None), (T8 + 900, T8 + 5400)]:
            expected = build_report(RECORDS, CHANGES, SETTINGS, since, until)
            assert store_report(store, SETTINGS, since, until) == expected


def test_text_csv_and_json():
    report = day_report()
    text = render_text(report)
    lines = text.splitlines()
    assert max(map(len, lines)) <= 80
    assert lines[0] == "Test site report, 2026-03-10 (Europe/Paris)"
    row8 = next(line for line in lines if line.startswith("08:00")).split()
    assert row8 == ["08:00", "4", "3", "1", "1", "0", "75.0", "50.0", "22", "100", "6", "1.5",
                    "NO"]  # fmt: skip
    assert "Target NOT reached: 83.3 % answered; below target: 08:00." in text
    rows = list(csv.DictReader(io.StringIO(to_csv(report, "day"))))
    assert [r["day"] for r in rows] == ["2026-03-10", "total"]
    assert rows[0]["answer_rate"] == str(5 / 6) and rows[0]["target_met"] == "False"
    data = json.loads(json.dumps(report.to_dict()))
    assert data["total"]["offered"] == 6 and len(data["hour"]) == 3
    empty = build_report([], [], SETTINGS)
    assert "no calls" in render_text(empty) and empty.total.met is None


def test_plot_writes_three_pngs(tmp_path):
    paths = plot(day_report(), tmp_path / "charts")
    assert sorted(p.name for p in paths) == [
        "agents-ready.png",
        "answer-rate.png",
        "offered-answered.png",
    ]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 10_000


def test_plot_without_matplotlib_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(AcdError, match=r"pip install 'acd-controller\[plot\]'"):
        plot(day_report(), tmp_path)


def run(*args: str):
    return CliRunner().invoke(cli, ["report", *args])


def test_cli_window_options(store_url):
    db = store_url
    with open_store(db) as store:
        for r in RECORDS:
            store.record_call(r)
    # no --config: UTC, target 0.99; 08:00 UTC is 09:00 in Paris
    result = run("--db", str(db), "--from", "2026-03-10T08:00", "--to", "2026-03-10", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["total"]["calls"] == 2 and data["timezone"] == "UTC" and data["target"] == 0.99
    result = run("--db", str(db), "--from", "2026-03-09", "--by", "day", "--target", "0.5")
    assert result.exit_code == 0, result.output
    assert [line[:10] for line in result.output.splitlines()[4:6]] == ["2026-03-09", "2026-03-10"]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--db", "missing.db"], 1, "missing.db: no such call-record database"),
        ([], 2, "give --db FILE"),
        (["--db", "x.db", "--day", "2026-03-10", "--from", "2026-03-09"], 2, "--day excludes"),
        (["--db", "x.db", "--day", "10/03/2026"], 2, "dates look like 2026-03-10"),
        (["--db", "x.db", "--from", "2026-03-10", "--to", "2026-03-09"], 2, "must come after"),
        (["--db", "x.db", "--target", "99"], 2, "99"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, monkeypatch, args, code, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ACD_CONFIG", raising=False)
    result = run(*args)
    assert result.exit_code == code
    assert message in result.stderr and "Traceback" not in result.stderr
    if code == 1:
        assert result.stderr.count("\n") == 1


def test_cli_help_shows_examples():
    result = run("--help")
    assert result.exit_code == 0 and "acd report --db town-hall.db" in result.output

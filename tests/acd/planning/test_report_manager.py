"""Reports a manager reads: per agent, per week and month, charts (titles, per-day,
agents needed, "no calls") and the one-page HTML report."""

from __future__ import annotations

import base64
import re
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded
from acd.core.records import CallRecord, Outcome
from acd.planning.report_charts import needed_agents, plot
from acd.planning.report_html import html_report
from acd.planning.reporting import ReportSettings, build_report, day_window, render_text, to_csv
from acd.runtime.store import open_store

TZ = ZoneInfo("Europe/Paris")
MON, _ = day_window(date(2026, 3, 30), TZ)  # Monday of ISO week 14; March ends Tuesday
T9 = MON + 9 * 3600
S = ReportSettings(timezone="Europe/Paris", site="Town hall", queue="front-desk",
                   target=0.9, reasons={1: "break", 2: "lunch"})  # fmt: skip
READY, NOT_READY, OUT = AgentStatus.READY, AgentStatus.NOT_READY, AgentStatus.LOGGED_OUT
IDLE, RINGING, ON_CALL, WRAP_UP = (
    AgentState.IDLE,
    AgentState.RINGING,
    AgentState.ON_CALL,
    AgentState.WRAP_UP,
)


def leg(call_id, at, agent=None, talk=120.0, wrap=30.0, wait=10.0):
    if agent is None:
        return CallRecord(call_id, 1, "front-desk", "", "3000", 1, at, at, at + wait,
                          Outcome.ABANDONED)  # fmt: skip
    a = at + wait
    return CallRecord(call_id, 1, "front-desk", "", "3000", 1, at, at, a + talk, Outcome.ANSWERED,
                      answered_at=a, released_at=a + talk, wrapup_end=a + talk + wrap,
                      agent_id=agent, device="201")  # fmt: skip


def change(at, agent, status, state=IDLE, reason=0):
    return AgentChanged(at, agent, "201", status, reason, state, None, at)


# 1001: ready 09:00; a call 09:10 (ringing 5 s, talk 120, wrap 30); break 09:30-09:45;
# ready until 10:00, logged out. 1002: ready 09:00-10:00, no call.
CHANGES = [
    change(T9, "1001", READY),
    change(T9, "1002", READY),
    change(T9 + 595, "1001", READY, RINGING),
    change(T9 + 600, "1001", READY, ON_CALL),
    change(T9 + 720, "1001", READY, WRAP_UP),
    change(T9 + 750, "1001", READY),
    change(T9 + 1800, "1001", NOT_READY, reason=1),
    change(T9 + 2700, "1001", READY),
    change(T9 + 3600, "1001", OUT),
    change(T9 + 3600, "1002", OUT),
]
RECORDS = [leg(1, T9 + 590, "1001"), leg(2, T9 + 1000), leg(3, T9 + 86400 * 2 + 60, "1001")]


def report(since=None, until=None, records=RECORDS, changes=CHANGES):
    return build_report(records, changes, S, since, until)


def test_per_agent_calls_talk_wrapup_not_ready_by_reason_and_occupancy():
    r = report(MON, MON + 86400)
    a, b = r.agents
    assert (a.agent_id, a.calls, a.talk, a.wrapup) == ("1001", 1, 120.0, 30.0)
    assert a.busy == 155.0  # ringing 5 + talk 120 + wrap-up 30
    assert a.not_ready == {1: 900.0} and a.idle == 3600 - 900 - 155
    assert a.occupancy == pytest.approx(150 / 2700)
    assert (b.agent_id, b.calls, b.idle, b.busy, b.occupancy) == ("1002", 0, 3600.0, 0.0, 0.0)
    text = render_text(r, "agent")
    assert "Town hall report, 2026-03-30" in text.splitlines()[0]
    line = next(x for x in text.splitlines() if x.startswith("1001"))
    assert line.split() == ["1001", "1", "0:02", "0:00", "0:42", "0:03", "6", "1", "break", "0:15"]
    assert max(map(len, text.splitlines())) <= 80
    csv = to_csv(r, "agent").splitlines()
    assert csv[0].endswith("occupancy,not_ready_1") and csv[1].startswith("1001,1,120.0,30.0,")
    assert r.to_dict()["agent"][0]["not_ready"] == {"1": 900.0}


def test_weeks_and_months_follow_the_local_calendar():
    r = report()
    assert [row.key for row in r.rows["week"]] == ["2026-W14"]
    assert [(row.key, row.figures.offered) for row in r.rows["month"]] == [
        ("2026-03", 2), ("2026-04", 1)]  # fmt: skip
    assert "2026-W14" in render_text(r, "week") and "2026-04" in render_text(r, "month")


def test_an_empty_range_says_no_calls():
    r = report(MON + 30 * 86400, MON + 31 * 86400)
    assert "no calls in this period" in render_text(r)
    assert "no calls and no agent activity" in render_text(r, "agent")


def test_agents_needed_grow_with_the_traffic_and_the_presence_splits_idle_from_busy():
    r = report(MON, MON + 86400)
    assert r.presence[f"{date(2026, 3, 30)}T09"] == pytest.approx(
        {"idle": (2700 - 155 + 3600) / 3600, "busy": 155 / 3600}
    )
    busy = [leg(i, T9 + i * 30, "1001" if i % 5 else None) for i in range(1, 100)]
    light = needed_agents(report(MON, MON + 86400))[0]
    heavy, basis = needed_agents(report(MON, MON + 86400, records=busy))
    assert 0 < light[f"{date(2026, 3, 30)}T09"] < heavy[f"{date(2026, 3, 30)}T09"]
    assert heavy[f"{date(2026, 3, 30)}T09"] >= 99 * 160 / 3600  # at least the load
    assert "Erlang A" in basis and "patience" in basis


@pytest.fixture
def titles(monkeypatch):
    """The titles and captions of the charts saved (and that they were saved whole)."""
    from matplotlib.figure import Figure

    seen = []
    save = Figure.savefig

    def spy(fig, path, **kwargs):
        assert kwargs.get("bbox_inches") == "tight"  # nothing outside the figure is cut
        seen.append(
            (fig.axes[0].get_title(), [t.get_text() for t in fig.texts + fig.axes[0].texts])
        )
        return save(fig, path, **kwargs)

    monkeypatch.setattr(Figure, "savefig", spy)
    return seen


def test_chart_titles_carry_site_queue_and_dates_and_by_day_draws_days(tmp_path, titles):
    paths = plot(report(MON, MON + 3 * 86400), tmp_path, "day")
    assert [p.name for p in paths] == [
        "answer-rate.png",
        "offered-answered.png",
        "agents-ready.png",
    ]
    for title, _ in titles:
        assert title.startswith("Town hall · front-desk · 2026-03-30 to 2026-04-01\n")
        assert title.endswith(" per day")
    assert "offered, answered and abandoned" in titles[1][0]
    assert any("needed: Erlang" in t for t in titles[2][1])
    titles.clear()
    plot(report(MON + 30 * 86400, MON + 31 * 86400), tmp_path / "empty")
    assert all("no calls" in texts for _, texts in titles)


def test_html_report_is_one_page_with_the_charts_embedded(tmp_path):
    page = html_report(report(MON, MON + 86400))
    assert "<title>Town hall: front-desk, 2026-03-30</title>" in page
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 3
    assert all(base64.b64decode(i)[:8] == b"\x89PNG\r\n\x1a\n" for i in images)
    assert "http" not in page.replace("http-equiv", "")  # nothing fetched from elsewhere
    assert "1001" in page and "break 0:15" in page


def test_acd_report_html_and_by_agent_on_a_database(tmp_path, store_url):
    db = store_url
    with open_store(db) as store:
        store.record_outputs([CallEnded(r.ended_at, r) for r in RECORDS] + CHANGES)
    out = tmp_path / "week.html"
    args = ["report", "--db", str(db), "--from", "2026-03-30", "--to", "2026-04-03"]
    result = CliRunner().invoke(cli, [*args, "--by", "agent", "--html", str(out)])
    assert result.exit_code == 0, result.output
    assert "1001" in result.output and f"report: {out}" in result.output
    assert out.read_text().count("data:image/png;base64,") == 3

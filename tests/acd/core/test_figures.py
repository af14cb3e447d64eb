from zoneinfo import ZoneInfo

import pytest

from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged
from acd.core.figures import compute, grouped, staffed_seconds
from acd.core.records import CallRecord, Outcome

UTC = ZoneInfo("UTC")
T = 1_796_025_600.0  # 08:00 UTC


def leg(outcome, wait, talk=0.0, wrapup=0.0, queue="q", at=T, **kw):
    answered = at + wait if outcome is Outcome.ANSWERED else None
    released = answered + talk if answered is not None else None
    return CallRecord(
        call_id=kw.pop("call_id", 1),
        leg=1,
        queue=queue,
        caller="x",
        dialled="3000",
        trunk=0,
        arrived_at=at,
        queued_at=at,
        ended_at=released if released is not None else at + wait,
        outcome=outcome,
        answered_at=answered,
        released_at=released,
        wrapup_end=released + wrapup if released is not None else None,
        **kw,
    )


RECORDS = [
    leg(Outcome.ANSWERED, 10, 100, 20),
    leg(Outcome.ANSWERED, 30, 200, 10),
    leg(Outcome.ABANDONED, 2),  # short
    leg(Outcome.ABANDONED, 15),  # within 20 s
    leg(Outcome.ABANDONED, 60),
    leg(Outcome.OVERFLOWED, 600),
    leg(Outcome.CLOSED, 0),
    leg(Outcome.REJECTED, 0),
    leg(Outcome.FAILED, 5),
]


def test_counts_add_up_and_rates_follow_design():
    f = compute(RECORDS, sl_threshold=20.0, short_abandon=5.0, staffed=1000.0)
    assert (f.calls, f.closed, f.short_abandoned, f.offered) == (9, 1, 1, 7)
    assert f.offered == f.answered + f.abandoned + f.overflowed + f.rejected + f.failed
    assert (f.answered, f.abandoned, f.answered_in_sl, f.abandoned_in_sl) == (2, 2, 1, 1)
    assert f.answer_rate == pytest.approx(2 / 7)
    assert f.sl_offered == pytest.approx(1 / 7)
    assert f.sl_answered == pytest.approx(1 / 2)
    assert f.sl_wait == pytest.approx(2 / 4)
    assert f.abandon_rate == pytest.approx(2 / 7)
    assert f.asa == pytest.approx(20)
    assert f.aht == pytest.approx(165)
    assert f.occupancy == pytest.approx(330 / 1000)


def test_empty_denominators_give_none():
    f = compute([])
    assert (f.offered, f.answer_rate, f.asa, f.occupancy) == (0, None, None, None)


def test_grouped_by_queue_hour_day_with_thresholds_per_queue():
    records = [
        leg(Outcome.ANSWERED, 25, queue="a"),
        leg(Outcome.ANSWERED, 25, queue="b", at=T + 3600),
    ]
    by_queue = grouped(records, "queue", UTC, sl_threshold={"a": 30.0, "b": 20.0})
    assert (by_queue["a"].answered_in_sl, by_queue["b"].answered_in_sl) == (1, 0)
    assert list(grouped(records, "hour", UTC)) == ["2026-11-30T08", "2026-11-30T09"]
    assert grouped(records, "day", UTC)["2026-11-30"].answered == 2
    assert list(grouped(records, "week", UTC)) == ["2026-W49"]
    assert grouped(records, "month", UTC)["2026-11"].answered == 2
    with pytest.raises(ValueError):
        grouped(records, "fortnight", UTC)


def test_staffed_seconds_split_by_hour():
    def note(at, status, state=AgentState.IDLE):
        return AgentChanged(at, "a", "200", status, 0, state, None, at)

    changes = [
        note(T + 1800, AgentStatus.READY),
        note(T + 3600 + 600, AgentStatus.NOT_READY),  # idle not ready: not staffed
        note(T + 3600 + 1200, AgentStatus.READY),
    ]
    staffed = staffed_seconds(changes, T + 7200, "hour", UTC)
    assert staffed == {"2026-11-30T08": 1800.0, "2026-11-30T09": 600.0 + 2400.0}

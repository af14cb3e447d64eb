"""The twin: schedules read, shifts obeyed, and Erlang A met on a stationary case."""

import math
from datetime import date

import pytest

from acd.planning.demand import parse_forecast
from acd.planning.schedule import parse_requirements
from acd.planning.staffing import Traffic, evaluate
from acd.planning.twin import ScheduleError, build, exact_schedule, parse_schedule, run, wilson
from firmware_sim.distributions import Exponential
from tests.acd.planning.test_demand import forecast_text

HEAD = "agent,day,start,end,break_start,break_end\n"
MONDAY = date(2026, 12, 7)


def schedule(*rows: str):
    return parse_schedule(HEAD + "".join(r + "\n" for r in rows))


def test_reads_the_schedule_format():
    days = schedule("A1,2026-12-07,08:00,15:00,12:00,12:30", "A2,2026-12-07,12:00,19:00,,")
    a1, a2 = days[MONDAY]
    assert (a1.start_s, a1.end_s, a1.break_start_s, a1.break_end_s) == (28800, 54000, 43200, 45000)
    assert a1.on_phones_s == 6.5 * 3600
    assert a1.shift().breaks[0].duration_s == 1800
    assert a2.break_start_s is None and a2.shift().breaks == ()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("A1,monday,08:00,15:00,,", "day must be a date"),
        ("A1,2026-12-07,8h,15:00,,", "start must be a time HH:MM"),
        ("A1,2026-12-07,15:00,08:00,,", "not after its start"),
        ("A1,2026-12-07,08:00,15:00,12:00,", "give both break_start and break_end"),
        ("A1,2026-12-07,08:00,15:00,16:00,16:30", "the break is not within the shift"),
        (",2026-12-07,08:00,15:00,,", "agent is empty"),
    ],
)
def test_bad_schedules_are_named(row, message):
    with pytest.raises(ScheduleError) as info:
        parse_schedule(HEAD + row + "\n", "s.csv")
    assert str(info.value).startswith("s.csv:2: ")
    assert message in str(info.value)


def test_two_shifts_a_day_and_missing_columns_are_refused():
    with pytest.raises(ScheduleError, match="second shift on 2026-12-07"):
        schedule("A1,2026-12-07,08:00,10:00,,", "A1,2026-12-07,14:00,16:00,,")
    with pytest.raises(ScheduleError, match="missing column"):
        parse_schedule("agent,day,start\nA1,2026-12-07,08:00\n")


def test_wilson_interval():
    share = wilson(0, 10)
    assert share.low == 0.0
    assert share.high == pytest.approx(1.959964**2 / (10 + 1.959964**2), rel=1e-6)
    half = wilson(5, 10)
    assert half.low == pytest.approx(1 - half.high)
    assert wilson(20, 20).high == 1.0


AHT, PATIENCE = 180.0, 120.0


def twin_of(means, rows, days=1, target=None, sd_factor=0.0):
    fc = parse_forecast(forecast_text(means, sd_factor=sd_factor, days=days))
    return build(fc, schedule(*rows), Exponential(AHT), PATIENCE, target=target)


def test_stationary_case_matches_erlang_a():
    """Constant rate, three agents all day: the twin's answered share is Erlang A's
    within statistical error, and with the target at Erlang A's answer rate about
    half the weeks reach it."""
    rate, team = 40.0, 3
    expected = evaluate(Traffic(rate, AHT, 3600, PATIENCE), team).answer_rate
    rows = [f"A{i},2026-12-07,08:00,17:00,," for i in range(team)]
    result = run(twin_of([rate] * 8, rows, target=expected), weeks=40, seed=7)
    rates = result.week_rates()
    mean = sum(rates) / len(rates)
    se = math.sqrt(sum((r - mean) ** 2 for r in rates) / (len(rates) - 1) / len(rates))
    assert abs(result.answer_rate - expected) < 4 * se, (result.answer_rate, expected, se)
    assert se < 0.005  # the check has teeth: ±2 points at most
    weeks = result.weeks_met
    assert weeks.n == 40
    assert weeks.low <= 0.5 <= weeks.high, weeks
    # far below / above Erlang A's answer rate: every week / no week reaches the target
    assert run(twin_of([rate] * 8, rows, target=expected - 0.1), 5).weeks_met.hits == 5
    assert run(twin_of([rate] * 8, rows, target=expected + 0.1), 5).weeks_met.hits == 0


def test_agents_work_only_their_shift_off_break():
    """Two hours of calls; an agent on for the first hour only, or on break in the
    second, answers about half as many as when on for both (Erlang A: 83 %)."""
    means = [8.0, 8.0]
    whole = run(twin_of(means, ["A1,2026-12-07,08:00,10:00,,"]), 20).answer_rate
    first = run(twin_of(means, ["A1,2026-12-07,08:00,09:00,,"]), 20).answer_rate
    pause = run(twin_of(means, ["A1,2026-12-07,08:00,10:00,09:00,10:00"]), 20).answer_rate
    assert whole == pytest.approx(
        evaluate(Traffic(8, AHT, 3600, PATIENCE), 1).answer_rate, abs=0.08
    )
    assert 0.25 < first < 0.6 and first < whole - 0.25
    assert 0.25 < pause < 0.6 and pause < whole - 0.25


def test_day_factors_follow_the_forecast_spread():
    result = run(twin_of([20.0] * 4, ["A1,2026-12-07,08:00,12:00,,"], sd_factor=0.3), 40)
    factors = [w[0].factor for w in result.weeks]
    mean = sum(factors) / len(factors)
    var = sum((f - mean) ** 2 for f in factors) / (len(factors) - 1)
    assert 0.8 < mean < 1.2
    assert 0.04 < var < 0.16  # 0.09 expected
    offered = [w[0].offered for w in result.weeks]
    m = sum(offered) / len(offered)
    assert sum((o - m) ** 2 for o in offered) / (len(offered) - 1) > 3 * m  # beyond Poisson


def test_schedule_and_forecast_must_share_days():
    fc = parse_forecast(forecast_text([5.0, 5.0]))
    with pytest.raises(Exception, match="has no day of the forecast"):
        build(fc, schedule("A1,2027-01-04,08:00,10:00,,"), Exponential(AHT), PATIENCE)


def test_a_requirement_played_exactly():
    req = parse_requirements(
        "start,agents\n2026-12-07T08:00,2\n2026-12-07T08:30,3\n2026-12-07T09:00,1\n"
        "2026-12-07T09:30,2\n2026-12-07T11:00,1\n2026-12-08T08:00,1\n"
    )
    days = exact_schedule(req)
    shifts = {(r.agent, r.start_s / 3600, r.end_s / 3600) for r in days[MONDAY]}
    assert shifts == {
        ("req-01.1", 8.0, 10.0),  # 11:00 follows a closure: a new stretch
        ("req-01.2", 11.0, 11.5),
        ("req-02.1", 8.0, 9.0),
        ("req-02.2", 9.5, 10.0),
        ("req-03.1", 8.5, 9.0),
    }
    # every interval has exactly the agents it asks for, and no pause
    for start, need in zip(req.starts, req.agents, strict=True):
        t = start.hour * 3600 + start.minute * 60
        on = sum(r.start_s <= t < r.end_s for r in days[start.date()])
        assert on == need
    assert all(r.break_start_s is None for rows in days.values() for r in rows)

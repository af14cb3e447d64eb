"""acd.planning.schedule: the shifts found obey the rules (checked on the written CSV by
a checker of its own), the LP bound never exceeds the objective, known optima."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import date, datetime, timedelta
from itertools import pairwise

import pytest

from acd.config import ScheduleConfig
from acd.planning import schedule, twin
from acd.planning.demand import parse_forecast, plan_staffing
from acd.planning.schedule import (
    CSV_COLUMNS,
    Requirement,
    ScheduleError,
    cost,
    parse_requirements,
    requirement_from_plan,
    schedule_named,
    schedule_pool,
    with_shrinkage,
)
from acd.planning.staffing import StaffingError, Targets, scheduled_agents

MONDAY = date(2026, 12, 7)
FAST = ScheduleConfig(time_limit_s=20.0)  # never reached: a guard against hanging


def requirement(days: dict[int, list[float]], open_hour: int, step_min: int) -> Requirement:
    """Agents per interval from ``open_hour`` on, for day offsets from MONDAY."""
    starts, agents = [], []
    for offset, needs in sorted(days.items()):
        first = datetime.combine(MONDAY + timedelta(days=offset), datetime.min.time())
        first += timedelta(hours=open_hour)
        for i, need in enumerate(needs):
            starts.append(first + timedelta(minutes=step_min * i))
            agents.append(float(need))
    return Requirement(tuple(starts), tuple(agents), timedelta(minutes=step_min))


def _at(day: str, hhmm: str) -> datetime:
    base = datetime.combine(date.fromisoformat(day), datetime.min.time())
    hours, minutes = map(int, hhmm.split(":"))
    return base + timedelta(hours=hours, minutes=minutes)


def violations(text: str, req: Requirement, contracts: dict[str, float], rules: ScheduleConfig):
    """Every broken rule of a schedule file, checked from the file alone (not the model)."""
    rows = list(csv.DictReader(io.StringIO(text)))
    assert not rows or tuple(rows[0]) == CSV_COLUMNS
    opening: dict[date, tuple[datetime, datetime]] = {}
    for s in req.starts:
        lo, hi = opening.get(s.date(), (s, s + req.step))
        opening[s.date()] = (min(lo, s), max(hi, s + req.step))
    problems = []
    shifts = defaultdict(list)
    week_hours: dict[tuple[str, int], float] = defaultdict(float)
    for row in rows:
        agent, day = row["agent"], row["day"]
        start, end = _at(day, row["start"]), _at(day, row["end"])
        pause = timedelta()
        stretches = [end - start]
        if row["break_start"]:
            b0, b1 = _at(day, row["break_start"]), _at(day, row["break_end"])
            if not start < b0 < b1 < end:
                problems.append(f"{agent} {day}: pause outside the shift")
            pause = b1 - b0
            stretches = [b0 - start, end - b1]
        work = (end - start - pause).total_seconds() / 3600
        if work > rules.max_day_hours + 1e-9:
            problems.append(f"{agent} {day}: {work} h of work")
        if (end - start).total_seconds() / 3600 > rules.max_amplitude_hours + 1e-9:
            problems.append(f"{agent} {day}: amplitude")
        if work >= rules.break_after_hours and pause < timedelta(minutes=rules.break_minutes):
            problems.append(f"{agent} {day}: no pause for {work} h of work")
        if any(s >= timedelta(hours=rules.break_after_hours) for s in stretches):
            problems.append(f"{agent} {day}: a stretch of work reaches the limit")
        lo, hi = opening[date.fromisoformat(day)]
        if start < lo or end > hi:
            problems.append(f"{agent} {day}: outside the opening hours")
        if agent not in contracts:
            problems.append(f"{agent}: not in the team")
        week_hours[agent, date.fromisoformat(day).isocalendar()[1]] += work
        shifts[agent].append((start, end))
    for (agent, _), hours in week_hours.items():
        if hours > min(contracts.get(agent, 0), rules.max_week_hours) + 1e-9:
            problems.append(f"{agent}: {hours} h in a week")
    for agent, spans in shifts.items():
        spans.sort()
        days = [s.date() for s, _ in spans]
        if len(days) != len(set(days)):
            problems.append(f"{agent}: two shifts on a day")
        for (_, end), (start, _) in pairwise(spans):
            if start - end < timedelta(hours=rules.min_rest_hours):
                problems.append(f"{agent}: {start - end} of rest before {start}")
    return problems


def test_the_checker_catches_broken_rules():
    req = requirement({0: [1] * 16, 1: [1] * 16}, 6, 60)
    bad = (
        "agent,day,start,end,break_start,break_end\n"
        "a,2026-12-07,06:00,17:00,,\n"  # 11 h of work, no pause
        "a,2026-12-08,06:00,08:00,,\n"  # 13 h of rest
        "b,2026-12-07,14:00,22:00,17:00,17:20\n"
        "b,2026-12-08,06:00,10:00,,\n"  # 8 h of rest
    )
    problems = violations(bad, req, {"a": 35, "b": 35}, ScheduleConfig())
    assert any("h of work" in p for p in problems)
    assert any("no pause" in p for p in problems)
    assert any("of rest" in p for p in problems)
    assert not any(p.startswith("a:") and "rest" in p for p in problems)


def test_a_known_optimum():
    # 2 agents needed 08:00-12:00: two 4-hour shifts, nothing short, nothing over
    req = requirement({0: [2, 2, 2, 2]}, 8, 60)
    result = schedule_named(req, [("ann", 35.0), ("bob", 35.0)], FAST)
    assert result.shortfall_hours == 0 and result.over_hours == 0
    assert result.objective == 0 and result.gap == 0
    assert sorted(a.agent for a in result.assignments) == ["ann", "bob"]
    # one agent of 4-hour shifts against 10 hours of need: 6 agent-hours short
    req = requirement({0: [1] * 10}, 8, 60)
    rules = ScheduleConfig(shift_hours=(4.0,), time_limit_s=20)
    result = schedule_named(req, [("ann", 35.0)], rules)
    assert result.shortfall_hours == pytest.approx(6.0)
    assert result.objective == pytest.approx(6000.0)
    assert result.lp_bound == pytest.approx(6000.0)


def test_contract_hours_and_rest_hold_for_named_agents():
    # open 06:00-22:00 two days, more work than the team: every rule is pressed
    req = requirement({0: [3] * 16, 1: [3] * 16}, 6, 60)
    team = {"ann": 6.0, "bob": 10.0, "cat": 14.0}
    result = schedule_named(req, list(team.items()), FAST)
    text = result.to_csv()
    assert violations(text, req, team, FAST) == []
    hours = defaultdict(float)
    for a in result.assignments:
        hours[a.agent] += a.shift.work_hours
    assert hours["ann"] <= 6 and hours["bob"] <= 10 and hours["cat"] <= 14
    assert sum(hours.values()) == pytest.approx(30.0)  # short of need: all hours used


def test_the_rest_rule_binds_between_late_and_early_shifts():
    # need only late on Monday and early on Tuesday: one agent cannot do both
    # (18:00-22:00, then 06:00-10:00): a shift ending at E leaves E - 18 h covered on
    # Monday and 23 - E on Tuesday, 5 of the 8 hours
    req = requirement({0: [0] * 12 + [1] * 4, 1: [1] * 4 + [0] * 12}, 6, 60)
    rules = ScheduleConfig(shift_hours=(4.0,), time_limit_s=20)
    result = schedule_named(req, [("ann", 35.0)], rules)
    assert violations(result.to_csv(), req, {"ann": 35.0}, rules) == []
    assert result.shortfall_hours == pytest.approx(3.0)
    rested = ScheduleConfig(shift_hours=(4.0,), min_rest_hours=0, time_limit_s=20)
    assert schedule_named(req, [("ann", 35.0)], rested).shortfall_hours == 0


@pytest.mark.parametrize("seed", range(4))
def test_lp_bound_never_above_the_objective(seed):
    rng = random.Random(seed)
    days = {d: [rng.randint(0, 5) for _ in range(22)] for d in range(rng.randint(1, 3))}
    req = requirement(days, 8, 30)
    rules = ScheduleConfig(shift_hours=(4.0, 7.0), time_limit_s=20)
    team = {f"a{i}": rng.choice([14.0, 21.0, 35.0]) for i in range(3)}
    for result in (
        schedule_named(req, list(team.items()), rules),
        schedule_pool(req, 4, 20.0, rules),
    ):
        assert result.lp_bound <= result.objective * (1 + 1e-9) + 1e-6
        assert result.lp_bound <= result.best_bound + 1e-6
    named = schedule_named(req, list(team.items()), rules)
    assert violations(named.to_csv(), req, team, rules) == []


def test_a_free_head_count_obeys_the_rules_too():
    req = requirement({d: [4] * 8 + [6] * 8 + [3] * 6 for d in range(5)}, 8, 30)
    rules = ScheduleConfig(shift_hours=(7.0,), time_limit_s=20)
    result = schedule_pool(req, 8, 28.0, rules)
    team = {f"agent-{i:02d}": 28.0 for i in range(1, 9)}
    assert violations(result.to_csv(), req, team, rules) == []
    assert result.unassigned == 0 and result.status == "optimal"
    assert len(result.assignments) == 8 * 4  # short of need: every agent works 4 days


def test_without_week_patterns_the_tours_still_obey_the_rules(monkeypatch):
    # too many patterns: the head-count model bounds the week's hours in total, and its
    # shifts are given greedily (7-hour shifts in 28-hour weeks: they all fit)
    monkeypatch.setattr(schedule, "MAX_PATTERNS", 0)
    req = requirement({d: [4] * 8 + [6] * 8 + [3] * 6 for d in range(5)}, 8, 30)
    rules = ScheduleConfig(shift_hours=(7.0,), time_limit_s=20)
    result = schedule_pool(req, 8, 28.0, rules)
    team = {f"agent-{i:02d}": 28.0 for i in range(1, 9)}
    assert violations(result.to_csv(), req, team, rules) == []
    assert result.unassigned == 0 and result.status == "optimal"
    assert result.lp_bound <= result.objective


def test_the_time_limit_stops_the_search_with_a_valid_schedule():
    # six agents over a week of 15-minute intervals: more than half a second of search
    rng = random.Random(3)
    req = requirement({d: [rng.randint(2, 7) for _ in range(44)] for d in range(5)}, 8, 15)
    rules = ScheduleConfig(time_limit_s=0.5)
    team = {f"a{i}": 35.0 for i in range(6)}
    result = schedule_named(req, list(team.items()), rules)
    assert result.status == "time limit"
    assert result.seconds < 0.5 + 10  # and building the models, and their LP bounds
    assert result.lp_bound <= result.objective
    assert violations(result.to_csv(), req, team, rules) == []


def test_pauses_are_placed_before_six_hours_of_work():
    req = requirement({0: [1] * 22}, 8, 30)  # 08:00-19:00
    result = schedule_named(req, [("ann", 35.0)], ScheduleConfig(shift_hours=(8.0,)))
    (shift,) = [a.shift for a in result.assignments]
    assert shift.break_end - shift.break_start == timedelta(minutes=20)
    assert shift.work_hours == 8.0
    assert violations(result.to_csv(), req, {"ann": 35.0}, ScheduleConfig()) == []


def test_the_twin_reads_the_schedule_file():
    req = requirement({d: [2] * 8 + [3] * 8 + [1] * 6 for d in range(2)}, 8, 30)
    team = [("ann", 14.0), ("bob", 12.0), ("cat", 8.0)]
    result = schedule_named(req, team, FAST)
    days = twin.parse_schedule(result.to_csv())
    rows = [row for shifts in days.values() for row in shifts]
    assert len(rows) == len(result.assignments)
    assert sum(r.on_phones_s for r in rows) / 3600 == pytest.approx(result.work_hours)


def test_requirements_file_and_its_errors():
    req = parse_requirements("start,agents\n2026-12-07 08:00,2\n2026-12-07T08:15,3\n", "r.csv")
    assert req.step == timedelta(minutes=15) and req.agents == (2.0, 3.0)
    for text, message in (
        ("when,agents\n", "r.csv: expected a header with start,agents"),
        ("start,agents\n2026-12-07 08:00,2\n", "give at least two intervals"),
        ("start,agents\nmonday,2\n", "r.csv:2: start must be a local date and time"),
        ("start,agents\n2026-12-07 08:00,-1\n", "r.csv:2: agents must be zero or more"),
        ("start,agents\n2026-12-07 08:00,1\n2026-12-07 08:00,1\n", "given twice"),
        (
            "start,agents\n2026-12-07 08:00,1\n2026-12-07 08:30,1\n2026-12-07 08:45,1\n"
            "2026-12-07 09:20,1\n",
            "not on the grid",
        ),
        ("start,agents\n", "r.csv: no intervals"),
    ):
        with pytest.raises(ScheduleError, match=message):
            parse_requirements(text, "r.csv")


def test_a_staffing_plan_becomes_the_requirement():
    text = "start,mean,lo80,hi80\n2026-12-07T08:00,40,30,50\n2026-12-07T08:30,80,60,100\n"
    targets = Targets(min_answer_rate=0.99)
    plan = plan_staffing(parse_forecast(text), targets, 180, 120)
    req = requirement_from_plan(plan, shrinkage=0.2)
    assert req.step == timedelta(minutes=30)
    assert req.agents == tuple(float(scheduled_agents(need.agents, 0.2)) for need in plan.intervals)
    assert sum(req.agents) > sum(n.agents for n in plan.intervals)  # 20 % off the phones


def test_a_shortfall_is_spread_rather_than_piled():
    # two agents of 4-hour shifts against 2 needed for 8 hours: 8 agent-hours short
    # however they are placed; spread, each hour misses one agent instead of two
    req = requirement({0: [2] * 8}, 8, 60)
    team = [("ann", 35.0), ("bob", 35.0)]
    spread = schedule_named(req, team, ScheduleConfig(shift_hours=(4.0,)))
    assert spread.coverage == (1.0,) * 8
    assert spread.objective == pytest.approx(8000.0)
    piled = cost(req, (2.0,) * 4 + (0.0,) * 4, ScheduleConfig())
    assert piled == pytest.approx(4 * (1000 + 1000 * (1 + 0.1 / 2)))
    flat = ScheduleConfig(shift_hours=(4.0,), shortfall_spread=0.0)
    assert cost(req, (2.0,) * 4 + (0.0,) * 4, flat) == schedule_named(req, team, flat).objective


def test_shrinkage_raises_the_requirement():
    req = parse_requirements("start,agents\n2026-12-07 08:00,7\n2026-12-07 08:15,2.5\n")
    assert with_shrinkage(req, 0.3).agents == (10.0, 2.5 / 0.7)
    assert with_shrinkage(req, 0.0) is req
    with pytest.raises(StaffingError, match="shrinkage must be in"):
        with_shrinkage(req, 1.0)


def test_no_shift_fits_a_short_opening():
    req = requirement({0: [1, 1]}, 8, 60)  # open two hours, shifts of 4 h or more
    with pytest.raises(ScheduleError, match="no shift fits the opening hours"):
        schedule_named(req, [("ann", 35.0)])

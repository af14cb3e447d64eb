"""Planning: forecast accuracy against the noise floor and against seasonal naive.

A year of generated 30-minute counts with a realistic structure (weekday and intraday
shapes, Mondays' morning peak, 10 %/year growth, French public holidays closed, bridge
days at 70 %, gamma day effects of 10 % CV: over-dispersion). Each of the last 26 weeks
is forecast from the weeks before it (its 80 % interval calibrated on the weeks before
that), over three seeds.

- ``forecast_wape_vs_floor``: the forecast's WAPE ÷ the WAPE of the true mean (the
  noise floor no forecast beats on average); target ≤ 1.05.
- ``forecast_vs_seasonal_naive``: the forecast's WAPE ÷ that of repeating the last
  week; target ≤ 0.75.
- ``forecast_coverage80``: share of intervals whose count fell in the 80 % interval.
- ``forecast_s``: seconds for one forecast (a week) from the year, calibration included.
- ``forecast_wape_vs_floor_*``, ``forecast_coverage80_*``: the same on 10 weeks of
  history, on 40 calls a day in 15-minute intervals, and on 1,500 a day per hour.

The staffing plan and the twin, on a week of the reference town hall (Mon–Fri
08:00–19:00, Sat 08:00–13:00, 15-minute intervals, the shipped weekday profile,
500 calls a weekday, day level ±10 %; AHT 180 s, patience 120 s):

- ``staffing_forecast_s``: seconds for ``acd staffing --forecast`` (agents per interval
  at the quantile meeting 99 % answered in 90 % of weeks).
- ``twin_weeks_per_s``: weeks the twin simulates per second in one process (real
  engine, six agents on staggered 35-hour shifts with breaks; ~2,750 calls a week).

``acd schedule`` on the agents that plan requires per 15-minute interval (the
``[schedule]`` defaults: shifts of 4, 6, 7 or 8 hours of work, French territorial rules):

- ``schedule_gap_6_named``, ``schedule_s_6_named``: six named agents of 35 h against the
  plan for 500 calls a weekday; the schedule's objective ÷ the LP bound − 1 (target
  ≤ 0.5 %) and the seconds to solve (target ≤ 60 s); ``schedule_short_h_6_named``: the
  agent-hours short.
- ``schedule_gap_60_pool``, ``schedule_s_60_pool``, ``schedule_short_h_60_pool``: a free
  head count of 60 agents of 35 h against the plan for 5,000 calls a weekday (the town
  hall × 10).
- ``schedule_gap``, ``schedule_s``: the larger of the two (the issue's targets).
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np

from acd.planning import twin
from acd.planning.demand import Z80, parse_forecast, plan_staffing
from acd.planning.forecast import backtest, forecast, generate
from acd.planning.schedule import requirement_from_plan, schedule_named, schedule_pool
from acd.planning.staffing import Targets
from firmware_sim.distributions import Exponential
from firmware_sim.traffic import WEEKDAY_SHARES

SEEDS = (1, 2, 3)
WEEKS = 52
HELD_OUT = 26


def forecast_figures() -> dict[str, float]:
    """The forecast's figures (see the module docstring)."""
    sums = np.zeros(4)  # |error| model, |error| naive, |error| truth, calls
    covered = intervals = 0.0
    elapsed = []
    for seed in SEEDS:
        g = generate(date(2025, 1, 6), WEEKS, per_day=400, step=30, seed=seed)
        started = time.perf_counter()
        forecast(g.history, 7)
        elapsed.append(time.perf_counter() - started)
        b = backtest(g.history, HELD_OUT, truth=g.truth)
        sums += np.array([b.wape, b.naive_wape, b.floor_wape, 1.0]) * b.calls
        covered += b.coverage * b.intervals
        intervals += b.intervals
    model, naive, floor, _ = sums
    return {
        "forecast_wape": round(model / sums[3], 4),
        "forecast_wape_vs_floor": round(model / floor, 3),
        "forecast_vs_seasonal_naive": round(model / naive, 3),
        "forecast_coverage80": round(covered / intervals, 3),
        "forecast_s": round(min(elapsed), 3),
    }


# Other histories (held-out weeks): (name, calls per day, interval min, weeks, held out)
SCENARIOS = (
    ("10_weeks", 400, 30, 10, 6),
    ("low_volume_15min", 40, 15, 26, 10),
    ("high_volume_hourly", 1500, 60, 26, 10),
)


def scenario_figures() -> dict[str, float]:
    """WAPE ÷ noise floor and 80 % coverage on shorter, smaller and larger histories."""
    out = {}
    for name, per_day, step, weeks, held_out in SCENARIOS:
        sums = np.zeros(2)
        covered = intervals = 0.0
        for seed in SEEDS:
            g = generate(date(2025, 1, 6), weeks, per_day=per_day, step=step, seed=seed)
            b = backtest(g.history, held_out, truth=g.truth)
            sums += np.array([b.wape, b.floor_wape]) * b.calls
            covered += b.coverage * b.intervals
            intervals += b.intervals
        out[f"forecast_wape_vs_floor_{name}"] = round(sums[0] / sums[1], 3)
        out[f"forecast_coverage80_{name}"] = round(covered / intervals, 3)
    return out


FIRST = date(2026, 12, 7)  # a Monday
TWIN_WEEKS = 6


def town_hall_week(per_day: float = 500.0, sd: float = 0.10) -> str:
    """A week's forecast CSV of the reference town hall (see the module docstring)."""
    lines = ["start,mean,lo80,hi80"]
    total = sum(WEEKDAY_SHARES)
    for k in range(6):
        day = FIRST.fromordinal(FIRST.toordinal() + k)
        for hour in range(8, 19 if k < 5 else 13):
            for minute in (0, 15, 30, 45):
                mean = per_day * WEEKDAY_SHARES[hour - 8] / total / 4
                spread = Z80 * (mean + (sd * mean) ** 2) ** 0.5
                lo, hi = max(0.0, mean - spread), mean + spread
                lines.append(f"{day}T{hour:02d}:{minute:02d},{mean:.3f},{lo:.2f},{hi:.2f}")
    return "\n".join(lines) + "\n"


def six_agents() -> str:
    """Six agents, 35 h a week: staggered 7-hour weekday shifts with a 30-minute break,
    three of them on Saturday morning."""
    rows = ["agent,day,start,end,break_start,break_end"]
    shifts = (("08:00", "15:00", "12:00", "12:30"), ("12:00", "19:00", "15:00", "15:30"))
    for k in range(5):
        day = FIRST.fromordinal(FIRST.toordinal() + k)
        rows += [f"A{a + 1},{day}," + ",".join(shifts[(a + k) % 2]) for a in range(6)]
    saturday = FIRST.fromordinal(FIRST.toordinal() + 5)
    rows += [f"A{a + 1},{saturday},08:00,13:00,," for a in range(3)]
    return "\n".join(rows) + "\n"


def planning_figures() -> dict[str, float]:
    """Timing of the staffing plan and of the twin (see the module docstring)."""
    fc = parse_forecast(town_hall_week())
    started = time.perf_counter()
    plan_staffing(fc, Targets(min_answer_rate=0.99), 180.0, 120.0, 0.9)
    staffing_s = time.perf_counter() - started
    spec = twin.build(fc, twin.parse_schedule(six_agents()), Exponential(180.0), 120.0)
    started = time.perf_counter()
    twin.run(spec, TWIN_WEEKS)
    weeks_per_s = TWIN_WEEKS / (time.perf_counter() - started)
    return {"staffing_forecast_s": round(staffing_s, 3), "twin_weeks_per_s": round(weeks_per_s, 2)}


def schedule_figures() -> dict[str, float]:
    """Gap, time and shortfall of the two schedules (see the module docstring)."""
    targets = Targets(min_answer_rate=0.99)
    out = {}
    for name, per_day, solve in (
        ("6_named", 500.0, lambda req: schedule_named(req, [(f"A{i}", 35.0) for i in range(6)])),
        ("60_pool", 5000.0, lambda req: schedule_pool(req, 60, 35.0)),
    ):
        plan = plan_staffing(parse_forecast(town_hall_week(per_day)), targets, 180.0, 120.0, 0.9)
        req = requirement_from_plan(plan)
        started = time.perf_counter()
        result = solve(req)
        out[f"schedule_gap_{name}"] = round(result.gap, 5)
        out[f"schedule_s_{name}"] = round(time.perf_counter() - started, 2)
        out[f"schedule_short_h_{name}"] = round(result.shortfall_hours, 2)
        out[f"schedule_required_h_{name}"] = round(req.agent_hours(), 2)
    out["schedule_gap"] = max(out["schedule_gap_6_named"], out["schedule_gap_60_pool"])
    out["schedule_s"] = max(out["schedule_s_6_named"], out["schedule_s_60_pool"])
    return out


def run() -> dict[str, float]:
    return {
        **forecast_figures(), **scenario_figures(), **planning_figures(), **schedule_figures()
    }  # fmt: skip

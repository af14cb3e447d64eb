"""Forecast files, the day factor and staffing at a quantile of the forecast's uncertainty."""

import math
import random
from datetime import date, datetime, timedelta

import pytest

from acd.planning.demand import (
    DayFactor,
    ForecastError,
    Team,
    _gamma_p,
    assumed_forecast,
    day_spread,
    forecast_csv,
    parse_forecast,
    plan_staffing,
    requirements_csv,
)
from acd.planning.staffing import StaffingError, Targets, Traffic, required_agents

Z80 = 1.2815515655446004


def forecast_text(means, sd_factor=0.0, days=1, first=date(2026, 12, 7), step_min=60):
    """A forecast CSV: ``means`` per interval from 08:00 each day, counts with a day
    factor of standard deviation ``sd_factor`` on top of Poisson noise."""
    lines = ["start,mean,lo80,hi80"]
    for k in range(days):
        day = first + timedelta(days=k)
        for i, m in enumerate(means):
            start = datetime(day.year, day.month, day.day, 8) + timedelta(minutes=step_min * i)
            sd = math.sqrt(m + (sd_factor * m) ** 2)
            lo, hi = max(0.0, m - Z80 * sd), m + Z80 * sd
            lines.append(f"{start.isoformat(timespec='minutes')},{m},{lo:.6f},{hi:.6f}")
    return "\n".join(lines) + "\n"


def test_reads_the_forecast_format():
    fc = parse_forecast(forecast_text([10, 20, 30], days=2, step_min=15))
    assert fc.interval_s == 900
    assert len(fc.intervals) == 6
    assert list(fc.days()) == [date(2026, 12, 7), date(2026, 12, 8)]
    assert fc.intervals[1].start == datetime(2026, 12, 7, 8, 15)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("start,mean\n2026-12-07T08:00,1\n", "missing column(s) lo80, hi80"),
        ("start,mean,lo80,hi80\n", "no interval"),
        ("start,mean,lo80,hi80\nmonday,1,0,2\n", ":2: start must be a date and time"),
        ("start,mean,lo80,hi80\n2026-12-07T08:00,x,0,2\n", ":2: mean must be a number"),
        ("start,mean,lo80,hi80\n2026-12-07T08:00,-1,0,2\n", ":2: mean must be zero or more"),
        ("start,mean,lo80,hi80\n2026-12-07T08:00,1,3,2\n", ":2: lo80 3 is above hi80 2"),
        ("start,mean,lo80,hi80\n2026-12-07T08:00,1,0,2\n", "cannot tell the interval length"),
        (
            "start,mean,lo80,hi80\n2026-12-07T08:00,1,0,2\n2026-12-07T08:00,1,0,2\n",
            "interval 2026-12-07 08:00:00 given twice",
        ),
    ],
)
def test_bad_forecasts_are_named(text, message):
    with pytest.raises(ForecastError, match=None) as info:
        parse_forecast(text, "f.csv")
    assert message in str(info.value)
    assert str(info.value).startswith("f.csv")


def test_the_day_spread_is_recovered_from_the_intervals():
    fc = parse_forecast(forecast_text([5, 12, 30, 18], sd_factor=0.2))
    assert day_spread(fc.intervals) == pytest.approx(0.04, rel=1e-5)
    poisson = parse_forecast(forecast_text([5, 12, 30, 18], sd_factor=0.0))
    assert day_spread(poisson.intervals) == pytest.approx(0.0, abs=1e-6)


def test_gamma_cdf_and_quantiles():
    # shape 1 is the exponential distribution
    for x in (0.1, 1.0, 3.0, 10.0):
        assert _gamma_p(1.0, x) == pytest.approx(-math.expm1(-x), rel=1e-12)
    # shape 2: P = 1 - e^-x (1 + x)
    for x in (0.5, 2.0, 8.0):
        assert _gamma_p(2.0, x) == pytest.approx(1 - math.exp(-x) * (1 + x), rel=1e-12)
    factor = DayFactor(1.0)  # gamma(1, 1): exponential of mean 1
    for p in (0.1, 0.5, 0.9, 0.99):
        assert factor.quantile(p) == pytest.approx(-math.log1p(-p), rel=1e-8)
    narrow = DayFactor(0.01)  # sd 10 %: close to normal
    assert narrow.quantile(0.9) == pytest.approx(1 + 0.1 * Z80, abs=0.01)
    assert DayFactor(0.0).quantile(0.9) == 1.0


def test_day_factor_draws_have_mean_one_and_the_spread():
    rng = random.Random(5)
    draws = [DayFactor(0.04).sample(rng) for _ in range(20000)]
    mean = sum(draws) / len(draws)
    var = sum((x - mean) ** 2 for x in draws) / len(draws)
    assert mean == pytest.approx(1.0, abs=0.005)
    assert var == pytest.approx(0.04, rel=0.05)


AHT, PATIENCE = 180.0, 120.0
TARGET = Targets(min_answer_rate=0.99)


def test_no_spread_staffs_every_interval_for_its_mean():
    means = [10, 25, 40, 25]
    plan = plan_staffing(parse_forecast(forecast_text(means)), TARGET, AHT, PATIENCE, 0.9)
    assert plan.quantile is None
    expected = [required_agents(Traffic(m, AHT, 3600, PATIENCE), TARGET).agents for m in means]
    assert [n.agents for n in plan.intervals] == expected
    (week,) = plan.weeks
    assert week.agent_hours == week.agent_hours_at_mean == sum(expected)
    # Erlang A meets 99 % at the mean in every interval, with the slack of whole agents;
    # the week's own randomness (its missed calls drawn around Erlang's expectation)
    # makes that likely, not sure
    assert 0.5 < week.probability < 1


def test_the_quantile_is_the_lowest_meeting_the_confidence():
    text = forecast_text([10, 25, 40, 25], sd_factor=0.25, days=5)
    fc = parse_forecast(text)
    low = plan_staffing(fc, TARGET, AHT, PATIENCE, 0.5)
    high = plan_staffing(fc, TARGET, AHT, PATIENCE, 0.95)
    assert low.reached and high.reached
    assert high.weeks[0].probability >= 0.95
    assert low.weeks[0].probability >= 0.5
    assert high.quantile > low.quantile
    assert high.weeks[0].agent_hours > low.weeks[0].agent_hours
    # each interval is staffed for its mean times the factor's quantile
    factor = DayFactor(fc.day_spread()[date(2026, 12, 7)]).quantile(high.quantile)
    need = high.intervals[2]
    assert need.planned_calls == pytest.approx(40 * factor)
    assert need.agents == required_agents(Traffic(40 * factor, AHT, 3600, PATIENCE), TARGET).agents
    # a slightly lower level does not reach the confidence (the search is tight)
    below = plan_staffing(fc, TARGET, AHT, PATIENCE, high.weeks[0].probability + 1e-9)
    assert below.quantile >= high.quantile


def test_independent_days_make_the_week_surer_than_one_day():
    """Staffing every interval at the factor's q quantile makes each day meet the
    target with probability about q or more; over five independent days the week's
    aggregate is surer, so the quantile needed for 90 % weeks is below 0.9."""
    fc = parse_forecast(forecast_text([30, 60, 60, 30], sd_factor=0.2, days=5))
    plan = plan_staffing(fc, TARGET, AHT, PATIENCE, 0.9)
    assert plan.quantile < 0.9


def test_an_unreachable_confidence_says_so():
    fc = parse_forecast(forecast_text([30, 60], sd_factor=3.0))
    plan = plan_staffing(fc, TARGET, AHT, PATIENCE, 0.999)
    assert not plan.reached


def test_requirements_csv_is_what_schedule_reads():
    fc = parse_forecast(forecast_text([10, 40], step_min=30))
    text = requirements_csv(plan_staffing(fc, TARGET, AHT, PATIENCE))
    lines = text.splitlines()
    assert lines[0] == "start,agents"
    assert lines[1].startswith("2026-12-07T08:00,")
    assert lines[2].startswith("2026-12-07T08:30,")
    assert all(int(line.split(",")[1]) >= 1 for line in lines[1:])


def test_team_shortfall_in_hours_and_fte():
    team = Team(6, 35)
    assert team.hours == 210
    assert team.shortfall(366) == pytest.approx((156, 156 / 35))
    assert team.shortfall(140, shrinkage=0.3) == pytest.approx((-10, -10 / 35))
    with pytest.raises(StaffingError, match="contract hours"):
        Team(6, 0)
    with pytest.raises(StaffingError, match="confidence"):
        plan_staffing(parse_forecast(forecast_text([1, 2])), TARGET, AHT, PATIENCE, 1.0)


def test_assumed_forecast_spreads_the_profile_over_opening_hours():
    profile = {8: 0.25, 9: 0.5, 10: 0.25}
    hours = {0: ((8 * 60, 11 * 60),), 5: ((8 * 60 + 30, 10 * 60),)}  # Mon; Sat from 08:30
    fc = assumed_forecast(profile, 400, date(2026, 12, 7), 7, hours, 30, day_sd=0.2)
    days = fc.days()
    assert list(days) == [date(2026, 12, 7), date(2026, 12, 12)]
    assert [r.mean for r in days[date(2026, 12, 7)]] == [50, 50, 100, 100, 50, 50]
    assert [r.mean for r in days[date(2026, 12, 12)]] == [50, 100, 100]  # 08:30-10:00
    assert fc.interval_s == 1800
    again = parse_forecast(forecast_csv(fc))
    assert again.intervals == fc.intervals or all(
        abs(a.mean - b.mean) < 1e-3 and abs(a.hi80 - b.hi80) < 1e-3
        for a, b in zip(again.intervals, fc.intervals, strict=True)
    )
    assert again.day_spread()[date(2026, 12, 7)] == pytest.approx(0.04, rel=1e-3)
    with pytest.raises(StaffingError, match="interval must divide the hour"):
        assumed_forecast(profile, 400, date(2026, 12, 7), interval_min=45)


def test_a_clipped_lower_end_reads_the_upper_half():
    fc = parse_forecast("start,mean,lo80,hi80\n2026-12-07T08:00,1,0,3\n2026-12-07T09:00,1,0,3\n")
    assert fc.intervals[0].variance == pytest.approx((2 / Z80) ** 2)


def test_a_given_quantile_is_used_and_its_probability_reported():
    fc = parse_forecast(forecast_text([10, 25, 40, 25], sd_factor=0.25, days=5))
    plan = plan_staffing(fc, TARGET, AHT, PATIENCE, quantile=0.8)
    assert plan.given and plan.quantile == 0.8
    factor = DayFactor(fc.day_spread()[date(2026, 12, 7)]).quantile(0.8)
    assert plan.intervals[2].planned_calls == pytest.approx(40 * factor)
    assert 0 < plan.weeks[0].probability <= 1
    with pytest.raises(StaffingError, match="quantile must be in"):
        plan_staffing(fc, TARGET, AHT, PATIENCE, quantile=1.0)


def test_erlang_c_plans_a_service_level_over_busy_days():
    """Without patience, days busy enough to overload the team have no steady state:
    they count as missing the service level, not as an error."""
    fc = parse_forecast(forecast_text([20, 40, 40, 20], sd_factor=0.3, days=5))
    plan = plan_staffing(fc, Targets(sl=0.8, threshold_s=20), AHT, None, 0.9)
    assert plan.reached and plan.week_goals == ("sl_offered >= 0.8",)
    assert 0.9 <= plan.weeks[0].probability < 1
    assert all(n.performance.sl_offered >= 0.8 for n in plan.intervals)

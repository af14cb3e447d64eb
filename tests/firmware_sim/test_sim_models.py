"""Distributions, traffic and people: the statistics they are meant to have."""

from __future__ import annotations

import random
import statistics
from datetime import date

import pytest

from firmware_sim.distributions import Empirical, Exponential, Fixed, Lognormal
from firmware_sim.people import Behaviour, CallerModel, answer_delay, draw_caller, escalation
from firmware_sim.traffic import (
    SATURDAY_SHARES,
    WEEKDAY_SHARES,
    DayPlan,
    Profile,
    WeeklyTraffic,
    arrival_times,
)


@pytest.mark.parametrize(
    "dist", [Exponential(120.0), Lognormal(180.0, 90.0), Fixed(7.0), Empirical((1.0, 2.0, 9.0))]
)
def test_sample_means_match_the_distribution(dist):
    rng = random.Random(5)
    draws = [dist.sample(rng) for _ in range(20_000)]
    assert min(draws) >= 0
    assert statistics.fmean(draws) == pytest.approx(dist.mean, rel=0.03)


def test_lognormal_has_the_requested_sd():
    rng = random.Random(2)
    draws = [Lognormal(180.0, 90.0).sample(rng) for _ in range(40_000)]
    assert statistics.stdev(draws) == pytest.approx(90.0, rel=0.05)


def test_profiles_are_the_documented_assumptions():
    assert sum(WEEKDAY_SHARES) == 100 and len(WEEKDAY_SHARES) == 11  # 08:00-19:00
    assert sum(SATURDAY_SHARES) == 100 and len(SATURDAY_SHARES) == 5  # 08:00-13:00


def test_arrivals_follow_the_volume_and_the_hourly_profile():
    plan = DayPlan(700.0, Profile(8 * 3600.0, WEEKDAY_SHARES))
    rng = random.Random(9)
    days = [arrival_times(plan, rng) for _ in range(40)]
    counts = [len(d) for d in days]
    assert statistics.fmean(counts) == pytest.approx(700, rel=0.02)
    assert statistics.variance(counts) == pytest.approx(700, rel=0.5)  # Poisson: var = mean
    per_hour = [0] * 11
    for day in days:
        assert day == sorted(day) and day[0] >= 8 * 3600 and day[-1] < 19 * 3600
        for t in day:
            per_hour[int(t // 3600) - 8] += 1
    total = sum(per_hour)
    for observed, share in zip(per_hour, WEEKDAY_SHARES, strict=True):
        assert observed / total == pytest.approx(share / 100, abs=0.01)


def test_french_holidays_close_the_site():
    plan = DayPlan(250.0, Profile(8 * 3600.0, WEEKDAY_SHARES))
    week = WeeklyTraffic({"mon": plan, "tue": plan})
    assert week.plan_for(date(2026, 4, 6)) is None  # Easter Monday
    assert week.plan_for(date(2026, 4, 13)) is plan  # an ordinary Monday
    assert week.plan_for(date(2026, 4, 15)) is None  # Wednesday: not in the week
    assert WeeklyTraffic({"mon": plan}, public_holidays=False).plan_for(date(2026, 4, 6)) is plan


def test_callers_and_agents_decide_with_the_configured_odds():
    rng = random.Random(4)
    model = CallerModel(Fixed(30.0), menu={"1": 3.0, "2": 1.0}, calling_prefix="05")
    callers = [draw_caller(model, rng) for _ in range(4000)]
    assert all(len(c.calling) == 10 and c.calling.startswith("05") for c in callers)
    assert sum(c.digits == "1" for c in callers) / 4000 == pytest.approx(0.75, abs=0.03)
    b = Behaviour(Fixed(2.0), 0.2, Fixed(100.0), Fixed(5.0), 0.1, {"civil-status": 1.0})
    answers = [answer_delay(b, rng) for _ in range(4000)]
    assert sum(a is None for a in answers) / 4000 == pytest.approx(0.2, abs=0.03)
    escalations = [escalation(b, rng) for _ in range(4000)]
    assert sum(e == "civil-status" for e in escalations) / 4000 == pytest.approx(0.1, abs=0.02)

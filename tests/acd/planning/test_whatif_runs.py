"""What-if runs: Student t intervals, target verdicts, scenario and flag runs, sweeps."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from acd.config import load_config
from acd.core.records import Outcome
from acd.errors import AcdError
from acd.planning import whatif
from acd.planning.whatif import Estimate
from firmware_sim.scenario import load_scenario

CONFIG = Path(__file__).resolve().parents[3] / "examples" / "town-hall.toml"


@pytest.mark.parametrize(
    ("df", "expected"),
    [(1, 12.706204736), (2, 4.302652730), (9, 2.262157163), (30, 2.042272456), (1e6, 1.959966)],
)
def test_t_quantile_matches_published_values(df, expected):
    assert whatif.t_quantile(0.975, df) == pytest.approx(expected, abs=2e-6)
    assert whatif.t_quantile(0.025, df) == pytest.approx(-expected, abs=2e-6)
    assert whatif.t_cdf(whatif.t_quantile(0.975, df), df) == pytest.approx(0.975, abs=1e-12)


def test_estimate_is_the_mean_with_a_student_interval():
    e = whatif.estimate([1.0, None, 2.0, 3.0])
    half = 4.302652730 / 3**0.5  # sd 1, n 3
    assert (e.mean, e.n) == (2.0, 3)
    assert e.low == pytest.approx(2.0 - half) and e.high == pytest.approx(2.0 + half)
    assert whatif.estimate([0.99, 0.999, 1.0], rate=True).high == 1.0  # rates stay in [0, 1]
    assert whatif.estimate([0.5]) == Estimate(0.5, None, None, 1)
    assert whatif.estimate([None, None]) is None


@pytest.mark.parametrize(
    ("low", "high", "verdict"),
    [(0.991, 0.995, "holds"), (0.99, 0.995, "holds"), (0.985, 0.995, "uncertain"),
     (0.95, 0.9899, "does not hold")],
)  # fmt: skip
def test_verdict_compares_the_interval_with_the_target(low, high, verdict):
    got, text = whatif.verdict(Estimate((low + high) / 2, low, high, 10), 0.99)
    assert got == verdict
    assert "99 %" in text


def test_verdict_needs_an_interval():
    assert whatif.verdict(Estimate(0.999, None, None, 1), 0.99)[0] == "uncertain"
    assert whatif.verdict(None, 0.99)[0] == "uncertain"


def _point(volume: float, low: float) -> whatif.SweepPoint:
    rate = Estimate(low + 0.002, low, low + 0.004, 5)
    result = whatif.Result(5, (), 0, 0, {"answer_rate": rate}, {}, 0.99)
    return whatif.SweepPoint(volume, result, None)


def test_highest_holding_volume_stops_at_the_first_volume_that_does_not_hold():
    points = [_point(300, 0.992), _point(250, 0.995), _point(350, 0.985), _point(400, 0.991)]
    assert whatif.highest_holding(points) == 300
    assert whatif.highest_holding([_point(250, 0.95)]) is None


def town_hall(name: str = "town-hall-saturday-250") -> whatif.WhatIf:
    return whatif.for_scenario(load_scenario(name), load_config(CONFIG))


def test_scenario_day_gives_one_final_record_per_offered_call():
    spec = town_hall()
    assert spec.queue == "front-desk"
    run = whatif.run_day(spec, spec.dates()[0], seed=5)
    firsts = [r for r in run.records if r.leg == 1]
    assert run.calls > 150 and len(firsts) == run.calls  # no escalation on Saturdays
    assert len({r.call_id for r in firsts}) == run.calls
    assert run.unfinished == 0
    assert {r.outcome for r in firsts} <= set(Outcome)
    assert sum(r.outcome is Outcome.ANSWERED for r in firsts) > run.calls / 2


def test_runs_repeat_for_a_seed_and_differ_between_seeds():
    spec = town_hall()
    day = spec.dates()[0]
    first, again, other = (whatif.run_day(spec, day, s) for s in (5, 5, 6))
    assert first == again
    assert first.records != other.records


def test_days_skip_days_without_traffic():
    spec = dataclasses.replace(town_hall("town-hall-weekday-250"), days=6)
    dates = spec.dates()
    assert len(dates) == 6 and all(d.weekday() < 5 for d in dates)
    assert dates[0] == spec.scenario.day and dates[-1] > dates[0]


def test_a_scenario_pin_that_does_not_match_the_configuration_is_refused():
    scenario = load_scenario("town-hall-saturday-250")
    agents = (dataclasses.replace(scenario.agents[0], pin="0000"), *scenario.agents[1:])
    with pytest.raises(AcdError, match="agent 1001: the scenario's PIN"):
        whatif.for_scenario(dataclasses.replace(scenario, agents=agents), load_config(CONFIG))


def test_replications_give_hours_and_overall_figures():
    spec = town_hall()
    result = whatif.replicate(spec, 3, seed=2)
    assert sorted(result.hours) == [8, 9, 10, 11, 12]  # Saturday 08:00-13:00
    offered = result.overall["offered"]
    assert offered.n == 3 and 150 < offered.mean < 350
    assert sum(h["offered"].mean for h in result.hours.values()) == pytest.approx(offered.mean)
    assert result.target == 0.99 and result.verdict[0] in ("holds", "uncertain", "does not hold")


def test_flags_run_offers_the_daily_volume_to_the_team():
    flags = whatif.Flags(agents=3, calls_per_day=200, aht_s=120, patience_s=60, day="saturday")
    spec = whatif.for_flags(flags, days=2)
    assert [d.weekday() for d in spec.dates()] == [5, 5]
    assert sorted(spec.config.agents) == ["1001", "1002", "1003"]
    result = whatif.replicate(spec, 4, seed=1)
    assert 170 < result.overall["offered"].mean < 230
    assert sorted(result.hours) == [8, 9, 10, 11, 12]


def test_flags_with_the_site_config_replace_the_queue_team_and_keep_the_others():
    flags = whatif.Flags(agents=2, calls_per_day=100, aht_s=120, patience_s=60)
    spec = whatif.for_flags(flags, load_config(CONFIG), queue="front-desk")
    front = [a for a in spec.config.agents.values() if "front-desk" in a.skills]
    assert [a.id for a in front] == ["1001", "1002"]
    assert "2001" in spec.config.agents  # a specialist stays
    assert spec.config.acd.display_interval == 0.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"agents": 0}, "agents must be positive"),
        ({"aht_s": -1}, "AHT must be positive"),
        ({"distribution": "gamma"}, "exponential or lognormal"),
        ({"profile": {3: 1.0}}, "no call within the opening hours"),
    ],
)
def test_bad_flags_are_user_errors(kwargs, message):
    base = {"agents": 2, "calls_per_day": 100.0, "aht_s": 120.0, "patience_s": 60.0}
    with pytest.raises(AcdError, match=message):
        whatif.for_flags(whatif.Flags(**{**base, **kwargs}))


def test_sweep_sets_each_volume():
    flags = whatif.Flags(agents=2, calls_per_day=1, aht_s=120, patience_s=60)
    spec = whatif.for_flags(flags)
    points = whatif.sweep(spec, [50, 150], replications=2, seed=1)
    assert [p.calls_per_day for p in points] == [50, 150]
    offered = [p.result.overall["offered"].mean for p in points]
    assert 30 < offered[0] < 75 and 120 < offered[1] < 185
    rates = [p.expected.overall["answer_rate"] for p in points]
    assert rates[0] > rates[1]


def test_parallel_replications_give_the_same_figures():
    flags = whatif.Flags(agents=2, calls_per_day=80, aht_s=120, patience_s=60)
    spec = whatif.for_flags(flags)
    seen = []
    serial = whatif.replicate(spec, 3, seed=4)
    parallel = whatif.replicate(spec, 3, seed=4, on_replication=seen.append, jobs=2)
    assert parallel == serial
    assert [r.days for r in seen] == [1, 1, 1] and sum(r.calls for r in seen) == serial.calls


def test_missed_rings_are_counted_per_day():
    result = whatif.replicate(town_hall(), 2, seed=1)  # agents let 2 % of rings go
    assert result.overall["missed_rings"].mean > 0
    flags = whatif.Flags(agents=2, calls_per_day=80, aht_s=120, patience_s=60)
    assert whatif.replicate(whatif.for_flags(flags), 2).overall["missed_rings"].mean == 0

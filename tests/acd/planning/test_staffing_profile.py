"""Time-of-day profiles and the per-hour plan over opening hours."""

from pathlib import Path

import pytest

from acd.planning.profile import REFERENCE_HOURS, load_profile, parse_profile, plan_week
from acd.planning.staffing import StaffingError, Targets, Traffic, required_agents


def test_profile_shares_are_normalised_weights():
    text = "# comment\nhour,share\n08:00,7%\n9,11  # morning peak\n\n10,2\n"
    assert parse_profile(text) == pytest.approx({8: 0.35, 9: 0.55, 10: 0.1})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("8,1\n24,1\n", "<profile>:2: hour must be 0..23"),
        ("8,1\n08:30,1\n", "<profile>:2: hour must be 0..23"),
        ("8,1\n9\n", "<profile>:2: expected 'hour,share'"),
        ("8,1\n9,-2\n", "<profile>:2: share must be zero or more"),
        ("8,1\n\n8,2\n", "<profile>:3: hour 08 given twice"),
        ("hour,share\n8,0\n", "no hour with a positive share"),
    ],
)
def test_bad_profiles_name_the_line(text, message):
    with pytest.raises(StaffingError, match=message):
        parse_profile(text)


def test_missing_profile_file(tmp_path):
    with pytest.raises(StaffingError, match="cannot read the profile"):
        load_profile(tmp_path / "none.csv")


def test_plan_week_staffs_each_open_hour_like_a_single_interval():
    profile = {8: 0.25, 9: 0.5, 10: 0.25}
    targets = Targets(sl=0.8, threshold_s=20)
    hours = {0: ((8 * 60, 10 * 60 + 30),), 2: ((9 * 60, 10 * 60),)}
    plans = plan_week(400, profile, 180, targets, shrinkage=0.25, hours=hours)
    assert [(p.day, p.hour, p.open_minutes) for p in plans] == [
        ("mon", 8, 60),
        ("mon", 9, 60),
        ("mon", 10, 30),
        ("wed", 9, 60),
    ]
    for p in plans:
        alone = required_agents(Traffic(calls=400 * profile[p.hour], aht_s=180), targets)
        assert p.performance.agents == alone.agents
        assert p.agents_scheduled == -(-alone.agents * 4 // 3)
    assert plans[2].calls == pytest.approx(50)


def test_hours_outside_the_profile_get_no_calls_and_no_agents():
    plans = plan_week(100, {9: 1.0}, 180, Targets(sl=0.8), hours={4: ((8 * 60, 10 * 60),)})
    needed = required_agents(Traffic(calls=100, aht_s=180), Targets(sl=0.8)).agents
    assert [(p.hour, p.calls, p.performance.agents) for p in plans] == [
        (8, 0.0, 0),
        (9, 100, needed),
    ]


def test_reference_hours_are_sixty_a_week():
    plans = plan_week(250, {h: 1.0 for h in range(24)}, 240, Targets(sl=0.8))
    assert sum(p.open_minutes for p in plans) == 60 * 60
    assert REFERENCE_HOURS[5] == ((480, 780),)


def test_a_fixed_team_is_evaluated_every_hour():
    profile = load_profile(Path(__file__).resolve().parents[3] / "examples/profile-weekday.csv")
    plans = plan_week(250, profile, 240, Targets(), patience_s=120, agents=6)
    assert {p.performance.agents for p in plans} == {6}
    assert all(0.9 < p.performance.answer_rate <= 1 for p in plans)


def test_an_impossible_hour_is_named():
    with pytest.raises(StaffingError, match=r"^tue 09:00: 2 agents cannot carry 2\.5 erlangs"):
        plan_week(100, {9: 1.0}, 90, Targets(), hours={1: ((8 * 60, 10 * 60),)}, agents=2)

"""Erlang B, C and A figures against published values, exact identities and references."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from acd.planning.staffing import (
    MAX_AGENTS,
    SL_METRICS,
    StaffingError,
    Targets,
    Traffic,
    erlang_b,
    erlang_c,
    evaluate,
    lower_bound,
    required_agents,
    scheduled_agents,
)

PUBLISHED = Traffic(calls=100, interval_s=1800, aht_s=180)  # 10 erlangs


def test_published_erlang_c_example():
    assert PUBLISHED.erlangs == pytest.approx(10.0)
    staffed = required_agents(PUBLISHED, Targets(sl=0.8, threshold_s=20))
    assert staffed.agents == 14
    assert staffed.p_wait == pytest.approx(0.1741319336, abs=1e-10)
    assert staffed.sl_offered == pytest.approx(0.8883500192, abs=1e-10)
    assert staffed.asa_s == pytest.approx(7.835937, abs=1e-6)
    assert staffed.occupancy == pytest.approx(10 / 14)
    assert scheduled_agents(staffed.agents, 0.30) == 20
    assert evaluate(PUBLISHED, 13).sl_offered < 0.8


def test_erlang_b_recursion_matches_the_factorial_formula():
    a, n = 7.3, 12
    terms = [a**k / math.factorial(k) for k in range(n + 1)]
    assert erlang_b(n, a) == pytest.approx(terms[-1] / sum(terms), rel=1e-13)


@pytest.mark.parametrize("a", [0.1, 0.5, 0.93])
def test_mm1_waits_with_probability_rho(a):
    assert erlang_c(1, a) == pytest.approx(a, rel=1e-13)


@pytest.mark.parametrize("a", [0.2, 1.0, 1.9])
def test_mm2_waits_with_probability_a2_over_2_plus_a(a):
    assert erlang_c(2, a) == pytest.approx(a * a / (2 + a), rel=1e-13)


def _poisson_pmf(a: float, count: int) -> list[float]:
    term, out = math.exp(-a), []
    for k in range(count):
        out.append(term)
        term *= a / (k + 1)
    return out


@pytest.mark.parametrize(("a", "n"), [(10, 8), (10, 14), (3.5, 1), (50, 40), (50, 70)])
def test_erlang_a_with_patience_equal_to_aht_is_poisson(a, n):
    # With θ = μ the number in system is Poisson(a): P(wait) = P(N ≥ n) and
    # P(abandon) = θ·E[queue]/λ = E[(N − n)+]/a.
    traffic = Traffic(calls=a, interval_s=180, aht_s=180, patience_s=180)
    pmf = _poisson_pmf(a, 400)
    perf = evaluate(traffic, n)
    assert perf.p_wait == pytest.approx(1 - sum(pmf[:n]), rel=1e-11)
    excess = sum((k - n) * p for k, p in enumerate(pmf) if k > n)
    assert perf.p_abandon == pytest.approx(excess / a, rel=1e-11)
    assert perf.mean_wait_s == pytest.approx(perf.p_abandon * 180, rel=1e-12)


def _lower_gamma(s: float, x: float) -> float:
    """γ(s, x) by its textbook series (fine for the moderate values used here)."""
    total, term, k = 0.0, 1 / s, 0
    while term > 1e-18 * total or k < 5:
        total += term
        k += 1
        term *= x / (s + k)
    return x**s * math.exp(-x) * total


def _erlang_a_reference(lam, mu, theta, n, t):
    """Mandelbaum & Zeltyn's closed forms, by series: (P(wait), P(ab), SLs, ASA)."""
    s, x, rho = n * mu / theta, lam / theta, lam / (n * mu)
    b = erlang_b(n, lam / mu)
    big_a = s * math.exp(x) * x**-s * _lower_gamma(s, x)
    p_wait = big_a * b / (1 - b + big_a * b)
    p_ab = p_wait * (1 / (rho * big_a) + 1 - 1 / rho)
    x_t = x * math.exp(-theta * t)
    norm = x * _lower_gamma(s, x)
    within = (_lower_gamma(s + 1, x) - _lower_gamma(s + 1, x_t)) / norm
    sl_offered = 1 - p_wait + p_wait * within
    sl_wait = 1 - p_wait * _lower_gamma(s, x_t) / _lower_gamma(s, x) * math.exp(-theta * t)
    # Wait of answered calls from the states: j callers ahead, served with probability
    # nμ/(nμ + (j+1)θ) after stages of rates nμ + iθ, i = j+1 .. 1.
    waited, share, harmonic, j = 0.0, 1 / big_a, 0.0, 0
    while share > 1e-18 or j < x:
        harmonic += 1 / (n * mu + (j + 1) * theta)
        waited += share * n * mu / (n * mu + (j + 1) * theta) * harmonic
        j += 1
        share *= lam / (n * mu + j * theta)
    asa = p_wait * waited / (1 - p_ab)
    return p_wait, p_ab, sl_offered, sl_wait, asa


@pytest.mark.parametrize(
    ("calls", "aht", "patience", "n", "t"),
    [
        (100, 180, 120, 9, 20),  # overloaded: fewer agents than erlangs
        (100, 180, 120, 12, 20),
        (100, 180, 600, 11, 30),
        (30, 240, 60, 2, 10),
        (400, 200, 90, 25, 0),
        (400, 200, 90, 25, 500),
        (900, 60, 300, 18, 15),
        (7.5, 774, 5, 2, 10),  # callers far less patient than agents are quick
        (55, 637, 5, 1, 3),
    ],
)
def test_erlang_a_matches_the_closed_forms(calls, aht, patience, n, t):
    traffic = Traffic(calls=calls, interval_s=1800, aht_s=aht, patience_s=patience)
    ref = _erlang_a_reference(traffic.arrival_rate, 1 / aht, 1 / patience, n, t)
    perf = evaluate(traffic, n, threshold_s=t)
    got = (perf.p_wait, perf.p_abandon, perf.sl_offered, perf.sl_wait, perf.asa_s)
    assert got == pytest.approx(ref, rel=1e-9, abs=1e-12)
    assert perf.sl_answered == pytest.approx(perf.sl_offered / perf.answer_rate)
    assert perf.occupancy == pytest.approx(traffic.erlangs * perf.answer_rate / n)


def test_erlang_a_tends_to_erlang_c_as_patience_grows():
    c = evaluate(PUBLISHED, 14)
    gaps = []
    for patience in (1e3, 1e5, 1e7, 1e9):
        a = evaluate(Traffic(100, 180, 1800, patience_s=patience), 14)
        gaps.append(abs(a.sl_offered - c.sl_offered) + abs(a.asa_s - c.asa_s) / c.asa_s)
        assert a.p_abandon <= 1.1 * c.asa_s / patience
    assert gaps == sorted(gaps, reverse=True)
    assert gaps[-1] < 1e-6
    far = evaluate(Traffic(100, 180, 1800, patience_s=1e9), 14)
    assert far.p_wait == pytest.approx(c.p_wait, rel=1e-6)


def test_huge_teams_stay_finite():
    for patience in (None, 120.0, 1e6):
        perf = evaluate(Traffic(1.8e6, 180, 3600, patience_s=patience), MAX_AGENTS)
        values = [v for v in perf._asdict().values() if isinstance(v, float)]
        assert all(math.isfinite(v) for v in values)
        assert 0 <= perf.p_wait <= 1
    near_load = evaluate(Traffic(1.998e6, 180, 3600, patience_s=120), MAX_AGENTS)
    assert 0 < near_load.p_wait < 1
    assert 0 < near_load.p_abandon < near_load.p_wait
    one = evaluate(Traffic(1e6, 180, 3600, patience_s=120), 1)
    assert one.p_wait == 1.0 and one.answer_rate == pytest.approx(1 / 50_000, rel=1e-6)
    staffed = required_agents(Traffic(1.8e6, 180, 3600), Targets(sl=0.8, threshold_s=20))
    assert 90_000 < staffed.agents < 90_200 and staffed.sl_offered >= 0.8


def test_fewer_agents_than_the_load_can_meet_an_erlang_a_target():
    traffic = Traffic(calls=100, interval_s=1800, aht_s=180, patience_s=30)
    staffed = required_agents(traffic, Targets(max_abandon=0.25))
    assert staffed.agents < traffic.erlangs
    assert lower_bound(traffic, Targets(max_abandon=0.25)) <= staffed.agents


@st.composite
def traffics(draw):
    return Traffic(
        calls=draw(st.floats(1, 3000)),
        interval_s=3600,
        aht_s=draw(st.floats(10, 900)),
        patience_s=draw(st.one_of(st.none(), st.floats(5, 3600))),
    )


@given(traffics(), st.integers(1, 400), st.floats(0, 120))
def test_figures_are_probabilities_monotone_in_agents(traffic, n, t):
    n = max(n, math.floor(traffic.erlangs) + 1) if traffic.patience_s is None else n
    one, more = evaluate(traffic, n, t), evaluate(traffic, n + 1, t)
    for perf in (one, more):
        for name in ("p_wait", "p_abandon", "answer_rate", "sl_offered", "sl_answered"):
            assert 0 <= getattr(perf, name) <= 1, name
        assert 0 <= perf.sl_wait <= 1 and 0 <= perf.occupancy <= 1
        assert perf.asa_s >= 0
        assert perf.sl_offered <= perf.answer_rate * (1 + 1e-12)
    slack = 1e-12
    assert more.p_wait <= one.p_wait + slack
    assert more.p_abandon <= one.p_abandon + slack
    assert more.sl_offered >= one.sl_offered - slack
    assert more.sl_answered >= one.sl_answered - slack
    assert more.sl_wait >= one.sl_wait - slack
    assert more.asa_s <= one.asa_s * (1 + slack) + slack
    assert more.occupancy <= one.occupancy + slack


@given(
    traffics(),
    st.one_of(st.none(), st.floats(0.5, 0.95)),
    st.one_of(st.none(), st.floats(0.005, 0.2)),
    st.one_of(st.none(), st.floats(5, 120)),
    st.sampled_from(SL_METRICS),
)
def test_required_agents_is_the_smallest_team_meeting_the_targets(
    traffic, sl, abandon, asa, metric
):
    targets = Targets(sl=sl, threshold_s=20, sl_metric=metric, max_abandon=abandon, max_asa_s=asa)
    staffed = required_agents(traffic, targets)
    assert targets.unmet(staffed) == []
    assert staffed.agents >= lower_bound(traffic, targets)
    if staffed.agents > 1:  # one agent fewer misses a target (or cannot carry the load)
        try:
            fewer = evaluate(traffic, staffed.agents - 1, 20)
        except StaffingError:
            assert traffic.patience_s is None and staffed.agents - 1 <= traffic.erlangs
        else:
            assert targets.unmet(fewer)


def test_occupancy_cap_and_answer_rate_targets():
    traffic = Traffic(calls=600, aht_s=240, patience_s=90)  # 40 erlangs
    staffed = required_agents(traffic, Targets(min_answer_rate=0.99, max_occupancy=0.8))
    assert staffed.answer_rate >= 0.99 and staffed.occupancy <= 0.8
    assert Targets(min_answer_rate=0.99, max_occupancy=0.8).unmet(
        evaluate(traffic, staffed.agents - 1)
    )
    by_abandon = required_agents(traffic, Targets(max_abandon=0.01))
    assert by_abandon.agents == required_agents(traffic, Targets(min_answer_rate=0.99)).agents


def test_no_calls_need_no_agents():
    staffed = required_agents(Traffic(calls=0, aht_s=180), Targets(sl=0.8))
    assert staffed.agents == 0 and staffed.answer_rate == 1.0


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: Traffic(calls=10, aht_s=-5), "AHT must be a positive"),
        (lambda: Traffic(calls=-1, aht_s=5), "calls must be zero or more"),
        (lambda: Traffic(calls=1, aht_s=5, patience_s=0), "patience must be positive"),
        (lambda: Targets(sl=1.5), "sl must be in"),
        (lambda: Targets(max_abandon=1.0), "max_abandon must be in"),
        (lambda: Targets(sl_metric="sl_other"), "service level must be one of"),
        (lambda: scheduled_agents(10, 1.0), "shrinkage must be in"),
        (lambda: evaluate(PUBLISHED, 10), "cannot carry 10 erlangs"),
        (lambda: evaluate(PUBLISHED, 0), "at least one agent"),
        (
            lambda: required_agents(PUBLISHED, Targets(sl=0.8), max_agents=12),
            "no team of up to 12 agents meets sl_offered >= 0.8",
        ),
        (lambda: required_agents(PUBLISHED, Targets(), max_agents=5), "no team of up to 5"),
    ],
)
def test_errors_say_what_is_wrong(make, message):
    with pytest.raises(StaffingError, match=message):
        make()

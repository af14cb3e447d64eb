"""The arrivals forecast against series generated from a known rate: error near the
noise floor, calibrated 80 % intervals, public holidays and bridge days, CSV in and out."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import numpy as np
import pytest

from acd.planning.forecast import (
    ForecastError,
    History,
    Holidays,
    Settings,
    backtest,
    calendar_templates,
    dispersion,
    forecast,
    generate,
    history_from_counts,
    nb_quantiles,
    read_history,
    to_csv,
    wape,
)


@pytest.fixture(scope="module")
def year():
    """40 weeks of 30-minute counts from 2025-09-01 (holidays closed, bridges at 70 %)."""
    return generate(date(2025, 9, 1), 40, per_day=400, step=30, seed=7, future_days=14)


def test_error_approaches_the_noise_floor_and_the_interval_is_calibrated(year):
    result = backtest(year.history, 16, truth=year.truth)
    assert result.floor_wape > 0.1  # the test is not trivial: the noise is real
    assert result.wape / result.floor_wape <= 1.06
    assert 0.75 <= result.coverage <= 0.85
    assert result.ratio <= 0.75  # at least 25 % better than repeating the last week
    assert 0.70 <= result.naive_coverage <= 0.90


def test_forecast_of_the_next_two_weeks_against_what_happened(year):
    result = forecast(year.history, 14)
    actual, mean, truth, lo, hi = [], [], [], [], []
    for d in result.days:
        for m in d.minutes:
            actual.append(year.future.count(d.day, m))
            truth.append(year.truth.get((d.day, m), 0.0))
        mean.append(d.mean)
        lo.append(d.lo80)
        hi.append(d.hi80)
    actual, truth = np.array(actual), np.array(truth)
    mean, lo, hi = np.concatenate(mean), np.concatenate(lo), np.concatenate(hi)
    assert wape(actual, mean) <= 1.1 * wape(actual, truth)
    assert 0.7 <= float(np.mean((actual >= lo) & (actual <= hi))) <= 0.9
    assert np.all(lo <= mean) and np.all(mean <= hi)


def test_a_break_of_the_level_is_followed_at_once(year):
    """Calls up 30 % from two weeks before the end (a new service, a merger): the
    recency-weighted level alone would lag by over 10 %; the break is found and
    followed."""
    cut = year.history.last - timedelta(days=14)
    days = {
        d: {m: round(c * 1.3) for m, c in counts.items()} if d > cut else counts
        for d, counts in year.history.days.items()
    }
    broken = History(year.history.step, days, year.history.first, year.history.last)
    for level_shift, low, high in ((True, 0.93, 1.07), (False, 0.75, 0.9)):
        result = forecast(broken, 7, settings=Settings(level_shift=level_shift))
        if level_shift:
            assert cut < result.level_break <= cut + timedelta(days=3)
        truth = sum(year.truth.get((d.day, m), 0.0) for d in result.days for m in d.minutes)
        assert low < sum(d.total for d in result.days) / (1.3 * truth) < high, level_shift


def test_a_busy_day_followed_by_busy_days_is_carried_forward():
    """Day effects autocorrelated (0.6 from one open day to the next): the forecast
    carries the last day's deviation forward and beats the one that does not."""
    wapes = {}
    for persistence in (True, False):
        settings = Settings(persistence=persistence, holdout_weeks=2)  # WAPE only: quick
        errors = calls = 0.0
        for seed in (4, 5):
            g = generate(date(2025, 1, 6), 30, per_day=400, step=60, seed=seed, day_ar=0.6,
                         day_cv=0.15)  # fmt: skip
            result = backtest(g.history, 10, settings=settings)
            errors += result.wape * result.calls
            calls += result.calls
        wapes[persistence] = errors / calls
    assert wapes[True] < 0.97 * wapes[False]


def test_intervals_are_those_of_the_history_per_weekday(year):
    result = forecast(year.history, 7)
    by_weekday = {d.day.weekday(): d.minutes for d in result.days}
    assert sorted(by_weekday) == [0, 1, 2, 3, 4, 5]  # no Sunday: never open
    assert by_weekday[0] == tuple(range(480, 1080, 30))
    assert by_weekday[5] == tuple(range(540, 720, 30))
    assert result.days[0].day == year.history.last + timedelta(days=1)


def test_public_holidays_of_2026_are_forecast_closed_and_bridges_low():
    g = generate(date(2025, 6, 2), 44, per_day=300, step=60, seed=3, future_days=0)
    # the history ends on Sunday 2026-04-05: forecast to mid-July
    assert g.history.last == date(2026, 4, 5)
    result = forecast(g.history, 101)
    days = {d.day: d for d in result.days}
    for holiday in (date(2026, 4, 6), date(2026, 5, 1), date(2026, 5, 14), date(2026, 7, 14)):
        assert days[holiday].closed is not None, holiday
        assert days[holiday].total == 0
        assert not days[holiday].hi80.any()
    assert days[date(2026, 5, 14)].closed == "Ascension"
    normal_friday = days[date(2026, 5, 22)].total
    assert days[date(2026, 5, 15)].kind == "bridge"  # Friday after Ascension
    assert 0.55 < days[date(2026, 5, 15)].total / normal_friday < 0.85  # generated at 0.7
    assert days[date(2026, 7, 13)].kind == "bridge"  # Monday before Tuesday 14 July


def test_a_holiday_open_in_the_history_is_forecast_open_at_its_measured_level():
    g = generate(date(2025, 1, 6), 52, per_day=300, step=60, seed=5, holiday_factor=0.4)
    result = forecast(g.history, 100, holidays=Holidays("FR"))
    days = {d.day: d for d in result.days}
    easter_monday, next_monday = days[date(2026, 4, 6)], days[date(2026, 4, 13)]
    assert easter_monday.closed is None and easter_monday.kind == "holiday"
    assert 0.25 < easter_monday.total / next_monday.total < 0.6


def test_outage_days_are_left_out_not_learnt(year):
    days = dict(year.history.days)
    last = year.history.last
    hit = [last - timedelta(days=k) for k in (2, 10, 16, 26)]  # Fri, Thu, Fri, Tue
    for day in hit:
        days[day] = {m: round(c * 0.2) for m, c in days[day].items()}  # 80 % lost
    damaged = History(year.history.step, days, year.history.first, last)
    clean, result = forecast(year.history, 7), forecast(damaged, 7)
    assert set(result.outliers) == set(hit)
    for a, b in zip(clean.days, result.days, strict=True):
        assert b.total == pytest.approx(a.total, rel=0.03)
    assert result.phi == pytest.approx(clean.phi, rel=0.2)


def test_bridge_days_and_alsace_moselle():
    fr = Holidays("FR")
    assert fr.is_bridge(date(2026, 5, 15))  # Friday after Ascension (Thursday 14 May)
    assert fr.is_bridge(date(2026, 7, 13))  # Monday before Tuesday 14 July
    assert not fr.is_bridge(date(2026, 5, 4))  # 1 May 2026 is a Friday: no bridge
    assert not fr.is_bridge(date(2026, 5, 16))  # a Saturday
    assert not fr.is_bridge(date(2026, 5, 14))  # the holiday itself
    assert fr.kind(date(2026, 7, 14)) == "holiday"
    assert fr.name(date(2026, 4, 3)) is None  # Good Friday: only in Alsace-Moselle
    for spec in ("FR-57", "FR-67", "FR-68"):
        alsace = Holidays(spec)
        assert alsace.name(date(2026, 4, 3)) and alsace.name(date(2026, 12, 26))
    assert Holidays("none").name(date(2026, 7, 14)) is None
    with pytest.raises(ForecastError, match="holidays must be one of"):
        Holidays("DE")


def test_negative_binomial_mid_quantiles_hold_80_percent():
    rng = np.random.default_rng(1)
    for mu, phi in ((0.7, 0.0), (4.0, 0.0), (12.0, 0.05), (60.0, 0.02), (300.0, 0.01)):
        lo, hi = nb_quantiles(np.array([mu]), phi)
        rate = rng.gamma(1 / phi, mu * phi, 200_000) if phi else np.full(200_000, mu)
        draws = rng.poisson(rate)
        held = float(np.mean((draws >= lo[0]) & (draws <= hi[0])))
        assert 0.72 <= held <= 0.88, (mu, phi, held)
        assert dispersion(draws, np.full(len(draws), mu)) == pytest.approx(phi, abs=0.01)
    lo, hi = nb_quantiles(np.array([0.0]), 0.1)
    assert lo[0] == hi[0] == 0.0


def test_csv_in_and_out(tmp_path):
    text = "start,calls\n" + "".join(
        f"2026-03-{d:02d}T{h:02d}:{m:02d},{(d + h + m) % 7}\n"
        for d in range(2, 31)
        if date(2026, 3, d).weekday() < 5
        for h in range(8, 12)
        for m in (0, 15, 30, 45)
    )
    history = read_history(text, "counts.csv")
    assert history.step == 15
    assert history.first == date(2026, 3, 2) and history.last == date(2026, 3, 30)
    result = forecast(history, 7)
    out = to_csv(result).splitlines()
    assert out[0] == "start,mean,lo80,hi80"
    assert out[1].startswith("2026-03-31T08:00,")
    assert len(out) == 1 + 5 * 16  # Tue 31 March to Mon 6 April (no weekend in the history)
    assert all(line.endswith(",0.000,0.00,0.00") for line in out[-16:])  # Easter Monday
    starts = [datetime.fromisoformat(line.split(",")[0]) for line in out[1:]]
    assert starts == sorted(starts)
    assert read_history(to_csv(result).replace("mean", "calls"), "again").step == 15


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "counts.csv: empty file"),
        ("when,count\n", "header must name columns start and calls"),
        ("start,calls\n", "no interval"),
        ("start,calls\n2026-03-02 8h,3\n", "counts.csv:2: start must be a date-time"),
        ("start,calls\n2026-03-02T08:00,-1\n", "counts.csv:2: calls must be a count"),
        ("start,calls\n2026-03-02T08:00,x\n", "counts.csv:2: calls must be a count"),
        ("start,calls\n2026-03-02T08:00,1\n2026-03-02T08:00,2\n", "counts.csv:3: interval"),
        (
            "start,calls\n2026-03-02T08:00,1\n2026-03-02T08:30,2\n2026-03-03T08:10,1\n",
            "not on the 30-minute grid",
        ),
    ],
)
def test_bad_history_is_named(text, message):
    with pytest.raises(ForecastError, match=message):
        read_history(text, "counts.csv")


def test_short_history_still_forecasts_and_says_so():
    g = generate(date(2026, 3, 2), 2, per_day=200, step=60, seed=2)
    result = forecast(g.history, 7)
    assert result.measured_weeks == 0 and "±10 % at least" in result.notes[-1]
    assert result.phi >= 0.01 and result.phi_day >= 0.01
    assert all(d.total > 0 for d in result.days)
    with pytest.raises(ForecastError, match="needs 21 days of history, it has 14"):
        backtest(g.history, 1)


def test_calendar_templates_cover_partly_open_intervals():
    hours = {0: ((8 * 60, 12 * 60 + 30),), 5: ()}
    assert calendar_templates(hours, 60) == {0: (480, 540, 600, 660, 720)}
    counts = [(datetime(2026, 3, 2, 8), 3.0), (datetime(2026, 3, 2, 9), 4.0)]
    history = history_from_counts(counts)
    result = forecast(history, 7, templates=calendar_templates(hours, 60))
    (monday,) = result.days
    assert monday.minutes == (480, 540, 600, 660, 720)
    assert monday.mean[2:].sum() == 0  # never a call there yet: forecast none


def test_intervals_may_start_off_the_hour():
    rows = [(datetime(2026, 3, 2, 8, 15) + timedelta(days=d, minutes=30 * k), 5.0 + k)
            for d in range(14) for k in range(4)]  # fmt: skip
    history = history_from_counts(rows)
    assert history.step == 30
    result = forecast(history, 1)
    assert result.days[0].minutes == (495, 525, 555, 585)


def test_weekdays_without_calls_are_not_forecast_and_said_so():
    history = history_from_counts(
        [(datetime(2026, 3, 10, 9), 12.0), (datetime(2026, 3, 10, 10), 30.0)]
    )
    hours = {w: ((8 * 60, 12 * 60),) for w in range(6)}
    result = forecast(history, 7, templates=calendar_templates(hours, 60))
    assert [d.day for d in result.days] == [date(2026, 3, 17)]
    assert result.days[0].total == pytest.approx(42.0)
    assert "no call on any Mon, Wed, Thu, Fri, Sat of the history: not forecast" in result.notes

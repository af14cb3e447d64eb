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
"""

from __future__ import annotations

import time
from datetime import date

import numpy as np

from acd.planning.forecast import backtest, forecast, generate

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


def run() -> dict[str, float]:
    return forecast_figures()

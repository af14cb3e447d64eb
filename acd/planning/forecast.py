"""Forecast of call arrivals per interval, from a history of counts (docs/planning.md).

The model is the fixed-effects structure the call-centre literature finds hardest to
beat a day to two weeks ahead (Taylor 2008, 2012; Shen & Huang 2008, whose first SVD
factor of the day × interval matrix is a day total times a shape; Ibrahim et al. 2016):

- **day totals**: a Poisson log-linear model, weighted by recency (exponential
  half-life), of a level, a trend, a day-of-week effect and the effects of public
  holidays and bridge days that the history has open; days far off the fit are
  down-weighted, those very far (an outage, a storm) left out of everything; a recent
  break of the level becomes a step; the last day's deviation is carried forward when
  the history shows deviations persist;
- **intraday shape**: per weekday, the share of the day's calls of each interval,
  weighted by recency, shrunk towards the shape of the weekdays with the same opening
  intervals by as much as the data cannot tell them apart (empirical Bayes);
- **uncertainty**: counts are gamma-Poisson (negative binomial, variance μ + φ μ²);
  ``φ`` is measured on weeks of the history held out one after the other (each
  forecast from the weeks before it), so the 80 % interval is calibrated on the
  site's own data, forecast error included.

Public holidays come from the ``holidays`` package (France, with Alsace-Moselle's two
more); a holiday is forecast closed unless the history has that holiday (or, failing
that, most of its holidays) open. A bridge day is a working day between a holiday and a
weekend. Accuracy is judged by WAPE (sum of absolute errors ÷ sum of calls), never MAPE,
which counts near zero make meaningless.

Pure: numpy and the ``holidays`` package, no I/O (`read_history`, `to_csv` and
`history_csv` work on text, `history_from_records` on records already read).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import numpy as np

from acd.core.records import Outcome
from acd.errors import AcdError

if TYPE_CHECKING:
    from acd.core.figures import Tally
    from acd.core.records import CallRecord

WEEKDAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
HOLIDAY_CHOICES = ("FR", "FR-57", "FR-67", "FR-68", "none")
QUANTILES = (0.1, 0.9)  # the 80 % prediction interval
# φ assumed when the history is too short to measure it: day levels varying by ±10 %,
# the day-to-day spread call centres commonly show beyond Poisson noise
SHORT_HISTORY_PHI = 0.01


class ForecastError(AcdError):
    """A history that cannot be forecast (too short, malformed, irregular)."""


# -- history ------------------------------------------------------------------------------


@dataclass(frozen=True)
class History:
    """Arrivals per interval: ``days`` maps each open local day to its counts by minute
    of the day (interval start); a day of the span ``first``..``last`` missing from
    ``days`` was closed. ``step`` is the interval length in minutes."""

    step: int
    days: Mapping[date, Mapping[int, float]]
    first: date
    last: date

    def __post_init__(self) -> None:
        if self.step <= 0 or 1440 % self.step:
            raise ForecastError(
                f"interval of {self.step} min does not divide a day (15, 30, 60 ... min)"
            )
        if self.last < self.first:
            raise ForecastError("the history is empty")

    @property
    def n_days(self) -> int:
        """Days in the span, closed ones included."""
        return (self.last - self.first).days + 1

    def templates(self) -> dict[int, tuple[int, ...]]:
        """Per weekday (0 = Monday), the interval starts (minutes) the history has."""
        seen: dict[int, set[int]] = {}
        for day, counts in self.days.items():
            seen.setdefault(day.weekday(), set()).update(counts)
        return {w: tuple(sorted(m)) for w, m in seen.items()}

    def before(self, day: date) -> History:
        """The part of the history before ``day``."""
        return History(
            self.step, {d: c for d, c in self.days.items() if d < day}, self.first, day - ONE_DAY
        )

    def count(self, day: date, minute: int) -> float:
        """Calls of one interval (0 on a closed day or a missing row)."""
        return self.days.get(day, {}).get(minute, 0.0)


ONE_DAY = timedelta(days=1)


def history_from_counts(
    rows: Iterable[tuple[datetime, float]],
    step: int | None = None,
    first: date | None = None,
    last: date | None = None,
) -> History:
    """A `History` from ``(local start, calls)`` rows; the interval length is ``step``
    minutes or, by default, the shortest gap between two intervals of a day. ``first``
    and ``last`` widen the span (days without rows in it were closed)."""
    days: dict[date, dict[int, float]] = {}
    for start, calls in rows:
        minute = start.hour * 60 + start.minute
        day = days.setdefault(start.date(), {})
        day[minute] = day.get(minute, 0.0) + calls
    if not days:
        raise ForecastError("the history has no interval")
    if step is None:
        gaps = [b - a for counts in days.values() for a, b in itertools.pairwise(sorted(counts))]
        step = min(gaps, default=60)
        if 1440 % step:
            step = math.gcd(step, 1440)
    offset = min(min(counts) for counts in days.values()) % step  # starts at :15 are fine
    for day, counts in days.items():
        for minute in counts:
            if (minute - offset) % step:
                shown = f"{day}T{minute // 60:02d}:{minute % 60:02d}"
                raise ForecastError(
                    f"interval {shown} is not on the {step}-minute grid of the others"
                )
    span = (min(first or min(days), min(days)), max(last or max(days), max(days)))
    return History(step, days, *span)


def read_history(text: str, source: str = "<history>") -> History:
    """A history from CSV text with columns ``start,calls`` (local ISO date-time, count),
    one row per interval; a row's time zone, if written, is dropped (local wall time).
    Blank lines and lines starting with ``#`` are skipped."""
    reader = enumerate(csv.reader(io.StringIO(text)), start=1)
    header = None
    for _, row in reader:
        if row and "".join(row).strip() and not row[0].lstrip().startswith("#"):
            header = row
            break
    if header is None:
        raise ForecastError(f"{source}: empty file (expected a header start,calls)")
    names = [h.strip().lower() for h in header]
    if "start" not in names or "calls" not in names:
        raise ForecastError(f"{source}: the header must name columns start and calls, got {header}")
    i_start, i_calls = names.index("start"), names.index("calls")
    rows: list[tuple[datetime, float]] = []
    seen: set[datetime] = set()
    for line, row in reader:
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        if len(row) <= max(i_start, i_calls):
            raise ForecastError(f"{source}:{line}: expected start,calls, got {','.join(row)!r}")
        text_start, text_calls = row[i_start].strip(), row[i_calls].strip()
        try:
            start = datetime.fromisoformat(text_start).replace(tzinfo=None)
        except ValueError:
            raise ForecastError(
                f"{source}:{line}: start must be a date-time like 2026-03-10T08:00,"
                f" got {text_start!r}"
            ) from None
        try:
            calls = float(text_calls)
        except ValueError:
            calls = math.nan
        if not math.isfinite(calls) or calls < 0:
            raise ForecastError(
                f"{source}:{line}: calls must be a count, zero or more, got {text_calls!r}"
            )
        if start in seen:
            raise ForecastError(f"{source}:{line}: interval {text_start} appears twice")
        seen.add(start)
        rows.append((start, calls))
    if not rows:
        raise ForecastError(f"{source}: no interval (rows start,calls after the header)")
    try:
        return history_from_counts(rows)
    except ForecastError as exc:
        raise ForecastError(f"{source}: {exc}") from None


def history_from_records(
    records: Iterable[CallRecord],
    timezone: str,
    step: int = 60,
    queue: str | None = None,
    kept: Iterable[tuple[str, float, Tally]] = (),
) -> History:
    """Arrivals per ``step``-minute local interval from call records: the first leg of
    each call at its arrival or, for one ``queue``, the legs entering that queue (its
    escalations and overflows included); calls that met a closed announcement are not
    arrivals to staff for. ``kept`` adds the hourly figures of purged detail
    (``(queue, hour start, sums)``) when ``step`` is a whole number of hours."""
    tz = ZoneInfo(timezone)
    buckets: dict[datetime, float] = {}

    def add(at: float, calls: float) -> None:
        local = datetime.fromtimestamp(at, tz).replace(tzinfo=None)
        minute = (local.hour * 60 + local.minute) // step * step
        start = datetime.combine(local.date(), datetime.min.time()) + timedelta(minutes=minute)
        buckets[start] = buckets.get(start, 0.0) + calls

    for r in records:
        if r.outcome is Outcome.CLOSED:
            continue
        if queue is None and r.leg == 1:
            add(r.arrived_at, 1.0)
        elif queue is not None and r.queue == queue:
            add(r.queued_at, 1.0)
    if step % 60 == 0:
        for q, hour, sums in kept:
            if queue is None or q == queue:
                add(hour, float(sums.calls - sums.closed))
    if not buckets:
        raise ForecastError("no call in the records" + (f" of queue {queue!r}" if queue else ""))
    return history_from_counts(sorted(buckets.items()), step=step)


def calendar_templates(
    hours: Mapping[int, Sequence[tuple[int, int]]], step: int
) -> dict[int, tuple[int, ...]]:
    """Per weekday, the ``step``-minute intervals that overlap the opening hours."""
    return {
        w: tuple(m for m in range(0, 1440, step) if any(a < m + step and m < b for a, b in spans))
        for w, spans in hours.items()
        if spans
    }


def history_csv(history: History) -> str:
    """A history as CSV ``start,calls`` (the format `read_history` reads)."""
    lines = ["start,calls"]
    for day in sorted(history.days):
        midnight = datetime.combine(day, datetime.min.time())
        for minute, calls in sorted(history.days[day].items()):
            start = midnight + timedelta(minutes=minute)
            lines.append(f"{start.isoformat(timespec='minutes')},{calls:g}")
    return "\n".join(lines) + "\n"


# -- holidays and bridge days ----------------------------------------------------------------


class Holidays:
    """Public holidays by date (French names): ``FR``, ``FR-57``/``FR-67``/``FR-68``
    (Alsace-Moselle: Good Friday and 26 December too) or ``none``; ``closures`` adds
    days the site is closed (a calendar's exceptional closures)."""

    def __init__(self, spec: str = "FR", closures: Iterable[date] = ()) -> None:
        if spec not in HOLIDAY_CHOICES:
            choices = ", ".join(HOLIDAY_CHOICES)
            raise ForecastError(f"holidays must be one of {choices}, got {spec!r}")
        self.spec = spec
        self.closures = frozenset(closures)
        self._years: dict[int, dict[date, str]] = {}

    def _year(self, year: int) -> dict[date, str]:
        if year not in self._years:
            if self.spec == "none":
                self._years[year] = {}
            else:
                import holidays

                subdiv = "57" if "-" in self.spec else None  # one law for 57, 67 and 68
                try:
                    found = holidays.France(years=year, subdiv=subdiv, language="fr")
                except (TypeError, NotImplementedError):  # an old package without languages
                    found = holidays.France(years=year, subdiv=subdiv)
                self._years[year] = dict(found.items())
        return self._years[year]

    def name(self, day: date) -> str | None:
        """The holiday's name, or None on other days."""
        return self._year(day.year).get(day)

    def is_bridge(self, day: date) -> bool:
        """A working day (Monday to Friday, no holiday) between a holiday and a weekend
        (or another holiday): Friday after Ascension, Monday before a Tuesday 14 July."""
        if day.weekday() >= 5 or self.name(day):
            return False

        def off(d: date) -> bool:
            return d.weekday() >= 5 or self.name(d) is not None

        before, after = day - ONE_DAY, day + ONE_DAY
        return (self.name(before) is not None and off(after)) or (
            self.name(after) is not None and off(before)
        )

    def kind(self, day: date) -> str:
        """``holiday``, ``bridge`` or ``normal``."""
        if self.name(day):
            return "holiday"
        return "bridge" if self.is_bridge(day) else "normal"


# -- negative binomial -------------------------------------------------------------------------


def nb_quantiles(
    mean: np.ndarray, phi: float, probs: Sequence[float] = QUANTILES
) -> list[np.ndarray]:
    """Mid-quantiles of negative binomial counts of mean ``mean`` and variance
    ``mean + phi·mean²`` (Poisson when ``phi`` is 0): the point where the mid-distribution
    function F(k−1) + P(k)/2, linear between counts, reaches each probability. A count
    falls below the 10 % mid-quantile about 10 % of the time, at any mean."""
    mu = np.maximum(np.asarray(mean, dtype=float), 0.0)
    out = [np.zeros_like(mu) for _ in probs]
    live = mu > 0
    if not live.any():
        return out
    m = mu[live]
    sd = np.sqrt(m + phi * m * m)
    top = int(np.ceil(float(np.max(m + 12 * sd + 10))))
    k = np.arange(top + 1, dtype=float)
    if phi <= 1e-9:
        step = np.log(m)[:, None] - np.log(np.maximum(k[1:], 1.0))[None, :]
        log0 = -m
    else:
        r = 1.0 / phi
        step = np.log((k[1:][None, :] - 1 + r) / k[1:][None, :]) + np.log(m / (r + m))[:, None]
        log0 = r * np.log(r / (r + m))
    logp = np.concatenate([log0[:, None], log0[:, None] + np.cumsum(step, axis=1)], axis=1)
    p = np.exp(logp)
    cdf = np.cumsum(p, axis=1)
    mid = cdf - p / 2  # F_mid(k) = F(k-1) + p(k)/2
    for j, q in enumerate(probs):
        idx = np.minimum((mid < q).sum(axis=1), top)  # first k with F_mid(k) >= q
        hi = mid[np.arange(len(m)), idx]
        lo = np.where(idx > 0, mid[np.arange(len(m)), np.maximum(idx - 1, 0)], 0.0)
        frac = np.where(hi > lo, (q - lo) / np.maximum(hi - lo, 1e-300), 0.0)
        value = np.where(idx > 0, idx - 1 + np.clip(frac, 0, 1), 0.0)
        out[j][live] = value
    return out


def dispersion(actual: np.ndarray, mean: np.ndarray) -> float:
    """Moment estimate of ``phi`` in var = μ + φμ² from counts and their forecasts."""
    mu = np.asarray(mean, dtype=float)
    y = np.asarray(actual, dtype=float)
    keep = mu > 0
    if not keep.any():
        return 0.0
    mu, y = mu[keep], y[keep]
    return max(0.0, float(np.sum((y - mu) ** 2 - mu) / np.sum(mu * mu)))


def wape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Weighted absolute percentage error: Σ|actual − forecast| ÷ Σ actual."""
    total = float(np.sum(actual))
    if not total:
        return math.nan
    return float(np.sum(np.abs(np.asarray(actual) - np.asarray(forecast)))) / total


# -- model -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """Recency half-lives (weeks) of the day totals and of the intraday shapes, whether
    the day totals have a trend, carry the last day's deviation forward (when the
    history shows it persists) and step at a recent break of the level, and the
    held-out weeks that measure the dispersion."""

    level_half_life: float = 8.0
    shape_half_life: float = 12.0
    trend: bool = True
    persistence: bool = True
    level_shift: bool = True
    holdout_weeks: int = 8


@dataclass(frozen=True)
class DayForecast:
    """One forecast day: its intervals (minute, mean, lo80, hi80), why it is closed
    (None if open), its kind (normal, holiday, bridge) and its total's 80 % interval."""

    day: date
    kind: str
    closed: str | None
    minutes: tuple[int, ...]
    mean: np.ndarray
    lo80: np.ndarray
    hi80: np.ndarray
    total_lo80: float
    total_hi80: float
    holiday: str | None = None

    @property
    def total(self) -> float:
        """The day's expected calls."""
        return float(self.mean.sum())


@dataclass(frozen=True)
class Forecast:
    """The forecast days and how it was made: the interval ``step`` (min), ``phi`` per
    interval and ``phi_day`` per day total, the weeks that measured them, and the days
    of the history left out as outliers."""

    days: list[DayForecast]
    step: int
    phi: float
    phi_day: float
    measured_weeks: int
    settings: Settings
    notes: tuple[str, ...] = ()
    outliers: tuple[date, ...] = ()  # history days left out: too far off the fit
    level_break: date | None = None  # the day a recent break of the level began

    def rows(self) -> list[tuple[datetime, float, float, float]]:
        """``(local start, mean, lo80, hi80)`` of every interval, in time order."""
        out = []
        for d in self.days:
            for i, minute in enumerate(d.minutes):
                start = datetime.combine(d.day, datetime.min.time()) + timedelta(minutes=minute)
                out.append((start, float(d.mean[i]), float(d.lo80[i]), float(d.hi80[i])))
        return out


def to_csv(forecast: Forecast) -> str:
    """The forecast as CSV: ``start,mean,lo80,hi80``, one row per interval, local time."""
    lines = ["start,mean,lo80,hi80"]
    for start, mean, lo, hi in forecast.rows():
        lines.append(f"{start.isoformat(timespec='minutes')},{mean:.3f},{lo:.2f},{hi:.2f}")
    return "\n".join(lines) + "\n"


@dataclass
class _Fit:
    """The fitted model at the end of a history (dispersion not yet measured)."""

    history: History
    templates: dict[int, tuple[int, ...]]
    holidays: Holidays
    beta: np.ndarray
    columns: list[str]
    shapes: dict[int, np.ndarray]
    closed_holidays: dict[str, bool]  # holiday name -> closed in the history
    bridges_closed: bool | None  # None: no bridge day in the history
    outliers: frozenset[date]  # days too far off the fit to learn from (outages ...)
    persistence: tuple[float, float]  # (rho, last log residual), see _persistence
    last_open: date  # the last day the residual is from
    since: date | None = None  # the day the level broke, see _level_break

    def day_mean(self, day: date) -> tuple[float, str | None]:
        """The expected total of ``day`` and why it is closed (None if open)."""
        w = day.weekday()
        if not self.templates.get(w) or w not in self.shapes:
            return 0.0, "closed"
        if day in self.holidays.closures:
            return 0.0, "exceptional closure"
        kind = self.holidays.kind(day)
        if kind == "holiday":
            name = self.holidays.name(day) or "holiday"
            closed = self.closed_holidays.get(name)
            if closed is None:
                seen = list(self.closed_holidays.values())
                closed = not seen or 2 * sum(seen) >= len(seen)
            if closed:
                return 0.0, name
        if kind == "bridge" and self.bridges_closed:
            return 0.0, "bridge day"
        x = self._row(day, (self.history.last - day).days / -7.0, kind)
        rho, last = self.persistence
        if rho:
            ahead = sum(
                bool(self.templates.get((self.last_open + timedelta(days=k)).weekday()))
                for k in range(1, (day - self.last_open).days + 1)
            )
            last *= rho ** max(ahead, 1)
        return float(np.exp(x @ self.beta + (last if rho else 0.0))), None

    def _row(self, day: date, weeks_ahead: float, kind: str) -> np.ndarray:
        return _design_row(self.columns, day, weeks_ahead, kind, self.since)


def _design_row(
    columns: list[str], day: date, t: float, kind: str, since: date | None = None
) -> np.ndarray:
    """The regressors of a day ``t`` weeks from the history's end (``since``: the day
    the level broke, see `_level_break`)."""
    weekday = day.weekday()
    row = np.zeros(len(columns))
    for j, c in enumerate(columns):
        if c == "break":
            row[j] = float(since is not None and day >= since)
            continue
        if c == "level":
            row[j] = 1.0
        elif c == "trend":
            row[j] = t
        elif c in (f"wd{weekday}", kind):
            row[j] = 1.0
    return row


def _poisson_irls(
    x: np.ndarray, y: np.ndarray, w: np.ndarray, ridge: np.ndarray, iterations: int = 25
) -> np.ndarray:
    """Weighted Poisson regression with a log link (ridge-penalised) by IRLS."""
    beta = np.zeros(x.shape[1])
    beta[0] = math.log(max(float(np.average(y, weights=w)), 1e-9))
    for _ in range(iterations):
        eta = np.clip(x @ beta, -30, 30)
        mu = np.exp(eta)
        z = eta + (y - mu) / mu
        wm = w * mu
        a = x.T @ (wm[:, None] * x) + np.diag(ridge)
        new = np.linalg.solve(a, x.T @ (wm * z))
        if np.max(np.abs(new - beta)) < 1e-8:
            return new
        beta = new
    return beta


def _fit(
    history: History,
    templates: Mapping[int, tuple[int, ...]],
    holidays: Holidays,
    settings: Settings,
) -> _Fit:
    """Day-total regression and intraday shapes at the end of ``history``."""
    templates = {w: tuple(m) for w, m in templates.items() if m}
    end = history.last
    days, totals, kinds, ages = [], [], [], []
    closed_holidays: dict[str, bool] = {}
    bridges: list[bool] = []
    for offset in range(history.n_days):
        day = history.first + timedelta(days=offset)
        minutes = templates.get(day.weekday())
        if not minutes or day in holidays.closures:
            continue
        counts = history.days.get(day)
        total = sum(counts.get(m, 0.0) for m in minutes) if counts else 0.0
        kind = holidays.kind(day)
        if kind == "holiday":
            closed_holidays[holidays.name(day) or "holiday"] = total <= 0
        elif kind == "bridge":
            bridges.append(total <= 0)
        if total <= 0:
            continue  # closed (or no records): not a day to learn from
        days.append(day)
        totals.append(total)
        kinds.append(kind)
        ages.append((end - day).days / 7.0)
    if not days:
        raise ForecastError("the history has no call on the days it covers")
    y = np.array(totals)
    age = np.array(ages)
    weekdays = sorted({d.weekday() for d in days})
    ref = max(weekdays, key=lambda w: sum(d.weekday() == w for d in days))
    columns = ["level"]
    if settings.trend and (age.max() - age.min()) >= 3:
        columns.append("trend")
    columns += [f"wd{w}" for w in weekdays if w != ref]
    columns += [k for k in ("holiday", "bridge") if k in kinds]
    x = np.array([_design_row(columns, d, -a, k) for d, a, k in zip(days, age, kinds, strict=True)])
    # a ridge on the slope only (weekly log-change): a few weeks cannot tell a trend
    # from noise, a few months can; the other effects each have days to learn from
    ridge = np.array([{"level": 0.0, "trend": 50.0}.get(c, 1e-6) for c in columns]) * float(
        np.mean(y)
    )
    recency = 0.5 ** (age / settings.level_half_life)
    normal = np.array([k == "normal" for k in kinds])
    weight = recency.copy()
    beta = _poisson_irls(x, y, weight, ridge)
    resid = np.zeros_like(y)
    for _ in range(3):  # robust weights against outlier days (outages, storms)
        mu = np.exp(x @ beta)
        rel = (y - mu) / mu  # variance 1/μ + v: v from the median absolute deviation
        v = max(
            0.0,
            (1.4826 * float(np.median(np.abs(rel - np.median(rel))))) ** 2 - float(np.mean(1 / mu)),
        )
        resid = np.abs(y - mu) / np.sqrt(mu + v * mu * mu)
        robust = np.where(resid <= 5, np.minimum(1.0, 2.5 / np.maximum(resid, 1e-9)), 0)
        weight = recency * np.where(normal, robust, 1.0)  # a few special days: all count
        beta = _poisson_irls(x, y, weight, ridge)
    outliers = frozenset(d for d, r, n in zip(days, resid, normal, strict=True) if n and r > 5)
    shapes = _shapes(history, templates, holidays, settings.shape_half_life, outliers)
    kept = [i for i, d in enumerate(days) if normal[i] and d not in outliers]
    since = None
    if settings.level_shift and (after := _level_break(np.log(y[kept] / np.exp(x[kept] @ beta)))):
        since = days[kept[-after]]  # the level broke: a step from that day on, refitted
        columns.append("break")
        x = np.column_stack([x, [float(d >= since) for d in days]])
        ridge = np.append(ridge, 1e-6 * float(np.mean(y)))
        beta = _poisson_irls(x, y, weight, ridge)
    persistence = (0.0, 0.0)
    if settings.persistence:
        persistence = _persistence(np.log(y[kept] / np.exp(x[kept] @ beta)))
    return _Fit(
        history,
        templates,
        holidays,
        beta,
        columns,
        shapes,
        closed_holidays,
        (2 * sum(bridges) > len(bridges)) if bridges else None,
        outliers,
        persistence,
        days[kept[-1]] if kept else end,
        since,
    )


def _level_break(resid: np.ndarray, window: int = 30, least: int = 5) -> int:
    """How many of the last open days lie after a break of the level (0: no break):
    the split, among the last ``window`` days, after which the mean log residual is the
    most significant, kept beyond 3.5 standard errors (a scan of ~25 splits finds that
    by chance a few times in a hundred). A recency-weighted level follows a break
    slowly (a third of the way after two weeks with an 8-week half-life); a step from
    the break on follows it at once."""
    if len(resid) < 2 * window:
        return 0
    sd = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
    if sd <= 0:
        return 0
    best, found = 0.0, 0
    for after in range(least, window + 1):
        t = abs(float(np.mean(resid[-after:]))) / (sd / math.sqrt(after))
        if t > best:
            best, found = t, after
    return found if best > 3.5 else 0


def _persistence(resid: np.ndarray) -> tuple[float, float]:
    """``(rho, last)``: the lag-1 autocorrelation of the day totals' log residuals
    (consecutive open days), 0 unless significant, and the last residual. A busy day is
    often followed by another (Ibrahim et al. 2016): day h ahead gets rho^h of it."""
    if len(resid) < 15:
        return 0.0, 0.0
    rho = float(np.sum(resid[1:] * resid[:-1]) / np.sum(resid[:-1] ** 2))
    if rho < 2 / math.sqrt(len(resid)):
        return 0.0, 0.0
    return min(rho, 0.9), float(resid[-1])


def _shapes(
    history: History,
    templates: Mapping[int, tuple[int, ...]],
    holidays: Holidays,
    half_life: float,
    outliers: frozenset[date] = frozenset(),
) -> dict[int, np.ndarray]:
    """Per weekday, the share of the day's calls of each interval: recency-weighted,
    shrunk towards the shape of the weekdays with the same intervals (empirical Bayes);
    ``outliers`` (days far off the day-total fit) are left out."""
    sums: dict[int, np.ndarray] = {}
    totals: dict[int, float] = {}
    squares: dict[int, float] = {}
    for day, counts in history.days.items():
        w = day.weekday()
        minutes = templates.get(w)
        if not minutes or holidays.kind(day) != "normal" or day in outliers:
            continue
        y = np.array([counts.get(m, 0.0) for m in minutes])
        total = float(y.sum())
        if total <= 0:
            continue
        weight = 0.5 ** ((history.last - day).days / 7.0 / half_life)
        sums[w] = sums.get(w, 0.0) + weight * y
        totals[w] = totals.get(w, 0.0) + weight * total
        squares[w] = squares.get(w, 0.0) + weight * weight * total
    if not sums:  # only special days: their shapes are better than none
        for day, counts in history.days.items():
            w = day.weekday()
            if (minutes := templates.get(w)) and sum(counts.values()) > 0:
                y = np.array([counts.get(m, 0.0) for m in minutes])
                sums[w] = sums.get(w, 0.0) + y
                totals[w] = totals.get(w, 0.0) + float(y.sum())
                squares[w] = squares.get(w, 0.0) + float(y.sum())
    raw = {w: sums[w] / totals[w] for w in sums}
    shapes = dict(raw)
    groups: dict[tuple[int, ...], list[int]] = {}
    for w in raw:
        groups.setdefault(tuple(templates[w]), []).append(w)
    for members in groups.values():
        if len(members) < 2:
            continue
        pooled = sum(sums[w] for w in members) / sum(totals[w] for w in members)
        n_eff = {w: totals[w] ** 2 / squares[w] for w in members}
        safe = np.maximum(pooled, 1e-9)
        rel = {w: raw[w] / safe - 1 for w in members}
        noise = {w: (1 - pooled) / (safe * n_eff[w]) for w in members}
        tau2 = max(0.0, float(np.mean([np.mean(rel[w] ** 2 - noise[w]) for w in members])))
        for w in members:
            b = tau2 / (tau2 + noise[w]) if tau2 > 0 else np.zeros_like(pooled)
            shape = pooled * (1 + b * rel[w])
            shapes[w] = shape / shape.sum()
    return shapes


def _predict_days(
    fit: _Fit, start: date, n_days: int
) -> list[tuple[date, str, str | None, tuple[int, ...], np.ndarray]]:
    out = []
    for offset in range(n_days):
        day = start + timedelta(days=offset)
        minutes = fit.templates.get(day.weekday(), ())
        if not minutes or day.weekday() not in fit.shapes:  # never open, or never a call
            continue
        total, closed = fit.day_mean(day)
        shape = fit.shapes.get(day.weekday())
        mean = total * shape if closed is None and shape is not None else np.zeros(len(minutes))
        out.append((day, fit.holidays.kind(day), closed, minutes, mean))
    return out


def naive_mean(history: History, day: date, minutes: Sequence[int]) -> np.ndarray:
    """Seasonal naive: the same intervals on the same weekday of the last week of the
    history (``day`` minus a whole number of weeks), 0 where that day was closed."""
    weeks = max(1, math.ceil((day - history.last).days / 7))
    source = day - timedelta(days=7 * weeks)
    return np.array([history.count(source, m) for m in minutes])


@dataclass(frozen=True)
class Scored:
    """Held-out intervals: actual counts, the model's and the naive forecasts."""

    actual: np.ndarray
    mean: np.ndarray
    naive: np.ndarray
    day_actual: np.ndarray
    day_mean: np.ndarray


def _held_out(
    history: History,
    templates: Mapping[int, tuple[int, ...]],
    holidays: Holidays,
    settings: Settings,
    weeks: int,
    horizon: int = 7,
    skip: frozenset[date] = frozenset(),
) -> Scored:
    """Forecasts of each of the last ``weeks`` weeks from the history before it; the
    days in ``skip`` (outliers of the whole history) are not scored."""
    actual, mean, naive, day_actual, day_mean = [], [], [], [], []
    for k in range(weeks, 0, -1):
        origin = history.last + ONE_DAY - timedelta(days=7 * k)
        past = history.before(origin)
        fit = _fit(past, templates, holidays, settings)
        for day, _kind, _closed, minutes, mu in _predict_days(fit, origin, min(horizon, 7 * k)):
            if day in skip:
                continue
            y = np.array([history.count(day, m) for m in minutes])
            actual.append(y)
            mean.append(mu)
            naive.append(naive_mean(past, day, minutes))
            day_actual.append(y.sum())
            day_mean.append(mu.sum())
    return Scored(_cat(actual), _cat(mean), _cat(naive), np.array(day_actual), np.array(day_mean))


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts) if parts else np.zeros(0)


def _holdout_weeks(history: History, wanted: int) -> int:
    """Weeks that can be held out leaving at least two weeks to fit on."""
    return max(0, min(wanted, (history.n_days - 14) // 7))


def forecast(
    history: History,
    days: int = 7,
    *,
    holidays: Holidays | None = None,
    templates: Mapping[int, tuple[int, ...]] | None = None,
    settings: Settings | None = None,
) -> Forecast:
    """Arrivals per interval for ``days`` days from the day after the history ends.

    ``templates`` (weekday → interval starts, minutes) are the intervals to forecast,
    by default those the history has for each weekday (a calendar's opening hours
    otherwise). The dispersion is measured on forecasts of the same horizon."""
    if days < 1:
        raise ForecastError(f"days must be 1 or more, got {days}")
    settings = settings or Settings()
    holidays = holidays or Holidays("FR")
    templates = dict(templates) if templates is not None else history.templates()
    fit = _fit(history, templates, holidays, settings)
    notes: list[str] = []
    missing = [WEEKDAY_NAMES[w] for w in sorted(templates) if w not in fit.shapes]
    if missing:
        notes.append(f"no call on any {', '.join(missing)} of the history: not forecast")
    weeks = _holdout_weeks(history, settings.holdout_weeks)
    if weeks:
        scored = _held_out(
            history, templates, holidays, settings, weeks, horizon=days, skip=fit.outliers
        )
        phi = dispersion(scored.actual, scored.mean)
        phi_day = dispersion(scored.day_actual, scored.day_mean)
    else:  # too short to hold a week out: the fit's own residuals, at least the usual
        phi, phi_day = (max(SHORT_HISTORY_PHI, v) for v in _in_sample_dispersion(fit))
        notes.append(
            "history under three weeks: the 80 % interval cannot be measured yet; it"
            f" assumes day levels varying by ±{100 * math.sqrt(SHORT_HISTORY_PHI):.0f} %"
            " at least"
        )
    out = []
    for day, kind, closed, minutes, mu in _predict_days(fit, history.last + ONE_DAY, days):
        lo, hi = nb_quantiles(mu, phi)
        total_lo, total_hi = nb_quantiles(np.array([mu.sum()]), phi_day)
        out.append(
            DayForecast(
                day,
                kind,
                closed,
                minutes,
                mu,
                lo,
                hi,
                float(total_lo[0]),
                float(total_hi[0]),
                holidays.name(day),
            )
        )
    return Forecast(
        out,
        history.step,
        phi,
        phi_day,
        weeks,
        settings,
        tuple(notes),
        tuple(sorted(fit.outliers)),
        fit.since,
    )


def _in_sample_dispersion(fit: _Fit) -> tuple[float, float]:
    actual, mean, day_actual, day_mean = [], [], [], []
    for day, counts in fit.history.days.items():
        minutes = fit.templates.get(day.weekday())
        if not minutes or day in fit.holidays.closures:
            continue
        total, closed = fit.day_mean(day)
        if closed is not None or not total:
            continue
        y = np.array([counts.get(m, 0.0) for m in minutes])
        actual.append(y)
        mean.append(total * fit.shapes[day.weekday()])
        day_actual.append(y.sum())
        day_mean.append(total)
    if not actual:
        return 0.0, 0.0
    n, p = len(day_actual), len(fit.beta)
    inflate = n / max(n - p, 1)
    return (
        dispersion(np.concatenate(actual), np.concatenate(mean)) * inflate,
        dispersion(np.array(day_actual), np.array(day_mean)) * inflate,
    )


# -- backtest --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Backtest:
    """Held-out accuracy: WAPE and 80 % coverage of the model and of seasonal naive."""

    weeks: int
    intervals: int
    calls: float
    wape: float
    coverage: float
    naive_wape: float
    naive_coverage: float
    floor_wape: float = math.nan  # the true mean's WAPE, for generated histories

    @property
    def ratio(self) -> float:
        """The model's WAPE ÷ seasonal naive's (below 1: the model is better)."""
        return self.wape / self.naive_wape if self.naive_wape else math.nan


def coverage(actual: np.ndarray, lo: np.ndarray, hi: np.ndarray, mean: np.ndarray) -> float:
    """Share of intervals (those with a forecast or a call) whose count is in [lo, hi]."""
    keep = (np.asarray(mean) > 0) | (np.asarray(actual) > 0)
    if not keep.any():
        return math.nan
    y = np.asarray(actual)[keep]
    return float(np.mean((y >= np.asarray(lo)[keep]) & (y <= np.asarray(hi)[keep])))


def backtest(
    history: History,
    weeks: int,
    *,
    holidays: Holidays | None = None,
    templates: Mapping[int, tuple[int, ...]] | None = None,
    settings: Settings | None = None,
    horizon: int = 7,
    progress: Callable[[], object] | None = None,
    truth: Mapping[tuple[date, int], float] | None = None,
) -> Backtest:
    """Forecast each of the last ``weeks`` weeks from the history before it (its
    dispersion measured on the weeks before that), against repeating the week before.
    With ``truth`` (the true mean of each (day, minute), `generate`), the WAPE of the
    true mean too: the noise floor no forecast can beat on average."""
    settings = settings or Settings()
    holidays = holidays or Holidays("FR")
    templates = dict(templates) if templates is not None else history.templates()
    if weeks < 1:
        raise ForecastError(f"backtest weeks must be 1 or more, got {weeks}")
    if history.n_days - 7 * weeks < 14:
        most = max(0, (history.n_days - 14) // 7)
        raise ForecastError(
            f"a backtest of {weeks} week{'s' * (weeks > 1)} needs {7 * weeks + 14} days of"
            f" history, it has {history.n_days} (at most {most} weeks here)"
        )
    ys, mus, los, his, nav, nlo, nhi, true = [], [], [], [], [], [], [], []
    for k in range(weeks, 0, -1):
        origin = history.last + ONE_DAY - timedelta(days=7 * k)
        past = history.before(origin)
        result = forecast(
            past, min(horizon, 7 * k), holidays=holidays, templates=templates, settings=settings
        )
        inner = _holdout_weeks(past, settings.holdout_weeks)
        phi_naive = result.phi
        if inner:
            skip = frozenset(result.outliers)
            s = _held_out(past, templates, holidays, settings, inner, horizon, skip)
            phi_naive = dispersion(s.actual, s.naive)
        for d in result.days:
            y = np.array([history.count(d.day, m) for m in d.minutes])
            nv = naive_mean(past, d.day, d.minutes)
            lo, hi = nb_quantiles(nv, phi_naive)
            ys.append(y)
            mus.append(d.mean)
            los.append(d.lo80)
            his.append(d.hi80)
            nav.append(nv)
            nlo.append(lo)
            nhi.append(hi)
            if truth is not None:
                true.append(np.array([truth.get((d.day, m), 0.0) for m in d.minutes]))
        if progress is not None:
            progress()
    y, mu, nv = np.concatenate(ys), np.concatenate(mus), np.concatenate(nav)
    return Backtest(
        weeks,
        len(y),
        float(y.sum()),
        wape(y, mu),
        coverage(y, np.concatenate(los), np.concatenate(his), mu),
        wape(y, nv),
        coverage(y, np.concatenate(nlo), np.concatenate(nhi), nv),
        wape(y, np.concatenate(true)) if truth is not None else math.nan,
    )


# -- generated histories (tests, benchmarks, documentation) ---------------------------------


@dataclass(frozen=True)
class Generated:
    """A generated history and the true mean of every interval of it, and of the
    ``future`` days after it (``truth`` maps (day, minute) to the mean)."""

    history: History
    future: History
    truth: dict[tuple[date, int], float]


def generate(
    start: date,
    weeks: int,
    *,
    per_day: float = 400.0,
    step: int = 30,
    hours: Mapping[int, tuple[int, int]] | None = None,
    weekday_factors: Sequence[float] = (1.25, 1.05, 1.0, 0.95, 0.9, 0.55, 0.0),
    growth_per_year: float = 0.10,
    day_cv: float = 0.10,
    day_ar: float = 0.0,
    holidays: Holidays | None = None,
    holiday_factor: float = 0.0,
    bridge_factor: float = 0.7,
    future_days: int = 7,
    seed: int = 0,
) -> Generated:
    """Counts from a known rate: a day total (``per_day`` × weekday factor × growth ×
    holiday/bridge factor) times a gamma day effect (coefficient of variation
    ``day_cv``: over-dispersion across days; with ``day_ar`` a log-normal one,
    autocorrelated from one open day to the next), spread over an intraday shape (two peaks,
    Mondays' morning one higher), each interval Poisson. ``hours`` maps each weekday to
    its opening (start, end) minutes (default Mon–Fri 8–18 h, Sat 9–12 h)."""
    rng = np.random.default_rng(seed)
    holidays = holidays or Holidays("FR")
    hours = hours or {**{w: (480, 1080) for w in range(5)}, 5: (540, 720)}
    truth: dict[tuple[date, int], float] = {}
    parts: list[dict[date, dict[int, float]]] = [{}, {}]
    n_days = 7 * weeks + future_days
    shape_k = 1.0 / day_cv**2 if day_cv > 0 else None
    log_sd, z = math.sqrt(math.log(1 + day_cv**2)), 0.0
    for offset in range(n_days):
        day = start + timedelta(days=offset)
        w = day.weekday()
        if w not in hours or weekday_factors[w] <= 0:
            continue
        kind = holidays.kind(day)
        factor = {"holiday": holiday_factor, "bridge": bridge_factor}.get(kind, 1.0)
        if factor <= 0:
            continue
        minutes = list(range(hours[w][0], hours[w][1], step))
        x = (np.array(minutes) + step / 2) / 60.0
        shape = (
            np.exp(-0.5 * ((x - 10.0) / 1.3) ** 2) * (1.4 if w == 0 else 1.0)
            + 0.8 * np.exp(-0.5 * ((x - 14.5) / 1.6) ** 2)
            + 0.15
        )
        shape /= shape.sum()
        mean_total = per_day * weekday_factors[w] * factor * (1 + growth_per_year) ** (offset / 365)
        if day_ar:
            z = day_ar * z + math.sqrt(1 - day_ar**2) * rng.normal(0.0, log_sd)
            effect = math.exp(z - log_sd**2 / 2)
        else:
            effect = rng.gamma(shape_k, 1.0 / shape_k) if shape_k else 1.0
        counts = rng.poisson(mean_total * effect * shape)
        part = parts[0] if offset < 7 * weeks else parts[1]
        part[day] = {m: float(c) for m, c in zip(minutes, counts, strict=True)}
        for m, mu in zip(minutes, mean_total * shape, strict=True):
            truth[(day, m)] = float(mu)
    end = start + timedelta(days=7 * weeks - 1)
    history = History(step, parts[0], start, end)
    future = History(step, parts[1], end + ONE_DAY, end + timedelta(days=max(future_days, 1)))
    return Generated(history, future, truth)

"""``acd forecast``: arrivals per interval for the coming days, from the call records or
a CSV of counts, with an 80 % interval calibrated on the history (docs/planning.md)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import click

from acd.cli.common import (
    check_queue,
    config_option,
    db_option,
    emit_json,
    fail,
    json_option,
    refuse,
    store_url,
    write_whole,
)
from acd.config import CalendarConfig, Config, load_config
from acd.planning.demand import assumed_forecast, forecast_csv
from acd.planning.forecast import (
    HOLIDAY_CHOICES,
    WEEKDAY_NAMES,
    Backtest,
    Forecast,
    History,
    Holidays,
    backtest,
    calendar_templates,
    forecast,
    history_from_records,
    read_history,
    to_csv,
)
from acd.planning.profile import load_profile
from acd.runtime.store import open_readonly


@click.command()
@click.option(
    "--history",
    "history_path",
    type=click.Path(dir_okay=False),
    help="CSV of counts: start,calls, one row per interval, local time.",
)
@db_option
@config_option
@click.option("--queue", help="Calls entering this queue (default: every call, once).")
@click.option("--calendar", help="Calendar of --config whose opening hours are forecast.")
@click.option(
    "--interval",
    type=click.IntRange(1, 1440),
    help="Minutes per interval of the counts from the call records, or of --profile"
    " (15, 30 ...).  [default: 60]",
)
@click.option(
    "--holidays",
    "holidays_spec",
    type=click.Choice(HOLIDAY_CHOICES),
    help="Public holidays: France, Alsace-Moselle (FR-57/67/68) or none."
    " [default: the calendar's, else FR]",
)
@click.option(
    "--days", type=click.IntRange(1, 366), default=7, show_default=True, help="Days to forecast."
)
@click.option(
    "--out", "out_path", type=click.Path(dir_okay=False), help="Write start,mean,lo80,hi80 here."
)
@click.option(
    "--backtest",
    "backtest_weeks",
    type=click.IntRange(1, 104),
    help="Also forecast each of the last WEEKS weeks from the weeks before it and score it.",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False),
    help="No history: assume this time-of-day profile (CSV hour,share) ...",
)
@click.option("--per-day", type=float, help="... at this many calls on a full day.")
@click.option(
    "--start",
    type=click.DateTime(["%Y-%m-%d"]),
    help="With --profile: first day forecast.  [default: next Monday]",
)
@click.option(
    "--day-sd",
    type=float,
    default=0.0,
    show_default=True,
    help="With --profile: standard deviation of a day's level (0.1 = ±10 %).",
)
@json_option
def forecast_cmd(
    history_path: str | None,
    db_path: str | None,
    config_path: str | None,
    queue: str | None,
    calendar: str | None,
    interval: int | None,
    holidays_spec: str | None,
    days: int,
    out_path: str | None,
    backtest_weeks: int | None,
    profile_path: str | None,
    per_day: float | None,
    start: datetime | None,
    day_sd: float,
    as_json: bool,
) -> None:
    """Forecast the calls of each interval of the coming days.

    From the call records (--db, or the [store] of --config) or a CSV of counts
    (--history, columns start,calls, one row per interval in local time, any interval
    length), the calls of each interval for --days days from the day after the history
    ends: a mean and an 80 % prediction interval (lo80, hi80). The intervals are those
    the history has on each weekday, or the opening hours of the calendar of --config.
    Public holidays are closed unless the history has them open; bridge days (a working
    day between a holiday and a weekend) get the effect the history shows.

    --backtest WEEKS forecasts each of the last WEEKS weeks from the weeks before it and
    prints the error (WAPE: absolute errors ÷ calls) and how often the 80 % interval held
    the count, for this model and for repeating the week before.

    \b
    Examples:
      acd forecast --history counts.csv --out forecast.csv
      acd forecast --history counts.csv --backtest 8
      acd forecast --config examples/town-hall.toml --interval 30 --days 14 --json
      acd forecast --db town-hall.db --queue front-desk --out front-desk.csv
      acd forecast --profile examples/profile-weekday.csv --per-day 500 --out week.csv

    Before any record exists, --profile with --per-day forecasts an assumed traffic:
    the profile's shares of --per-day calls over the opening hours (the calendar of
    --config, else Mon-Fri 08:00-19:00 and Sat 08:00-13:00), with an 80 % interval from
    Poisson noise and a day level varying by --day-sd.
    """
    if profile_path is not None or per_day is not None:
        _assumed(
            profile_path, per_day, start, day_sd, days, interval or 60, config_path, calendar,
            (history_path, db_path, backtest_weeks), out_path, as_json,
        )  # fmt: skip
        return
    refuse(("start", "day_sd"), "goes with --profile (an assumed traffic)")
    config = load_config(config_path) if config_path is not None else None
    source, history, templates, holidays = _inputs(
        history_path, db_path, config, config_path, queue, calendar, interval, holidays_spec
    )
    result = forecast(history, days, holidays=holidays, templates=templates)
    scored = None
    if backtest_weeks is not None:
        scored = backtest(history, backtest_weeks, holidays=holidays, templates=templates)
    if out_path is not None:
        write_whole(out_path, to_csv(result))
    if as_json:
        emit_json(_to_json(source, history, holidays, result, scored))
        return
    _print(source, history, holidays, result, scored, out_path)


def _inputs(
    history_path: str | None,
    db_path: str | None,
    config: Config | None,
    config_path: str | None,
    queue: str | None,
    calendar: str | None,
    interval: int | None,
    holidays_spec: str | None,
) -> tuple[str, History, dict[int, tuple[int, ...]] | None, Holidays]:
    """The history, the intervals to forecast (None: the history's) and the holidays."""
    cal = None
    if config is not None and (calendar is not None or config.calendars):
        cal = _calendar(config, config_path or "", calendar, queue)
    elif calendar is not None:
        fail("--calendar needs --config (the site configuration file)")
    spec = holidays_spec or (cal.holidays if cal is not None else "FR")
    closures = []
    if cal is not None:
        for first, last in cal.closures:
            closures += [first + timedelta(days=i) for i in range((last - first).days + 1)]
    holidays = Holidays(spec, closures)
    if history_path is not None:
        if db_path is not None:
            fail("--history and --db exclude each other: forecast from one of them")
        if queue is not None or interval is not None:
            option = "--queue" if queue is not None else "--interval"
            fail(f"{option} is for the call records: a --history file has its own intervals")
        history = read_history(Path(history_path).read_text(encoding="utf-8"), history_path)
        source = history_path
    else:
        usage = "give --history FILE.csv, --db FILE, or --config"
        db_path, options = store_url(db_path, config, usage)
        timezone = config.site.timezone if config is not None else "UTC"
        with open_readonly(db_path, **options) as store:
            check_queue(store, db_path, queue)
            history = history_from_records(
                store.calls(queue=queue),
                timezone,
                interval or 60,
                queue,
                store.hourly_figures(queue=queue),
            )
        today = datetime.now(ZoneInfo(timezone)).date()
        if history.last == today:  # the day in progress is not over: forecast it instead
            if history.first == today:
                fail(f"{db_path}: the records hold only today's calls: forecast once it is over")
            history = history.before(today)
        source = db_path if queue is None else f"{db_path}, queue {queue}"
    templates = calendar_templates(cal.hours, history.step) if cal is not None else None
    return source, history, templates, holidays


def _calendar(
    config: Config, config_path: str, calendar: str | None, queue: str | None
) -> CalendarConfig:
    """The calendar named, or the queue's, or the configuration's only one."""
    calendars = config.calendars
    if calendar is None and queue is not None and queue in config.queues:
        calendar = config.queues[queue].calendar
    if calendar is None:
        if len(calendars) != 1:
            names = ", ".join(sorted(calendars)) or "none"
            fail(f"{config_path}: pick a calendar with --calendar (calendars: {names})")
        calendar = next(iter(calendars))
    if calendar not in calendars:
        fail(f"{config_path}: no calendar {calendar!r}")
    return calendars[calendar]


def _span(history: History) -> str:
    weeks = history.n_days / 7
    return (
        f"{history.first} to {history.last} ({weeks:.0f} weeks)"
        if weeks >= 2
        else f"{history.first} to {history.last} ({history.n_days} day{'s' * (history.n_days > 1)})"
    )


def _print(
    source: str,
    history: History,
    holidays: Holidays,
    result: Forecast,
    scored: Backtest | None,
    out_path: str | None,
) -> None:
    click.echo(
        f"Forecast of arrivals from {source}: history {_span(history)},"
        f" {history.step}-minute intervals, public holidays {holidays.spec}"
    )
    if result.measured_weeks:
        click.echo(
            f"80 % interval calibrated on {result.measured_weeks} held-out weeks"
            f" (over-dispersion {result.phi:.3f} per interval, {result.phi_day:.3f} per day)"
        )
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.level_break is not None:
        click.echo(
            f"level: calls changed from {result.level_break} on, more than chance allows;"
            " the forecast starts from the new level"
        )
    if result.outliers:
        shown = ", ".join(str(d) for d in result.outliers[:5])
        more = f" and {len(result.outliers) - 5} more" if len(result.outliers) > 5 else ""
        click.echo(
            f"left out: {len(result.outliers)} days far off the others (an outage, a storm?):"
            f" {shown}{more}"
        )
    click.echo("")
    click.echo(f"  {'day':14} {'calls':>7}  {'80 % interval':>13}")
    for d in result.days:
        label = f"{WEEKDAY_NAMES[d.day.weekday()]} {d.day}"
        if d.closed is not None:
            click.echo(f"  {label:14} {0:7d}  closed ({d.closed})")
            continue
        note = {"holiday": f"  {d.holiday} (open)", "bridge": "  bridge day"}.get(d.kind, "")
        click.echo(
            f"  {label:14} {d.total:7.0f}  {d.total_lo80:6.0f}–{d.total_hi80:<6.0f}{note}".rstrip()
        )
    total = sum(d.total for d in result.days)
    click.echo(f"  {'total':14} {total:7.0f}")
    if scored is not None:
        click.echo("")
        click.echo(
            f"Backtest: the last {scored.weeks} weeks, each forecast from the weeks before it"
            f" ({scored.intervals} intervals, {scored.calls:.0f} calls)"
        )
        click.echo(f"  {'':26} {'WAPE':>7} {'80 % interval held':>19}")
        click.echo(f"  {'this forecast':26} {_pct(scored.wape):>7} {_pct(scored.coverage):>19}")
        click.echo(
            f"  {'repeating the last week':26} {_pct(scored.naive_wape):>7}"
            f" {_pct(scored.naive_coverage):>19}"
        )
        if scored.naive_wape:
            better = 1 - scored.ratio
            word = "smaller" if better >= 0 else "larger"
            click.echo(f"  error {abs(100 * better):.0f} % {word} than repeating the last week")
    if out_path is not None:
        click.echo("")
        click.echo(f"forecast: {out_path} ({len(result.rows())} intervals)")


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:.1f} %"


def _to_json(
    source: str,
    history: History,
    holidays: Holidays,
    result: Forecast,
    scored: Backtest | None,
) -> dict[str, object]:
    def day_dict(d) -> dict[str, object]:
        return {
            "day": d.day.isoformat(),
            "weekday": WEEKDAY_NAMES[d.day.weekday()],
            "kind": d.kind,
            "holiday": d.holiday,
            "closed": d.closed,
            "mean": round(d.total, 3),
            "lo80": round(d.total_lo80, 2),
            "hi80": round(d.total_hi80, 2),
        }

    data: dict[str, object] = {
        "source": source,
        "history": {
            "first": history.first.isoformat(),
            "last": history.last.isoformat(),
            "days": history.n_days,
        },
        "interval_minutes": history.step,
        "holidays": holidays.spec,
        "dispersion": {"interval": result.phi, "day": result.phi_day},
        "calibration_weeks": result.measured_weeks,
        "notes": list(result.notes),
        "outliers": [d.isoformat() for d in result.outliers],
        "level_break": result.level_break.isoformat() if result.level_break else None,
        "days": [day_dict(d) for d in result.days],
        "intervals": [
            {
                "start": start.isoformat(timespec="minutes"),
                "mean": round(mean, 3),
                "lo80": round(lo, 2),
                "hi80": round(hi, 2),
            }
            for start, mean, lo, hi in result.rows()
        ],
    }
    if scored is not None:
        data["backtest"] = {
            "weeks": scored.weeks,
            "intervals": scored.intervals,
            "calls": scored.calls,
            "wape": scored.wape,
            "coverage80": scored.coverage,
            "naive_wape": scored.naive_wape,
            "naive_coverage80": scored.naive_coverage,
            "wape_ratio": scored.ratio,
        }
    return data


def _assumed(
    profile_path: str | None,
    per_day: float | None,
    start: datetime | None,
    day_sd: float,
    days: int,
    interval: int,
    config_path: str | None,
    calendar: str | None,
    sources: tuple[object, ...],
    out_path: str | None,
    as_json: bool,
) -> None:
    """``--profile`` with ``--per-day``: a forecast of an assumed traffic."""
    if profile_path is None or per_day is None:
        fail("--profile and --per-day go together (an assumed traffic)")
    if any(x is not None for x in sources):
        fail("--profile assumes the traffic: not with --history, --db or --backtest")
    refuse(("queue",), "is for the call records: --profile assumes the traffic")
    refuse(
        ("holidays_spec",), "is for a forecast from history: --profile assumes every open day alike"
    )
    hours = None
    if config_path is not None:
        hours = _calendar(load_config(config_path), config_path, calendar, None).hours
    elif calendar is not None:
        fail("--calendar needs --config (the site configuration file)")
    today = date.today()
    first = start.date() if start is not None else today + timedelta(days=7 - today.weekday())
    assumed = assumed_forecast(
        load_profile(profile_path), per_day, first, days, hours, interval, day_sd
    )
    text = forecast_csv(assumed)
    if out_path is not None:
        write_whole(out_path, text)
    if as_json:
        emit_json(
            {
                "source": f"profile {profile_path}, {per_day:g} calls on a full day",
                "interval_minutes": interval,
                "day_sd": day_sd,
                "intervals": [
                    {"start": r.start.isoformat(timespec="minutes"), "mean": r.mean,
                     "lo80": r.lo80, "hi80": r.hi80}
                    for r in assumed.intervals
                ],
            }
        )  # fmt: skip
        return
    click.echo(
        f"Assumed traffic: {per_day:g} calls on a full day, shares of {profile_path},"
        f" {interval}-minute intervals, day level ±{100 * day_sd:g} %"
    )
    click.echo("")
    click.echo(f"  {'day':14} {'calls':>7}")
    for day, rows in assumed.days().items():
        total = sum(r.mean for r in rows)
        click.echo(f"  {WEEKDAY_NAMES[day.weekday()]} {day}  {total:7.0f}")
    click.echo(f"  {'total':14} {sum(r.mean for r in assumed.intervals):7.0f}")
    if out_path is not None:
        click.echo("")
        click.echo(f"forecast: {out_path} ({len(assumed.intervals)} intervals)")

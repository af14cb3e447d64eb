"""``acd report``: figures per hour, day and queue from the call-record database, the
target check, CSV/JSON export and PNG charts."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import click

from acd.cli.common import (
    check_queue,
    config_option,
    db_option,
    emit_json,
    json_option,
    store_url,
    write_whole,
)
from acd.cli.progress import Progress
from acd.config import load_config
from acd.planning.report_charts import plot
from acd.planning.reporting import (
    GROUPINGS,
    ReportSettings,
    day_window,
    render_text,
    store_report,
    to_csv,
)
from acd.runtime.store import open_readonly


@click.command()
@db_option
@config_option
@click.option("--queue", help="Only this queue (default: all).")
@click.option("--day", help="One local day, YYYY-MM-DD.")
@click.option("--from", "start", help="From this local date or date-time (inclusive).")
@click.option("--to", "stop", help="To this local date (inclusive) or date-time (exclusive).")
@click.option(
    "--by",
    type=click.Choice(GROUPINGS),
    default="hour",
    show_default=True,
    help="Rows of the table and of the CSV file.",
)
@click.option(
    "--target",
    type=click.FloatRange(0.0, 1.0),
    help="Answer rate to reach (default: the queue's target, the site's strictest, or 0.99).",
)
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), help="Also write CSV here.")
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(file_okay=False),
    help="Write PNG charts to this directory (needs matplotlib), per --by period.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False),
    help="Write a one-page HTML report (table, agents, charts embedded) to this file.",
)
@json_option
def report(
    db_path: str | None,
    config_path: str | None,
    queue: str | None,
    day: str | None,
    start: str | None,
    stop: str | None,
    by: str,
    target: float | None,
    csv_path: str | None,
    plot_dir: str | None,
    html_path: str | None,
    as_json: bool,
) -> None:
    """Did we reach the target? Figures from the call records.

    Per hour (or day, ISO week, month, queue): offered, answered, abandoned, short
    abandons, overflowed, answer rate, service level, ASA, AHT, occupancy and agents
    ready, each row checked against the answer-rate target. --by agent: per agent,
    calls answered, talk, wrap-up, ready idle, busy, not ready by reason, occupancy.
    Times are local to the site's time zone (from --config; UTC without one). --json
    prints every grouping at once. --plot charts per --by period (hour otherwise);
    --html one page with the table, the agents and the charts, for the mayor's office.

    \b
    Examples:
      acd report --db town-hall.db --config examples/town-hall.toml --day 2026-03-10
      acd report --config examples/town-hall.toml --from 2026-03-09 --to 2026-03-13 --by day
      acd report --db town-hall.db --queue front-desk --json
      acd report --db town-hall.db --csv day.csv --plot charts/
      acd report --config site.toml --from 2026-03-01 --to 2026-03-31 --by agent
      acd report --config site.toml --from 2026-03-01 --to 2026-03-31 --by day --plot c/
      acd report --config site.toml --from 2026-01-01 --to 2026-06-30 --by month
      acd report --config site.toml --from 2026-03-09 --to 2026-03-13 --html week.html
    """
    config = load_config(config_path) if config_path is not None else None
    db_path, options = store_url(db_path, config, "give --db FILE (or --config with a [store] url)")
    settings = ReportSettings.from_config(config, queue=queue, target=target)
    since, until = _window(day, start, stop, ZoneInfo(settings.timezone))
    with open_readonly(db_path, **options) as store, Progress("call records read") as progress:
        if config is None:
            check_queue(store, db_path, queue)
        result = store_report(store, settings, since, until, progress.advance)
    if csv_path is not None:
        write_whole(csv_path, to_csv(result, by))
    charts = plot(result, plot_dir, by) if plot_dir is not None else []
    if html_path is not None:
        from acd.planning.report_html import html_report

        write_whole(html_path, html_report(result, by))
    if as_json:
        emit_json({**result.to_dict(), "charts": [str(p) for p in charts]})
        return
    click.echo(render_text(result, by))
    for path in charts:
        click.echo(f"chart: {path}")
    if html_path is not None:
        click.echo(f"report: {html_path}")


def _window(
    day: str | None, start: str | None, stop: str | None, tz: ZoneInfo
) -> tuple[float | None, float | None]:
    if day is not None:
        if start is not None or stop is not None:
            raise click.UsageError("--day excludes --from and --to")
        return day_window(_date(day, "--day"), tz)
    since = _moment(start, "--from", tz, end=False) if start is not None else None
    until = _moment(stop, "--to", tz, end=True) if stop is not None else None
    if since is not None and until is not None and until <= since:
        raise click.BadParameter("must come after --from", param_hint="--to")
    return since, until


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"dates look like 2026-03-10, got {text!r}", param_hint=option
        ) from None


def _moment(text: str, option: str, tz: ZoneInfo, end: bool) -> float:
    """A local date (its midnight; the next one for an end) or date-time, as epoch s."""
    if len(text) == 10:
        first, after = day_window(_date(text, option), tz)
        return after if end else first
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"give a date (2026-03-10) or date-time (2026-03-10T14:00), got {text!r}",
            param_hint=option,
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return moment.timestamp()

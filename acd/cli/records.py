"""``acd records``: the call-record database: backup and restore, purge (retention) and
export of one caller's calls (an access request, docs/privacy.md)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click

from acd.cli.common import config_option, db_option, emit_json, fail, json_option


def site(db_path: str | None, config_path: str | None):
    """The store's URL (``--db``, else the config's ``[store] url``) and the site's
    configuration (None without --config)."""
    if config_path is None and db_path is None:
        fail("give --db FILE (or --config with a [store] url)")
    if config_path is None:
        return db_path, None
    from acd.config import load_config

    config = load_config(config_path)
    return db_path or config.store.url, config


def database(db_path: str | None, config_path: str | None) -> tuple[str, str]:
    """The store's URL and the site's zone."""
    db, config = site(db_path, config_path)
    return db, config.site.timezone if config is not None else "UTC"


def _options(config) -> dict:
    """`acd.runtime.store.open_store` options of the site (none without --config)."""
    if config is None:
        return {}
    return {"group": config.store.group, "password_env": config.store.password_env}


@click.group(short_help="The call-record database: backup, restore, purge, export.")
def records() -> None:
    """The call-record database: backup and restore, purge, export a caller's calls.

    \b
    Examples:
      acd records backup --config /etc/acd/site.toml /var/backups/acd-$(date +%F).db
      sudo systemctl stop acd && acd records restore --db /var/lib/acd/acd.db backup.db
      acd records purge --config /etc/acd/site.toml --before 2025-12-01
      acd records export --config /etc/acd/site.toml --caller 0612345678
    """


@records.command(short_help="Copy the database to FILE, safely while the controller runs.")
@click.argument("file", type=click.Path(dir_okay=False))
@db_option
@config_option
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
def backup(file: str, db_path: str | None, config_path: str | None, force: bool) -> None:
    """Copy the database to FILE, safely while the controller runs, and check the copy.

    SQLite's online backup API makes a consistent copy without stopping the
    controller; the copy is checked (integrity_check, the acd schema) before it is
    renamed to FILE.
    """
    from acd.runtime.store import backup as do_backup

    db, tz = database(db_path, config_path)
    summary = do_backup(db, file, overwrite=force)
    click.echo(f"backup {file}: {_summary(summary, tz)}, checked")


@records.command(short_help="Replace the database by the backup FILE.")
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@db_option
@config_option
def restore(file: str, db_path: str | None, config_path: str | None) -> None:
    """Replace the database by the backup FILE (refused while a controller runs on it).

    The backup is checked first; the database it replaces is kept beside it as
    DB.before-restore; the result is reopened and checked.
    """
    from acd.runtime.store import restore as do_restore

    db, tz = database(db_path, config_path)
    summary, kept = do_restore(file, db)
    if kept is not None:
        click.echo(f"the replaced database is kept as {kept}")
    click.echo(f"restored {db} from {file}: {_summary(summary, tz)}, checked")


def _summary(summary, tz: str) -> str:
    if not summary.legs:
        return "no call records"
    zone = ZoneInfo(tz)
    first = datetime.fromtimestamp(summary.first, zone).strftime("%Y-%m-%d %H:%M")
    last = datetime.fromtimestamp(summary.last, zone).strftime("%Y-%m-%d %H:%M")
    return f"{summary.legs} call legs from {first} to {last}"


@records.command(short_help="Delete call detail before a date, keeping the hourly figures.")
@db_option
@config_option
@click.option(
    "--before",
    help="Local date YYYY-MM-DD: purge the detail before its midnight"
    " (default: [store] retention_days ago).",
)
@json_option
def purge(db_path: str | None, config_path: str | None, before: str | None, as_json: bool) -> None:
    """Delete call legs, rings, queue-log rows and agent changes before a date, keeping
    their figures per queue and hour: reports of those days stay the same. The
    controller does this every day for [store] retention_days.

    \b
    Example:
      acd records purge --config /etc/acd/site.toml --before 2025-12-01
    """
    import time
    from datetime import date

    from acd.core.calendar import midnight
    from acd.runtime.retention import cutoff
    from acd.runtime.retention import purge as do_purge
    from acd.runtime.store import open_store

    db, config = site(db_path, config_path)
    tz = config.site.timezone if config is not None else "UTC"
    if before is not None:
        try:
            limit = midnight(date.fromisoformat(before), tz)
        except ValueError:
            raise click.BadParameter(
                f"dates look like 2026-03-10, got {before!r}", param_hint="--before"
            ) from None
    elif config is not None and config.store.retention_days:
        limit = cutoff(time.time(), config.store.retention_days, tz)
    else:
        fail("give --before DATE (or --config with [store] retention_days)")
    with open_store(db, create=False, **_options(config)) as store:
        deleted = do_purge(store, limit, config)
    day = datetime.fromtimestamp(limit, ZoneInfo(tz)).date()
    if as_json:
        emit_json({"before": day.isoformat(), "deleted": deleted})
        return
    click.echo(
        f"purged before {day}: {deleted['calls']} call legs, {deleted['queue_log']} queue-log"
        f" rows, {deleted['agent_changes']} agent changes; their figures are kept for reports"
    )


@records.command(short_help="Every stored call leg of one caller number.")
@db_option
@config_option
@click.option("--caller", required=True, help="The caller number, as dialled to us.")
@json_option
def export(db_path: str | None, config_path: str | None, caller: str, as_json: bool) -> None:
    """Every stored call leg of one caller number (a person's access request): times,
    queue, outcome, waits, the agent who answered. Where numbers are stored masked
    ([store] mask_callers, the default) the calls of the masked number are listed and
    may include other callers' with the same last digits.

    \b
    Example:
      acd records export --config /etc/acd/site.toml --caller 0612345678 --json
    """
    import dataclasses

    from acd.runtime.store import open_readonly
    from acd.runtime.topics import mask_number

    db, config = site(db_path, config_path)
    tz = ZoneInfo(config.site.timezone if config is not None else "UTC")
    with open_readonly(db, **_options(config)) as store:
        legs = list(store.calls_of(caller))
        masked = mask_number(caller)
        stored_masked = not legs and masked is not None and masked != caller
        if stored_masked:
            legs = list(store.calls_of(masked))
    rows = []
    for leg in legs:
        data = dataclasses.asdict(leg)
        for key in (
            "arrived_at",
            "queued_at",
            "answered_at",
            "released_at",
            "ended_at",
            "wrapup_end",
        ):
            if data.get(key) is not None:
                data[key] = datetime.fromtimestamp(data[key], tz).isoformat(timespec="seconds")
        data["outcome"] = str(leg.outcome)
        data["wait_s"] = round(leg.wait, 3)
        data.pop("rings", None)
        rows.append(data)
    note = (
        f"numbers are stored masked: these are the calls of {masked}, which may include"
        " other callers with the same last digits"
        if stored_masked
        else None
    )
    if as_json:
        emit_json({"caller": caller, "masked": stored_masked, "note": note, "calls": rows})
        return
    if note:
        click.echo(f"note: {note}", err=True)
    if not rows:
        click.echo(f"no call of {caller} stored")
    for r in rows:
        who = f" with agent {r['agent_id']}" if r.get("agent_id") else ""
        click.echo(
            f"{r['arrived_at']} call {r['call_id']} leg {r['leg']} {r['queue']}:"
            f" {r['outcome']} after {r['wait_s']:.0f} s{who}"
        )

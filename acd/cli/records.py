"""``acd records``: the call-record database: backup and restore."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import click

from acd.cli.common import config_option, fail

db_option = click.option(
    "--db",
    "db_path",
    type=click.Path(dir_okay=False),
    help="Call-record database (default: [store] path of --config).",
)


def database(db_path: str | None, config_path: str | None) -> tuple[str, str]:
    """The database path (``--db``, else the config's ``store.path``) and the site's zone."""
    if config_path is None and db_path is None:
        fail("give --db FILE (or --config with a [store] path)")
    if config_path is None:
        return db_path, "UTC"
    from acd.config import load_config

    config = load_config(config_path)
    return db_path or config.store.path, config.site.timezone


@click.group()
def records() -> None:
    """The call-record database: backup and restore.

    \b
    Examples:
      acd records backup --config /etc/acd/site.toml /var/backups/acd-$(date +%F).db
      sudo systemctl stop acd && acd records restore --db /var/lib/acd/acd.db backup.db
    """


@records.command()
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
    from acd.backup import backup as do_backup

    db, tz = database(db_path, config_path)
    summary = do_backup(db, file, overwrite=force)
    click.echo(f"backup {file}: {_summary(summary, tz)}, checked")


@records.command()
@click.argument("file", type=click.Path(dir_okay=False, exists=True))
@db_option
@config_option
def restore(file: str, db_path: str | None, config_path: str | None) -> None:
    """Replace the database by the backup FILE (refused while a controller runs on it).

    The backup is checked first; the database it replaces is kept beside it as
    DB.before-restore; the result is reopened and checked.
    """
    from acd.backup import restore as do_restore

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

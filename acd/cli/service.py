"""``acd service install``: the systemd unit, the service user and its directories."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from acd.cli.common import fail

UNIT_PATH = "/etc/systemd/system/acd.service"
CONFIG_DIR = "/etc/acd"
STATE_DIR = "/var/lib/acd"

EPILOG = """\b
Examples:
  sudo acd service install                  # unit, user acd, /etc/acd, /var/lib/acd
  acd service install --dry-run             # say what would be done, do nothing
  acd service install --root /tmp/image     # write the files under a directory tree
  sudo acd service install --store-from-config   # PostgreSQL, [ha]: [store] url decides
\b
Then: put the site configuration in /etc/acd/site.toml, secrets (ACD_MQTT_PASSWORD=...)
in /etc/acd/acd.env, and `sudo systemctl daemon-reload && sudo systemctl enable --now acd`.
"""


@dataclass(frozen=True)
class Unit:
    """What the unit runs: the ``acd`` program, the configuration, the database (None:
    the configuration's ``[store] url``), the user."""

    program: str
    config: str = f"{CONFIG_DIR}/site.toml"
    db: str | None = f"{STATE_DIR}/acd.db"
    user: str = "acd"
    watchdog: int = 30

    def text(self) -> str:
        """The unit file (``Type=notify``: ready, status, stopping and watchdog)."""
        return f"""\
[Unit]
Description=ACD controller (PBX CTI link)
After=network-online.target mosquitto.service
Wants=network-online.target

[Service]
Type=notify
NotifyAccess=main
User={self.user}
Group={self.user}
SupplementaryGroups=dialout
EnvironmentFile=-{CONFIG_DIR}/acd.env
WorkingDirectory={STATE_DIR}
ExecStart={self.program} run --config {self.config}{self._db_option()}
ExecReload=/bin/kill -HUP $MAINPID
WatchdogSec={self.watchdog}
Restart=on-failure
RestartSec=5
TimeoutStartSec=60
TimeoutStopSec=15
UMask=0027

[Install]
WantedBy=multi-user.target
"""

    def _db_option(self) -> str:
        return "" if self.db is None else f" --db {self.db}"


def default_program() -> str:
    """The ``acd`` of this installation (beside the running Python), else the one on PATH."""
    beside = Path(sys.executable).parent / "acd"
    if beside.exists():
        return str(beside)
    return shutil.which("acd") or str(beside)


@click.group()
def service() -> None:
    """Install the controller as a systemd service."""


@service.command(short_help="Write the systemd unit and create the service user.", epilog=EPILOG)
@click.option("--root", type=click.Path(file_okay=False), help="Install under this directory.")
@click.option("--dry-run", is_flag=True, help="Print what would be done; change nothing.")
@click.option("--user", default="acd", show_default=True, help="The service user.")
@click.option("--program", help="The acd program the unit starts (default: this one).")
@click.option(
    "--watchdog",
    type=click.IntRange(5, 3600),
    default=30,
    show_default=True,
    help="WatchdogSec: s without a sign of life before systemd restarts the controller.",
)
@click.option(
    "--store-from-config",
    is_flag=True,
    help=f"No --db {STATE_DIR}/acd.db in the unit: the configuration's [store] url decides"
    " (a PostgreSQL store, a pair of [ha]).",
)
@click.option("--force", is_flag=True, help="Replace an existing unit file.")
def install(
    root: str | None,
    dry_run: bool,
    user: str,
    program: str | None,
    watchdog: int,
    store_from_config: bool,
    force: bool,
) -> None:
    """Write the systemd unit, create the service user and its directories.

    The unit runs `acd run` with Type=notify (ready once the PBX port is open, the link
    state as its status, a watchdog fed while the event loop and the link pump keep up),
    reloads the configuration on `systemctl reload` (SIGHUP) and restarts on failure.
    """
    db = None if store_from_config else Unit.db
    unit = Unit(program or default_program(), db=db, user=user, watchdog=watchdog)
    base = Path(root or "/")
    if not (root or dry_run) and os.geteuid() != 0:
        fail("acd service install needs root (sudo), or --root DIR or --dry-run")
    unit_file = base / UNIT_PATH.lstrip("/")
    if unit_file.exists() and not force:
        fail(f"{unit_file} exists: give --force to replace it")
    say = click.echo
    _user(user, root is not None, dry_run, say)
    for path, owner, mode in ((CONFIG_DIR, "root", 0o750), (STATE_DIR, user, 0o750)):
        _directory(base / path.lstrip("/"), owner, user, mode, dry_run, say)
    if dry_run:
        say(f"would write {unit_file}:")
        say(unit.text(), nl=False)
    else:
        unit_file.parent.mkdir(parents=True, exist_ok=True)
        unit_file.write_text(unit.text())
        say(f"wrote {unit_file}")
    config = base / unit.config.lstrip("/")
    if not config.exists():
        say(f"next: put the site configuration in {config} (acd config check {config})")
    say("then: systemctl daemon-reload && systemctl enable --now acd; journalctl -u acd -f")


def _user(user: str, under_root: bool, dry_run: bool, say) -> None:
    command = [
        *("useradd", "--system", "--home-dir", STATE_DIR, "--no-create-home"),
        *("--shell", "/usr/sbin/nologin", "--groups", "dialout", user),
    ]
    try:
        pwd.getpwnam(user)
        exists = True
    except KeyError:
        exists = False
    if exists and not under_root:
        say(f"user {user} exists")
    elif dry_run or under_root:
        say(f"{'would run' if dry_run else 'on the target, run'}: {' '.join(command)}")
    else:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            fail(f"useradd {user} failed: {done.stderr.strip()}")
        say(f"created user {user}")


def _directory(path: Path, owner: str, user: str, mode: int, dry_run: bool, say) -> None:
    if dry_run:
        say(f"would create {path} (owner {owner}, group {user}, mode {mode:o})")
        return
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    try:
        shutil.chown(path, owner, user)
    except (LookupError, PermissionError):  # no such user here (--root): mode only
        say(f"created {path} (mode {mode:o}; chown {owner}:{user} it on the target)")
        return
    say(f"created {path} (owner {owner}, group {user}, mode {mode:o})")

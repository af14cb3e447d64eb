"""Backup and restore of the call-record database, and the lock a running controller holds.

- `backup` copies a live database with SQLite's online backup API (a consistent copy
  while the controller writes: the copy restarts on pages changed under it) into a
  temporary file, checks it (``PRAGMA integrity_check``, the acd schema) and only then
  renames it into place.
- `restore` checks the backup the same way, refuses while a controller holds the
  database (`controller_lock`), keeps the database it replaces beside it
  (``acd.db.before-restore``), copies the backup in and checks the result by reopening.
- `controller_lock` is an exclusive ``flock`` on the database file, taken by ``acd run``
  for as long as it runs (released by the kernel even on ``kill -9``). SQLite's own locks
  are POSIX record locks, independent of ``flock`` on Linux.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from acd.errors import AcdError
from acd.files import create_private
from acd.store import open_readonly


@dataclass(frozen=True)
class Summary:
    """What a checked database holds."""

    path: Path
    legs: int
    first: float | None
    last: float | None


@contextlib.contextmanager
def controller_lock(db: str | Path) -> Iterator[None]:
    """Hold the database for a controller; `AcdError` if another process holds it."""
    fd = _lock(Path(db))
    try:
        yield
    finally:
        os.close(fd)


def backup(db: str | Path, dest: str | Path, overwrite: bool = False) -> Summary:
    """Copy ``db`` (live or not) to ``dest`` and check the copy; `AcdError` on a problem."""
    db, dest = Path(db), Path(dest)
    if dest.exists() and not overwrite:
        raise AcdError(f"{dest} exists: give --force to replace it")
    if dest.resolve() == db.resolve():
        raise AcdError(f"{dest} is the database itself")
    part = dest.with_name(dest.name + ".part")
    part.unlink(missing_ok=True)
    with open_readonly(db) as source:
        try:
            target = sqlite3.connect(part)
            try:
                source._conn.backup(target)
            finally:
                target.close()
        except (sqlite3.Error, OSError) as exc:
            part.unlink(missing_ok=True)
            raise AcdError(f"backup to {dest} failed: {exc}") from None
    try:
        summary = check(part)
    except AcdError:
        part.unlink(missing_ok=True)
        raise
    part.replace(dest)
    return Summary(dest, summary.legs, summary.first, summary.last)


def restore(source: str | Path, db: str | Path) -> tuple[Summary, Path | None]:
    """Replace ``db`` by the backup ``source``: refused while a controller runs on ``db``.
    Returns the restored database's summary and where the replaced one was kept."""
    source, db = Path(source), Path(db)
    check(source)
    existed = db.exists() and db.stat().st_size > 0
    with controller_lock(db):
        kept = None
        if existed:
            kept = db.with_name(db.name + ".before-restore")
            _copy(db, kept)
        _copy(source, db)
        return check(db), kept


def check(path: str | Path) -> Summary:
    """Open ``path`` as a call-record database and run ``integrity_check``."""
    with open_readonly(path) as store:
        conn = store._conn
        try:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check")]
            legs, first, last = conn.execute(
                "SELECT count(*), min(queued_at), max(queued_at) FROM calls"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise AcdError(f"{path}: damaged database: {'; '.join(problems[:3])}")
    return Summary(Path(path), legs, first, last)


def _copy(source: Path, dest: Path) -> None:
    """Copy a database page by page (the destination's journal or WAL stays consistent)."""
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        try:
            create_private(dest)  # personal data: the owner only (docs/privacy.md)
            dst = sqlite3.connect(dest)
            try:
                src.backup(dst)
            finally:
                dst.close()
        finally:
            src.close()
    except (sqlite3.Error, OSError) as exc:
        raise AcdError(f"copy of {source} to {dest} failed: {exc}") from None


def _lock(db: Path) -> int:
    """An exclusive ``flock`` on ``db`` (created empty if missing: an empty file is an
    empty SQLite database); its descriptor, or `AcdError` if another process holds it."""
    try:
        fd = os.open(db, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise AcdError(f"{db}: cannot open: {exc.strerror}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise AcdError(
            f"{db} is in use by a running controller: stop it first (systemctl stop acd)"
        ) from None
    return fd

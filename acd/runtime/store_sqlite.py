"""The SQLite record store: one file (stdlib ``sqlite3``), WAL, ``synchronous=FULL``; the
embedded default (``[store] url`` a plain path or ``sqlite:///path``).

Every write is committed (and the WAL fsynced) before the method returns, so a record
reported as written survives ``kill -9`` and a power cut. The schema version is SQLite's
``PRAGMA user_version``. The file (and SQLite's ``-wal``/``-shm``, made with its mode)
is created 0600, or 0640 with ``group`` (`acd.files`); an existing one with looser bits
is tightened. Reports open the file read-only (``mode=ro``).

Whole-store operations:

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
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from acd.errors import AcdError
from acd.files import create_private, make_private
from acd.runtime.store import StoreOptions, Summary
from acd.runtime.store_sql import MIGRATIONS, SCHEMA_VERSION, SqlStore


def migrate(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Apply the migrations the database lacks, up to version ``upto``, each in its own
    transaction; return the version reached. A newer schema is an ``AcdError``."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise AcdError(
            f"call-record schema version {version} is newer than this acd "
            f"({SCHEMA_VERSION}): upgrade acd-controller"
        )
    if version == 0 and conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]:
        raise AcdError("not a call-record database (it holds other tables)")
    for number in range(version, upto):
        script = MIGRATIONS[number]
        conn.executescript(
            f"BEGIN IMMEDIATE; {script}; PRAGMA user_version = {number + 1}; COMMIT;"
        )
        version = number + 1
    return version


class SqliteStore(SqlStore):
    """The call-record database in one SQLite file. ``SqliteStore(path)`` opens
    (creating and migrating) it for writing; `open_readonly` opens it for reports."""

    def __init__(
        self,
        path: str | Path,
        mask_callers: bool = True,
        group: str | None = None,
        create: bool = True,
    ) -> None:
        self.path = Path(path)
        self._init_state(mask_callers)
        created = not self.path.exists()
        if created and not create:
            raise AcdError(f"{self.path}: no such call-record database")
        try:
            create_private(self.path, group)  # SQLite gives -wal and -shm the same mode
            for suffix in ("-wal", "-shm"):
                if Path(f"{self.path}{suffix}").exists():
                    make_private(f"{self.path}{suffix}", group)
        except OSError as exc:
            raise AcdError(
                f"{self.path}: cannot create the call-record database: {exc.strerror}"
            ) from None
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=5.0
            )
        except sqlite3.OperationalError as exc:
            raise AcdError(f"{self.path}: cannot open call-record database: {exc}") from None
        self._conn = conn
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            migrate(conn)
        except (sqlite3.DatabaseError, AcdError) as exc:
            conn.close()
            if created:  # a half-made database (full disk ...) is not left behind
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{self.path}{suffix}").unlink(missing_ok=True)
            if isinstance(exc, AcdError):
                raise AcdError(f"{self.path}: {exc}") from None
            raise _problem(self.path, exc, "cannot write the call-record database") from None

    def _begin(self) -> None:
        self._conn.execute("BEGIN IMMEDIATE")

    def _rollback(self) -> None:
        if self._conn.in_transaction:
            self._conn.execute("ROLLBACK")

    def summary(self) -> Summary:
        """Check the database (``PRAGMA integrity_check``) and say what it holds."""
        try:
            problems = [row[0] for row in self._conn.execute("PRAGMA integrity_check")]
            legs, first, last = self._conn.execute(
                "SELECT count(*), min(queued_at), max(queued_at) FROM calls"
            ).fetchone()
        except sqlite3.DatabaseError as exc:
            problems = [str(exc)]
        if problems != ["ok"]:
            raise AcdError(f"{self.path}: damaged database: {'; '.join(problems[:3])}")
        return Summary(self.path, legs, first, last)


def open_readonly(path: str | Path) -> SqliteStore:
    """Open a call-record database read-only (``mode=ro``), for reports. A missing file,
    a file that is not SQLite or a database without call records is an ``AcdError``."""
    p = Path(path)
    if not p.is_file():
        raise AcdError(f"{p}: no such call-record database")
    store = SqliteStore.__new__(SqliteStore)
    store.path = p
    store._init_state(True)
    uri = f"file:{quote(str(p.resolve()))}?mode=ro"
    try:
        conn = _read_only(uri)
    except sqlite3.OperationalError as exc:
        # A WAL database on read-only media: SQLite cannot make its -shm file there.
        # With no write-ahead log left to apply, the file alone is the whole database.
        if exc.sqlite_errorname != "SQLITE_CANTOPEN" or Path(f"{p}-wal").exists():
            raise _problem(p, exc, "cannot read the call-record database") from None
        try:
            conn = _read_only(uri + "&immutable=1")
        except sqlite3.DatabaseError as exc:
            raise _problem(p, exc, "cannot read the call-record database") from None
    except sqlite3.DatabaseError as exc:
        raise _problem(p, exc, "cannot read the call-record database") from None
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    store._conn = conn
    if version != SCHEMA_VERSION:
        conn.close()
        if version == 0:
            raise AcdError(f"{p}: not a call-record database (no acd schema)")
        raise AcdError(
            f"{p}: call-record schema version {version}, this acd reads {SCHEMA_VERSION}"
            + (
                ": open it once with the controller to upgrade it"
                if version < SCHEMA_VERSION
                else ""
            )
        )
    return store


def _read_only(uri: str) -> sqlite3.Connection:
    """Open ``uri`` and read its schema (where a file that is not SQLite fails)."""
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()
    except sqlite3.DatabaseError:
        conn.close()
        raise
    return conn


def _problem(path: Path, exc: sqlite3.DatabaseError, doing: str) -> AcdError:
    """The one-line error of an SQLite failure on ``path``: a file that is not SQLite,
    or what went wrong (``doing``: database or disk is full, unable to open ...)."""
    if getattr(exc, "sqlite_errorname", None) in ("SQLITE_NOTADB", "SQLITE_CORRUPT"):
        return AcdError(f"{path}: not a call-record database (not an SQLite file)")
    return AcdError(f"{path}: {doing}: {exc}")


# -- whole-store operations ----------------------------------------------------------


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
            create_private(part)  # personal data: the owner only, like the database
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
        summary = store.summary()
    return Summary(Path(path), summary.legs, summary.first, summary.last)


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


def file_path(url: str) -> str:
    """The file of a store URL: a plain path as it is, ``sqlite:///abs/path`` (a file
    URL, percent-decoded) its path."""
    if not url.lower().startswith("sqlite://"):
        return url
    path = unquote(urlsplit(url).path)
    if not path:
        raise AcdError(f"{url!r} names no file (e.g. sqlite:///var/lib/acd/acd.db)")
    return path


class _Backend:
    """`acd.runtime.store.StoreBackend` of SQLite files."""

    def open(self, url: str, options: StoreOptions) -> SqliteStore:
        path = file_path(url)
        return SqliteStore(path, options.mask_callers, options.group, options.create)

    def open_readonly(self, url: str, options: StoreOptions) -> SqliteStore:
        return open_readonly(file_path(url))

    def controller_lock(
        self, url: str, options: StoreOptions
    ) -> contextlib.AbstractContextManager[None]:
        return controller_lock(file_path(url))

    def backup(self, url: str, dest: Path, overwrite: bool) -> Summary:
        return backup(file_path(url), dest, overwrite)

    def restore(self, source: Path, url: str) -> tuple[Summary, Path | None]:
        return restore(source, file_path(url))


BACKEND = _Backend()

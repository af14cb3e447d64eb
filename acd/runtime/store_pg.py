"""The PostgreSQL record store (psycopg 3, the ``postgresql`` extra): ``[store] url =
"postgresql://acd@db.example/acd"``, the password from the environment variable named by
``[store] password_env`` (never from the file).

The same schema and migrations as SQLite (`acd.runtime.store_sql`, adapted by ``dialect``:
64-bit integers, identity keys, double precision times), the version in a one-row table
``acd_schema``, upgraded under an advisory lock (two controllers starting at once migrate
once). Durability: every write is committed before it returns, with ``synchronous_commit
= on`` for the session (a server default of ``off`` would acknowledge records a crash can
lose); ``transaction`` groups one engine step's writes into one commit, as for SQLite.

PostgreSQL text cannot hold NUL: a NUL (and the private-use character U+E000 used to
escape it) is escaped on the way in and restored on the way out, so every string stored
reads back the same. A connection lost (server restarted) is opened again at the next
transaction; the one that failed raises (the controller's outbox writes it again).

Backup and restore are PostgreSQL's own (``pg_dump`` / ``pg_restore``, docs/operations.md):
``acd records backup`` and ``restore`` refuse with that pointer.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from acd.errors import AcdError
from acd.runtime.store import LeaseLost, StoreOptions, Summary
from acd.runtime.store_sql import INSERT_CALL, MIGRATIONS, SCHEMA_VERSION, SqlStore, dialect

_ESC = "\ue000"  # a private-use character: escapes itself and NUL in stored text
_LOCK = 0x41_43_44_53  # "ACDS": the advisory lock held while the schema is upgraded
_CONTROLLER = 0x41_43_44_43  # "ACDC": the advisory lock a running controller holds
STORE_SESSION = "acd-store "
"""``application_name`` of a pair's store sessions, before the instance's name."""
WRITE_TIMEOUT = 5.0
"""Seconds a write transaction may wait for the server before its connection is cut and
the write fails (the outbox spools it): a network partition never hangs the writer."""


def _psycopg():
    """The ``psycopg`` module, or an `AcdError` saying how to install it."""
    try:
        import psycopg
    except ImportError:
        raise AcdError(
            "a postgresql:// store needs psycopg: pip install 'acd-controller[postgresql]'"
        ) from None
    return psycopg


def redact(url: str) -> str:
    """``url`` without a password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@", 1)).geturl()


def escape(text: str) -> str:
    """``text`` as stored: NUL and the escape character escaped."""
    if "\0" not in text and _ESC not in text:
        return text
    return text.replace(_ESC, _ESC + _ESC).replace("\0", _ESC + "0")


def unescape(text: str) -> str:
    """The string of a stored ``text`` (`escape` undone)."""
    if _ESC not in text:
        return text
    out, chars = [], iter(text)
    for ch in chars:
        out.append(ch if ch != _ESC else ("\0" if next(chars, "") == "0" else _ESC))
    return "".join(out)


@functools.cache
def _adapters():
    """psycopg dumper and loader classes applying `escape` / `unescape` to text."""
    from psycopg.types.string import StrDumperUnknown, TextLoader

    class Dumper(StrDumperUnknown):
        def dump(self, obj: str) -> bytes:
            return super().dump(escape(obj))

    class Loader(TextLoader):
        def load(self, data) -> str:
            return unescape(super().load(data))

    return Dumper, Loader


@functools.lru_cache(maxsize=256)
def _pg(sql: str) -> str:
    """A statement with ``?`` parameters in psycopg's ``%s`` style."""
    return sql.replace("?", "%s")


def _password(password_env: str | None) -> dict[str, object]:
    """psycopg's ``password`` argument from the variable ``password_env`` (none if None);
    `AcdError` if it is unset."""
    if password_env is None:
        return {}
    password = os.environ.get(password_env)
    if password is None:
        raise AcdError(f"store.password_env: the variable {password_env} is not set")
    return {"password": password}


def connect(
    url: str,
    password_env: str | None = None,
    readonly: bool = False,
    idle_timeout: float | None = None,
    name: str | None = None,
    timeout: float = WRITE_TIMEOUT,
):
    """A psycopg connection to ``url`` (autocommit: the store says BEGIN and COMMIT),
    with ``synchronous_commit = on``, read-only for reports, its text escaped
    (`escape`); the password from the variable ``password_env``. With ``idle_timeout``
    the server ends a transaction left idle that many seconds (a writer cut off from
    the database, in a pair, holds no row lock the new active one waits for); ``name``
    is the session's ``application_name``. A dead network is noticed within about
    ``timeout`` s: connecting (``connect_timeout``), data sent and never acknowledged
    (``tcp_user_timeout``) and a silent idle socket (TCP keepalives). `AcdError` if the
    variable is unset or the server cannot be reached, in one line without the
    password."""
    psycopg = _psycopg()
    extra = _password(password_env)
    options = "-c synchronous_commit=on"
    if readonly:
        options += " -c default_transaction_read_only=on"
    if idle_timeout is not None:
        options += f" -c idle_in_transaction_session_timeout={round(idle_timeout * 1000)}"
    try:
        if name is not None:
            extra["application_name"] = name
        probe = max(1, round(timeout / 4))
        conn = psycopg.connect(
            url,
            autocommit=True,
            connect_timeout=max(2, math.ceil(timeout)),
            options=options,
            keepalives=1,
            keepalives_idle=probe,
            keepalives_interval=probe,
            keepalives_count=3,
            tcp_user_timeout=round(timeout * 1000),
            **extra,
        )
    except psycopg.Error as exc:
        raise AcdError(
            f"{redact(url)}: cannot connect to the call-record database: {_first_line(exc)}"
        ) from None
    dumper, loader = _adapters()
    conn.adapters.register_dumper(str, dumper)
    for name in ("text", "varchar"):
        conn.adapters.register_loader(name, loader)
    return conn


class PostgresStore(SqlStore):
    """The call records in a PostgreSQL database, opened (and its schema created or
    upgraded) for writing, or read-only for reports.

    A write transaction that waits more than ``write_timeout`` s for the server (a
    network partition: the socket stays open, nothing comes back) has its connection
    cut and raises `AcdError`; the next transaction connects again. The schema upgrade
    at opening and the retention purge are not bounded (they may be long)."""

    def __init__(
        self,
        url: str,
        mask_callers: bool = True,
        password_env: str | None = None,
        readonly: bool = False,
        idle_timeout: float | None = None,
        instance: str | None = None,
        write_timeout: float = WRITE_TIMEOUT,
    ) -> None:
        self.url = url
        self.write_timeout = write_timeout
        self._bounded = False  # write transactions bounded by write_timeout (once migrated)
        self._watchdog = _Watchdog(self, write_timeout)
        self._name = None if instance is None else f"{STORE_SESSION}{instance}"
        self._init_state(mask_callers)
        self._password_env = password_env
        self._readonly = readonly
        self._idle_timeout = idle_timeout
        self._conn = self._connect()
        try:
            if readonly:
                self._check_version()
            else:
                self._migrate()
        except BaseException:
            self._conn.close()
            raise
        self._bounded = True

    def _connect(self):
        return connect(
            self.url,
            self._password_env,
            self._readonly,
            self._idle_timeout,
            self._name,
            self.write_timeout,
        )

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """`SqlStore.transaction`, the outermost one bounded by ``write_timeout``: past
        it, the connection is cut (its socket shut down, so that the blocked call
        returns) and `AcdError` raised, the transaction rolled back by the server."""
        if self._depth or not self._bounded:
            with super().transaction():
                yield
            return
        watch = self._watchdog
        watch.arm()
        try:
            with super().transaction():
                yield
        except Exception as exc:
            if watch.cut:
                raise AcdError(
                    f"{redact(self.url)}: no answer from the database in"
                    f" {self.write_timeout:g} s (connection cut)"
                ) from exc
            raise
        finally:
            watch.disarm()

    def close(self) -> None:
        """Close the database and end the deadline thread."""
        self._watchdog.close()
        super().close()

    def purge_before(self, *args, **kwargs) -> dict[str, int]:
        """`SqlStore.purge_before`, not bounded by ``write_timeout`` (a year of detail
        may take longer to delete)."""
        self._bounded = False
        try:
            return super().purge_before(*args, **kwargs)
        finally:
            self._bounded = True

    def _execute(self, sql: str, params: Sequence[object] = ()):
        return self._conn.execute(_pg(sql), params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        if rows:
            with self._conn.cursor() as cursor:
                cursor.executemany(_pg(sql), rows)

    def _insert_calls(self, rows: Sequence[Sequence[object]]) -> list[int | None]:
        """All legs in one pipeline (one round trip), each one's row id or None."""
        if not rows:
            return []
        ids: list[int | None] = []
        with self._conn.cursor() as cursor:
            cursor.executemany(_pg(INSERT_CALL), rows, returning=True)
            while True:
                row = cursor.fetchone()
                ids.append(None if row is None else row[0])
                if not cursor.nextset():
                    break
        return ids

    def _begin(self) -> None:
        """BEGIN; on a connection found lost (the server restarted), once more on a new
        one: nothing of this transaction was sent yet."""
        psycopg = _psycopg()
        try:
            self._conn.execute("BEGIN")
        except psycopg.OperationalError:
            if not (self._conn.broken or self._conn.closed) or self._watchdog.cut:
                raise  # cut by the deadline: no answer, and none on a new one either
            self._conn.close()
            self._conn = self._connect()
            self._conn.execute("BEGIN")

    def _rollback(self) -> None:
        psycopg = _psycopg()
        if self._conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            with contextlib.suppress(psycopg.Error):  # the error that led here says more
                self._conn.execute("ROLLBACK")

    def _version(self) -> int | None:
        """The schema version, None if the database has no acd schema."""
        (table,) = self._conn.execute("SELECT to_regclass('acd_schema')").fetchone()
        if table is None:
            return None
        return self._conn.execute("SELECT version FROM acd_schema").fetchone()[0]

    def _migrate(self) -> None:
        """Create or upgrade the schema, in one transaction under an advisory lock."""
        with self.transaction():
            self._execute("SELECT pg_advisory_xact_lock(?)", (_LOCK,))
            version = self._version()
            if version is None:
                (tables,) = self._conn.execute(
                    "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()"
                ).fetchone()
                if tables:
                    raise AcdError(
                        f"{redact(self.url)}: not a call-record database (it holds other tables)"
                    )
                self._conn.execute("CREATE TABLE acd_schema (version INTEGER NOT NULL)")
                self._conn.execute("INSERT INTO acd_schema VALUES (0)")
                version = 0
            if version > SCHEMA_VERSION:
                raise AcdError(
                    f"{redact(self.url)}: call-record schema version {version} is newer than"
                    f" this acd ({SCHEMA_VERSION}): upgrade acd-controller"
                )
            for number in range(version, SCHEMA_VERSION):
                self._conn.execute(dialect(MIGRATIONS[number], "postgresql"))
                self._execute("UPDATE acd_schema SET version = ?", (number + 1,))

    @property
    def server_version(self) -> int:
        """The server's version number (``150004`` for 15.4)."""
        return self._conn.info.server_version

    def _check_version(self) -> None:
        version = self._version()
        if version is None:
            raise AcdError(f"{redact(self.url)}: not a call-record database (no acd schema)")
        if version != SCHEMA_VERSION:
            raise AcdError(
                f"{redact(self.url)}: call-record schema version {version}, this acd reads"
                f" {SCHEMA_VERSION}"
            )


class _Watchdog:
    """Cuts ``store``'s connection (shuts its socket down, so that the call blocked on
    it returns with an error) when a transaction armed with `arm` is still running
    ``timeout`` s later; one thread per store, started at the first `arm`."""

    def __init__(self, store: PostgresStore, timeout: float) -> None:
        self.store = store
        self.timeout = timeout
        self.cut = False  # the armed transaction was cut
        self._cond = threading.Condition()
        self._due: float | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    def arm(self) -> None:
        with self._cond:
            self._due = time.monotonic() + self.timeout
            self.cut = False
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="acd-store-deadline", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def disarm(self) -> None:
        with self._cond:
            self._due = None
            self.cut = False

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                if self._due is None:
                    self._cond.wait()
                    continue
                left = self._due - time.monotonic()
                if left > 0:
                    self._cond.wait(left)
                    continue
                self._due = None
                self.cut = True
                with contextlib.suppress(Exception):  # closed meanwhile: nothing to cut
                    sock = socket.socket(fileno=os.dup(self.store._conn.pgconn.socket))
                    try:
                        sock.shutdown(socket.SHUT_RDWR)
                    finally:
                        sock.close()


class PgLease:
    """`acd.runtime.store.Lease` of a hot-standby pair (``[ha]``, docs/operations.md): the
    advisory lock ``acd run`` takes (key "ACDC"), held by a session of its own.

    The session is named ``acd <instance>`` (``application_name``) so that a standby can
    say who holds it. The server ends it when it has been idle ``timeout`` s
    (``idle_session_timeout``, PostgreSQL 14 or later) or its socket is dead (TCP
    keepalives and ``tcp_user_timeout`` on both ends), which frees the lock: a holder
    cut off from the database loses it in bounded time, and must have stopped using it
    before (`acd.runtime.controller` fences at half ``timeout``). Each call blocks (at most
    ``check`` s for a statement, ``timeout`` s to connect): run them in a thread."""

    def __init__(
        self, url: str, instance: str, timeout: float, check: float, password_env: str | None
    ) -> None:
        self.url = url
        self.instance = instance
        self.timeout = timeout
        self.check = check
        self._password_env = password_env
        self._conn = None

    def _connect(self):
        psycopg = _psycopg()
        extra = _password(self._password_env)
        ms = round(self.timeout * 1000)
        idle = max(1, round(self.timeout / 4))
        options = (
            f"-c idle_session_timeout={ms} -c statement_timeout={round(self.check * 1000)}"
            f" -c tcp_keepalives_idle={idle} -c tcp_keepalives_interval={idle}"
            f" -c tcp_keepalives_count=3 -c tcp_user_timeout={ms}"
        )
        try:
            return psycopg.connect(
                self.url,
                autocommit=True,
                connect_timeout=max(2, round(self.timeout)),
                application_name=f"acd {self.instance}",
                options=options,
                keepalives=1,
                keepalives_idle=idle,
                keepalives_interval=idle,
                keepalives_count=3,
                tcp_user_timeout=ms,
                **extra,
            )
        except psycopg.Error as exc:
            raise LeaseLost(
                f"{redact(self.url)}: cannot reach the database: {_first_line(exc)}"
            ) from None

    def connect(self) -> None:
        """Open the lease session if it is not open; `LeaseLost` if unreachable."""
        if self._conn is None or self._conn.closed:
            self._conn = self._connect()

    def acquire(self) -> bool:
        """Take the lock if it is free (connecting first if needed): True if held now.
        `LeaseLost` if the database cannot be reached."""
        psycopg = _psycopg()
        self.connect()
        try:
            (held,) = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s)", (_CONTROLLER,)
            ).fetchone()
        except psycopg.Error as exc:
            self.close()
            raise LeaseLost(f"lease: {_first_line(exc)}") from None
        return bool(held)

    def confirm(self) -> None:
        """Check (one cheap query) that this session still holds the lock; `LeaseLost`
        if not, or if the database did not answer within ``check`` s."""
        psycopg = _psycopg()
        if self._conn is None or self._conn.closed:
            raise LeaseLost("lease: no connection")
        try:
            (held,) = self._conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND pid = pg_backend_pid() AND objid = %s AND objsubid = 1",
                (_CONTROLLER,),
            ).fetchone()
        except psycopg.Error as exc:
            self.close()
            raise LeaseLost(f"lease: {_first_line(exc)}") from None
        if not held:
            raise LeaseLost("lease: the lock is no longer held by this session")

    def fence_others(self) -> list[str]:
        """End every store session of the pair's controllers (`STORE_SESSION`): a
        former holder cut off mid-transaction keeps its row locks until the server
        notices the dead socket; this frees them, and nothing it sends lands. Called
        by a new holder before it opens a store session of its own (so its own stuck
        ones, from a term that ended fenced, go too); waits (at most 2 s) until they
        are gone, their locks with them. The names of the controllers whose sessions
        were ended; `LeaseLost` if the database does not answer."""
        psycopg = _psycopg()
        try:
            with self._conn.transaction():  # longer than a check may take
                self._conn.execute("SET LOCAL statement_timeout = 5000")
                rows = self._conn.execute(
                    "SELECT DISTINCT application_name FROM pg_stat_activity"
                    " WHERE datname = current_database() AND application_name LIKE %s"
                    " AND pid <> pg_backend_pid() AND pg_terminate_backend(pid, 2000)",
                    (STORE_SESSION + "%",),
                ).fetchall()
        except psycopg.Error as exc:
            self.close()
            raise LeaseLost(f"lease: {_first_line(exc)}") from None
        return sorted(name.removeprefix(STORE_SESSION) for (name,) in rows)

    def holder(self) -> str | None:
        """The name of the controller holding the lock (its ``application_name`` without
        ``acd ``), None if free or unknown."""
        psycopg = _psycopg()
        if self._conn is None or self._conn.closed:
            return None
        try:
            row = self._conn.execute(
                "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a"
                " ON a.pid = l.pid WHERE l.locktype = 'advisory' AND l.granted"
                " AND l.objid = %s AND l.objsubid = 1 AND l.database ="
                " (SELECT oid FROM pg_database WHERE datname = current_database())",
                (_CONTROLLER,),
            ).fetchone()
        except psycopg.Error:
            return None
        if row is None or not row[0]:
            return None
        return row[0].removeprefix("acd ")

    def close(self) -> None:
        """End the session (the server frees the lock if it was held)."""
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


def _first_line(exc: Exception) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


@contextlib.contextmanager
def scratch_database(server: str, prefix: str, template: str | None = None) -> Iterator[str]:
    """A new database on ``server`` (a URL without the database: its maintenance
    database ``postgres`` is used to create and drop), named ``prefix`` and a random
    suffix, a copy of ``template`` if given; dropped after, even if still in use. Its
    URL. For tests and benchmarks."""
    psycopg = _psycopg()
    name = f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(f"{server}/postgres", autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield f"{server}/{name}"
    finally:
        with psycopg.connect(f"{server}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _no_file_copy(what: str) -> AcdError:
    return AcdError(
        f"acd records {what} copies SQLite files: back up a PostgreSQL store with pg_dump"
        " and pg_restore (docs/operations.md, Backup and restore)"
    )


class _Backend:
    """`acd.runtime.store.StoreBackend` of PostgreSQL databases."""

    def open(self, url: str, options: StoreOptions) -> PostgresStore:
        return PostgresStore(
            url,
            options.mask_callers,
            options.password_env,
            idle_timeout=options.idle_timeout,
            instance=options.instance,
        )

    def open_readonly(self, url: str, options: StoreOptions) -> PostgresStore:
        return PostgresStore(url, password_env=options.password_env, readonly=True)

    @contextlib.contextmanager
    def controller_lock(self, url: str, options: StoreOptions) -> Iterator[None]:
        """A session advisory lock on the database, on a connection of its own (released
        by the server when the process dies)."""
        conn = connect(url, options.password_env, readonly=True)
        try:
            (held,) = conn.execute("SELECT pg_try_advisory_lock(%s)", (_CONTROLLER,)).fetchone()
            if not held:
                raise AcdError(
                    f"{redact(url)} is in use by a running controller: stop it first"
                    " (systemctl stop acd)"
                )
            yield
        finally:
            conn.close()

    def backup(self, url: str, dest: Path, overwrite: bool) -> Summary:
        raise _no_file_copy("backup")

    def restore(self, source: Path, url: str) -> tuple[Summary, Path | None]:
        raise _no_file_copy("restore")


BACKEND = _Backend()

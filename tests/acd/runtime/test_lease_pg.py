"""The lease of a hot-standby pair (``[ha]``) on a real PostgreSQL server: one holder at
a time, the holder named, checked, given up with its session, taken from a holder whose
session fell silent (``idle_session_timeout``), and the same lock as ``controller_lock``
(a pair and a lone controller never share a database)."""

from __future__ import annotations

import time

import psycopg
import pytest

from acd.errors import AcdError
from acd.runtime.store import LeaseLost, controller_lock
from acd.runtime.store_pg import PgLease


def lease(url: str, name: str, timeout: float = 4.0) -> PgLease:
    return PgLease(url, name, timeout, 0.5, None)


def soon(acquire, within: float = 2.0) -> bool:
    """True once ``acquire`` succeeds (a session's end frees the lock a moment later)."""
    end = time.monotonic() + within
    while not acquire():
        if time.monotonic() > end:
            return False
        time.sleep(0.05)
    return True


def test_one_holder_at_a_time_named_checked_and_freed_with_its_session(pg_url):
    a, b = lease(pg_url, "pc-a"), lease(pg_url, "pc-b")
    try:
        assert a.acquire() and not b.acquire()
        assert b.holder() == "pc-a" and a.holder() == "pc-a"
        a.confirm()
        refused = pytest.raises(AcdError, match="in use by a running controller")
        with refused, controller_lock(pg_url):
            pass
        a.close()
        with pytest.raises(LeaseLost, match="no connection"):
            a.confirm()
        assert soon(b.acquire) and b.holder() == "pc-b"
    finally:
        a.close()
        b.close()
    with controller_lock(pg_url):  # free again once its holder is gone
        pass


def test_a_holder_silent_for_the_lease_timeout_loses_it(pg_url):
    a, b = lease(pg_url, "pc-a", timeout=1.0), lease(pg_url, "pc-b")
    try:
        assert a.acquire()
        time.sleep(0.6)
        a.confirm()  # a check keeps the session alive
        assert not b.acquire()
        time.sleep(1.0)  # silent for lease_timeout: the server ends the session
        assert soon(b.acquire)
        with pytest.raises(LeaseLost):
            a.confirm()
    finally:
        a.close()
        b.close()


def test_an_unreachable_database_is_said_in_one_line():
    dead = lease("postgresql://acd:hunter2@127.0.0.1:1/acd", "pc-a")
    with pytest.raises(LeaseLost) as failed:
        dead.acquire()
    assert "cannot reach the database" in str(failed.value)
    assert "hunter2" not in str(failed.value) and "\n" not in str(failed.value)


def test_a_new_holder_ends_the_pair_s_store_sessions_not_the_others(pg_url):
    from acd.runtime.store import open_store

    a_store = open_store(pg_url, instance="pc-a")  # a former active one's
    report = open_store(pg_url)  # acd report, acd web ...: not the pair's
    b = lease(pg_url, "pc-b")
    try:
        assert b.acquire()
        assert b.fence_others() == ["pc-a"]
        assert b.fence_others() == []
        with pytest.raises(psycopg.OperationalError):  # its session was ended
            a_store._conn.execute("SELECT 1")
        assert report._conn.execute("SELECT 1").fetchone() == (1,)
        b.confirm()  # its own lease session goes on
    finally:
        b.close()
        a_store.close()
        report.close()

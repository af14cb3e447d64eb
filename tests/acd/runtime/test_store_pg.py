"""What is particular to the PostgreSQL store, on a real server (127.0.0.1:5432): the
password from the environment, one controller per database, the schema made once,
connections lost and reopened, text PostgreSQL cannot hold, and the pointer to pg_dump.
The operations themselves run against both stores in test_store.py and the reports'
tests."""

from __future__ import annotations

import threading
import time

import psycopg
import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.core.records import CallRecord, Outcome
from acd.errors import AcdError
from acd.runtime.outbox import Outbox
from acd.runtime.store import controller_lock, open_readonly, open_store
from acd.runtime.store_pg import PostgresStore, escape, unescape
from acd.runtime.store_sql import SCHEMA_VERSION
from tests.acd.runtime.test_outbox import notes
from tests.e2e.test_e2e_pair import PgProxy

T0 = 1_773_126_000.0


def leg(call_id: int, at: float = T0) -> CallRecord:
    return CallRecord(call_id, 1, "front-desk", "0612345678", "3000", 3, at, at, at + 60.0,
                      Outcome.ABANDONED)  # fmt: skip


def test_the_password_comes_from_the_variable_named_and_never_shows(pg_url, monkeypatch):
    monkeypatch.delenv("ACD_TEST_DB_PW", raising=False)
    with pytest.raises(AcdError, match=r"^store\.password_env: the variable ACD_TEST_DB_PW is not"):
        open_store(pg_url, password_env="ACD_TEST_DB_PW")
    monkeypatch.setenv("ACD_TEST_DB_PW", "s3cret")
    with open_store(pg_url, password_env="ACD_TEST_DB_PW") as store:
        assert store._conn.info.password == "s3cret"  # trust here: libpq was given it
    with pytest.raises(AcdError) as failed:  # nothing listens on port 1
        open_store("postgresql://acd:hunter2@127.0.0.1:1/acd")
    assert "cannot connect to the call-record database" in str(failed.value)
    assert "hunter2" not in str(failed.value) and "\n" not in str(failed.value)


def test_a_second_controller_on_the_database_is_refused(pg_url):
    refused = pytest.raises(AcdError, match="is in use by a running controller")
    with controller_lock(pg_url), refused, controller_lock(pg_url):
        pass
    with controller_lock(pg_url):  # released with its holder
        pass


def test_two_controllers_starting_on_a_new_database_make_the_schema_once(pg_url):
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(pg_url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT version FROM acd_schema").fetchall() == [(SCHEMA_VERSION,)]


def test_what_is_not_a_call_record_database_is_refused(pg_url):
    with pytest.raises(AcdError, match="no acd schema"):
        open_readonly(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE invoices (id integer)")
    with pytest.raises(AcdError, match="not a call-record database \\(it holds other tables\\)"):
        open_store(pg_url)
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP TABLE invoices")
    open_store(pg_url).close()
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE acd_schema SET version = version + 1")
    with pytest.raises(AcdError, match="is newer than this acd"):
        open_store(pg_url)


def test_a_connection_lost_is_reopened_and_nothing_acknowledged_is_lost(pg_url):
    with open_store(pg_url) as store:
        store.record_call(leg(1))
        pid = store._conn.info.backend_pid
        with psycopg.connect(pg_url, autocommit=True) as admin:  # as a server restart does
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        store.record_call(leg(2, T0 + 60))  # a new connection, nothing lost
        assert store._conn.info.backend_pid != pid
    with open_readonly(pg_url) as store:
        assert [r.call_id for r in store.calls()] == [1, 2]


def test_a_failed_commit_is_not_acknowledged_and_the_step_is_rolled_back(pg_url):
    with open_store(pg_url) as store:
        with pytest.raises(psycopg.Error), store.transaction():
            store.record_call(leg(1))
            store._conn.execute("SELECT 1/0")  # the server refuses the rest of the step
        store.record_call(leg(2))
        assert [r.call_id for r in store.calls()] == [2]


def test_a_commit_on_a_dead_network_fails_within_the_bound_and_goes_to_the_spool(pg_url, tmp_path):
    # a partition (a black-hole proxy: the sockets stay open, nothing comes back):
    # the writer's commit fails after write_timeout instead of waiting for the network
    proxy = PgProxy()
    spool = tmp_path / "outbox.jsonl"
    try:
        store = PostgresStore(proxy.url(pg_url), write_timeout=1.0)
        box = Outbox(store, spool, retry_initial=0.1)
        assert box.put(box.batch(T0, notes(1))).waiting == 0
        proxy.cut()
        outcome = []
        began = time.monotonic()

        def write() -> None:
            outcome.append(box.put(box.batch(T0 + 60, notes(2))))
            outcome.append(time.monotonic() - began)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(5.0)
        assert not writer.is_alive(), "the commit still waits for the network"
        written, took = outcome
        assert 1.0 <= took < 2.0, took
        assert (written.waiting, written.spooled) == (1, 1)  # acknowledged: in the spool
        assert "no answer from the database in 1 s" in written.down
        proxy.heal()
        time.sleep(0.1)  # past the outbox's retry wait
        assert box.retry().waiting == 0  # a new connection: the spool written
        assert not spool.exists()
        store.close()
    finally:
        proxy.close()
    with open_readonly(pg_url) as store:
        assert sorted({r.call_id for r in store.calls()}) == [1, 2]


@pytest.mark.parametrize("text", ["", "plain", "\0", "a\0b", "\ue000", "\ue0000", "\0\ue000\0"])
def test_text_postgresql_cannot_hold_is_escaped_and_restored(text):
    assert unescape(escape(text)) == text
    assert "\0" not in escape(text)


def test_records_backup_and_restore_point_to_pg_dump(pg_url, tmp_path):
    open_store(pg_url).close()
    for args in (["backup", str(tmp_path / "b.db")], ["restore", __file__]):
        result = CliRunner().invoke(cli, ["records", *args, "--db", pg_url])
        assert result.exit_code == 1
        assert "pg_dump" in result.output and result.output.count("\n") == 1
        assert "Traceback" not in result.output

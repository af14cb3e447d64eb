"""The call-record store on real SQLite files and real PostgreSQL databases (the
``store_url`` fixture: those tests run against both): exact round trips, durability
across SIGKILL, read-only opening and the queue log; SQLite's migrations, masking in the
file, file modes and read-only media."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from acd.core.agents import AgentSession, AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded, ClearCall, LegReleased
from acd.core.records import CallRecord, LiveLeg, Outcome, RingAttempt, RingOutcome
from acd.errors import AcdError
from acd.runtime.store import DuplicateLeg, open_store
from acd.runtime.store import open_readonly as open_url_readonly
from acd.runtime.store_sql import SCHEMA_VERSION
from acd.runtime.store_sqlite import SqliteStore as CallStore
from acd.runtime.store_sqlite import migrate, open_readonly

T0 = 1_773_126_000.0  # 2026-03-10 08:00 Europe/Paris

times = st.floats(0.0, 4e9, allow_nan=False, allow_infinity=False)
opt_times = st.none() | times
ids = st.integers(-(2**63), 2**63 - 1)
text = st.text(max_size=12)
opt_text = st.none() | text
rings = st.builds(RingAttempt, text, text, times, times, st.sampled_from(RingOutcome))
records = st.builds(
    CallRecord,
    call_id=ids,
    leg=st.integers(1, 9),
    queue=text,
    caller=text,
    dialled=text,
    trunk=st.integers(0, 2**31),
    arrived_at=times,
    queued_at=times,
    ended_at=times,
    outcome=st.sampled_from(Outcome),
    answered_at=opt_times,
    released_at=opt_times,
    wrapup_end=opt_times,
    agent_id=opt_text,
    device=opt_text,
    rings=st.lists(rings, max_size=3).map(tuple),
    menu_choice=opt_text,
    escalated_from=opt_text,
    escalated_to=opt_text,
    transferred_to=opt_text,
    abandoned_ringing=st.booleans(),
    reason=text,
)
changes = st.builds(
    AgentChanged,
    at=times,
    agent_id=text,
    device=opt_text,
    status=st.sampled_from(AgentStatus),
    reason=st.integers(0, 255),
    state=st.sampled_from(AgentState),
    call_id=st.none() | ids,
    since=times,
)


def answered(call_id: int, caller: str = "0612345678", at: float = T0) -> CallRecord:
    return CallRecord(
        call_id=call_id,
        leg=1,
        queue="front-desk",
        caller=caller,
        dialled="3000",
        trunk=3,
        arrived_at=at,
        queued_at=at,
        ended_at=at + 215.5,
        outcome=Outcome.ANSWERED,
        answered_at=at + 12.25,
        released_at=at + 195.5,
        wrapup_end=at + 215.5,
        agent_id="1001",
        device="201",
        rings=(
            RingAttempt("1002", "202", at + 1, at + 7, RingOutcome.NO_ANSWER),
            RingAttempt("1001", "201", at + 7, at + 12.25, RingOutcome.ANSWERED),
        ),
    )


@given(
    st.lists(records, max_size=8, unique_by=lambda r: (r.call_id, r.arrived_at, r.leg)),
    st.lists(changes, max_size=8),
)
@example([answered(1, caller="+33 6 12\x0034 56 78\ue000")], [])
def test_round_trip_is_exact(legs, notes):
    with tempfile.TemporaryDirectory() as tmp:
        round_trip(str(Path(tmp) / "cdr.db"), legs, notes)


@given(
    st.lists(records, max_size=8, unique_by=lambda r: (r.call_id, r.arrived_at, r.leg)),
    st.lists(changes, max_size=8),
)
@example([answered(1, caller="+33 6 12\x0034 56 78\ue000")], [])
@settings(max_examples=25)  # each example a server round trip: SQLite's explores more
def test_round_trip_is_exact_in_postgresql(fresh_pg, legs, notes):
    round_trip(fresh_pg(), legs, notes)


def round_trip(url: str, legs: list[CallRecord], notes: list[AgentChanged]) -> None:
    """Store ``legs`` and ``notes`` at ``url``; read back, they are the same."""
    with open_store(url, mask_callers=False) as store:
        for r in legs:
            store.record_call(r)
        for n in notes:
            store.record_agent_change(n)
    with open_url_readonly(url) as store:
        assert list(store.calls()) == sorted(legs, key=lambda r: r.queued_at)
        assert list(store.agent_changes()) == sorted(notes, key=lambda n: n.at)


def test_filters_by_window_and_queue(store_url):
    legs = [answered(i, at=T0 + 600 * i) for i in range(6)]
    legs[2].queue = "civil-status"
    with open_store(store_url) as store:
        for r in legs:
            store.record_call(r)
        assert [r.call_id for r in store.calls(since=T0 + 600, until=T0 + 2400)] == [1, 2, 3]
        assert [r.call_id for r in store.calls(queue="civil-status")] == [2]
        assert [r.call_id for r in store.calls(since=T0 + 1200, queue="front-desk")] == [3, 4, 5]
        assert store.time_span() == (T0, T0 + 3000 + 215.5)


def test_agent_states_before_a_time(store_url):
    def note(at: float, agent: str, status: AgentStatus) -> AgentChanged:
        return AgentChanged(at, agent, "201", status, 0, AgentState.IDLE, None, at)

    notes = [
        note(T0, "1001", AgentStatus.READY),
        note(T0 + 10, "1002", AgentStatus.READY),
        note(T0 + 20, "1001", AgentStatus.NOT_READY),
        note(T0 + 20, "1001", AgentStatus.LOGGED_OUT),
        note(T0 + 30, "1002", AgentStatus.NOT_READY),
    ]
    with open_store(store_url) as store:
        for n in notes:
            store.record_agent_change(n)
        assert store.agent_states_before(T0) == []
        assert store.agent_states_before(T0 + 20) == [notes[0], notes[1]]
        assert store.agent_states_before(T0 + 25) == [notes[3], notes[1]]
        assert list(store.agent_changes(since=T0 + 20, agent_id="1001")) == notes[2:4]


def test_callers_are_masked_by_default(tmp_path):
    db = tmp_path / "cdr.db"
    with CallStore(db) as store:
        store.record_call(answered(1, caller="0612345678"))
        store.record_call(answered(2, caller=""))  # withheld
        assert [r.caller for r in store.calls()] == ["********78", ""]
        assert store.queue_log()[0][6] == "********78"
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"0612345678" not in stored and b"12345678" not in stored
    with CallStore(db, mask_callers=False) as store:
        store.record_call(answered(3, caller="0612345678"))
        assert [r.caller for r in store.calls()][-1] == "0612345678"


def test_queue_log_follows_asterisk_events(store_url):
    escalated = answered(7)
    escalated.escalated_to = "civil-status"
    abandoned = CallRecord(8, 1, "front-desk", "0600000001", "3000", 1, T0, T0, T0 + 42.4,
                           Outcome.ABANDONED)  # fmt: skip
    with open_store(store_url) as store:
        store.record_call(escalated)
        store.record_call(abandoned)
        for status, reason in [("ready", 0), ("not_ready", 2), ("ready", 0), ("logged_out", 0)]:
            at = T0 + 300
            note = AgentChanged(at, "1003", "203", AgentStatus(status), reason, AgentState.IDLE,
                                None, at)  # fmt: skip
            store.record_agent_change(note)
        store.log_event(T0 + 400, "LINKDOWN", data=("cable",))
        log = [(row[1], row[3], row[4], row[5:8]) for row in store.queue_log()]
    assert log == [
        ("7", "NONE", "ENTERQUEUE", ("", "********78", "3000")),
        ("8", "NONE", "ENTERQUEUE", ("", "********01", "3000")),
        ("7", "1002", "RINGNOANSWER", ("6000", "", "")),
        ("7", "1001", "CONNECT", ("12", "", "5")),
        ("8", "NONE", "ABANDON", ("42", "", "")),
        ("7", "1001", "TRANSFER", ("queue:civil-status", "12", "183")),
        ("NONE", "1003", "ADDMEMBER", ("203", "", "")),
        ("NONE", "1003", "PAUSE", ("2", "", "")),
        ("NONE", "1003", "UNPAUSE", ("", "", "")),
        ("NONE", "1003", "REMOVEMEMBER", ("203", "", "")),
        ("NONE", "NONE", "LINKDOWN", ("cable", "", "")),
    ]


def test_one_engine_step_is_one_transaction(store_url):
    note = AgentChanged(T0, "1001", "201", AgentStatus.READY, 0, AgentState.IDLE, None, T0)
    outputs = [ClearCall(5, 6), CallEnded(T0, answered(5)), note]
    with open_store(store_url) as store:
        assert store.record_outputs(outputs) == 2
        paused = AgentChanged(T0 + 1, "1001", "201", AgentStatus.NOT_READY, 1, AgentState.IDLE,
                              None, T0 + 1)  # fmt: skip
        with pytest.raises(RuntimeError), store.transaction():
            store.record_call(answered(6))
            with store.transaction():  # nested: joins the outer one
                store.record_agent_change(paused)
            raise RuntimeError("the step failed")
        assert [r.call_id for r in store.calls()] == [5]
        assert list(store.agent_changes()) == [note]
        store.record_agent_change(paused)  # the status change is logged once, now
        members = [row[4] for row in store.queue_log() if "MEMBER" in row[4] or "PAUSE" in row[4]]
        assert members == ["ADDMEMBER", "PAUSE"]


def test_sessions_survive_a_restart(store_url):
    sessions = [
        AgentSession("1001", "201", AgentStatus.READY, 0, T0),
        AgentSession("1002", "202", AgentStatus.NOT_READY, 1, T0 + 5.5),
    ]
    with open_store(store_url) as store:
        store.save_sessions(sessions)
        store.save_sessions(sessions[1:])  # replaces, never appends
        store.save_sessions(sessions)
    with open_store(store_url) as store:
        assert store.load_sessions() == sessions


WRITER = textwrap.dedent(
    """
    import sys
    from acd.core.records import CallRecord, Outcome
    from acd.runtime.store import open_store

    store = open_store(sys.argv[1])
    for i in range(1, 1_000_000):
        store.record_call(CallRecord(i, 1, "front-desk", "0612345678", "3000", 1,
                                     float(i), float(i), i + 1.0, Outcome.ABANDONED))
        print(i, flush=True)
    """
)


def test_records_survive_sigkill(store_url):
    db = store_url
    child = subprocess.Popen(
        [sys.executable, "-c", WRITER, db],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    reported = 0
    try:
        buffer = b""
        while reported < 200:
            ready, _, _ = select.select([child.stdout], [], [], 10.0)
            assert ready, "the writer stopped reporting"
            chunk = os.read(child.stdout.fileno(), 4096)
            assert chunk, child.stderr.read().decode()
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            reported = max([reported, *map(int, lines)])
        child.send_signal(signal.SIGKILL)  # right after record_call returned, mid-write
    finally:
        child.kill()
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    with open_store(db) as store:  # reopening recovers the WAL
        stored = [r.call_id for r in store.calls()]
    assert stored[:reported] == list(range(1, reported + 1))


def test_migrates_an_older_database(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, upto=1) == 1
    conn.execute(
        "INSERT INTO calls (call_id, leg, queue, caller, dialled, trunk, arrived_at,"
        " queued_at, ended_at, outcome, abandoned_ringing, reason)"
        " VALUES (9, 1, 'front-desk', '******78', '3000', 2, ?, ?, ?, 'closed', 0, '')",
        (T0, T0, T0 + 3),
    )
    conn.close()
    with pytest.raises(AcdError, match=f"version 1, this acd reads {SCHEMA_VERSION}: open it"):
        open_readonly(db)
    with CallStore(db) as store:
        assert [(r.call_id, r.outcome) for r in store.calls()] == [(9, Outcome.CLOSED)]
        store.save_sessions([AgentSession("1001", "201", AgentStatus.READY, 0, T0)])
        store.log_event(T0, "QUEUESTART")
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(AcdError, match="newer than this acd"):
        CallStore(db)


def test_readonly_open_refuses_what_is_not_a_call_record_database(tmp_path):
    with pytest.raises(AcdError, match="no such call-record database"):
        open_readonly(tmp_path / "missing.db")
    assert not (tmp_path / "missing.db").exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"\x00garbage, not SQLite\xff" * 200)
    with pytest.raises(AcdError, match="not an SQLite file"):
        open_readonly(garbage)
    with pytest.raises(AcdError, match="not a call-record database"):
        CallStore(garbage)
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(AcdError, match="no acd schema"):
        open_readonly(other)
    with pytest.raises(AcdError, match="holds other tables"):
        CallStore(other)


def test_a_report_reads_while_the_controller_writes(store_url):
    db = store_url
    with open_store(db) as writer:
        writer.record_call(answered(1))
        with open_url_readonly(db) as reader:
            assert [r.call_id for r in reader.calls()] == [1]
            writer.record_call(answered(2, at=T0 + 60))
            assert [r.call_id for r in reader.calls()] == [1, 2]
            with pytest.raises(Exception, match=r"read-?only"):
                reader.record_call(answered(3))


def test_a_leg_is_stored_once_and_a_reused_call_id_is_another_call(store_url, caplog):
    with open_store(store_url) as store:
        store.record_call(answered(7))
        with pytest.raises(DuplicateLeg, match="call 7 leg 1 is already stored"):
            store.record_call(answered(7))
        again = answered(7)
        again.reason = "a second record of the same leg"
        note = AgentChanged(T0, "1001", "201", AgentStatus.READY, 0, AgentState.IDLE, None, T0)
        # the duplicate is refused alone: the rest of the step is stored
        assert store.record_outputs([CallEnded(T0, again), note]) == 1
        assert "record refused: call 7 leg 1 is already stored" in caplog.text
        assert list(store.agent_changes()) == [note]
        store.record_call(answered(7, at=T0 + 86400))  # the switch reused the id next day
        assert [(r.call_id, r.leg, r.arrived_at) for r in store.calls()] == [
            (7, 1, T0),
            (7, 1, T0 + 86400),
        ]
        assert [r.reason for r in store.calls()] == ["", ""]


def test_a_leg_stored_at_its_release_is_completed_when_the_wrapup_ends(store_url):
    final = answered(8)
    released = CallRecord.from_dict(dict(final.to_dict(), wrapup_end=None))
    with open_store(store_url, mask_callers=False) as store:
        assert store.record_outputs([LegReleased(final.released_at, released)]) == 1
        assert list(store.calls()) == [released]  # durable from the release on
        complete = [row for row in store.queue_log() if row[4] == "COMPLETE"]
        assert [row[5:8] for row in complete] == [("12", "183", "")]  # wrap-up not over
        store.record_call(final)
        assert list(store.calls()) == [final]
        complete = [row for row in store.queue_log() if row[4] == "COMPLETE"]
        assert [row[5:8] for row in complete] == [("12", "183", "20")]
        assert len(store.queue_log()) == 4  # ENTERQUEUE RINGNOANSWER CONNECT COMPLETE
        with pytest.raises(DuplicateLeg):
            store.record_call(final)  # completed once
        with pytest.raises(DuplicateLeg):
            store.record_call(released)


def test_one_step_s_legs_are_stored_together_in_order_duplicates_refused(store_url, caplog):
    """``record_outputs`` stores a step's legs with few statements: a leg released and
    completed in the same step, a duplicate among them and an agent change between them
    come out as if stored one by one."""
    final = answered(8)
    released = CallRecord.from_dict(dict(final.to_dict(), wrapup_end=None))
    other = answered(9, at=T0 + 60)
    change = AgentChanged(T0, "1001", "201", AgentStatus.READY, 0, AgentState.IDLE, None, T0)
    with open_store(store_url, mask_callers=False) as store:
        step = [
            LegReleased(final.released_at, released),
            CallEnded(T0 + 1, other),
            CallEnded(final.wrapup_end, final),
            change,
            CallEnded(T0 + 2, other),  # twice: refused, the others stored
        ]
        assert store.record_outputs(step) == 4
        assert list(store.calls()) == [final, other]
        complete = [row for row in store.queue_log() if row[4] == "COMPLETE"]
        assert [row[1] for row in complete] == ["8", "9"]
        assert complete[0][5:8] == ("12", "183", "20")  # completed after its own rows
        assert len(store.queue_log()) == 9  # 4 + 4 per leg, ADDMEMBER
    assert "record refused: call 9 leg 1 is already stored" in caplog.text


def test_live_legs_are_saved_changed_ones_only_and_loaded(store_url):
    waiting = LiveLeg(11, 2, "urbanisme", 3, T0, T0 + 60, escalated_from="front-desk")
    menu = LiveLeg(12, 1, None, 4, T0 + 5, T0 + 5)
    with open_store(store_url) as store:
        store.save_legs({11: waiting, 12: menu})
        connected = LiveLeg(11, 2, "urbanisme", 3, T0, T0 + 60, T0 + 90, "1004", "204",
                            None, "front-desk", 1, fallback=True)  # fmt: skip
        store.save_legs({11: connected, 13: None})
    with open_store(store_url) as store:
        assert store.load_legs() == [connected, menu]
        store.save_legs({12: None})
        assert store.load_legs() == [connected]


def test_an_outbox_batch_is_applied_once_per_writer_and_in_order(store_url):
    with open_store(store_url) as store:
        with store.transaction():
            assert store.apply_once("a", 1, T0)
        with store.transaction():
            assert store.apply_once("a", 3, T0 + 1)  # numbers may skip (memory-only batches)
        with store.transaction():
            assert not store.apply_once("a", 3, T0 + 2)  # written again: skipped
            assert not store.apply_once("a", 2, T0 + 2)  # an earlier one too
            assert store.apply_once("b", 1, T0 + 2)  # another writer counts alone
        with pytest.raises(RuntimeError), store.transaction():
            assert store.apply_once("a", 4, T0 + 3)
            raise RuntimeError("the batch failed")
        with store.transaction():
            assert store.apply_once("a", 4, T0 + 3)  # rolled back with its batch
        store.purge_before(T0 + 2.5, {}, {})  # writers quiet since before the cutoff go
        with store.transaction():
            assert store.apply_once("b", 1, T0 + 4) and not store.apply_once("a", 4, T0 + 4)


def _legacy_row(conn, call_id, leg, arrived, ended, *, queue="front-desk", to=None,
                reason=""):  # fmt: skip
    conn.execute(
        "INSERT INTO calls (call_id, leg, queue, caller, dialled, trunk, arrived_at,"
        " queued_at, ended_at, outcome, answered_at, released_at, escalated_to,"
        " abandoned_ringing, reason)"
        " VALUES (?, ?, ?, '******78', '3000', 2, ?, ?, ?, 'answered', ?, ?, ?, 0, ?)",
        (call_id, leg, queue, arrived, arrived, ended, arrived + 5, ended, to, reason),
    )


def test_upgrade_4_renumbers_legs_taken_over_after_a_restart_and_legs_stored_twice(tmp_path):
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    assert migrate(conn, upto=3) == 3
    # call 1: escalated to urbanisme, the controller restarted, the specialist leg was
    # taken over and recorded as leg 1 again (the fault of issue 11 item 7)
    _legacy_row(conn, 1, 1, T0, T0 + 100, to="urbanisme")
    _legacy_row(conn, 1, 1, T0 + 400, T0 + 700, queue="urbanisme",
                reason="adopted after restart")  # fmt: skip
    # call 2: the same leg stored twice (same arrival); call 3: an id the switch reused
    # after a reboot (another call: another arrival), taken over after a restart too
    _legacy_row(conn, 2, 1, T0 + 50, T0 + 90)
    _legacy_row(conn, 2, 1, T0 + 50, T0 + 90)
    _legacy_row(conn, 3, 1, T0, T0 + 30)
    _legacy_row(conn, 3, 1, T0 + 9000, T0 + 9100, reason="adopted after restart")
    conn.close()
    with CallStore(db) as store:
        legs = sorted((r.call_id, r.leg, r.arrived_at - T0, r.escalated_from, r.reason)
                      for r in store.calls())  # fmt: skip
        with pytest.raises(DuplicateLeg):
            store.record_call(next(r for r in store.calls() if r.call_id == 2))
    taken_over = "adopted after restart; recorded as leg 1, renumbered by upgrade 4"
    assert legs == [
        (1, 1, 0.0, None, ""),
        (1, 2, 0.0, "front-desk", taken_over),
        (2, 1, 50.0, None, ""),
        (2, 2, 50.0, None, "leg 1 stored twice, renumbered by upgrade 4"),
        (3, 1, 0.0, None, ""),
        (3, 1, 9000.0, None, "adopted after restart"),
    ]


def _modes(path: Path) -> dict[str, int]:
    return {
        p.name: p.stat().st_mode & 0o777
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm"))
        if p.exists()
    }


def test_database_wal_and_shm_are_created_for_the_owner_only(tmp_path):
    old = os.umask(0o022)
    try:
        path = tmp_path / "acd.db"
        with CallStore(path) as store:
            store.log_event(1.0, "ENTERQUEUE", call_id=7, queue="q")
            modes = _modes(path)
    finally:
        os.umask(old)
    assert modes == {"acd.db": 0o600, "acd.db-wal": 0o600, "acd.db-shm": 0o600}


def test_a_group_reads_the_database_and_a_loose_one_is_tightened(tmp_path):
    import grp

    group = grp.getgrgid(os.getgid()).gr_name
    path = tmp_path / "acd.db"
    CallStore(path).close()
    for p in (path, Path(f"{path}-wal")):
        p.touch()
        p.chmod(0o666)
    with CallStore(path, group=group) as store:
        store.log_event(1.0, "ENTERQUEUE", call_id=7, queue="q")
        assert set(_modes(path).values()) == {0o640}
        assert path.stat().st_gid == os.getgid()
    with pytest.raises(AcdError, match=r"store\.group: no group .no-such-group-x."):
        CallStore(tmp_path / "other.db", group="no-such-group-x")

"""The controller's outbox on real SQLite stores: batches spooled while the store
refuses writes, the spool replayed by the next run once (a cut last line left out, a
replay after a crash skipped batch by batch), callers masked in the file."""

from __future__ import annotations

import json

import pytest

from acd.core.agents import AgentSession, AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded, LegReleased
from acd.core.records import LiveLeg
from acd.errors import AcdError
from acd.runtime.outbox import Outbox, from_json, read_spool, to_json
from acd.runtime.store_sqlite import SqliteStore

from .test_store import T0, answered


def broken(path) -> SqliteStore:
    store = SqliteStore(path)
    store._conn.execute("PRAGMA query_only = ON")  # every write fails
    return store


def notes(call_id: int) -> list:
    released = answered(call_id)
    released.wrapup_end = None
    change = AgentChanged(T0, "1001", "201", AgentStatus.READY, 0, AgentState.IDLE, None, T0)
    return [LegReleased(T0, released), CallEnded(T0 + 1, answered(call_id)), change]


def test_a_batch_reads_back_from_its_spool_line_callers_masked(tmp_path):
    box = Outbox(broken(tmp_path / "a.db"), None)
    legs = {5: LiveLeg(5, 1, "front-desk", 2, T0, T0, fallback=True), 6: None}
    sessions = [AgentSession("1001", "201", AgentStatus.NOT_READY, 3, T0)]
    batch = box.batch(T0, notes(7), sessions, legs)
    back = from_json(json.loads(json.dumps(to_json(batch))))
    assert back.notes[1].record.caller == "********78"
    back.notes[0].record.caller = back.notes[1].record.caller = "0612345678"
    assert back == batch


def test_spooled_batches_are_written_by_the_next_run_once(tmp_path):
    spool = tmp_path / "outbox.jsonl"
    box = Outbox(broken(tmp_path / "a.db"), spool)
    first = box.put(box.batch(T0, notes(1)))
    assert (first.acked, first.waiting, first.spooled) == (1, 1, 1) and first.down
    second = box.put(box.batch(T0 + 1, notes(2)))  # backoff: spooled without a try
    assert (second.acked, second.waiting) == (2, 2)
    box.store.close()
    with spool.open("a") as f:
        f.write('{"writer": "cut by a cra')  # a crash while a line was written
    text = spool.read_text()
    with SqliteStore(tmp_path / "b.db") as store:
        assert Outbox(store, spool).replay() == 2
        assert not spool.exists()
        spool.write_text(text)  # as if the run had died before deleting it
        assert Outbox(store, spool).replay() == 2
        assert [r.call_id for r in store.calls()] == [1, 2]
        assert len(list(store.agent_changes())) == 2
        assert store.calls().__next__().wrapup_end is not None  # completed by its end


def test_a_store_that_comes_back_takes_what_waits_in_order(tmp_path):
    now = [0.0]
    store = broken(tmp_path / "a.db")
    spool = tmp_path / "outbox.jsonl"
    box = Outbox(store, spool, clock=lambda: now[0])
    for i in range(3):
        box.put(box.batch(T0 + i, notes(i + 1)))
    store._conn.execute("PRAGMA query_only = OFF")
    assert box.retry().waiting == 3  # not yet: 0.5 s backoff
    now[0] = 0.6
    done = box.retry()
    assert (done.acked, done.waiting, done.down) == (3, 0, None) and not spool.exists()
    assert [r.call_id for r in store.calls()] == [1, 2, 3]


def test_damage_inside_the_spool_stops_the_start(tmp_path):
    spool = tmp_path / "outbox.jsonl"
    spool.write_text('{"bad": 1}\n{"bad": 2}\n')
    with pytest.raises(AcdError, match="damaged at line 1"):
        read_spool(spool)
    with SqliteStore(tmp_path / "a.db") as store, pytest.raises(AcdError, match="damaged"):
        Outbox(store, spool).replay()


def test_a_spool_the_store_does_not_take_stops_the_start_and_is_kept(tmp_path):
    spool = tmp_path / "outbox.jsonl"
    box = Outbox(broken(tmp_path / "a.db"), spool)
    box.put(box.batch(T0, notes(1)))
    text = spool.read_text()
    with pytest.raises(AcdError, match=r"holds 1 batches of call records that the store"):
        Outbox(box.store, spool).replay()
    assert spool.read_text() == text


def test_a_pair_replays_the_records_of_its_spool_not_its_sessions(tmp_path):
    spool = tmp_path / "outbox.jsonl"
    box = Outbox(broken(tmp_path / "a.db"), spool)
    stale = [AgentSession("1001", "201", AgentStatus.NOT_READY, 3, T0)]
    box.put(box.batch(T0, notes(1), stale, {5: LiveLeg(5, 1, "front-desk", 2, T0, T0)}))
    box.store.close()
    with SqliteStore(tmp_path / "b.db") as store:
        newer = [AgentSession("1001", "202", AgentStatus.READY, 0, T0 + 60)]
        store.save_sessions(newer)  # the other controller's, after the spool was written
        assert Outbox(store, spool).replay(state=False) == 1
        assert [r.call_id for r in store.calls()] == [1]
        assert store.load_sessions() == newer and store.load_legs() == []


def test_retries_back_off_to_the_cap_and_start_again_after_a_commit(tmp_path):
    now = [0.0]
    store = broken(tmp_path / "a.db")
    box = Outbox(store, None, retry_initial=0.5, retry_max=3.0, clock=lambda: now[0])
    waits = [box.put(box.batch(T0, notes(1))).retry_in]
    for _ in range(4):
        now[0] += waits[-1]
        waits.append(box.retry().retry_in)
    assert waits == [0.5, 1.0, 2.0, 3.0, 3.0]
    store._conn.execute("PRAGMA query_only = OFF")
    now[0] += 3.0
    assert box.retry().waiting == 0
    store._conn.execute("PRAGMA query_only = ON")
    assert box.put(box.batch(T0 + 1, notes(2))).retry_in == 0.5

"""Call-record store and reports: the cost of durability and of reading a month back.

Records are realistic legs (two ring attempts, every timestamp) written to a real SQLite
file in a temporary directory (WAL, ``synchronous=FULL``: each commit is fsynced).

- ``store_record_call_us``: µs per ``record_call`` committed on its own (durable on
  return), the controller's worst case.
- ``store_step_of_10_us``: µs per record when 10 are grouped in one transaction (one
  engine step's notifications, ``record_outputs``).
- ``store_commit_vs_grouped``: ratio of the two: what a commit (fsync) per record costs.
- ``store_read_records_per_s``: records read back as ``CallRecord`` (a month: 22 days of
  700 legs).
- ``report_month_ms``: ``store_report`` of that month (all groupings, agents ready).
- ``store_sqlite_records_per_s`` and ``store_pg_records_per_s``: records acknowledged
  per second by each store through the controller's writer (`acd.runtime.outbox`: one
  batch and one commit of every engine step waiting, its group commit) under overload:
  engine steps of 10 legs come from another thread as fast as it makes them, at most 50
  waiting; a record counts once its commit has returned (best of 3 × 600 steps).
  ``store_*_steps_per_commit``: the mean steps a commit carried then.
- ``store_sqlite_step_records_per_s`` and ``store_pg_step_records_per_s``: the same with
  one commit per engine step (``record_outputs`` of 10 legs), the rule when steps come
  one at a time: bound by the latency of a durable commit (an fsync).
- PostgreSQL: a database made for each figure on 127.0.0.1:5432 (``make bench`` starts
  the server; None when there is none), dropped after.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path

from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded
from acd.core.records import CallRecord, Outcome, RingAttempt, RingOutcome
from acd.planning.reporting import ReportSettings, store_report
from acd.runtime.outbox import Outbox
from acd.runtime.store import RecordStore, open_store
from acd.runtime.store_sqlite import SqliteStore as CallStore
from acd.runtime.store_sqlite import open_readonly

T0 = 1_772_953_200.0  # 2026-03-08 08:00 Europe/Paris
DAYS, PER_DAY = 22, 700
PG_SERVER = "postgresql://postgres@127.0.0.1:5432"
STEP, STEPS = 10, 300  # records per engine step, steps timed


def leg(i: int, at: float) -> CallRecord:
    return CallRecord(
        call_id=i,
        leg=1,
        queue="front-desk",
        caller="0612345678",
        dialled="3000",
        trunk=i % 30,
        arrived_at=at,
        queued_at=at,
        ended_at=at + 230.0,
        outcome=Outcome.ANSWERED,
        answered_at=at + 14.0,
        released_at=at + 200.0,
        wrapup_end=at + 230.0,
        agent_id="1001",
        device="201",
        rings=(
            RingAttempt("1002", "202", at + 1, at + 8, RingOutcome.NO_ANSWER),
            RingAttempt("1001", "201", at + 8, at + 14, RingOutcome.ANSWERED),
        ),
    )


_ids = itertools.count()  # every leg written is a new call (a leg is stored once)


def timed(store: CallStore, count: int, group: int) -> float:
    started = time.perf_counter()
    for _ in range(0, count, group):
        with store.transaction():
            for _ in range(group):
                i = next(_ids)
                store.record_call(leg(i, T0 + i))
    return (time.perf_counter() - started) / count


def acknowledged_per_s(store: RecordStore) -> float:
    """Records per second stored by ``record_outputs`` of ``STEP`` legs each (best of 3)."""
    n = 0

    def steps(count: int) -> float:
        nonlocal n
        started = time.perf_counter()
        for _ in range(count):
            store.record_outputs([CallEnded(T0 + i, leg(i, T0 + i)) for i in range(n, n + STEP)])
            n += STEP
        return time.perf_counter() - started

    steps(20)  # warm-up
    return STEP * STEPS / min(steps(STEPS) for _ in range(3))


WAITING = 50  # engine steps at most waiting for the writer in `group_committed_per_s`


def group_committed_per_s(store: RecordStore, steps: int = 600) -> tuple[float, float]:
    """Records per second acknowledged through an `Outbox` on ``store`` (best of 3), the
    writer taking every step waiting into one batch, one commit; and the mean steps per
    commit. Steps of ``STEP`` new legs come from a producer thread as fast as it makes
    them (at most ``WAITING`` waiting)."""
    outbox = Outbox(store, None)

    def one_run() -> tuple[float, float]:
        waiting: deque[list[CallEnded]] = deque()
        ready = threading.Condition()

        def produce() -> None:
            for _ in range(steps):
                notes = []
                for _ in range(STEP):
                    i = next(_ids)
                    notes.append(CallEnded(T0 + i, leg(i, T0 + i)))
                with ready:
                    while len(waiting) >= WAITING:
                        ready.wait()
                    waiting.append(notes)
                    ready.notify_all()

        producer = threading.Thread(target=produce)
        started = time.perf_counter()
        producer.start()
        done = commits = 0
        while done < steps:
            with ready:
                while not waiting:
                    ready.wait()
                taken = list(waiting)
                waiting.clear()
                ready.notify_all()
            state = outbox.put(outbox.batch(T0, [n for notes in taken for n in notes]))
            assert state.waiting == 0, state
            done += len(taken)
            commits += 1
        elapsed = time.perf_counter() - started
        producer.join()
        return STEP * steps / elapsed, steps / commits

    one_run()  # warm-up
    return max(one_run() for _ in range(3))


@contextlib.contextmanager
def pg_database() -> Iterator[str | None]:
    """The URL of a PostgreSQL database made for the run (None without a server)."""
    with contextlib.ExitStack() as stack:
        try:
            from acd.runtime.store_pg import scratch_database

            url = stack.enter_context(scratch_database(PG_SERVER, "acd_bench"))
        except Exception as exc:  # no psycopg, no server: the figure is left out
            print(f"store_pg_records_per_s: no PostgreSQL here ({exc})", file=sys.stderr)
            url = None
        yield url


def run() -> dict:
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        with CallStore(Path(tmp) / "bench.db") as store:
            timed(store, 200, 1)  # warm-up
            single = min(timed(store, 500, 1) for _ in range(3))
            grouped = min(timed(store, 2000, 10) for _ in range(3))
        db = Path(tmp) / "month.db"
        with CallStore(db) as store, store.transaction():
            for day in range(DAYS):
                start = T0 + day * 86400
                for agent in range(6):
                    note = AgentChanged(start, f"100{agent}", f"20{agent}", AgentStatus.READY,
                                        0, AgentState.IDLE, None, start)  # fmt: skip
                    store.record_agent_change(note)
                for i in range(PER_DAY):
                    store.record_call(leg(day * PER_DAY + i, start + i * 56.0))
        settings = ReportSettings(timezone="Europe/Paris")
        with open_readonly(db) as store:
            started = time.perf_counter()
            count = sum(1 for _ in store.calls())
            read = time.perf_counter() - started
            started = time.perf_counter()
            report = store_report(store, settings)
            report_s = time.perf_counter() - started
        assert count == DAYS * PER_DAY and report.total.figures.calls == count
        with open_store(Path(tmp) / "ack.db") as store:
            sqlite_step = acknowledged_per_s(store)
        with open_store(Path(tmp) / "group.db") as store:
            sqlite_group, sqlite_steps = group_committed_per_s(store)
    pg_step = pg_group = pg_steps = None
    with pg_database() as url:
        if url is not None:
            with open_store(url) as store:
                pg_step = round(acknowledged_per_s(store))
    with pg_database() as url:
        if url is not None:
            with open_store(url) as store:
                pg_group, pg_steps = group_committed_per_s(store)
                pg_group, pg_steps = round(pg_group), round(pg_steps, 1)
    return {
        "store_sqlite_records_per_s": round(sqlite_group),
        "store_sqlite_steps_per_commit": round(sqlite_steps, 1),
        "store_sqlite_step_records_per_s": round(sqlite_step),
        "store_pg_records_per_s": pg_group,
        "store_pg_steps_per_commit": pg_steps,
        "store_pg_step_records_per_s": pg_step,
        "store_record_call_us": round(single * 1e6, 1),
        "store_step_of_10_us": round(grouped * 1e6, 1),
        "store_commit_vs_grouped": round(single / grouped, 2),
        "store_read_records_per_s": round(count / read),
        "report_month_ms": round(report_s * 1e3, 1),
    }


if __name__ == "__main__":
    print(run())

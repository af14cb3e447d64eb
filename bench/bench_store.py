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
  per second by each store under the controller's rule: one engine step's records (10
  legs) per ``record_outputs``, one commit each; a record counts once its commit has
  returned. PostgreSQL: a database made for the run on 127.0.0.1:5432 (``make bench``
  starts the server; None when there is none), dropped after.
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded
from acd.core.records import CallRecord, Outcome, RingAttempt, RingOutcome
from acd.planning.reporting import ReportSettings, store_report
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
            sqlite_per_s = acknowledged_per_s(store)
    with pg_database() as url:
        pg_per_s = None
        if url is not None:
            with open_store(url) as store:
                pg_per_s = round(acknowledged_per_s(store))
    return {
        "store_sqlite_records_per_s": round(sqlite_per_s),
        "store_pg_records_per_s": pg_per_s,
        "store_record_call_us": round(single * 1e6, 1),
        "store_step_of_10_us": round(grouped * 1e6, 1),
        "store_commit_vs_grouped": round(single / grouped, 2),
        "store_read_records_per_s": round(count / read),
        "report_month_ms": round(report_s * 1e3, 1),
    }


if __name__ == "__main__":
    print(run())

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
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from acd.agents import AgentState, AgentStatus
from acd.commands import AgentChanged
from acd.records import CallRecord, Outcome, RingAttempt, RingOutcome
from acd.reporting import ReportSettings, store_report
from acd.store_sqlite import SqliteStore as CallStore
from acd.store_sqlite import open_readonly

T0 = 1_772_953_200.0  # 2026-03-08 08:00 Europe/Paris
DAYS, PER_DAY = 22, 700


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


def timed(store: CallStore, count: int, group: int) -> float:
    started = time.perf_counter()
    for i in range(0, count, group):
        with store.transaction():
            for j in range(group):
                store.record_call(leg(i + j, T0 + i + j))
    return (time.perf_counter() - started) / count


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
    return {
        "store_record_call_us": round(single * 1e6, 1),
        "store_step_of_10_us": round(grouped * 1e6, 1),
        "store_commit_vs_grouped": round(single / grouped, 2),
        "store_read_records_per_s": round(count / read),
        "report_month_ms": round(report_s * 1e3, 1),
    }


if __name__ == "__main__":
    print(run())

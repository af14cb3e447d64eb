"""The call-record store in SQL, shared by the SQLite and PostgreSQL stores: the schema
(one list of migrations for both), the operations of `acd.runtime.store.RecordStore` in portable
SQL (``?`` parameters; upserts with ``ON CONFLICT``), and the queue-log rows of a leg.

A backend subclasses `SqlStore` with its connection, its transactions and how it keeps
the schema version; `dialect` turns the migrations' SQLite text into its own types.

Tables (upgraded by ``MIGRATIONS`` in order):

- ``calls``: one row per ``CallRecord`` leg, every field (``fallback`` 1: routed by
  the switch's fallback); ``ring_attempts``: its rings.
  A call is its switch ``call_id`` and its ``arrived_at`` (a switch may reuse ids, e.g.
  after a reboot): ``(call_id, arrived_at, leg)`` is unique, a second record of a leg is
  refused (``DuplicateLeg``). An answered leg is stored when the agent releases it
  (``wrapup_end`` NULL: wrap-up running, or cut by a crash) and completed when the
  wrap-up ends.
- ``live_legs``: the legs in progress (``save_legs`` / ``load_legs``), so that a
  restarted controller continues a call with its leg number, times and fallback mark.
- ``outbox_applied``: per controller outbox (``writer``), the number of the last batch
  of writes committed (``apply_once``): a batch written twice (a commit whose answer was
  lost, a spool replayed after a crash) is applied once.
- ``agent_changes``: every ``AgentChanged`` notification.
- ``queue_log``: an Asterisk ``queue_log`` style event table (time, call id, queue,
  agent, event, data1..data5), derived from the records and agent changes, plus any
  event the controller logs with ``log_event``.
- ``agent_sessions``: who is logged in where with which status, so that sessions survive
  a controller restart (``save_sessions`` / ``load_sessions``).
- ``hourly_figures`` and ``hourly_staffing``: the figures of purged detail, per queue and
  UTC hour (`acd.core.figures.Tally` sums) and staffed / ready agent-seconds per hour, so that
  reports of purged months stay right (``purge_before``, ``acd.runtime.retention``).

Caller numbers are stored masked (``acd.runtime.topics.mask_number``) unless ``mask_callers`` is
false.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import astuple, fields

from acd.core.agents import AgentSession, AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded, LegReleased
from acd.core.figures import Tally
from acd.core.records import CallRecord, LiveLeg, Outcome, RingAttempt, RingOutcome
from acd.runtime.store import DuplicateLeg
from acd.runtime.topics import mask_number

MIGRATIONS: tuple[str, ...] = (
    # 1: call records, their rings and agent changes
    """
    CREATE TABLE calls (
        id INTEGER PRIMARY KEY,
        call_id INTEGER NOT NULL,
        leg INTEGER NOT NULL,
        queue TEXT NOT NULL,
        caller TEXT NOT NULL,
        dialled TEXT NOT NULL,
        trunk INTEGER NOT NULL,
        arrived_at REAL NOT NULL,
        queued_at REAL NOT NULL,
        ended_at REAL NOT NULL,
        outcome TEXT NOT NULL,
        answered_at REAL,
        released_at REAL,
        wrapup_end REAL,
        agent_id TEXT,
        device TEXT,
        menu_choice TEXT,
        escalated_from TEXT,
        escalated_to TEXT,
        transferred_to TEXT,
        abandoned_ringing INTEGER NOT NULL,
        reason TEXT NOT NULL
    );
    CREATE INDEX calls_queued_at ON calls (queued_at);
    CREATE TABLE ring_attempts (
        call_row INTEGER NOT NULL REFERENCES calls (id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        agent_id TEXT NOT NULL,
        device TEXT NOT NULL,
        started REAL NOT NULL,
        ended REAL NOT NULL,
        outcome TEXT NOT NULL,
        PRIMARY KEY (call_row, seq)
    );
    CREATE TABLE agent_changes (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        agent_id TEXT NOT NULL,
        device TEXT,
        status TEXT NOT NULL,
        reason INTEGER NOT NULL,
        state TEXT NOT NULL,
        call_id INTEGER,
        since REAL NOT NULL
    );
    CREATE INDEX agent_changes_at ON agent_changes (at);
    """,
    # 2: the queue log and agent sessions
    """
    CREATE TABLE queue_log (
        id INTEGER PRIMARY KEY,
        at REAL NOT NULL,
        call_id TEXT NOT NULL,
        queue TEXT NOT NULL,
        agent TEXT NOT NULL,
        event TEXT NOT NULL,
        data1 TEXT NOT NULL DEFAULT '',
        data2 TEXT NOT NULL DEFAULT '',
        data3 TEXT NOT NULL DEFAULT '',
        data4 TEXT NOT NULL DEFAULT '',
        data5 TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX queue_log_at ON queue_log (at);
    CREATE TABLE agent_sessions (
        agent_id TEXT PRIMARY KEY,
        device TEXT NOT NULL,
        status TEXT NOT NULL,
        reason INTEGER NOT NULL,
        since REAL NOT NULL
    );
    """,
    # 3: each agent's latest change before a time, without scanning the history
    """
    CREATE INDEX agent_changes_agent_at ON agent_changes (agent_id, at);
    """,
    # 4: one row per (call, leg), a call being its switch id and its arrival time; the
    # legs in progress, so that a restarted controller continues them
    """
    CREATE TEMP TABLE _moved AS
    SELECT r.id AS id, r.leg AS old_leg, e.leg + 1 AS leg, e.arrived_at AS arrived_at,
           e.queue AS came_from
    FROM calls r JOIN calls e ON e.id = (
        SELECT max(x.id) FROM calls x
        WHERE x.call_id = r.call_id AND x.id < r.id AND x.leg = r.leg
          AND x.escalated_to IS NOT NULL AND x.ended_at <= r.arrived_at)
    WHERE r.reason = 'adopted after restart'
      AND NOT EXISTS (SELECT 1 FROM calls y WHERE y.call_id = r.call_id
                      AND y.arrived_at = e.arrived_at AND y.leg = e.leg + 1);
    UPDATE calls SET leg = m.leg, arrived_at = m.arrived_at,
        escalated_from = coalesce(calls.escalated_from, m.came_from),
        reason = calls.reason || '; recorded as leg ' || m.old_leg || ', renumbered by upgrade 4'
    FROM _moved m WHERE calls.id = m.id;
    DROP TABLE _moved;
    CREATE TEMP TABLE _twice AS
    WITH d AS (
        SELECT id, call_id, arrived_at, leg FROM (
            SELECT id, call_id, arrived_at, leg, row_number() OVER
                (PARTITION BY call_id, arrived_at, leg ORDER BY id) AS n FROM calls) AS numbered
        WHERE n > 1)
    SELECT d.id AS id, d.leg AS old_leg,
        (SELECT max(x.leg) FROM calls x
         WHERE x.call_id = d.call_id AND x.arrived_at = d.arrived_at)
        + row_number() OVER (PARTITION BY d.call_id, d.arrived_at ORDER BY d.id) AS leg
    FROM d;
    UPDATE calls SET leg = t.leg,
        reason = calls.reason || CASE calls.reason WHEN '' THEN '' ELSE '; ' END
            || 'leg ' || t.old_leg || ' stored twice, renumbered by upgrade 4'
    FROM _twice t WHERE calls.id = t.id;
    DROP TABLE _twice;
    CREATE UNIQUE INDEX calls_call_leg ON calls (call_id, arrived_at, leg);
    CREATE TABLE live_legs (
        call_id INTEGER PRIMARY KEY,
        leg INTEGER NOT NULL,
        queue TEXT,
        trunk INTEGER NOT NULL,
        arrived_at REAL NOT NULL,
        queued_at REAL NOT NULL,
        answered_at REAL,
        agent_id TEXT,
        device TEXT,
        menu_choice TEXT,
        escalated_from TEXT,
        priority INTEGER NOT NULL
    );
    """,
    # 5: figures kept when the detail is purged (acd.runtime.retention): per queue and hour, and
    # staffed / ready agent-seconds per hour for all agents ('') or a queue's agents
    """
    CREATE TABLE hourly_figures (
        queue TEXT NOT NULL,
        hour REAL NOT NULL,
        calls INTEGER NOT NULL,
        answered INTEGER NOT NULL,
        abandoned INTEGER NOT NULL,
        short_abandoned INTEGER NOT NULL,
        overflowed INTEGER NOT NULL,
        closed INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        answered_in_sl INTEGER NOT NULL,
        abandoned_in_sl INTEGER NOT NULL,
        wait_sum REAL NOT NULL,
        handling REAL NOT NULL,
        PRIMARY KEY (queue, hour)
    );
    CREATE TABLE hourly_staffing (
        agents TEXT NOT NULL,
        hour REAL NOT NULL,
        staffed REAL NOT NULL,
        ready REAL NOT NULL,
        PRIMARY KEY (agents, hour)
    );
    """,
    # 6: legs routed by the switch's fallback while the controller was gone (§9.7)
    "ALTER TABLE calls ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0",
    # 7: the controller's outbox batches already written (one row per writer: the last
    # batch number), so that a batch written again after a doubtful commit or from the
    # spool is skipped; a leg in progress keeps its fallback mark over a restart
    """
    CREATE TABLE outbox_applied (
        writer TEXT PRIMARY KEY,
        seq INTEGER NOT NULL,
        at REAL NOT NULL
    );
    ALTER TABLE live_legs ADD COLUMN fallback INTEGER NOT NULL DEFAULT 0;
    """,
)
"""SQL scripts in order (SQLite's text; `dialect` adapts it): script ``i`` takes the
schema from version ``i`` to ``i + 1``."""

SCHEMA_VERSION = len(MIGRATIONS)

log = logging.getLogger("acd.store")

_CALL_COLUMNS = tuple(f.name for f in fields(CallRecord) if f.name != "rings")
INSERT_CALL = (
    f"INSERT INTO calls ({', '.join(_CALL_COLUMNS)}) VALUES ({', '.join('?' * len(_CALL_COLUMNS))})"
    " ON CONFLICT (call_id, arrived_at, leg) DO NOTHING RETURNING id"
)
"""The insert of one leg (``?`` parameters): its row id, no row if the leg is stored."""
_LEG_COLUMNS = tuple(f.name for f in fields(LiveLeg))
_UPSERT_LEG = (
    f"INSERT INTO live_legs ({', '.join(_LEG_COLUMNS)})"
    f" VALUES ({', '.join('?' * len(_LEG_COLUMNS))}) ON CONFLICT (call_id) DO UPDATE SET "
    + ", ".join(f"{c} = excluded.{c}" for c in _LEG_COLUMNS if c != "call_id")
)
_CHANGE_COLUMNS = ("at", "agent_id", "device", "status", "reason", "state", "call_id", "since")
_NONE = "NONE"  # queue_log placeholder, as Asterisk writes it
_TALLY = tuple(f.name for f in fields(Tally))

_POSTGRESQL = (
    (re.compile(r"\bINTEGER PRIMARY KEY\b"), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b"), "BIGINT"),
    (re.compile(r"\bREAL\b"), "DOUBLE PRECISION"),  # PostgreSQL's REAL is 4 bytes
)


def dialect(script: str, name: str) -> str:
    """A migration script in dialect ``name`` ("sqlite": as written; "postgresql":
    64-bit integers, identity keys, double precision times)."""
    if name == "postgresql":
        for pattern, replacement in _POSTGRESQL:
            script = pattern.sub(replacement, script)
    return script


def queue_log_events(record: CallRecord, caller: str) -> list[tuple]:
    """The queue-log rows ``(at, call_id, queue, agent, event, data1, data2, data3)`` of
    one leg (``caller`` as stored), in time order: ENTERQUEUE, RINGNOANSWER per
    unanswered ring, CONNECT (wait, ring time), then COMPLETE (wait, talk, wrap-up)
    or TRANSFER (target, wait, talk) for answered legs, else ABANDON (wait),
    EXITWITHTIMEOUT (overflowed), CLOSED, FULL (rejected) or FAILED, with the reason.
    The wrap-up of a leg stored at its release is empty until the wrap-up ends."""
    cid, queue = str(record.call_id), record.queue
    rows: list[tuple] = [
        (record.queued_at, cid, queue, _NONE, "ENTERQUEUE", "", caller, record.dialled)
    ]
    for ring in record.rings:
        if ring.outcome is RingOutcome.NO_ANSWER:
            ring_ms = str(round((ring.ended - ring.started) * 1000))
            rows.append((ring.ended, cid, queue, ring.agent_id, "RINGNOANSWER", ring_ms, "", ""))
    wait = str(round(record.wait))
    if record.outcome is Outcome.ANSWERED:
        agent = record.agent_id or _NONE
        ring_s = next(
            (r.ended - r.started for r in record.rings if r.outcome is RingOutcome.ANSWERED), 0.0
        )
        at = record.answered_at if record.answered_at is not None else record.ended_at
        rows.append((at, cid, queue, agent, "CONNECT", wait, "", str(round(ring_s))))
        talk = str(round(record.talk))
        end = record.released_at if record.released_at is not None else record.ended_at
        target = record.transferred_to or (
            f"queue:{record.escalated_to}" if record.escalated_to else None
        )
        if target is not None:
            rows.append((end, cid, queue, agent, "TRANSFER", target, wait, talk))
        else:
            rows.append((end, cid, queue, agent, "COMPLETE", wait, talk, _wrapup(record)))
    else:
        event = {
            Outcome.ABANDONED: "ABANDON",
            Outcome.OVERFLOWED: "EXITWITHTIMEOUT",
            Outcome.CLOSED: "CLOSED",
            Outcome.REJECTED: "FULL",
            Outcome.FAILED: "FAILED",
        }[record.outcome]
        rows.append((record.ended_at, cid, queue, _NONE, event, wait, record.reason, ""))
    return rows


class SqlStore:
    """The operations of a call-record store over a DB-API connection (``self._conn``).
    Subclasses set ``_conn`` and implement `_begin`, `_rollback` and, where their driver
    differs, `_execute` / `_executemany`. Use from one thread at a time; ``close()`` (or
    ``with``) when done."""

    mask_callers: bool = True
    _depth: int = 0

    def _init_state(self, mask_callers: bool) -> None:
        self.mask_callers = mask_callers
        self._depth = 0
        self._last_status: dict[str, AgentStatus] = {}

    # -- what a backend provides ----------------------------------------------------

    def _execute(self, sql: str, params: Sequence[object] = ()):
        """Run one statement (``?`` parameters); its cursor."""
        return self._conn.execute(sql, params)

    def _executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement per row of ``rows``."""
        self._conn.executemany(sql, rows)

    def _begin(self) -> None:
        """Start a write transaction."""
        raise NotImplementedError

    def _rollback(self) -> None:
        """Roll back the transaction in progress, if any."""
        raise NotImplementedError

    # -- writing --------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Group the writes inside into one commit (nested uses join the outer one);
        an exception, or a failed commit, rolls them all back."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._begin()
        self._depth = 1
        try:
            yield
            self._execute("COMMIT")
        except BaseException:
            self._rollback()
            self._last_status.clear()  # it may hold statuses never stored
            raise
        finally:
            self._depth = 0

    def record_call(self, record: CallRecord) -> None:
        """Store a leg, its rings and its queue-log events; durable on return. An
        answered leg stored at its release (``wrapup_end`` None) is completed by its
        final record; any other record of a leg already stored is a ``DuplicateLeg``."""
        self._record_calls([record], refuse=True)

    def _record_calls(self, records: Sequence[CallRecord], refuse: bool = False) -> int:
        """Store legs as `record_call` does, in one transaction with few round trips
        (one statement for every leg, then one for all their rings and one for their
        queue-log events); a duplicate is raised if ``refuse``, else logged and
        skipped. How many were stored."""
        if not records:
            return 0
        callers = [
            (mask_number(r.caller) or "") if self.mask_callers else r.caller for r in records
        ]
        stored = 0
        rings: list[tuple] = []
        events: list[tuple] = []
        with self.transaction():
            values = [_call_values(r, c) for r, c in zip(records, callers, strict=True)]
            rows = self._insert_calls(values)
            for record, caller, row in zip(records, callers, rows, strict=True):
                if row is None:  # the leg is stored: this record completes it, or not
                    self._add_rings_and_events(rings, events)  # the leg's, if just added
                    rings, events = [], []
                    try:
                        self._complete(record)
                    except DuplicateLeg as exc:
                        if refuse:
                            raise
                        log.error("record refused: %s", exc)
                        continue
                else:
                    rings += [
                        (row, i, r.agent_id, r.device, r.started, r.ended, str(r.outcome))
                        for i, r in enumerate(record.rings)
                    ]
                    events += queue_log_events(record, caller)
                stored += 1
            self._add_rings_and_events(rings, events)
        return stored

    def _insert_calls(self, rows: Sequence[Sequence[object]]) -> list[int | None]:
        """Insert legs (`INSERT_CALL` per row): each one's row id, None for a leg
        already stored."""
        out = []
        for values in rows:
            inserted = self._execute(INSERT_CALL, values).fetchone()
            out.append(None if inserted is None else inserted[0])
        return out

    def _add_rings_and_events(self, rings: list[tuple], events: list[tuple]) -> None:
        self._executemany("INSERT INTO ring_attempts VALUES (?, ?, ?, ?, ?, ?, ?)", rings)
        self._executemany(
            "INSERT INTO queue_log (at, call_id, queue, agent, event, data1, data2, data3)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            events,
        )

    def _complete(self, record: CallRecord) -> None:
        """Complete the row of ``record``'s leg stored at its release with the end of
        its wrap-up (and its end and reason); else the leg is a ``DuplicateLeg``."""
        final = record.outcome is Outcome.ANSWERED and record.wrapup_end is not None
        done = (
            final
            and self._execute(
                "UPDATE calls SET wrapup_end = ?, ended_at = ?, reason = ?"
                " WHERE call_id = ? AND arrived_at = ?"
                " AND leg = ? AND outcome = 'answered' AND wrapup_end IS NULL AND released_at = ?",
                (
                    record.wrapup_end,
                    record.ended_at,
                    record.reason,
                    record.call_id,
                    record.arrived_at,
                    record.leg,
                    record.released_at,
                ),
            ).rowcount
        )
        if not done:
            raise DuplicateLeg(f"call {record.call_id} leg {record.leg} is already stored")
        if record.transferred_to is None and record.escalated_to is None:
            self._execute(
                "UPDATE queue_log SET data3 = ? WHERE call_id = ? AND queue = ? AND at = ?"
                " AND event = 'COMPLETE' AND data3 = ''",
                (_wrapup(record), str(record.call_id), record.queue, record.released_at),
            )

    def save_legs(self, legs: Mapping[int, LiveLeg | None]) -> None:
        """Save the legs in progress that changed, by call id (None: the call left)."""
        with self.transaction():
            self._executemany(
                "DELETE FROM live_legs WHERE call_id = ?",
                [(call_id,) for call_id, leg in legs.items() if leg is None],
            )
            self._executemany(
                _UPSERT_LEG,
                [
                    (*astuple(leg)[:-1], int(leg.fallback))
                    for leg in legs.values()
                    if leg is not None
                ],
            )

    def load_legs(self) -> list[LiveLeg]:
        """The legs in progress when the controller last stopped or died."""
        rows = self._execute(f"SELECT {', '.join(_LEG_COLUMNS)} FROM live_legs ORDER BY call_id")
        return [LiveLeg(*row[:-1], fallback=bool(row[-1])) for row in rows]

    def apply_once(self, writer: str, seq: int, at: float) -> bool:
        """In a transaction: note batch ``seq`` of the outbox ``writer`` (batches are
        numbered in order) as applied at ``at``; False (write nothing of it) if it, or a
        later one, already was."""
        return (
            self._execute(
                "INSERT INTO outbox_applied (writer, seq, at) VALUES (?, ?, ?)"
                " ON CONFLICT (writer) DO UPDATE SET seq = excluded.seq, at = excluded.at"
                " WHERE outbox_applied.seq < excluded.seq RETURNING seq",
                (writer, seq, at),
            ).fetchone()
            is not None
        )

    def record_agent_change(self, note: AgentChanged) -> None:
        """Store an agent notification; a change of status is also logged in the queue
        log (ADDMEMBER, REMOVEMEMBER, PAUSE with the reason code, UNPAUSE)."""
        with self.transaction():
            before = self._status_before(note.agent_id)
            self._execute(
                f"INSERT INTO agent_changes ({', '.join(_CHANGE_COLUMNS)}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    note.at,
                    note.agent_id,
                    note.device,
                    str(note.status),
                    note.reason,
                    str(note.state),
                    note.call_id,
                    note.since,
                ),
            )
            if note.status is not before:
                self._last_status[note.agent_id] = note.status
                for event, data in _status_events(before, note):
                    self.log_event(note.at, event, agent=note.agent_id, data=data)

    def record_outputs(self, outputs: Iterable[object]) -> int:
        """Store the ``CallEnded``, ``LegReleased`` and ``AgentChanged`` notifications
        among one engine step's outputs in one commit; return how many were stored (a
        duplicate record is refused and logged, the others stored)."""
        stored = 0
        legs: list[CallRecord] = []  # consecutive records, stored together
        with self.transaction():
            for out in outputs:
                if isinstance(out, CallEnded | LegReleased):
                    legs.append(out.record)
                elif isinstance(out, AgentChanged):
                    stored += self._record_calls(legs)
                    legs = []
                    self.record_agent_change(out)
                    stored += 1
            stored += self._record_calls(legs)
        return stored

    def log_event(
        self,
        at: float,
        event: str,
        *,
        call_id: int | str | None = None,
        queue: str | None = None,
        agent: str | None = None,
        data: Sequence[object] = (),
    ) -> None:
        """Append a queue-log event (at most five data fields; missing ids are ``NONE``)."""
        if len(data) > 5:
            raise ValueError("a queue-log event has at most five data fields")
        fields = [str(d) for d in data] + [""] * (5 - len(data))
        with self.transaction():
            self._execute(
                "INSERT INTO queue_log (at, call_id, queue, agent, event,"
                " data1, data2, data3, data4, data5) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    at,
                    _NONE if call_id is None else str(call_id),
                    queue or _NONE,
                    agent or _NONE,
                    event,
                    *fields,
                ),
            )

    def save_sessions(self, sessions: Iterable[AgentSession]) -> None:
        """Replace the saved agent sessions (``Engine.export_sessions()``)."""
        with self.transaction():
            self._execute("DELETE FROM agent_sessions")
            self._executemany(
                "INSERT INTO agent_sessions VALUES (?, ?, ?, ?, ?)",
                [(s.agent_id, s.device, str(s.status), s.reason, s.since) for s in sessions],
            )

    # -- reading --------------------------------------------------------------------

    def load_sessions(self) -> list[AgentSession]:
        """The saved agent sessions, for ``Engine.import_sessions``."""
        rows = self._execute(
            "SELECT agent_id, device, status, reason, since FROM agent_sessions ORDER BY agent_id"
        )
        return [AgentSession(a, d, AgentStatus(s), r, t) for a, d, s, r, t in rows]

    def calls(
        self, since: float | None = None, until: float | None = None, queue: str | None = None
    ) -> Iterator[CallRecord]:
        """The stored legs that entered their queue in ``[since, until)`` (epoch s), of
        one queue or all, in the order they entered it."""
        return self._legs(since, until, {"c.queue": queue})

    def _legs(
        self, since: float | None, until: float | None, equal: Mapping[str, object | None]
    ) -> Iterator[CallRecord]:
        clause, params = _where("c.queued_at", since, until, equal)
        rings: dict[int, list[RingAttempt]] = {}
        for row, agent, device, started, ended, outcome in self._execute(
            "SELECT r.call_row, r.agent_id, r.device, r.started, r.ended, r.outcome"
            f" FROM ring_attempts r JOIN calls c ON c.id = r.call_row {clause}"
            " ORDER BY r.call_row, r.seq",
            params,
        ):
            rings.setdefault(row, []).append(
                RingAttempt(agent, device, started, ended, RingOutcome(outcome))
            )
        cursor = self._execute(
            f"SELECT c.id, {', '.join('c.' + c for c in _CALL_COLUMNS)} FROM calls c {clause}"
            " ORDER BY c.queued_at, c.id",
            params,
        )
        for row_id, *values in cursor:
            data = dict(zip(_CALL_COLUMNS, values, strict=True))
            data["outcome"] = Outcome(data["outcome"])
            data["abandoned_ringing"] = bool(data["abandoned_ringing"])
            data["fallback"] = bool(data["fallback"])
            yield CallRecord(**data, rings=tuple(rings.get(row_id, ())))

    def agent_changes(
        self, since: float | None = None, until: float | None = None, agent_id: str | None = None
    ) -> Iterator[AgentChanged]:
        """The stored agent notifications at times in ``[since, until)``, in time order."""
        clause, params = _where("at", since, until, {"agent_id": agent_id})
        for row in self._execute(
            f"SELECT {', '.join(_CHANGE_COLUMNS)} FROM agent_changes {clause} ORDER BY at, id",
            params,
        ):
            yield _agent_changed(row)

    def agent_states_before(self, at: float) -> list[AgentChanged]:
        """Each agent's latest notification before ``at`` (its status and state then),
        by agent id."""
        agents = [row[0] for row in self._execute("SELECT DISTINCT agent_id FROM agent_changes")]
        latest = []
        for agent_id in sorted(agents):
            row = self._execute(
                f"SELECT {', '.join(_CHANGE_COLUMNS)} FROM agent_changes"
                " WHERE agent_id = ? AND at < ? ORDER BY at DESC, id DESC LIMIT 1",
                (agent_id, at),
            ).fetchone()
            if row is not None:
                latest.append(_agent_changed(row))
        return latest

    def queue_log(self, since: float | None = None, until: float | None = None) -> list[tuple]:
        """Queue-log rows ``(at, call_id, queue, agent, event, data1..data5)`` in order."""
        clause, params = _where("at", since, until)
        return self._execute(
            "SELECT at, call_id, queue, agent, event, data1, data2, data3, data4, data5"
            f" FROM queue_log {clause} ORDER BY at, id",
            params,
        ).fetchall()

    def queues(self) -> list[str]:
        """The queues named by any stored leg or kept figures, sorted."""
        return [
            q
            for (q,) in self._execute(
                "SELECT queue FROM calls UNION SELECT queue FROM hourly_figures ORDER BY 1"
            )
        ]

    # -- retention ------------------------------------------------------------------

    def hourly_figures(
        self, since: float | None = None, until: float | None = None, queue: str | None = None
    ) -> list[tuple[str, float, Tally]]:
        """Kept figures ``(queue, hour start, sums)`` of hours starting in the window."""
        clause, params = _where("hour", since, until, {"queue": queue})
        rows = self._execute(
            f"SELECT queue, hour, {', '.join(_TALLY)} FROM hourly_figures {clause}"
            " ORDER BY hour, queue",
            params,
        )
        return [(q, h, Tally(*sums)) for q, h, *sums in rows]

    def hourly_staffing(
        self, agents: str = "", since: float | None = None, until: float | None = None
    ) -> list[tuple[float, float, float]]:
        """Kept ``(hour start, staffed s, ready s)`` of ``agents`` ('' all, else a queue
        id: the agents of its skill) for hours starting in the window."""
        clause, params = _where("hour", since, until, {"agents": agents})
        return self._execute(
            f"SELECT hour, staffed, ready FROM hourly_staffing {clause} ORDER BY hour",
            params,
        ).fetchall()

    def purge_before(
        self,
        before: float,
        figures: Mapping[tuple[str, float], Tally],
        staffing: Mapping[tuple[str, float], tuple[float, float]],
    ) -> dict[str, int]:
        """In one transaction: add ``figures`` and ``staffing`` (of the detail about to
        go) to the kept ones, delete the legs (and their rings), queue-log rows and agent
        changes before ``before``, and keep each agent's last change before it, moved to
        ``before`` (its state when the detail left resumes). Returns rows deleted."""
        with self.transaction():
            for (queue, hour), sums in figures.items():
                names = ", ".join(_TALLY)
                self._execute(
                    f"INSERT INTO hourly_figures (queue, hour, {names})"
                    f" VALUES (?, ?, {', '.join('?' * len(_TALLY))})"
                    f" ON CONFLICT (queue, hour) DO UPDATE SET "
                    + ", ".join(f"{n} = hourly_figures.{n} + excluded.{n}" for n in _TALLY),
                    (queue, hour, *astuple(sums)),
                )
            for (agents, hour), (staffed, ready) in staffing.items():
                self._execute(
                    "INSERT INTO hourly_staffing (agents, hour, staffed, ready)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (agents, hour) DO UPDATE SET"
                    " staffed = hourly_staffing.staffed + excluded.staffed,"
                    " ready = hourly_staffing.ready + excluded.ready",
                    (agents, hour, staffed, ready),
                )
            last = self.agent_states_before(before)
            deleted = {
                table: self._execute(f"DELETE FROM {table} WHERE {column} < ?", (before,)).rowcount
                for table, column in (
                    ("calls", "queued_at"),
                    ("queue_log", "at"),
                    ("agent_changes", "at"),
                )
            }
            # outboxes quiet since before the cutoff: their batches are long written
            self._execute("DELETE FROM outbox_applied WHERE at < ?", (before,))
            # ids below every other: at ``before`` they come first, then any real change
            (first,) = self._execute("SELECT coalesce(min(id), 1) FROM agent_changes").fetchone()
            for n, c in enumerate(last, 1):
                self._execute(
                    f"INSERT INTO agent_changes (id, {', '.join(_CHANGE_COLUMNS)})"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        first - len(last) - 1 + n,
                        before,
                        c.agent_id,
                        c.device,
                        str(c.status),
                        c.reason,
                        str(c.state),
                        c.call_id,
                        min(c.since, before),
                    ),
                )
        return deleted

    def calls_of(self, caller: str) -> Iterator[CallRecord]:
        """The stored legs whose caller number is ``caller`` (as stored), in order."""
        return self._legs(None, None, {"c.caller": caller})

    def time_span(self) -> tuple[float, float] | None:
        """The first and last time of any stored leg or agent change, or None if empty."""
        first, last = self._execute(
            "SELECT min(t0), max(t1) FROM (SELECT min(queued_at) t0, max(ended_at) t1 FROM calls"
            " UNION ALL SELECT min(at), max(at) FROM agent_changes"
            " UNION ALL SELECT min(hour), max(hour) + 3600 FROM hourly_figures) AS spans"
        ).fetchone()
        return None if first is None else (first, last)

    def close(self) -> None:
        """Close the database (everything written is already committed)."""
        self._conn.close()

    def __enter__(self) -> SqlStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _status_before(self, agent_id: str) -> AgentStatus:
        status = self._last_status.get(agent_id)
        if status is None:
            row = self._execute(
                "SELECT status FROM agent_changes WHERE agent_id = ? ORDER BY at DESC, id DESC"
                " LIMIT 1",
                (agent_id,),
            ).fetchone()
            status = AgentStatus(row[0]) if row else AgentStatus.LOGGED_OUT
        return status


def _call_values(record: CallRecord, caller: str) -> list[object]:
    """The ``calls`` row of ``record`` (its columns in `_CALL_COLUMNS` order)."""
    values = [getattr(record, name) for name in _CALL_COLUMNS]
    values[_CALL_COLUMNS.index("caller")] = caller
    values[_CALL_COLUMNS.index("outcome")] = str(record.outcome)
    values[_CALL_COLUMNS.index("abandoned_ringing")] = int(record.abandoned_ringing)
    values[_CALL_COLUMNS.index("fallback")] = int(record.fallback)
    return values


def _wrapup(record: CallRecord) -> str:
    """The queue log's wrap-up field: whole seconds, empty while it is unknown."""
    return "" if record.wrapup_end is None else str(round(record.wrapup))


def _where(
    column: str,
    since: float | None,
    until: float | None,
    equal: Mapping[str, object | None] | None = None,
) -> tuple[str, list[object]]:
    """A ``WHERE`` clause ('' if none) and its parameters: ``column`` in ``[since,
    until)``, and each column of ``equal`` whose value is not None equal to it."""
    where: list[str] = []
    params: list[object] = []
    if since is not None:
        where.append(f"{column} >= ?")
        params.append(since)
    if until is not None:
        where.append(f"{column} < ?")
        params.append(until)
    for name, value in (equal or {}).items():
        if value is not None:
            where.append(f"{name} = ?")
            params.append(value)
    return (f"WHERE {' AND '.join(where)}" if where else ""), params


def _agent_changed(row: tuple) -> AgentChanged:
    at, agent, device, status, reason, state, call_id, since = row
    return AgentChanged(
        at, agent, device, AgentStatus(status), reason, AgentState(state), call_id, since
    )


def _status_events(before: AgentStatus, note: AgentChanged) -> list[tuple[str, tuple]]:
    """Queue-log events of a status change from ``before`` to ``note.status``."""
    after = note.status
    if after is AgentStatus.LOGGED_OUT:
        return [("REMOVEMEMBER", (note.device or "",))]
    events = []
    if before is AgentStatus.LOGGED_OUT:
        events.append(("ADDMEMBER", (note.device or "",)))
    if after is AgentStatus.NOT_READY:
        events.append(("PAUSE", (note.reason,)))
    elif before is AgentStatus.NOT_READY:
        events.append(("UNPAUSE", ()))
    return events

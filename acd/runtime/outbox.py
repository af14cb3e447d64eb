"""The controller's outbox: what the call-record store is to keep (records, agent changes,
agent sessions, legs in progress), in numbered batches written in order and once, even
while the store cannot be reached (PostgreSQL restarted, a network cut, a locked file).

A batch is *acknowledged* once it is committed in the store, or, while the store
fails, once it is in the spool: a local file (JSON lines, fsynced, private like the
database) that a crash does not lose. The controller logs and publishes a batch's
notifications only once it is acknowledged. Batches that wait are written again with
capped exponential backoff, oldest first, many to a commit; once all are in, the spool
file is deleted. A controller that starts with a spool left by a previous run writes it
into the store before anything else (and refuses to start while it cannot).

Each batch carries its writer (one per controller run) and its number; the store notes
the last number written per writer in the same commit (`RecordStore.apply_once`), so a
batch written twice (a commit whose answer was lost, a spool replayed after a crash) is
applied once. When the spool cannot be written either (a full disk), batches wait in
memory only, unacknowledged, and the spool is tried again with each write.

Every method but `batch` runs in the controller's writer thread (or before and after it).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from acd.core.agents import AgentSession, AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded, LegReleased, Notification
from acd.core.records import CallRecord, LiveLeg
from acd.errors import AcdError
from acd.files import create_private
from acd.runtime.store import RecordStore
from acd.runtime.topics import mask_number
from drivers.backoff import Backoff

log = logging.getLogger("acd.outbox")

STORED = (CallEnded, LegReleased, AgentChanged)
"""The notifications the store keeps."""

PER_COMMIT = 200
"""At most this many waiting batches are written in one commit."""


@dataclass
class Batch:
    """One engine turn's writes: notifications (those the store keeps), the agent
    sessions if they changed (None: unchanged) and the legs in progress that changed."""

    writer: str
    seq: int
    at: float  # engine time of the turn
    notes: list[Notification]
    sessions: list[AgentSession] | None = None
    legs: dict[int, LiveLeg | None] = field(default_factory=dict)


@dataclass(frozen=True)
class Written:
    """The outbox after a write: every batch numbered up to ``acked`` is acknowledged;
    ``waiting`` batches are not in the store yet (``spooled`` of them in the spool),
    because of ``down`` (None: the store took everything); retry in ``retry_in`` s."""

    acked: int
    waiting: int = 0
    spooled: int = 0
    down: str | None = None
    retry_in: float | None = None
    spool_error: str | None = None


def default_spool(outbox: str, store_url: str) -> Path:
    """The spool file: ``outbox`` if set, else ``acd-outbox.jsonl`` beside an SQLite
    database, or in the working directory for another store."""
    if outbox:
        return Path(outbox)
    if "://" not in store_url or store_url.startswith("sqlite:"):
        path = store_url.removeprefix("sqlite://")
        return Path(path).parent / "acd-outbox.jsonl"
    return Path("acd-outbox.jsonl")


def _reason(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


class Outbox:
    """Batches on their way to ``store`` (see the module docstring); ``spool`` None
    keeps the waiting ones in memory only."""

    def __init__(
        self,
        store: RecordStore,
        spool: Path | None,
        *,
        group: str | None = None,
        retry_initial: float = 0.5,
        retry_max: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.spool = spool
        self.group = group
        self.writer = uuid.uuid4().hex
        self._clock = clock
        self._seq = 0
        self._pending: deque[Batch] = deque()  # not in the store, oldest first
        self._spooled = 0  # the first this many of _pending are in the spool file
        self._acked = 0
        self._down: str | None = None
        self._backoff = Backoff(retry_initial, retry_max)  # after a failed commit
        self._next_try = 0.0
        self._spool_error: str | None = None

    # --- on the event loop ----------------------------------------------------------

    def batch(
        self,
        at: float,
        notes: Iterable[Notification],
        sessions: list[AgentSession] | None = None,
        legs: Mapping[int, LiveLeg | None] | None = None,
    ) -> Batch:
        """The next batch of this writer (only the notifications the store keeps)."""
        self._seq += 1
        kept = [n for n in notes if isinstance(n, STORED)]
        return Batch(self.writer, self._seq, at, kept, sessions, dict(legs or {}))

    # --- in the writer thread -------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Batches not in the store yet."""
        return len(self._pending)

    def put(self, batch: Batch, force: bool = False) -> Written:
        """Write ``batch`` after those waiting: into the store when it takes writes (tried
        again only when the backoff allows, or ``force``), else into the spool."""
        self._pending.append(batch)
        if len(self._pending) == 1 or force or self._clock() >= self._next_try:
            self._drain()
        self._spool_rest()
        return self._state()

    def retry(self) -> Written:
        """Write what waits, if the backoff allows."""
        if self._pending and self._clock() >= self._next_try:
            self._drain()
        self._spool_rest()
        return self._state()

    def replay(self, state: bool = True) -> int:
        """Write the spool a previous run left into the store and delete it; the number
        of batches it held. With ``state`` False only their records and agent changes
        (in a pair, the sessions and legs in progress in the store are newer: the other
        controller's). `AcdError` if the store fails (the spool is kept)."""
        if self.spool is None or not self.spool.exists():
            return 0
        batches = read_spool(self.spool)
        try:
            for start in range(0, len(batches), PER_COMMIT):
                self._commit(batches[start : start + PER_COMMIT], state)
        except Exception as exc:
            raise AcdError(
                f"the outbox {self.spool} holds {len(batches)} batches of call records that"
                f" the store does not take: {_reason(exc)} (it is kept: start again when the"
                " store is back)"
            ) from None
        self.spool.unlink()
        return len(batches)

    # --- inside ---------------------------------------------------------------------

    def _commit(self, batches: list[Batch], state: bool = True) -> None:
        """Write ``batches`` in one commit, each unless it was already (their sessions
        and legs in progress only with ``state``)."""
        store = self.store
        with store.transaction():
            for b in batches:
                if not store.apply_once(b.writer, b.seq, b.at):
                    continue
                store.record_outputs(b.notes)
                if b.sessions is not None and state:
                    store.save_sessions(b.sessions)
                if b.legs and state:
                    store.save_legs(b.legs)

    def _drain(self) -> None:
        """Write the waiting batches, oldest first; on a failure note the outage and
        when to try again."""
        while self._pending:
            chunk = list(self._pending)[:PER_COMMIT]
            try:
                self._commit(chunk)
            except Exception as exc:
                self._failed(exc)
                return
            for _ in chunk:
                self._pending.popleft()
            self._spooled = max(0, self._spooled - len(chunk))
            self._acked = max(self._acked, chunk[-1].seq)
        self._down = None
        self._backoff.reset()
        if self._spooled == 0 and self.spool is not None:
            with contextlib.suppress(FileNotFoundError):
                self.spool.unlink()

    def _failed(self, exc: BaseException) -> None:
        self._down = _reason(exc)
        self._next_try = self._clock() + self._backoff.delay
        self._backoff.grow()

    def _spool_rest(self) -> None:
        """Append the waiting batches not yet in the spool, fsynced; acknowledged then."""
        rest = list(self._pending)[self._spooled :]
        if not rest or self.spool is None:
            return
        mask = getattr(self.store, "mask_callers", True)
        lines = "".join(json.dumps(to_json(b, mask), separators=(",", ":")) + "\n" for b in rest)
        try:
            new = not self.spool.exists()
            if new:
                self.spool.parent.mkdir(parents=True, exist_ok=True)
                create_private(self.spool, self.group)
            with self.spool.open("a", encoding="utf-8") as f:
                size = f.tell()
                try:
                    f.write(lines)
                    f.flush()
                    os.fsync(f.fileno())
                except OSError:
                    f.truncate(size)  # no half line left for the next append
                    raise
            if new:
                _fsync_dir(self.spool.parent)
        except OSError as exc:
            self._spool_error = f"{self.spool}: {exc.strerror or exc}"
            return
        self._spool_error = None
        self._spooled = len(self._pending)
        self._acked = max(self._acked, rest[-1].seq)

    def _state(self) -> Written:
        if not self._pending:
            return Written(self._acked)
        return Written(
            self._acked,
            len(self._pending),
            self._spooled,
            self._down,
            max(0.0, self._next_try - self._clock()),
            self._spool_error,
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- the spool's lines --------------------------------------------------------------


def to_json(batch: Batch, mask_callers: bool = True) -> dict:
    """A batch as a spool line (caller numbers masked as the store would keep them)."""
    notes = []
    for n in batch.notes:
        if isinstance(n, AgentChanged):
            notes.append({"kind": "agent", **asdict(n)})
            continue
        record = n.record
        if mask_callers:
            record = replace(record, caller=mask_number(record.caller) or "")
        kind = "released" if isinstance(n, LegReleased) else "ended"
        notes.append({"kind": kind, "at": n.at, "record": record.to_dict()})
    return {
        "writer": batch.writer,
        "seq": batch.seq,
        "at": batch.at,
        "notes": notes,
        "sessions": None if batch.sessions is None else [s.to_dict() for s in batch.sessions],
        "legs": [
            [call_id, None if leg is None else asdict(leg)] for call_id, leg in batch.legs.items()
        ],
    }


def from_json(data: dict) -> Batch:
    """Inverse of `to_json`."""
    notes: list[Notification] = []
    for n in data["notes"]:
        kind = n.pop("kind")
        if kind == "agent":
            n["status"], n["state"] = AgentStatus(n["status"]), AgentState(n["state"])
            notes.append(AgentChanged(**n))
        else:
            cls = LegReleased if kind == "released" else CallEnded
            notes.append(cls(n["at"], CallRecord.from_dict(n["record"])))
    sessions = data["sessions"]
    return Batch(
        data["writer"],
        data["seq"],
        data["at"],
        notes,
        None if sessions is None else [AgentSession.from_dict(s) for s in sessions],
        {int(c): None if leg is None else LiveLeg(**leg) for c, leg in data["legs"]},
    )


def read_spool(path: Path) -> list[Batch]:
    """The batches of a spool file; a last line cut short (a crash while it was written:
    never acknowledged) is left out with a warning, any other damage is an `AcdError`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    batches = []
    for number, line in enumerate(lines, 1):
        try:
            batches.append(from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            if number == len(lines):
                log.warning("outbox %s: its last line is cut short, left out: %s", path, exc)
                break
            raise AcdError(
                f"the outbox {path} is damaged at line {number}: {exc} (move it away to start"
                " without it)"
            ) from None
    return batches

"""The call-record store: the operations the controller, the reports, ``acd records`` and
the demo use (`RecordStore`), and the backend chosen by the URL of ``[store] url``.

- a plain path (``acd.db``, ``/var/lib/acd/acd.db``) or ``sqlite:///var/lib/acd/acd.db``
  (a file URL: three slashes before an absolute path): one SQLite file, the embedded
  default (`acd.runtime.store_sqlite`);
- ``postgresql://acd@db.example/acd``: a PostgreSQL database (`acd.runtime.store_pg`, the
  ``postgresql`` extra), its password from the environment variable named by
  ``[store] password_env``, never from the file.

A backend is a module registered under its URL schemes (`register`, loaded on first
use) whose ``BACKEND`` is a `StoreBackend`. Every backend keeps the promise of
`RecordStore`: a write that returned is committed and survives a crash.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from acd.errors import AcdError

if TYPE_CHECKING:
    from acd.core.agents import AgentSession
    from acd.core.commands import AgentChanged
    from acd.core.figures import Tally
    from acd.core.records import CallRecord, LiveLeg


class DuplicateLeg(AcdError):
    """A record of a leg already stored (same call id, arrival and leg number)."""


@dataclass(frozen=True)
class Summary:
    """What a checked store (or backup) holds."""

    path: Path
    legs: int
    first: float | None
    last: float | None


@dataclass(frozen=True)
class StoreOptions:
    """How to open a store: ``mask_callers`` (store caller numbers masked), ``group``
    (SQLite: the file's group), ``password_env`` (PostgreSQL: the variable holding the
    password), ``create`` (False: a missing store is an error, not made empty),
    ``idle_timeout`` and ``instance`` (PostgreSQL, a pair's: s after which the server
    ends a transaction left idle; the controller's name on its sessions)."""

    mask_callers: bool = True
    group: str | None = None
    password_env: str | None = None
    create: bool = True
    idle_timeout: float | None = None
    instance: str | None = None


class RecordStore(Protocol):
    """The call records, agent changes, queue log, sessions and kept figures of a site.
    Every write is committed before it returns (``transaction`` groups writes into one
    commit). Use from one thread at a time; ``close()`` (or ``with``) when done."""

    mask_callers: bool

    def transaction(self) -> AbstractContextManager[None]:
        """Group the writes inside into one commit; an exception rolls them back."""

    def record_call(self, record: CallRecord) -> None:
        """Store a leg (`DuplicateLeg` if it is stored and this does not complete it)."""

    def record_agent_change(self, note: AgentChanged) -> None:
        """Store an agent notification (and its queue-log events)."""

    def record_outputs(self, outputs: Iterable[object]) -> int:
        """Store one engine step's records and agent changes in one commit."""

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
        """Append a queue-log event."""

    def apply_once(self, writer: str, seq: int, at: float) -> bool:
        """Inside ``transaction``: note batch ``seq`` of the outbox ``writer`` applied;
        False if it or a later batch of that writer already was (then write nothing)."""

    def save_legs(self, legs: Mapping[int, LiveLeg | None]) -> None:
        """Save the legs in progress that changed (None: the call left)."""

    def load_legs(self) -> list[LiveLeg]:
        """The legs in progress when the controller last stopped."""

    def save_sessions(self, sessions: Iterable[AgentSession]) -> None:
        """Replace the saved agent sessions."""

    def load_sessions(self) -> list[AgentSession]:
        """The saved agent sessions."""

    def calls(
        self, since: float | None = None, until: float | None = None, queue: str | None = None
    ) -> Iterator[CallRecord]:
        """The legs that entered their queue in ``[since, until)``, in that order."""

    def calls_of(self, caller: str) -> Iterator[CallRecord]:
        """The legs of one caller number (as stored)."""

    def agent_changes(
        self, since: float | None = None, until: float | None = None, agent_id: str | None = None
    ) -> Iterator[AgentChanged]:
        """The agent notifications in ``[since, until)``, in time order."""

    def agent_states_before(self, at: float) -> list[AgentChanged]:
        """Each agent's latest notification before ``at``."""

    def queue_log(self, since: float | None = None, until: float | None = None) -> list[tuple]:
        """Queue-log rows ``(at, call_id, queue, agent, event, data1..data5)``."""

    def queues(self) -> list[str]:
        """The queues named by any stored leg or kept figures."""

    def time_span(self) -> tuple[float, float] | None:
        """The first and last time stored, None if empty."""

    def hourly_figures(
        self, since: float | None = None, until: float | None = None, queue: str | None = None
    ) -> list[tuple[str, float, Tally]]:
        """Kept figures of purged hours ``(queue, hour, sums)``."""

    def hourly_staffing(
        self, agents: str = "", since: float | None = None, until: float | None = None
    ) -> list[tuple[float, float, float]]:
        """Kept ``(hour, staffed s, ready s)`` of purged hours."""

    def purge_before(
        self,
        before: float,
        figures: Mapping[tuple[str, float], Tally],
        staffing: Mapping[tuple[str, float], tuple[float, float]],
    ) -> dict[str, int]:
        """Keep ``figures`` and ``staffing``, delete the detail before ``before``."""

    def close(self) -> None:
        """Close the store."""

    def __enter__(self) -> RecordStore: ...

    def __exit__(self, *exc: object) -> None: ...


class LeaseLost(AcdError):
    """The lease of a hot-standby pair is lost, or could not be checked."""


class Lease(Protocol):
    """The lease of a hot-standby pair (``[ha]``): whoever holds it may open the PBX
    link. Each method blocks (bounded): call them from a thread."""

    instance: str

    def connect(self) -> None:
        """Reach the database (no lock taken); `LeaseLost` if unreachable."""

    def acquire(self) -> bool:
        """Take the lease if free: True if held now; `LeaseLost` if unreachable."""

    def confirm(self) -> None:
        """`LeaseLost` unless it is still held."""

    def holder(self) -> str | None:
        """The instance holding it, None if free or unknown."""

    def fence_others(self) -> list[str]:
        """End the pair's store sessions (a new holder, before opening its own): the
        names of the controllers whose sessions were ended."""

    def close(self) -> None:
        """Give it up (if held)."""


class StoreBackend(Protocol):
    """A kind of store: how to open one at a URL (or a plain path, for SQLite) and the
    operations on a whole store."""

    def open(self, url: str, options: StoreOptions) -> RecordStore:
        """Open for writing, creating (if ``options.create``) and upgrading the schema."""

    def open_readonly(self, url: str, options: StoreOptions) -> RecordStore:
        """Open for reading (reports): a missing or foreign store is an `AcdError`."""

    def controller_lock(self, url: str, options: StoreOptions) -> AbstractContextManager[None]:
        """Held by ``acd run`` while it runs; `AcdError` if another controller holds it."""

    def backup(self, url: str, dest: Path, overwrite: bool) -> Summary:
        """Copy the store (live) to the file ``dest`` and check the copy."""

    def restore(self, source: Path, url: str) -> tuple[Summary, Path | None]:
        """Replace the store by the backup ``source``; where the replaced one is kept."""


_BACKENDS: dict[str, str | StoreBackend] = {
    "sqlite": "acd.runtime.store_sqlite",
    "postgresql": "acd.runtime.store_pg",
    "postgres": "acd.runtime.store_pg",
}


def register(scheme: str, backend: str | StoreBackend) -> None:
    """Serve ``scheme://`` URLs with ``backend``: a `StoreBackend`, or the name of a
    module whose ``BACKEND`` is one (imported on first use)."""
    _BACKENDS[scheme.lower()] = backend


def schemes() -> list[str]:
    """The URL schemes a store can be given, sorted."""
    return sorted(_BACKENDS)


def scheme_of(url: str) -> str:
    """The scheme of a store URL (a plain path: ``sqlite``); `AcdError` if unknown."""
    if "://" not in url:
        return "sqlite"
    scheme = url.split("://", 1)[0].lower()
    if scheme not in _BACKENDS:
        raise AcdError(f"unknown store scheme {scheme!r} (known: {', '.join(schemes())})")
    return scheme


def _backend(url: str) -> StoreBackend:
    scheme = scheme_of(url)
    backend = _BACKENDS[scheme]
    if isinstance(backend, str):
        backend = importlib.import_module(backend).BACKEND
        _BACKENDS[scheme] = backend
    return backend


def open_store(url: str, **options: object) -> RecordStore:
    """Open the store at ``url`` for writing (options: `StoreOptions`' fields)."""
    return _backend(str(url)).open(str(url), StoreOptions(**options))


def open_readonly(url: str | Path, **options: object) -> RecordStore:
    """Open the store at ``url`` for reading, e.g. for reports."""
    return _backend(str(url)).open_readonly(str(url), StoreOptions(**options))


def controller_lock(url: str | Path, **options: object) -> AbstractContextManager[None]:
    """The lock ``acd run`` holds on its store (restore waits for it)."""
    return _backend(str(url)).controller_lock(str(url), StoreOptions(**options))


def backup(url: str | Path, dest: str | Path, overwrite: bool = False) -> Summary:
    """Copy the store at ``url`` to ``dest`` and check the copy; `AcdError` on a problem."""
    return _backend(str(url)).backup(str(url), Path(dest), overwrite)


def restore(source: str | Path, url: str | Path) -> tuple[Summary, Path | None]:
    """Replace the store at ``url`` by the backup ``source`` (refused while a controller
    runs on it); the restored store's summary and where the replaced one was kept."""
    return _backend(str(url)).restore(Path(source), str(url))


def __getattr__(name: str) -> object:
    """``acd.runtime.store.CallStore``: the SQLite store, as code before the interface named it."""
    if name == "CallStore":
        from acd.runtime.store_sqlite import SqliteStore

        return SqliteStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

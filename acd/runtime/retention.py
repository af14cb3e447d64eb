"""Retention of personal data (docs/privacy.md): call detail older than ``[store]
retention_days`` is purged, its figures kept per queue and hour; capture files older than
``capture_retention_days`` are deleted.

``purge(store, before, config)`` sums the legs and agent activity before ``before`` the
way reports do (`acd.core.figures`, with the site's thresholds; agents per queue by skill),
then has the store add the sums to its kept figures and delete the detail, in one
transaction. A report of a purged period reads the kept figures (`acd.planning.reporting.Kept`),
so it equals the report made before the purge: figures per queue, hour and day, staffed
time, occupancy and agents ready. Only the agents-ready step chart of a purged period is
lost (it would be a per-change history).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable
from pathlib import Path
from zoneinfo import ZoneInfo

from acd.config import Config
from acd.core.calendar import midnight
from acd.core.commands import AgentChanged
from acd.core.figures import ready_seconds, ready_series, staffed_seconds, tally
from acd.runtime.store import RecordStore

DAY = 86400.0
_UTC = ZoneInfo("UTC")


def cutoff(now: float, days: int, timezone: str) -> float:
    """The local midnight ``days`` days before the day of ``now``: detail before it goes."""
    today = dt.datetime.fromtimestamp(now, ZoneInfo(timezone)).date()
    return midnight(today - dt.timedelta(days=days), timezone)


def purge(store: RecordStore, before: float, config: Config | None = None) -> dict[str, int]:
    """Purge the detail before ``before`` (epoch s), keeping its figures; rows deleted."""
    sl = {q.id: q.sl_threshold for q in config.queues.values()} if config else 20.0
    short = config.acd.short_abandon if config else 5.0
    by_hour: dict[tuple[str, float], list] = {}
    for r in store.calls(until=before):
        by_hour.setdefault((r.queue, r.queued_at // 3600 * 3600), []).append(r)
    figures = {k: tally(legs, sl_threshold=sl, short_abandon=short) for k, legs in by_hour.items()}
    changes = list(store.agent_changes(until=before))
    groups: dict[str, frozenset[str] | None] = {"": None}
    if config is not None:
        for q in config.queues.values():
            groups[q.id] = frozenset(a.id for a in config.agents.values() if q.skill in a.skills)
    staffing: dict[tuple[str, float], tuple[float, float]] = {}
    for name, agents in groups.items():
        notes = [c for c in changes if agents is None or c.agent_id in agents]
        for hour, (staffed, ready) in _hourly_staffing(notes, before).items():
            staffing[(name, hour)] = (staffed, ready)
    return store.purge_before(before, figures, staffing)


def _hourly_staffing(notes: Iterable[AgentChanged], end: float) -> dict[float, tuple]:
    """Staffed and ready agent-seconds per UTC hour (start epoch) until ``end``."""
    notes = list(notes)
    staffed = staffed_seconds(notes, end, "hour", _UTC)
    ready = ready_seconds(ready_series(notes), end, "hour", _UTC)
    hours = staffed.keys() | ready.keys()
    return {
        _hour_epoch(k): (staffed.get(k, 0.0), ready.get(k, 0.0))
        for k in sorted(hours)
        if staffed.get(k) or ready.get(k)
    }


def _hour_epoch(key: str) -> float:
    return dt.datetime.strptime(key, "%Y-%m-%dT%H").replace(tzinfo=dt.UTC).timestamp()


def purge_captures(path: str | Path, days: int, now: float | None = None) -> list[Path]:
    """Delete the rotated files of the capture ``path`` (``path.N``) last written more
    than ``days`` days ago; the file being written is kept. Returns those deleted."""
    base = Path(path)
    limit = (time.time() if now is None else now) - days * DAY
    gone = []
    for old in sorted(base.parent.glob(f"{base.name}.*")):
        if old.name[len(base.name) + 1 :].isdigit() and old.stat().st_mtime < limit:
            old.unlink()
            gone.append(old)
    return gone

"""Reports from call records: did we reach the target, hour by hour, day by day, queue by
queue?

``build_report(records, changes, settings)`` groups legs with ``acd.core.figures`` (the one
place figures are computed), adds the target check (answer rate against the target, each
row flagged), the agents ready over the day (from agent notifications) and occupancy
(handling time / staffed time). ``store_report`` does the same from a ``RecordStore``,
adding the figures it kept of purged detail (`Kept`, `acd.runtime.retention`). Per agent:
``acd.core.agent_time``. Outputs: ``render_text`` (an 80-column table), ``to_csv``,
``Report.to_dict`` (JSON); charts in ``acd.planning.report_charts``, HTML in
``acd.planning.report_html``.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from acd.config import Config
from acd.core.agent_time import AgentRow, agent_rows, presence_by_hour
from acd.core.calendar import midnight
from acd.core.commands import AgentChanged
from acd.core.figures import (
    Figures,
    Tally,
    compute,
    grouped,
    period_key,
    ready_seconds,
    ready_series,
    staffed_seconds,
    tally,
)
from acd.core.records import CallRecord, Outcome
from acd.errors import AcdError
from acd.runtime.store import RecordStore

PERIODS = ("hour", "day", "week", "month")
GROUPINGS = (*PERIODS, "queue", "agent")
DEFAULT_TARGET = 0.99  # the reference customer's target: 99 % of calls answered


@dataclass(frozen=True)
class ReportSettings:
    """What a report needs from the configuration."""

    timezone: str = "UTC"
    sl_threshold: float | Mapping[str, float] = 20.0  # s, or s per queue id
    short_abandon: float = 5.0
    target: float = DEFAULT_TARGET  # answer rate to reach
    site: str = ""
    queue: str | None = None  # only this queue's legs
    agents: frozenset[str] | None = None  # only these agents' notifications (None: all)
    queue_targets: Mapping[str, float] = field(default_factory=dict)  # per-queue rows
    reasons: Mapping[int, str] = field(default_factory=dict)  # not-ready reason labels

    @classmethod
    def from_config(
        cls, config: Config | None, queue: str | None = None, target: float | None = None
    ) -> ReportSettings:
        """Settings of a site. The target is ``target``, else the queue's target, else
        the strictest target of the site's queues; rows per queue are checked against
        each queue's own target unless ``target`` is given. With a queue, only the
        agents having its skill count as ready or staffed."""
        if config is None:
            return cls(queue=queue, target=DEFAULT_TARGET if target is None else target)
        queues = config.queues
        explicit = target is not None
        if queue is not None and queue not in queues:
            raise AcdError(f"no queue {queue!r} in the configuration")
        if target is None:
            target = (
                queues[queue].target
                if queue is not None
                else max((q.target for q in queues.values()), default=DEFAULT_TARGET)
            )
        agents = None
        if queue is not None:
            skill = queues[queue].skill
            agents = frozenset(a.id for a in config.agents.values() if skill in a.skills)
        return cls(
            timezone=config.site.timezone,
            sl_threshold={q.id: q.sl_threshold for q in queues.values()},
            short_abandon=config.acd.short_abandon,
            target=target,
            site=config.site.name,
            queue=queue,
            agents=agents,
            queue_targets={} if explicit else {q.id: q.target for q in queues.values()},
            reasons=dict(config.acd.reasons),
        )

    def threshold(self) -> float:
        """The service-level threshold of the report's queue (all queues: the shortest)."""
        if isinstance(self.sl_threshold, int | float):
            return float(self.sl_threshold)
        if self.queue is not None:
            return self.sl_threshold.get(self.queue, 20.0)
        return min(self.sl_threshold.values(), default=20.0)

    def threshold_text(self) -> str:
        if isinstance(self.sl_threshold, int | float):
            return f"{self.sl_threshold:g}s"
        ids = [self.queue] if self.queue is not None else sorted(self.sl_threshold)
        return ", ".join(f"{q} {self.sl_threshold.get(q, 20.0):g}s" for q in ids)


@dataclass(frozen=True)
class Row:
    """One line of a report: figures of a period (or queue) and the target check."""

    key: str
    figures: Figures
    agents_ready: float | None  # mean agents ready in the hour (day: over its hours shown)
    met: bool | None  # answer rate ≥ target (None: nothing offered)

    def to_dict(self) -> dict[str, object]:
        return {
            "key": self.key,
            **self.figures.to_dict(),
            "agents_ready": self.agents_ready,
            "target_met": self.met,
        }


@dataclass(frozen=True)
class Report:
    """Figures per hour, day and queue, the total and the agents ready over time."""

    settings: ReportSettings
    since: float | None
    until: float | None
    total: Row
    rows: dict[str, list[Row]]  # "hour" / "day" / "week" / "month" / "queue" → rows
    ready_series: list[tuple[float, int]] = field(default_factory=list)  # (at, agents ready)
    agents: list[AgentRow] = field(default_factory=list)  # per agent, by id
    # hour key -> mean agents ready and idle, and busy (ringing, on a call, wrap-up)
    presence: dict[str, dict[str, float]] = field(default_factory=dict)
    waited: float = 0.0  # s the offered legs waited in all (answered, abandoned, other)
    # legs the switch's fallback routed while the controller was gone (cti-protocol §9.7)
    fallback: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_FALLBACK, 0))

    def span_text(self) -> str:
        """The days the report covers: ``2026-03-10``, ``2026-03-09 to 2026-03-13``."""
        days = [r.key for r in self.rows["day"]]
        if not days:
            tz = ZoneInfo(self.settings.timezone)
            ends = [t for t in (self.since, self.until) if t is not None]
            days = [datetime.fromtimestamp(t, tz).date().isoformat() for t in ends[:1]]
            if self.until is not None and self.since is not None:
                days.append(datetime.fromtimestamp(self.until - 1e-6, tz).date().isoformat())
        if not days:
            return "no calls"
        return days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}"

    def to_dict(self) -> dict[str, object]:
        s = self.settings
        return {
            "site": s.site,
            "timezone": s.timezone,
            "queue": s.queue,
            "since": self.since,
            "until": self.until,
            "target": s.target,
            "sl_threshold": s.sl_threshold
            if isinstance(s.sl_threshold, int | float)
            else dict(s.sl_threshold),
            "short_abandon": s.short_abandon,
            "total": self.total.to_dict(),
            **{by: [r.to_dict() for r in rows] for by, rows in self.rows.items()},
            "agents_ready_series": [list(p) for p in self.ready_series],
            "agent": [a.to_dict() for a in self.agents],
            "fallback": dict(self.fallback),
        }


@dataclass(frozen=True)
class Kept:
    """What the store kept of purged detail (`acd.runtime.retention`): ``(queue, hour start,
    sums)`` and ``(hour start, staffed s, ready s)`` rows."""

    figures: list[tuple[str, float, Tally]] = field(default_factory=list)
    staffing: list[tuple[float, float, float]] = field(default_factory=list)

    def sums(self, by: str, tz: ZoneInfo) -> dict[str, Tally]:
        out: dict[str, Tally] = {}
        for queue, hour, sums in self.figures:
            k = queue if by == "queue" else period_key(hour, by, tz)
            out[k] = out[k] + sums if k in out else sums
        return out

    def add_staffing(self, staffed: dict, ready: dict, by: str, tz: ZoneInfo) -> None:
        for hour, staffed_s, ready_s in self.staffing:
            k = period_key(hour, by, tz)
            staffed[k] = staffed.get(k, 0.0) + staffed_s
            ready[k] = ready.get(k, 0.0) + ready_s


def build_report(
    records: Iterable[CallRecord],
    changes: Iterable[AgentChanged],
    settings: ReportSettings,
    since: float | None = None,
    until: float | None = None,
    kept: Kept | None = None,
) -> Report:
    """The report of the legs that entered their queue in ``[since, until)``. ``changes``
    are agent notifications in time order, from before ``since`` too (they tell who was
    ready when the window opened); ``kept`` adds the figures of purged detail."""
    tz = ZoneInfo(settings.timezone)
    kept = kept or Kept()
    legs = [
        r
        for r in records
        if (settings.queue is None or r.queue == settings.queue)
        and (since is None or r.queued_at >= since)
        and (until is None or r.queued_at < until)
    ]
    notes = [
        c
        for c in changes
        if (settings.agents is None or c.agent_id in settings.agents)
        and (until is None or c.at < until)
    ]
    ends = [r.ended_at for r in legs] + [c.at for c in notes if since is None or c.at >= since]
    end = max(ends, default=since if since is not None else 0.0)
    series = ready_series(notes)
    options = {"sl_threshold": settings.sl_threshold, "short_abandon": settings.short_abandon}

    def inside(totals: dict[str, float], by: str) -> dict[str, float]:
        """The periods of ``totals`` that overlap ``[since, until)``."""
        first = None if since is None else period_key(since, by, tz)
        last = None if until is None else period_key(until - 1e-6, by, tz)
        return {
            k: v
            for k, v in totals.items()
            if (first is None or k >= first) and (last is None or k <= last)
        }

    def check(figures: Figures, target: float = settings.target) -> bool | None:
        rate = figures.answer_rate
        return None if rate is None else rate >= target - 1e-12

    rows: dict[str, list[Row]] = {}
    staffed_by: dict[str, dict[str, float]] = {}
    for by in PERIODS:
        staffed = staffed_by[by] = inside(staffed_seconds(notes, end, by, tz), by)
        ready = inside(ready_seconds(series, end, by, tz), by)
        kept.add_staffing(staffed, ready, by, tz)
        figures = grouped(legs, by, tz, staffed=staffed, kept=kept.sums(by, tz), **options)
        keys = sorted(set(figures) | set(staffed) | set(ready))
        if by == "hour":
            span = dict.fromkeys(keys, 3600.0)
        else:  # mean of the period's hours shown
            hours: dict[str, int] = {}
            for row in rows["hour"]:
                k = hour_period(row.key, by)
                hours[k] = hours.get(k, 0) + 1
            span = {k: 3600.0 * hours.get(k, 1) for k in keys}
        rows[by] = [
            Row(
                k,
                figures.get(k) or compute((), staffed=staffed.get(k), **options),
                ready.get(k, 0.0) / span[k],
                check(figures[k]) if k in figures else None,
            )
            for k in keys
        ]
    rows["queue"] = [
        Row(k, f, None, check(f, settings.queue_targets.get(k, settings.target)))
        for k, f in grouped(legs, "queue", tz, kept=kept.sums("queue", tz), **options).items()
    ]
    sums = sum((t for _, _, t in kept.figures), tally(legs, **options))
    staffed_total = sum(staffed_by["hour"].values())  # the window's, to the hour
    total = sums.figures(staffed_total if notes or kept.staffing else None)
    in_window = [p for p in series if since is None or p[0] >= since]
    before = [n for at, n in series if since is not None and at < since]
    if before and before[-1] and (not in_window or in_window[0][0] > since):
        in_window.insert(0, (since, before[-1]))  # the level when the window opens
    presence = {
        kind: inside(seconds, "hour")
        for kind, seconds in presence_by_hour(notes, since, end, tz).items()
    }
    hour_keys = sorted({*presence["idle"], *presence["busy"]})
    return Report(
        settings,
        since,
        until,
        Row("total", total, None, check(total)),
        rows,
        in_window,
        agent_rows(legs, notes, since, end),
        {k: {kind: presence[kind].get(k, 0.0) / 3600.0 for kind in presence} for k in hour_keys},
        sum(r.wait for r in legs if r.offered(settings.short_abandon)),
        fallback_counts(legs),
    )


_FALLBACK = ("calls", "answered", "abandoned")


def fallback_counts(legs: Iterable[CallRecord]) -> dict[str, int]:
    """How many legs the switch's fallback routed, answered and abandoned."""
    counts = dict.fromkeys(_FALLBACK, 0)
    for r in legs:
        if r.fallback:
            counts["calls"] += 1
            if r.outcome is Outcome.ANSWERED:
                counts["answered"] += 1
            elif r.outcome is Outcome.ABANDONED:
                counts["abandoned"] += 1
    return counts


def hour_period(hour_key: str, by: str) -> str:
    """The day, ISO week or month (``by``) of an hour key (``2026-03-10T09``)."""
    if by == "day":
        return hour_key[:10]
    if by == "month":
        return hour_key[:7]
    year, week, _ = date.fromisoformat(hour_key[:10]).isocalendar()
    return f"{year}-W{week:02d}"


def store_report(
    store: RecordStore,
    settings: ReportSettings,
    since: float | None = None,
    until: float | None = None,
    on_record: Callable[[], object] | None = None,
) -> Report:
    """The report of the legs stored in ``store`` that entered their queue in
    ``[since, until)``; ``on_record`` is called once per leg read (progress)."""
    changes = store.agent_changes(since=since, until=until)
    if since is not None:  # who was ready or staffed when the window opened
        changes = itertools.chain(store.agent_states_before(since), changes)
    records = store.calls(since=since, until=until, queue=settings.queue)
    if on_record is not None:
        records = _counted(records, on_record)
    kept = Kept(
        store.hourly_figures(since, until, settings.queue),
        store.hourly_staffing(settings.queue or "", since, until),
    )
    return build_report(records, changes, settings, since, until, kept)


def _counted(records: Iterable[CallRecord], tick: Callable[[], object]) -> Iterator[CallRecord]:
    for record in records:
        tick()
        yield record


def day_window(day: date, tz: ZoneInfo) -> tuple[float, float]:
    """Epoch seconds of local midnight of ``day`` and of the next day."""
    return midnight(day, tz), midnight(day + timedelta(days=1), tz)


# -- text, CSV --------------------------------------------------------------------------

_HEADER = (
    f"{'offer':>5} {'answ':>5} {'aband':>5} {'short':>5} {'ovfl':>4} {'answ%':>5} {'SL%':>5}"
    f" {'ASA':>4} {'AHT':>4} {'occ%':>4} {'ready':>5} ok"
)


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def _line(label: str, width: int, row: Row) -> str:
    f = row.figures
    ready = "" if row.agents_ready is None else f"{row.agents_ready:.1f}"
    occupancy = "-" if f.occupancy is None else f"{100 * f.occupancy:.0f}"
    mark = {True: "ok", False: "NO", None: "-"}[row.met]
    return (
        f"{label:<{width}} {f.offered:>5} {f.answered:>5} {f.abandoned:>5}"
        f" {f.short_abandoned:>5} {f.overflowed + f.rejected + f.failed:>4}"
        f" {_pct(f.answer_rate):>5} {_pct(f.sl_offered):>5} {_secs(f.asa):>4}"
        f" {_secs(f.aht):>4} {occupancy:>4} {ready:>5} {mark}"
    )


def _label(key: str, by: str, single_day: bool) -> str:
    if by == "hour":
        day, hour = key.split("T")
        return f"{hour}:00" if single_day else f"{day} {hour}h"
    return key


def render_text(report: Report, by: str = "hour") -> str:
    """The report as a table (fits 80 columns): one line per hour, day or queue, then
    the total; rows below the target are marked ``NO``."""
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {GROUPINGS}")
    s = report.settings
    title = f"{s.site or 'ACD'} report, {report.span_text()} ({s.timezone})"
    if by == "agent":
        return render_agents(report, title)
    rows = report.rows[by]
    single_day = len(report.rows["day"]) <= 1
    labels = [_label(r.key, by, single_day) for r in rows]
    width = max([len(label) for label in labels] + [5, len(by)])
    table = [
        f"{by:<{width}} {_HEADER}",
        *(_line(label, width, r) for label, r in zip(labels, rows, strict=True)),
        _line("total", width, report.total),
    ]
    if not report.total.figures.calls:
        table = ["no calls in this period"]
    lines = [
        title,
        f"Queue: {s.queue or 'all'}. Target: {100 * s.target:.1f} % answered."
        f" SL within {s.threshold_text()}.",
        "",
        *table,
        "",
        "offer: offered (short abandons and closed apart); ovfl: overflowed, rejected or"
        " failed; answ%: answer rate; SL%: answered within the threshold / offered;"
        " ASA, AHT in s; occ%: handling / staffed time; ready: mean agents ready.",
    ]
    total = report.total
    if total.met is not None:
        verdict = "reached" if total.met else "NOT reached"
        missed = [r.key for r in rows if r.met is False] if by != "queue" else []
        lines.append(
            f"Target {verdict}: {_pct(total.figures.answer_rate)} % answered"
            + (
                f"; below target: {', '.join(_label(k, by, single_day) for k in missed)}"
                if missed
                else ""
            )
            + "."
        )
    fb = report.fallback
    if fb["calls"]:
        lines.append(
            f"Switch fallback (controller gone): {fb['calls']} calls,"
            f" {fb['answered']} answered, {fb['abandoned']} abandoned."
        )
    return "\n".join(line if line in table else _wrap(line) for line in lines)


def hours_minutes(seconds: float) -> str:
    """``3725`` → ``1:02`` (hours:minutes, rounded to the minute)."""
    minutes = round(seconds / 60)
    return f"{minutes // 60}:{minutes % 60:02d}"


def not_ready_text(row: AgentRow, reasons: Mapping[int, str]) -> str:
    """``1 break 0:15, 9 no-answer 0:02`` (reason code, label, time), or ``-``."""
    parts = [
        f"{code} {reasons.get(code, '')} {hours_minutes(secs)}".replace("  ", " ")
        for code, secs in sorted(row.not_ready.items())
        if secs >= 30
    ]
    return ", ".join(parts) or "-"


def render_agents(report: Report, title: str) -> str:
    """One line per agent: legs answered, talk, wrap-up, ready idle, busy (h:mm),
    occupancy, then time not ready by reason; ``no calls`` for an empty period."""
    s = report.settings
    agents = report.agents
    lines = [title, f"Queue: {s.queue or 'all'}. Per agent, times in h:mm.", ""]
    if not agents:
        return "\n".join([*lines, "no calls and no agent activity in this period"])
    width = max(5, *(len(a.agent_id) for a in agents))
    lines.append(
        f"{'agent':<{width}} {'calls':>5} {'talk':>6} {'wrap':>6} {'idle':>6} {'busy':>6}"
        f" {'occ%':>4}  not ready (reason h:mm)"
    )
    for a in agents:
        occupancy = "-" if a.occupancy is None else f"{100 * a.occupancy:.0f}"
        lines.append(
            f"{a.agent_id:<{width}} {a.calls:>5} {hours_minutes(a.talk):>6}"
            f" {hours_minutes(a.wrapup):>6} {hours_minutes(a.idle):>6}"
            f" {hours_minutes(a.busy):>6} {occupancy:>4}  {not_ready_text(a, s.reasons)}"
        )
    lines += [
        "",
        _wrap(
            "calls: legs answered; talk, wrap: their talk and wrap-up time; idle: ready and"
            " waiting for a call; busy: ringing, on a call or in wrap-up; occ%: (talk +"
            " wrap-up) / (idle + busy); not ready: idle in not-ready, by reason."
        ),
    ]
    return "\n".join(lines)


def _wrap(line: str, width: int = 80) -> str:
    if len(line) <= width:
        return line
    out, current = [], ""
    for word in line.split(" "):
        if current and len(current) + 1 + len(word) > width:
            out.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    return "\n".join([*out, current])


def to_csv(report: Report, by: str = "hour") -> str:
    """The rows of one grouping and the total as CSV, every figure in its own column
    (per agent: one column per not-ready reason seen)."""
    if by == "agent":
        return _agents_csv(report)
    rows = [*report.rows[by], report.total]
    buffer = io.StringIO()
    columns = list(rows[0].to_dict())
    writer = csv.DictWriter(buffer, [by, *columns[1:]], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        data = row.to_dict()
        writer.writerow({by: data.pop("key"), **data})
    return buffer.getvalue()


def _agents_csv(report: Report) -> str:
    reasons = sorted({code for a in report.agents for code in a.not_ready})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        ["agent", "calls", "talk", "wrapup", "ready_idle", "busy", "staffed", "occupancy"]
        + [f"not_ready_{code}" for code in reasons]
    )
    for a in report.agents:
        d = a.to_dict()
        writer.writerow(
            [a.agent_id, a.calls]
            + [d[k] for k in ("talk", "wrapup", "ready_idle", "busy", "staffed", "occupancy")]
            + [round(a.not_ready.get(code, 0.0), 3) for code in reasons]
        )
    return buffer.getvalue()

"""Reports from call records: did we reach the target, hour by hour, day by day, queue by
queue?

``build_report(records, changes, settings)`` groups legs with ``acd.figures`` (the one
place figures are computed), adds the target check (answer rate against the target, each
row flagged), the agents ready over the day (from agent notifications) and occupancy
(handling time / staffed time). ``store_report`` does the same from a ``CallStore``,
adding the figures it kept of purged detail (`Kept`, `acd.retention`).
Outputs: ``render_text`` (an 80-column table), ``to_csv``, ``Report.to_dict`` (JSON)
and ``plot`` (PNG charts; needs the ``plot`` extra, matplotlib).
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from acd.calendar import midnight
from acd.commands import AgentChanged
from acd.config import Config
from acd.errors import AcdError
from acd.figures import (
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
from acd.records import CallRecord
from acd.store import CallStore

GROUPINGS = ("hour", "day", "queue")
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
        )

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
    rows: dict[str, list[Row]]  # "hour" / "day" / "queue" → rows in key order
    ready_series: list[tuple[float, int]] = field(default_factory=list)  # (at, agents ready)

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
        }


@dataclass(frozen=True)
class Kept:
    """What the store kept of purged detail (`acd.retention`): ``(queue, hour start,
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
    for by in ("hour", "day"):
        staffed = inside(staffed_seconds(notes, end, by, tz), by)
        ready = inside(ready_seconds(series, end, by, tz), by)
        kept.add_staffing(staffed, ready, by, tz)
        figures = grouped(legs, by, tz, staffed=staffed, kept=kept.sums(by, tz), **options)
        keys = sorted(set(figures) | set(staffed) | set(ready))
        if by == "day":  # mean of the day's hours shown
            staffed_total = sum(staffed.values())
            hours_per_day: dict[str, int] = {}
            for row in rows["hour"]:
                hours_per_day[row.key[:10]] = hours_per_day.get(row.key[:10], 0) + 1
            span = {k: 3600.0 * hours_per_day.get(k, 1) for k in keys}
        else:
            span = dict.fromkeys(keys, 3600.0)
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
    total = sums.figures(staffed_total if notes or kept.staffing else None)
    in_window = [p for p in series if since is None or p[0] >= since]
    before = [n for at, n in series if since is not None and at < since]
    if before and before[-1] and (not in_window or in_window[0][0] > since):
        in_window.insert(0, (since, before[-1]))  # the level when the window opens
    return Report(settings, since, until, Row("total", total, None, check(total)), rows, in_window)


def store_report(
    store: CallStore,
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
    rows = report.rows[by]
    single_day = len(report.rows["day"]) <= 1
    labels = [_label(r.key, by, single_day) for r in rows]
    width = max([len(label) for label in labels] + [5, len(by)])
    days = [r.key for r in report.rows["day"]]
    span = "no calls" if not days else days[0] if single_day else f"{days[0]} to {days[-1]}"
    title = f"{s.site or 'ACD'} report, {span} ({s.timezone})"
    table = [
        f"{by:<{width}} {_HEADER}",
        *(_line(label, width, r) for label, r in zip(labels, rows, strict=True)),
        _line("total", width, report.total),
    ]
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
    return "\n".join(line if line in table else _wrap(line) for line in lines)


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
    """The rows of one grouping and the total as CSV, every figure in its own column."""
    rows = [*report.rows[by], report.total]
    buffer = io.StringIO()
    columns = list(rows[0].to_dict())
    writer = csv.DictWriter(buffer, [by, *columns[1:]], lineterminator="\n")
    writer.writeheader()
    for row in rows:
        data = row.to_dict()
        writer.writerow({by: data.pop("key"), **data})
    return buffer.getvalue()


# -- charts -----------------------------------------------------------------------------


def plot(report: Report, directory: str | Path) -> list[Path]:
    """Write PNG charts to ``directory``: answer rate and service level per hour against
    the target, offered vs answered per hour, agents ready over the day. Needs
    matplotlib (the ``plot`` extra)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt
    except ImportError:
        raise AcdError("charts need matplotlib: pip install 'acd-controller[plot]'") from None
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    s = report.settings
    tz = ZoneInfo(s.timezone)
    hours = report.rows["hour"]
    single_day = len(report.rows["day"]) <= 1
    labels = [_label(r.key, "hour", single_day) for r in hours]
    x = range(len(hours))
    title = f"{s.site or 'ACD'}, {s.queue or 'all queues'}"
    paths = []

    def pct(values: list[float | None]) -> list[float]:
        return [float("nan") if v is None else 100 * v for v in values]

    def finish(fig, ax, name: str, hourly: bool = True) -> None:
        ax.grid(True, alpha=0.3)
        if not hourly:
            fig.autofmt_xdate()
        elif hours:
            step = max(1, len(labels) // 12)
            ax.set_xticks(list(x)[::step], labels[::step], rotation=45 if not single_day else 0)
        fig.tight_layout()
        path = out / name
        fig.savefig(path, dpi=100)
        plt.close(fig)
        paths.append(path)

    fig, ax = plt.subplots(figsize=(9, 4.5))
    answer = pct([r.figures.answer_rate for r in hours])
    service = pct([r.figures.sl_offered for r in hours])
    ax.plot(x, answer, "o-", label="answer rate")
    ax.plot(x, service, "s--", label="service level")
    ax.axhline(100 * s.target, color="red", linewidth=1, label=f"target {100 * s.target:g} %")
    for i, r in enumerate(hours):
        if r.met is False:
            ax.axvspan(i - 0.5, i + 0.5, color="red", alpha=0.08, linewidth=0)
    lowest = min([50.0, *(v for v in answer + service if not math.isnan(v))])
    ax.set_ylim(lowest - 2, 101)
    ax.set_ylabel("% of offered calls")
    ax.set_xlabel(f"service level: answered within {s.threshold_text()}; shaded: below target")
    ax.set_title(f"{title}: answer rate and service level per hour")
    ax.legend(loc="lower left", ncol=3, fontsize="small")
    finish(fig, ax, "answer-rate.png")

    fig, ax = plt.subplots(figsize=(9, 4.5))
    width = 0.4
    ax.bar([i - width / 2 for i in x], [r.figures.offered for r in hours], width, label="offered")
    ax.bar([i + width / 2 for i in x], [r.figures.answered for r in hours], width, label="answered")
    ax.set_ylabel("calls")
    ax.set_title(f"{title}: offered and answered calls per hour")
    ax.legend()
    finish(fig, ax, "offered-answered.png")

    fig, ax = plt.subplots(figsize=(9, 4.5))
    if report.ready_series:
        times = [datetime.fromtimestamp(t, tz) for t, _ in report.ready_series]
        counts = [n for _, n in report.ready_series]
        ax.step(times, counts, where="post")
        ax.fill_between(times, counts, step="post", alpha=0.2)
        ax.xaxis.set_major_formatter(
            mdates.DateFormatter("%H:%M" if single_day else "%m-%d %H:%M", tz=tz)
        )
    ax.set_ylabel("agents ready")
    ax.set_ylim(bottom=0)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"{title}: agents ready over the day")
    finish(fig, ax, "agents-ready.png", hourly=False)
    return paths

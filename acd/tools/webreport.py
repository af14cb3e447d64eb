"""The console's report page (``/report``): what `acd report` computes for a day range,
as an HTML table and a server-rendered SVG chart against the target (pure: no I/O)."""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import date
from typing import Any

from acd.planning.reporting import Report, Row
from acd.tools.webview import grade

BYS = ("hour", "day", "week", "month", "queue")
MAX_DAYS = 366  # the longest range one page reads


@dataclass(frozen=True)
class ReportQuery:
    """A checked request: local days ``first`` to ``last`` (inclusive), rows ``by``,
    one ``queue`` or all."""

    first: date
    last: date
    by: str = "hour"
    queue: str | None = None

    @classmethod
    def parse(cls, query: dict[str, str], today: date, queues: list[str]) -> ReportQuery:
        """From the page's parameters (``from``, ``to``, ``by``, ``queue``); ``ValueError``
        naming the bad one."""
        try:
            first = date.fromisoformat(query.get("from") or today.isoformat())
            last = date.fromisoformat(query.get("to") or first.isoformat())
        except ValueError:
            raise ValueError("dates look like 2026-03-10") from None
        if last < first:
            raise ValueError("'to' is before 'from'")
        if (last - first).days >= MAX_DAYS:
            raise ValueError(f"at most {MAX_DAYS} days at once")
        by = query.get("by") or "hour"
        if by not in BYS:
            raise ValueError(f"by must be one of {', '.join(BYS)}")
        queue = query.get("queue") or None
        if queue is not None and queue not in queues:
            raise ValueError(f"no queue {queue!r}")
        return cls(first, last, by, queue)

    def params(self) -> str:
        """The query string of this request."""
        q = f"from={self.first}&to={self.last}&by={self.by}"
        return q + (f"&queue={self.queue}" if self.queue else "")


def _pct(v: Any) -> str:
    return f"{100 * v:.1f}%" if isinstance(v, int | float) else "-"


def _s(v: Any) -> str:
    return f"{v:.0f}" if isinstance(v, int | float) else "-"


def table(report: Report, by: str) -> str:
    """The rows and the total, each answer rate graded against the target."""
    head = ("offered", "answered", "abandoned", "answer rate", "service level", "ASA s", "AHT s")
    out = [f"<table class='grid'><thead><tr><th>{html.escape(by)}</th>"]
    out += [f"<th>{h}</th>" for h in head] + ["<th>target</th></tr></thead><tbody>"]
    target = report.settings.target
    for row in [*report.rows[by], report.total]:
        f = row.figures
        key = "total" if row is report.total else row.key
        g = grade(f.answer_rate, report.settings.queue_targets.get(row.key, target))
        out.append(
            f"<tr><td>{html.escape(key)}</td><td class='n'>{f.offered}</td>"
            f"<td class='n'>{f.answered}</td><td class='n'>{f.abandoned}</td>"
            f"<td class='n grade {g or ''}'>{_pct(f.answer_rate)}</td>"
            f"<td class='n'>{_pct(f.sl_offered)}</td><td class='n'>{_s(f.asa)}</td>"
            f"<td class='n'>{_s(f.aht)}</td><td>{_met(row)}</td></tr>"
        )
    return "".join(out) + "</tbody></table>"


def _met(row: Row) -> str:
    return {True: "met", False: "<b class='grade red'>NOT met</b>", None: "-"}[row.met]


COLOURS = {"green": "#1f9d55", "amber": "#e0a100", "red": "#d64545", None: "#7a8290"}


def chart(report: Report, by: str, width: int = 900, height: int = 260) -> str:
    """An SVG chart: per row, offered (grey) and answered (green) bars on the left scale,
    the answer rate (dots, graded) against the target (dashed) on the right one."""
    rows = report.rows[by]
    if not rows:
        return "<p>No calls in this range.</p>"
    left, right, top, bottom = 40, 90, 10, 40
    w, h = width - left - right, height - top - bottom
    most = max(max(r.figures.offered for r in rows), 1)
    slot = w / len(rows)
    target = report.settings.target
    y_rate = lambda v: top + h * (1 - v)  # noqa: E731
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' class='chart' viewBox='0 0 {width} {height}'"
        " role='img' "
        f"aria-label='offered, answered and answer rate per {by}'>",
        f"<line x1='{left}' y1='{top + h}' x2='{left + w}' y2='{top + h}' stroke='#999'/>",
        f"<line x1='{left}' y1='{y_rate(target):.1f}' x2='{left + w}' y2='{y_rate(target):.1f}'"
        f" stroke='#d64545' stroke-dasharray='6 4'/>",
        f"<text x='{left + w + 4}' y='{y_rate(target) + 4:.1f}' font-size='11'>"
        f"target {100 * target:.0f}%</text>",
        f"<text x='4' y='{top + 10}' font-size='11'>{most}</text>",
    ]
    for i, row in enumerate(rows):
        f = row.figures
        x = left + i * slot
        bar = min(max(slot * 0.35, 1), 28)
        for j, (value, colour) in enumerate(((f.offered, "#b8c0cc"), (f.answered, "#1f9d55"))):
            bh = h * value / most
            parts.append(
                f"<rect x='{x + slot / 2 - bar + j * bar:.1f}' y='{top + h - bh:.1f}' "
                f"width='{bar:.1f}' height='{bh:.1f}' fill='{colour}'/>"
            )
        if f.answer_rate is not None:
            colour = COLOURS[grade(f.answer_rate, target)]
            parts.append(
                f"<circle cx='{x + slot / 2:.1f}' cy='{y_rate(f.answer_rate):.1f}' r='4' "
                f"fill='{colour}'><title>{html.escape(row.key)}: {_pct(f.answer_rate)}</title>"
                "</circle>"
            )
        label = row.key[11:] + "h" if by == "hour" else row.key  # 2026-03-10T09: 09h
        parts.append(
            f"<text x='{x + slot / 2:.1f}' y='{height - bottom + 16}' font-size='11' "
            f"text-anchor='middle'>{html.escape(label)}</text>"
        )
    parts.append(
        f"<text x='{left}' y='{height - 6}' font-size='11'>bars: offered (grey), answered "
        "(green); dots: answer rate (right scale 0-100%)</text></svg>"
    )
    return "".join(parts)

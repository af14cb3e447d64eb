"""A one-page HTML report of a period (``acd report --html FILE``): the verdict, the
table, the agents and the charts embedded (base64 PNG): one file to mail or print."""

from __future__ import annotations

import base64
import html
import tempfile
from pathlib import Path

from acd.planning.reporting import Report, hours_minutes, not_ready_text, render_text

_STYLE = """
body { font-family: sans-serif; max-width: 60em; margin: 2em auto; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
pre { font-size: 0.8em; background: #f6f6f6; padding: 0.8em; overflow-x: auto; }
table { border-collapse: collapse; font-size: 0.85em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.2em 0.6em; text-align: right; }
th:first-child, td:first-child, td:last-child { text-align: left; }
img { width: 100%; margin: 0.5em 0; }
.no { color: #b00; font-weight: bold; } .ok { color: #070; font-weight: bold; }
@media print { body { margin: 0; } img { page-break-inside: avoid; } }
"""


def html_report(report: Report, by: str = "hour") -> str:
    """The page: title, verdict, the ``by`` table, per-agent table and the charts (when
    matplotlib is installed; otherwise the page says so)."""
    from acd.errors import AcdError
    from acd.planning.report_charts import plot

    s = report.settings
    title = f"{s.site or 'ACD'}: {s.queue or 'all queues'}, {report.span_text()}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>{_verdict(report)}</p>",
    ]
    by = by if by != "agent" else "hour"
    parts += ["<h2>Figures</h2>", f"<pre>{html.escape(render_text(report, by))}</pre>"]
    parts += ["<h2>Agents</h2>", _agents_table(report)]
    parts.append("<h2>Charts</h2>")
    with tempfile.TemporaryDirectory(prefix="acd-report-") as tmp:
        try:
            charts = plot(report, tmp, by)
        except AcdError as exc:
            parts.append(f"<p>{html.escape(str(exc))}</p>")
            charts = []
        for path in charts:
            data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
            alt = html.escape(path.stem.replace("-", " "))
            parts.append(f'<img alt="{alt}" src="data:image/png;base64,{data}">')
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def _verdict(report: Report) -> str:
    total = report.total
    f = total.figures
    if total.met is None:
        return "No calls in this period."
    word = '<span class="ok">reached</span>' if total.met else '<span class="no">NOT reached</span>'
    return (
        f"Target {100 * report.settings.target:g} % answered: {word}"
        f" ({100 * f.answer_rate:.1f} %: {f.answered} answered of {f.offered} offered,"
        f" {f.abandoned} abandoned)."
    )


def _agents_table(report: Report) -> str:
    if not report.agents:
        return "<p>No agent activity in this period.</p>"
    head = "".join(
        f"<th>{h}</th>"
        for h in ("agent", "calls", "talk", "wrap-up", "ready idle", "busy", "occupancy")
    )
    rows = []
    for a in report.agents:
        occupancy = "-" if a.occupancy is None else f"{100 * a.occupancy:.0f} %"
        cells = [
            html.escape(a.agent_id),
            str(a.calls),
            *(hours_minutes(v) for v in (a.talk, a.wrapup, a.idle, a.busy)),
            occupancy,
            html.escape(not_ready_text(a, report.settings.reasons)),
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}<th>not ready (reason h:mm)</th></tr>" + "".join(rows) + "</table>"

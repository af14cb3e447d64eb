"""PNG charts of a report (``acd report --plot DIR``; needs matplotlib, the ``plot`` extra).

Per hour (``by="hour"``) or per day, ISO week or month:

- ``answer-rate.png``: answer rate and service level against the target;
- ``offered-answered.png``: offered, answered and abandoned calls side by side;
- ``agents-ready.png``: agents ready (stacked: ready and idle, busy on a call) beside
  the agents the staffing maths says the traffic needed (`needed_agents`).

Every title carries the site, the queue and the dates; captions wrap and the figure is
saved with its text inside (``bbox_inches="tight"``); a period without calls draws
"no calls" instead of an empty axis.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from acd.errors import AcdError
from acd.planning.reporting import PERIODS, Report, hour_period
from acd.planning.staffing import StaffingError, Targets, Traffic, required_agents

CHARTS = ("answer-rate.png", "offered-answered.png", "agents-ready.png")


def needed_agents(report: Report) -> tuple[dict[str, int], str]:
    """Agents the hour's traffic needed, per hour key, and how they were computed.

    Traffic: the hour's offered calls and AHT (the period's AHT for hours without an
    answered call). With abandons, Erlang A, patience estimated as total waiting time /
    abandons, to reach the answer-rate target; without, Erlang C to answer the target
    share within the service-level threshold."""
    s = report.settings
    total = report.total.figures
    aht = total.aht or 180.0
    # exponential patience, censored by answers: its rate is abandons / time waited
    patience = max(report.waited / total.abandoned, 1.0) if total.abandoned else None
    if patience is not None:
        targets = Targets(min_answer_rate=min(s.target, 0.999))
        basis = (
            f"Erlang A: answer rate ≥ {100 * s.target:g} %, patience {patience:.0f} s"
            " (estimated from the waits and abandons)"
        )
    else:
        targets = Targets(sl=min(s.target, 0.999), threshold_s=s.threshold())
        basis = f"Erlang C: {100 * s.target:g} % answered within {s.threshold():g} s"
    needed = {}
    for row in report.rows["hour"]:
        f = row.figures
        try:
            traffic = Traffic(f.offered, f.aht or aht, 3600.0, patience)
            needed[row.key] = required_agents(traffic, targets).agents
        except StaffingError:
            continue
    return needed, f"needed: {basis}, the hour's offered calls and AHT"


def plot(report: Report, directory: str | Path, by: str = "hour") -> list[Path]:
    """Write the three charts to ``directory``; their paths. ``by``: hour, day, week or
    month (the x axis)."""
    if by not in PERIODS:
        by = "hour"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AcdError("charts need matplotlib: pip install 'acd-controller[plot]'") from None
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    s = report.settings
    rows = report.rows[by]
    single_day = len(report.rows["day"]) <= 1
    labels = [_label(r.key, by, single_day) for r in rows]
    x = list(range(len(rows)))
    heading = f"{s.site or 'ACD'} · {s.queue or 'all queues'} · {report.span_text()}"
    empty = report.total.figures.calls == 0
    paths: list[Path] = []

    def finish(fig, ax, name: str, subject: str, caption: str) -> None:
        ax.set_title(f"{heading}\n{subject} per {by}", fontsize="medium")
        if empty:
            ax.set_axis_off()
            ax.text(0.5, 0.5, "no calls", ha="center", va="center", fontsize=20,
                    transform=ax.transAxes)  # fmt: skip
        else:
            ax.grid(True, alpha=0.3)
            step = max(1, math.ceil(len(labels) / 16))
            shown = labels[::step]
            flat = sum(map(len, shown)) <= 90  # fits across the axis unrotated
            ax.set_xticks(x[::step], shown, rotation=0 if flat else 45,
                          ha="center" if flat else "right", rotation_mode="anchor")  # fmt: skip
            ax.set_xlim(-0.6, len(labels) - 0.4)
        fig.text(0.01, 0.0, textwrap.fill(caption, 120), fontsize="small", va="top")
        path = out / name
        fig.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(fig)
        paths.append(path)

    def pct(values: list[float | None]) -> list[float]:
        return [math.nan if v is None else 100 * v for v in values]

    fig, ax = plt.subplots(figsize=(9, 4.5))
    if not empty:
        answer = pct([r.figures.answer_rate for r in rows])
        service = pct([r.figures.sl_offered for r in rows])
        ax.plot(x, answer, "o-", label="answer rate")
        ax.plot(x, service, "s--", label="service level")
        ax.axhline(100 * s.target, color="red", linewidth=1, label=f"target {100 * s.target:g} %")
        for i, r in enumerate(rows):
            if r.met is False:
                ax.axvspan(i - 0.5, i + 0.5, color="red", alpha=0.08, linewidth=0)
        lowest = min([50.0, *(v for v in answer + service if not math.isnan(v))])
        ax.set_ylim(lowest - 2, 101)
        ax.set_ylabel("% of offered calls")
        ax.legend(loc="lower left", ncol=3, fontsize="small", framealpha=0.9)
    finish(
        fig, ax, "answer-rate.png", "answer rate and service level",
        f"Service level: answered within {s.threshold_text()} / offered. Shaded: below the"
        f" answer-rate target. Short abandons (under {s.short_abandon:g} s) are not offered.",
    )  # fmt: skip

    fig, ax = plt.subplots(figsize=(9, 4.5))
    if not empty:
        width = 0.27
        for shift, name, values in (
            (-width, "offered", [r.figures.offered for r in rows]),
            (0.0, "answered", [r.figures.answered for r in rows]),
            (width, "abandoned", [r.figures.abandoned for r in rows]),
        ):
            ax.bar([i + shift for i in x], values, width, label=name)
        ax.set_ylabel("calls")
        ax.legend(fontsize="small")
    total = report.total.figures
    finish(
        fig, ax, "offered-answered.png", "offered, answered and abandoned calls",
        f"Total: {total.offered} offered, {total.answered} answered, {total.abandoned}"
        f" abandoned ({total.short_abandoned} short abandons apart); overflowed, rejected"
        " and failed calls are offered but neither answered nor abandoned.",
    )  # fmt: skip

    fig, ax = plt.subplots(figsize=(9, 4.5))
    needed, basis = needed_agents(report) if not empty else ({}, "")
    if not empty:
        idle, busy, need = _agents_by(report, by, needed, [r.key for r in rows])
        ax.bar(x, idle, 0.6, label="ready, idle")
        ax.bar(x, busy, 0.6, bottom=idle, label="on a call (ringing, talking, wrap-up)")
        ax.hlines(need, [i - 0.4 for i in x], [i + 0.4 for i in x], color="black",
                  linewidth=2.5, label="needed")  # fmt: skip
        ax.set_ylabel("agents (mean over the period)")
        top = max([*(i + b for i, b in zip(idle, busy, strict=True)), *need, 1.0])
        ax.set_ylim(0, top * 1.3)  # room for the legend above the bars
        ax.legend(fontsize="small", loc="upper left", ncol=3)
    caption = "Ready: mean agents logged in and not on a not-ready pause."
    finish(fig, ax, "agents-ready.png", "agents ready and agents needed",
           caption + (f" {basis}." if basis else ""))  # fmt: skip
    return paths


def _agents_by(
    report: Report, by: str, needed: dict[str, int], keys: list[str]
) -> tuple[list[float], list[float], list[float]]:
    """Mean agents idle, busy and needed per row key (hour means averaged over a period's
    hours shown)."""
    sums: dict[str, list[float]] = {k: [0.0, 0.0, 0.0, 0] for k in keys}
    for hour in report.rows["hour"]:
        k = hour.key if by == "hour" else hour_period(hour.key, by)
        if k not in sums:
            continue
        presence = report.presence.get(hour.key, {})
        acc = sums[k]
        acc[0] += presence.get("idle", 0.0)
        acc[1] += presence.get("busy", 0.0)
        acc[2] += needed.get(hour.key, 0)
        acc[3] += 1
    means = {k: [v / max(1, n) for v in (i, b, d)] for k, (i, b, d, n) in sums.items()}
    return tuple([means[k][j] for k in keys] for j in range(3))


def _label(key: str, by: str, single_day: bool) -> str:
    if by == "hour":
        day, hour = key.split("T")
        return f"{hour}:00" if single_day else f"{day[5:]} {hour}h"
    return key

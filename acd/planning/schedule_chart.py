"""PNG chart of a schedule: agents working against agents required, interval by
interval over the week (``acd schedule --png``; needs matplotlib, the ``plot`` extra)."""

from __future__ import annotations

from pathlib import Path

from acd.errors import AcdError
from acd.planning.schedule import Schedule


def plot(result: Schedule, path: str | Path, team: str) -> Path:
    """Draw the coverage chart to ``path``; the path."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise AcdError("charts need matplotlib: pip install 'acd-controller[plot]'") from None
    req = result.requirement
    x = list(range(len(req.starts)))
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.step(x, req.agents, where="post", color="black", linewidth=1.5, label="required")
    ax.fill_between(x, result.coverage, step="post", alpha=0.35, label="working")
    short = [c + s for c, s in zip(result.coverage, result.shortfall, strict=True)]
    ax.fill_between(x, result.coverage, short, step="post", color="red", alpha=0.3,
                    label="short")  # fmt: skip
    ticks, labels = [], []
    for day, indices in req.by_day().items():
        ticks.append(indices[0])
        labels.append(f"{day:%a %d/%m}")
        ax.axvline(indices[0], color="grey", linewidth=0.6)
    ax.set_xticks(ticks, labels)
    ax.set_xlim(0, len(x))
    ax.set_ylim(0, max([*req.agents, *result.coverage, 1.0]) * 1.25)
    ax.set_ylabel("agents")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", ncol=3, fontsize="small")
    minutes = req.step.total_seconds() / 60
    ax.set_title(
        f"{team}: {result.work_hours:.0f} agent-hours worked for {req.agent_hours():.0f}"
        f" required; {result.shortfall_hours:.1f} short, {result.over_hours:.1f} over",
        fontsize="medium",
    )
    fig.text(
        0.01, 0.0,
        f"{minutes:g}-minute intervals, days side by side (closed hours left out)."
        f" Working: agents on shift and not on their pause.",
        fontsize="small", va="top",
    )  # fmt: skip
    out = Path(path)
    fig.savefig(out, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return out

"""``acd schedule``: weekly shifts meeting a requirement of agents per interval."""

from __future__ import annotations

import dataclasses

import click

from acd.cli.common import config_option, emit_json, fail, json_option, refuse, write_whole
from acd.config import Config, ScheduleConfig, load_config
from acd.planning.demand import load_forecast, plan_staffing
from acd.planning.schedule import (
    Requirement,
    Schedule,
    load_requirements,
    requirement_from_plan,
    schedule_named,
    schedule_pool,
    with_shrinkage,
)
from acd.planning.staffing import Targets

_FORECAST_ONLY = (
    "aht", "patience", "min_answer_rate", "max_abandon", "sl", "threshold", "confidence",
)  # fmt: skip
"""The options that turn a forecast into agents: a requirement file gives the agents."""


@click.command(short_help="Weekly shifts and breaks that meet a staffing requirement.")
@click.option(
    "--requirements",
    "requirements_path",
    type=click.Path(dir_okay=False),
    help="CSV start,agents: agents required per interval (local time).",
)
@click.option(
    "--forecast",
    "forecast_path",
    type=click.Path(dir_okay=False),
    help="CSV start,mean,lo80,hi80 from 'acd forecast': agents as acd staffing --forecast.",
)
@click.option(
    "--confidence",
    type=float,
    default=0.9,
    show_default=True,
    help="With --forecast: probability that the week meets the targets (as acd staffing).",
)
@click.option("--aht", type=float, help="Average handling time, s (with --forecast).")
@click.option("--patience", type=float, help="Mean patience, s: Erlang A (with --forecast).")
@click.option("--min-answer-rate", type=float, help="Target: at least this fraction answered.")
@click.option("--max-abandon", type=float, help="Target: at most this fraction abandoned.")
@click.option("--sl", type=float, help="Target: this fraction answered within --threshold.")
@click.option(
    "--threshold", type=float, default=20.0, show_default=True, help="Service-level threshold, s."
)
@click.option(
    "--shrinkage",
    type=float,
    default=0.0,
    show_default=True,
    help="Fraction of paid time off the phones: agents required ÷ (1 − shrinkage).",
)
@config_option
@click.option("--queue", help="With --config: only the agents with this queue's skill.")
@click.option(
    "--agents", "head_count", type=click.IntRange(1, 10_000), help="A free head count of agents."
)
@click.option(
    "--contract-hours",
    type=click.FloatRange(0.25, 168),
    help="Weekly hours of each agent of --agents (or of [agents] without contract_hours).",
)
@click.option(
    "--shift-hours",
    help="Lengths of work of a shift, hours, comma-separated (default: [schedule] or 4,6,7,8).",
)
@click.option(
    "--time-limit",
    type=click.FloatRange(0.1, 86400),
    help="Solver time limit, s (default: [schedule] time_limit_s, 60).",
)
@click.option("--out", "out_path", type=click.Path(dir_okay=False), help="Write the shifts (CSV).")
@click.option(
    "--png", "png_path", type=click.Path(dir_okay=False), help="Chart coverage vs requirement."
)
@json_option
def schedule(
    requirements_path: str | None,
    forecast_path: str | None,
    confidence: float,
    aht: float | None,
    patience: float | None,
    min_answer_rate: float | None,
    max_abandon: float | None,
    sl: float | None,
    threshold: float,
    shrinkage: float,
    config_path: str | None,
    queue: str | None,
    head_count: int | None,
    contract_hours: float | None,
    shift_hours: str | None,
    time_limit: float | None,
    out_path: str | None,
    png_path: str | None,
    as_json: bool,
) -> None:
    """Weekly shifts for named agents ([agents] of --config, each with contract_hours)
    or for a free head count (--agents N --contract-hours H), meeting the agents
    required per interval at the least shortfall, then the least over-staffing.

    Shifts obey [schedule] of --config (defaults: French territorial rules: 10 h a day,
    amplitude 12 h, 48 h a week, 11 h rest, a 20-minute pause before 6 h of work).
    Prints the LP bound, the schedule's objective and their gap, the shortfall per day.

    \b
    Examples:
      acd schedule --requirements need.csv --agents 6 --contract-hours 35 --out shifts.csv
      acd schedule --forecast forecast.csv --aht 180 --patience 120 --min-answer-rate 0.99 \\
                   --config site.toml --queue front-desk --out shifts.csv --png coverage.png
    """
    if (requirements_path is None) == (forecast_path is None):
        fail("give one of --requirements FILE or --forecast FILE")
    rules = ScheduleConfig()
    agents: list[tuple[str, float]] = []
    if config_path is not None:
        cfg = load_config(config_path)
        rules = cfg.schedule
        if head_count is None:
            agents = _named(cfg, queue, contract_hours, config_path)
    elif queue is not None:
        fail("--queue needs --config (the agents and their skills)")
    if shift_hours is not None:
        rules = dataclasses.replace(rules, shift_hours=_hours(shift_hours))
    if time_limit is not None:
        rules = dataclasses.replace(rules, time_limit_s=time_limit)
    if head_count is not None and contract_hours is None:
        fail("--agents needs --contract-hours (weekly hours of each agent)")
    if head_count is not None:
        refuse(("queue",), "picks the named agents of --config: not with --agents N")
    if head_count is None and not agents:
        fail("give --agents N --contract-hours H, or --config with agents in [agents]")
    req = _requirement(
        requirements_path, forecast_path, confidence, aht, patience,
        Targets(sl=sl, threshold_s=threshold, min_answer_rate=min_answer_rate,
                max_abandon=max_abandon),
        shrinkage,
    )  # fmt: skip
    if head_count is not None:
        assert contract_hours is not None
        result = schedule_pool(req, head_count, contract_hours, rules)
        team = f"{head_count} agents of {contract_hours:g} h"
    else:
        result = schedule_named(req, agents, rules)
        team = f"{len(agents)} named agents ({sum(h for _, h in agents):g} contract hours)"
    if out_path is not None:
        write_whole(out_path, result.to_csv())
    if png_path is not None:
        from acd.planning.schedule_chart import plot

        plot(result, png_path, team)
    if as_json:
        emit_json(_as_json(result, team))
    else:
        _print(result, team)


def _named(
    cfg: Config, queue: str | None, contract_hours: float | None, source: str
) -> list[tuple[str, float]]:
    agents = list(cfg.agents.values())
    if queue is not None:
        if queue not in cfg.queues:
            fail(f"{source}: no queue {queue!r} (queues: {', '.join(sorted(cfg.queues))})")
        skill = cfg.queues[queue].skill
        agents = [a for a in agents if skill in a.skills]
    team = []
    for agent in agents:
        hours = agent.contract_hours if agent.contract_hours is not None else contract_hours
        if hours is None:
            fail(
                f"{source}: agents.{agent.id}.contract_hours is required to schedule"
                " (or give --contract-hours for every agent without it)"
            )
        team.append((agent.id, hours))
    return team


def _hours(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        fail(f"--shift-hours must be hours separated by commas (e.g. 4,6,7.5), got {text!r}")
    if not values or any(not 0 < v <= 24 or round(v * 60) != v * 60 for v in values):
        fail(f"--shift-hours must be whole minutes in ]0, 24], got {text!r}")
    return values


def _requirement(
    requirements_path: str | None,
    forecast_path: str | None,
    confidence: float,
    aht: float | None,
    patience: float | None,
    targets: Targets,
    shrinkage: float,
) -> Requirement:
    if requirements_path is not None:
        refuse(_FORECAST_ONLY, "goes with --forecast (the requirement file gives agents)")
        req = load_requirements(requirements_path)
        return with_shrinkage(req, shrinkage)
    assert forecast_path is not None
    if aht is None:
        fail("--forecast needs --aht (average handling time, s)")
    if not targets.goals():
        fail("--forecast needs a target: --min-answer-rate, --max-abandon or --sl")
    for option, goal in (("--max-abandon", targets.max_abandon),
                         ("--min-answer-rate", targets.min_answer_rate)):  # fmt: skip
        if goal is not None and patience is None:
            fail(f"{option} needs --patience (Erlang A): without it no caller hangs up")
    plan = plan_staffing(load_forecast(forecast_path), targets, aht, patience, confidence)
    return requirement_from_plan(plan, shrinkage)


def _gap_text(result: Schedule) -> str:
    gap = result.gap
    return "infinite (LP bound 0)" if gap == float("inf") else f"{100 * gap:.2f} %"


def _weights(rules: ScheduleConfig) -> str:
    w, top = rules.shortfall_weight, rules.shortfall_weight * (1 + rules.shortfall_spread)
    short = f"{w:g}" if top == w else f"{w:g} to {top:g}"
    return f"agent-hours short × {short}, + agent-hours over"


def _print(result: Schedule, team: str) -> None:
    req = result.requirement
    days = req.days()
    minutes = req.step.total_seconds() / 60
    click.echo(
        f"Schedule {days[0]} to {days[-1]}: {team}, {minutes:g}-minute intervals,"
        f" {result.candidates:,} candidate shifts over {len(days)} days"
    )
    rows = [
        ("required", f"{req.agent_hours():.1f} agent-hours"),
        ("worked", f"{result.work_hours:.1f} agent-hours in {len(result.assignments)} shifts"),
        ("shortfall", f"{result.shortfall_hours:.1f} agent-hours"),
        ("over-staffing", f"{result.over_hours:.1f} agent-hours"),
        ("objective", f"{result.objective:.1f} ({_weights(result.rules)})"),
        ("LP bound", f"{result.lp_bound:.1f} (no schedule does better)"),
        ("gap", f"{_gap_text(result)} (objective ÷ LP bound − 1)"),
        ("solver bound", f"{result.best_bound:.1f} (proven by the solver)"),
        ("solved", f"{result.status} in {result.seconds:.1f} s"),
    ]
    if result.unassigned:
        rows.append(("unassigned", f"{result.unassigned} shifts (no agent within the rules)"))
    for label, value in rows:
        click.echo(f"  {label:14} {value}")
    click.echo("Shortfall per day (agent-hours)")
    for day, short in result.shortfall_by_day().items():
        click.echo(f"  {day:%a %Y-%m-%d} {short:8.1f}")


def _as_json(result: Schedule, team: str) -> dict:
    gap = result.gap
    return {
        "team": team,
        "interval_minutes": result.requirement.step.total_seconds() / 60,
        "required_hours": result.requirement.agent_hours(),
        "work_hours": result.work_hours,
        "shortfall_hours": result.shortfall_hours,
        "over_hours": result.over_hours,
        "objective": result.objective,
        "lp_bound": result.lp_bound,
        "gap": None if gap == float("inf") else gap,
        "best_bound": result.best_bound,
        "status": result.status,
        "seconds": result.seconds,
        "candidates": result.candidates,
        "unassigned": result.unassigned,
        "shortfall_by_day": {d.isoformat(): h for d, h in result.shortfall_by_day().items()},
        "shifts": [
            {
                "agent": a.agent,
                "day": a.shift.day.isoformat(),
                "start": a.shift.start.isoformat(timespec="minutes"),
                "end": a.shift.end.isoformat(timespec="minutes"),
                "break_start": a.shift.break_start.isoformat(timespec="minutes")
                if a.shift.break_start
                else None,
                "break_end": a.shift.break_end.isoformat(timespec="minutes")
                if a.shift.break_end
                else None,
            }
            for a in sorted(result.assignments, key=lambda a: (a.shift.start, a.agent))
        ],
    }

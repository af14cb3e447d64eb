"""``acd staffing``: how many agents a traffic needs (Erlang C, or Erlang A with patience)."""

from __future__ import annotations

import math
import textwrap
from itertools import groupby

import click

from acd.cli.common import (
    config_option,
    emit_json,
    fail,
    given,
    json_option,
    refuse,
    write_whole,
)
from acd.config import load_config
from acd.planning.demand import (
    QUANTILE_RANGE,
    StaffingPlan,
    Team,
    load_forecast,
    plan_staffing,
    requirements_csv,
)
from acd.planning.profile import REFERENCE_HOURS, OpeningHours, load_profile, plan_week
from acd.planning.staffing import (
    Performance,
    Targets,
    Traffic,
    evaluate,
    required_agents,
    scheduled_agents,
)

_TARGET_OPTIONS = "--sl, --max-abandon, --min-answer-rate, --max-asa or --max-occupancy"


@click.command(short_help="Agents needed for a target, or a given team's figures.")
@click.option("--calls", type=float, help="Calls offered per interval.")
@click.option(
    "--interval", type=float, default=3600.0, show_default=True, help="Interval, seconds."
)
@click.option("--aht", type=float, required=True, help="Average handling time (talk + wrap-up), s.")
@click.option("--patience", type=float, help="Mean patience of callers, s: Erlang A (abandons).")
@click.option("--sl", type=float, help="Service-level target: this fraction of calls ...")
@click.option(
    "--threshold", type=float, default=20.0, show_default=True, help="... within this many s."
)
@click.option(
    "--sl-kind",
    type=click.Choice(["offered", "answered", "wait"]),
    default="offered",
    show_default=True,
    help="Service level on offered calls, on answered calls, or counting abandons (SL2).",
)
@click.option("--max-abandon", type=float, help="Target: at most this fraction abandoned.")
@click.option("--min-answer-rate", type=float, help="Target: at least this fraction answered.")
@click.option("--max-asa", type=float, help="Target: mean wait of answered calls, s.")
@click.option("--max-occupancy", type=float, help="Target: at most this busy fraction.")
@click.option(
    "--shrinkage", type=float, default=0.0, show_default=True, help="Fraction of paid time off."
)
@click.option("--agents", type=int, help="Evaluate this team instead of searching.")
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False),
    help="Time-of-day profile (CSV hour,share): staff every open hour of the week.",
)
@click.option("--per-day", type=float, help="Calls on a full day (with --profile).")
@click.option(
    "--forecast",
    "forecast_path",
    type=click.Path(dir_okay=False),
    help="Forecast CSV (start,mean,lo80,hi80, from acd forecast): agents per interval.",
)
@click.option(
    "--confidence",
    type=float,
    default=0.9,
    show_default=True,
    help="With --forecast: probability that the week meets the targets.",
)
@click.option(
    "--quantile",
    type=float,
    help="With --forecast: staff for this quantile of a day's level instead (0.8: a day"
    " busier than 4 in 5).",
)
@click.option(
    "--contract-hours",
    type=float,
    help="With --forecast and --agents: weekly hours of one agent's contract.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    help="With --forecast: write start,agents (for acd schedule --requirements).",
)
@config_option
@click.option("--calendar", help="Calendar of --config giving the opening hours.")
@json_option
def staffing(
    calls: float | None,
    interval: float,
    aht: float,
    patience: float | None,
    sl: float | None,
    threshold: float,
    sl_kind: str,
    max_abandon: float | None,
    min_answer_rate: float | None,
    max_asa: float | None,
    max_occupancy: float | None,
    shrinkage: float,
    agents: int | None,
    profile_path: str | None,
    per_day: float | None,
    forecast_path: str | None,
    confidence: float,
    quantile: float | None,
    contract_hours: float | None,
    out_path: str | None,
    config_path: str | None,
    calendar: str | None,
    as_json: bool,
) -> None:
    """Agents needed to meet service targets, or the figures of a given team.

    Poisson arrivals and exponential handling times; without --patience callers never
    hang up (Erlang C), with it they do after an exponential patience (Erlang A).

    \b
    Examples:
      acd staffing --calls 100 --interval 1800 --aht 180 --sl 0.8 --threshold 20
      acd staffing --calls 84 --aht 240 --patience 60 --min-answer-rate 0.99 --shrinkage 0.3
      acd staffing --calls 84 --aht 240 --patience 60 --agents 6 --json
      acd staffing --profile examples/profile-weekday.csv --per-day 700 \\
                   --aht 240 --patience 60 --min-answer-rate 0.99
      acd staffing --forecast forecast.csv --aht 180 --patience 120 \\
                   --min-answer-rate 0.99 --agents 6 --contract-hours 35 --out need.csv

    With --forecast, every interval gets the agents its traffic needs at one quantile
    of the forecast's uncertainty, the lowest at which each week meets the targets
    with probability --confidence (docs/planning.md); --agents and --contract-hours
    then describe the team, and the plan says how many agent-hours it lacks.
    """
    targets = Targets(
        sl=sl,
        threshold_s=threshold,
        sl_metric=f"sl_{sl_kind}",
        max_abandon=max_abandon,
        min_answer_rate=min_answer_rate,
        max_asa_s=max_asa,
        max_occupancy=max_occupancy,
    )
    scheduled_agents(0, shrinkage)  # validates the shrinkage before any work
    for option, goal in (("--max-abandon", max_abandon), ("--min-answer-rate", min_answer_rate)):
        if goal is not None and patience is None:
            fail(
                f"{option} needs --patience (Erlang A): without it (Erlang C) no caller"
                " hangs up, so every call is answered and the target is always met"
            )
    if agents is None and not targets.goals():
        fail(f"give a target ({_TARGET_OPTIONS}) or --agents to evaluate a team")
    if sl is None:
        refuse(("sl_kind",), "goes with --sl (the service-level target it qualifies)")
    if forecast_path is not None:
        for option, value in (
            ("--calls", calls),
            ("--profile", profile_path),
            ("--per-day", per_day),
        ):
            if value is not None:
                fail(f"--forecast and {option} exclude each other: the forecast gives the calls")
        if not targets.goals():
            fail(f"give a target ({_TARGET_OPTIONS}) for --forecast")
        if (agents is None) != (contract_hours is None):
            fail("--agents and --contract-hours go together with --forecast (the team)")
        team = None if agents is None else Team(agents, contract_hours)
        if len(given("quantile", "confidence")) == 2:
            fail("--quantile and --confidence exclude each other: the quantile sets the level")
        refuse(("interval",), "goes with --calls: the forecast has its own intervals")
        refuse(("calendar",), "goes with --profile: the forecast has its own opening hours")
        plan = plan_staffing(
            load_forecast(forecast_path), targets, aht, patience, confidence, quantile=quantile
        )
        if out_path is not None:
            try:
                write_whole(out_path, requirements_csv(plan))
            except OSError as exc:
                fail(f"{out_path}: cannot write ({exc.strerror})")
        _forecast_plan(plan, targets, aht, patience, shrinkage, team, out_path, as_json)
        return
    refuse(("contract_hours", "out_path", "quantile", "confidence"), "goes with --forecast")
    if profile_path is not None:
        if calls is not None:
            fail("--calls and --profile exclude each other: give --per-day with --profile")
        if per_day is None:
            fail("--profile needs --per-day (calls on a full day)")
        refuse(("interval",), "goes with --calls: a profile is staffed hour by hour")
        hours = _opening_hours(config_path, calendar)
        _per_hour(
            load_profile(profile_path), per_day, aht, patience, targets, shrinkage,
            hours, agents, as_json,
        )  # fmt: skip
        return
    if per_day is not None:
        fail("--per-day needs --profile (a time-of-day profile file)")
    if calls is None:
        fail("give --calls (per --interval), or --profile with --per-day")
    refuse(("calendar",), "goes with --profile (the opening hours staffed)")
    traffic = Traffic(calls=calls, interval_s=interval, aht_s=aht, patience_s=patience)
    if agents is None:
        perf = required_agents(traffic, targets)
    else:
        perf = evaluate(traffic, agents, threshold)
    _single(traffic, targets, perf, scheduled_agents(perf.agents, shrinkage), shrinkage, as_json)


def _opening_hours(config_path: str | None, calendar: str | None) -> OpeningHours:
    if config_path is None:
        if calendar is not None:
            fail("--calendar needs --config (the site configuration file)")
        return REFERENCE_HOURS
    calendars = load_config(config_path).calendars
    if calendar is None:
        if len(calendars) != 1:
            names = ", ".join(sorted(calendars)) or "none"
            fail(f"{config_path}: pick a calendar with --calendar (calendars: {names})")
        calendar = next(iter(calendars))
    if calendar not in calendars:
        fail(f"{config_path}: no calendar {calendar!r}")
    return calendars[calendar].hours


def _model(patience: float | None) -> str:
    return "Erlang C (M/M/n)" if patience is None else "Erlang A (M/M/n+M)"


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def _single(
    traffic: Traffic,
    targets: Targets,
    perf: Performance,
    scheduled: int,
    shrinkage: float,
    as_json: bool,
) -> None:
    unmet = targets.unmet(perf)
    if as_json:
        emit_json(
            {
                "model": traffic.model,
                "calls": traffic.calls,
                "interval_s": traffic.interval_s,
                "aht_s": traffic.aht_s,
                "patience_s": traffic.patience_s,
                "targets": targets.goals(),
                "unmet": unmet,
                **perf._asdict(),
                "shrinkage": shrinkage,
                "agents_scheduled": scheduled,
            }
        )
        return
    patience = "" if traffic.patience_s is None else f", mean patience {traffic.patience_s:g} s"
    click.echo(
        f"{_model(traffic.patience_s)}: {traffic.calls:g} calls per {traffic.interval_s:g} s,"
        f" AHT {traffic.aht_s:g} s{patience}"
    )
    goals = " and ".join(targets.goals()) or "none"
    verdict = "all met" if not unmet else "MISSED: " + ", ".join(unmet)
    t = perf.threshold_s
    rows = [
        ("traffic", f"{perf.traffic_erlangs:.2f} erlangs"),
        ("targets", f"{goals} ({verdict})" if targets.goals() else "none"),
        ("agents on the phones", f"{perf.agents}"),
        ("agents scheduled", f"{scheduled} (shrinkage {_pct(shrinkage)})"),
        ("P(wait)", _pct(perf.p_wait)),
        (f"answered within {t:g} s", f"{_pct(perf.sl_offered)} of offered calls"),
        ("", f"{_pct(perf.sl_answered)} of answered calls"),
        (f"answered or abandoned in {t:g} s", _pct(perf.sl_wait)),
        ("answer rate", _pct(perf.answer_rate)),
        ("abandoned", _pct(perf.p_abandon)),
        ("ASA (answered calls)", f"{perf.asa_s:.1f} s"),
        ("mean wait (all calls)", f"{perf.mean_wait_s:.1f} s"),
        ("occupancy", _pct(perf.occupancy)),
    ]
    for label, value in rows:
        click.echo(f"  {label:34} {value}")


def _per_hour(
    profile: dict[int, float],
    per_day: float,
    aht: float,
    patience: float | None,
    targets: Targets,
    shrinkage: float,
    hours: OpeningHours,
    agents: int | None,
    as_json: bool,
) -> None:
    plans = plan_week(
        per_day,
        profile,
        aht,
        targets,
        patience_s=patience,
        shrinkage=shrinkage,
        hours=hours,
        agents=agents,
    )
    if as_json:
        emit_json(
            {
                "model": "erlang_c" if patience is None else "erlang_a",
                "per_day": per_day,
                "aht_s": aht,
                "patience_s": patience,
                "targets": targets.goals(),
                "shrinkage": shrinkage,
                "hours": [
                    {
                        "day": p.day,
                        "hour": p.hour,
                        "open_minutes": p.open_minutes,
                        "calls": p.calls,
                        "unmet": targets.unmet(p.performance),
                        **p.performance._asdict(),
                        "agents_scheduled": p.agents_scheduled,
                    }
                    for p in plans
                ],
            }
        )
        return
    patience_text = "" if patience is None else f", mean patience {patience:g} s"
    click.echo(
        f"{_model(patience)}: {per_day:g} calls on a full day, AHT {aht:g} s{patience_text}; "
        f"targets: {' and '.join(targets.goals()) or 'none'}"
    )
    t = targets.threshold_s
    by_day = {day: list(rows) for day, rows in groupby(plans, key=lambda p: p.weekday)}
    alike: dict[tuple[tuple[int, int], ...], list[int]] = {}
    for day, rows in by_day.items():
        alike.setdefault(tuple((p.hour, p.open_minutes) for p in rows), []).append(day)
    for days in alike.values():
        click.echo("")
        click.echo(", ".join(by_day[d][0].day for d in days))
        click.echo(
            f"  {'hour':14} {'calls':>7} {'erlangs':>8} {'agents':>7} {'scheduled':>9}"
            f" {'answered':>9} {f'in {t:g} s':>9} {'ASA s':>7} {'occupancy':>9}"
        )
        for p in by_day[days[0]]:
            perf = p.performance
            part = "" if p.open_minutes == 60 else f" ({p.open_minutes} min)"
            span = f"{p.hour:02d}-{p.hour + 1:02d}{part}"
            flag = "" if not targets.unmet(perf) else "  missed"
            click.echo(
                f"  {span:14} {p.calls:7.1f} {perf.traffic_erlangs:8.2f} {perf.agents:7d}"
                f" {p.agents_scheduled:9d} {_pct(perf.answer_rate):>9} {_pct(perf.sl_offered):>9}"
                f" {perf.asa_s:7.1f} {_pct(perf.occupancy):>9}{flag}"
            )


def _forecast_plan(
    plan: StaffingPlan,
    targets: Targets,
    aht: float,
    patience: float | None,
    shrinkage: float,
    team: Team | None,
    out_path: str | None,
    as_json: bool,
) -> None:
    weeks = []
    for week in plan.weeks:
        paid = week.agent_hours / (1 - shrinkage)
        row = {
            "first_day": week.first.isoformat(),
            "days": [d.isoformat() for d in week.days],
            "calls": week.calls,
            "agent_hours": week.agent_hours,
            "agent_hours_at_mean": week.agent_hours_at_mean,
            "probability": week.probability,
            "paid_hours": paid,
        }
        if team is not None:
            short, fte = team.shortfall(week.agent_hours, shrinkage)
            row |= {"team_hours": team.hours, "short_hours": short, "short_fte": fte}
        weeks.append(row)
    if as_json:
        emit_json(
            {
                "model": "erlang_c" if patience is None else "erlang_a",
                "aht_s": aht,
                "patience_s": patience,
                "interval_s": plan.interval_s,
                "targets": targets.goals(),
                "week_goals": list(plan.week_goals),
                "confidence": plan.confidence,
                "quantile": plan.quantile,
                "quantile_given": plan.given,
                "reached": plan.reached,
                "shrinkage": shrinkage,
                "team": None
                if team is None
                else {"agents": team.agents, "contract_hours": team.contract_hours},
                "day_factor_sd": {d.isoformat(): math.sqrt(c) for d, c in plan.spread.items()},
                "weeks": weeks,
                "intervals": [
                    {
                        "start": n.start.isoformat(timespec="minutes"),
                        "mean": n.mean,
                        "planned_calls": n.planned_calls,
                        **n.performance._asdict(),
                        "agents": n.agents,
                    }
                    for n in plan.intervals
                ],
            }
        )
        return
    minutes = f"{plan.interval_s / 60:g}-minute intervals"
    model = "Erlang C" if patience is None else "Erlang A"
    patience_text = "" if patience is None else f", mean patience {patience:g} s"
    click.echo(f"{_model(patience)} per interval ({minutes}), AHT {aht:g} s{patience_text}")
    click.echo(f"Targets in every interval: {' and '.join(targets.goals())}")
    click.echo(textwrap.fill(_margin_text(plan), 88))
    click.echo("")
    click.echo(f"  {'day':15} {'calls':>7} {'planned':>8} {'agents':>7} {'agent-hours':>12}")
    hours = plan.interval_s / 3600
    for day, rows in groupby(plan.intervals, key=lambda n: n.start.date()):
        rows = list(rows)
        low, high = min(n.agents for n in rows), max(n.agents for n in rows)
        span = f"{low}" if low == high else f"{low}-{high}"
        click.echo(
            f"  {day.strftime('%a %Y-%m-%d'):15} {sum(n.mean for n in rows):7.1f}"
            f" {sum(n.planned_calls for n in rows):8.1f} {span:>7}"
            f" {hours * sum(n.agents for n in rows):12.1f}"
        )
    for week, row in zip(plan.weeks, weeks, strict=True):
        click.echo("")
        plural = "s" if len(week.days) > 1 else ""
        days = f"{len(week.days)} day{plural}, {week.calls:,.0f} calls forecast"
        click.echo(f"Week from {week.first.strftime('%a %Y-%m-%d')} ({days}):")
        lines = [
            (
                "agent-hours on the phones",
                f"{week.agent_hours:.1f}"
                f" ({week.agent_hours_at_mean:.1f} staffed for the forecast mean alone)",
            ),
            (f"{model}: P(week meets targets)", f"{100 * week.probability:.1f} %"),
        ]
        if shrinkage:
            lines.append((f"paid hours (shrinkage {_pct(shrinkage)})", f"{row['paid_hours']:.1f}"))
        if team is not None:
            lines.append((f"team: {team.agents} x {team.contract_hours:g} h", f"{team.hours:.1f}"))
            short = row["short_hours"]
            word = "short by" if short > 0 else "spare"
            lines.append(
                (
                    word,
                    f"{abs(short):.1f} agent-hours = {abs(row['short_fte']):.1f} full-time"
                    f" equivalents of {team.contract_hours:g} h",
                )
            )
        for label, value in lines:
            click.echo(f"  {label:32} {value}")
        open_days = len({n.start.date() for n in plan.intervals if n.mean > 0} & set(week.days))
        if team is not None and open_days < 5:
            click.echo(
                f"  (calls on {open_days} day(s) of this week only: the team's hours are a"
                " whole week's)"
            )
    if out_path is not None:
        click.echo("")
        click.echo(f"Agents per interval written to {out_path} (start,agents).")


def _margin_text(plan: StaffingPlan) -> str:
    goals = " and ".join(plan.week_goals) or "the targets"
    pct = f"{100 * plan.confidence:g} %"
    if plan.quantile is None:
        return (
            "The forecast has no spread beyond Poisson noise: every interval is staffed for"
            " its mean."
        )
    busy = {n.start.date() for n in plan.intervals if n.mean > 0}
    sds = sorted({round(100 * math.sqrt(c)) for d, c in plan.spread.items() if d in busy})
    sd = f"{sds[0]} %" if len(sds) == 1 else f"{sds[0]}-{sds[-1]} %"
    level = f"the {100 * plan.quantile:.1f} % quantile of its level"
    head = f"Uncertainty: a day's level varies by {sd} (1 s.d.). "
    if plan.given:
        return head + f"Every interval staffed for a day at {level} (--quantile)."
    if not plan.reached:
        return (
            head + f"Even staffed for a day at {level}, a week does not meet"
            f" {goals} with probability {pct}: that level is used."
        )
    if plan.quantile <= QUANTILE_RANGE[0]:
        return (
            head + f"Even staffed for a day at {level} (the lowest tried), a"
            f" week meets {goals} with probability {pct} or more."
        )
    return (
        head + f"Every interval staffed for a day at {level} (column planned),"
        f" the lowest at which a week meets {goals} with probability {pct} or more."
    )

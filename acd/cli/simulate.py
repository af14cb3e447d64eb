"""``acd simulate``: what-if runs of the real engine against the simulated switch."""

from __future__ import annotations

import time
from typing import Any

import click

from acd.cli.common import config_option, emit_json, fail, given, json_option, refuse
from acd.cli.progress import Progress
from acd.config import Config, load_config
from acd.planning import twin, whatif
from acd.planning.demand import load_forecast
from acd.planning.profile import load_profile
from acd.planning.schedule import load_requirements
from acd.planning.whatif import Estimate, Expectation, Flags, HourExpectation, Result, WhatIf
from firmware_sim.scenario import load_scenario

_FLAGS = ("agents", "aht", "sd", "patience", "distribution", "profile_path", "day")
"""The options describing a team and its traffic without a scenario."""


@click.command(short_help="What-if: simulated days through the real ACD engine.")
@click.option(
    "--scenario",
    "scenario_path",
    help="Scenario of the simulated switch (TOML file, or a shipped one's name).",
)
@click.option("--agents", type=int, help="Agents on the phones (without --scenario).")
@click.option("--calls-per-day", type=float, help="Calls offered on a full day.")
@click.option("--aht", type=float, help="Mean handling time, s (without --scenario).")
@click.option("--sd", type=float, help="Standard deviation of lognormal handling times, s.")
@click.option("--patience", type=float, help="Mean (exponential) patience of callers, s.")
@click.option(
    "--distribution",
    type=click.Choice(["exponential", "lognormal"]),
    help="Distribution of handling times.  [default: exponential]",
)
@click.option(
    "--profile",
    "profile_path",
    type=click.Path(dir_okay=False),
    help="Time-of-day profile (CSV hour,share).  [default: the assumed reference one]",
)
@click.option(
    "--day",
    type=click.Choice(["weekday", "saturday"]),
    help="Kind of day simulated.  [default: weekday]",
)
@config_option
@click.option("--queue", help="Queue whose figures are reported (default: the one called).")
@click.option("--days", type=int, default=1, show_default=True, help="Days per replication.")
@click.option(
    "--replications", type=int, default=10, show_default=True, help="Independent replications."
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the first run.")
@click.option(
    "--jobs",
    type=int,
    default=1,
    show_default=True,
    help="Processes running replications side by side (same figures for any number).",
)
@click.option(
    "--sweep-calls",
    help="Daily volumes FIRST:LAST:STEP (or a,b,c): which volume still reaches the target?",
)
@click.option(
    "--schedule",
    "schedule_path",
    type=click.Path(dir_okay=False),
    help="Twin: shifts (CSV agent,day,start,end,break_start,break_end, from acd schedule).",
)
@click.option(
    "--requirements",
    "requirements_path",
    type=click.Path(dir_okay=False),
    help="Twin: agents per interval (CSV start,agents) played exactly, instead of shifts.",
)
@click.option(
    "--forecast",
    "forecast_path",
    type=click.Path(dir_okay=False),
    help="Twin: the traffic (CSV start,mean,lo80,hi80, from acd forecast).",
)
@click.option("--weeks", type=int, default=100, show_default=True, help="Twin: weeks simulated.")
@click.option("--target", type=float, help="Twin: answer rate to reach. [default: the queue's]")
@click.option(
    "--sl",
    type=float,
    help="Twin: judge the service level instead (answered within the queue's threshold"
    " ÷ offered) reaching this fraction.",
)
@json_option
def simulate(
    scenario_path: str | None,
    agents: int | None,
    calls_per_day: float | None,
    aht: float | None,
    sd: float | None,
    patience: float | None,
    distribution: str | None,
    profile_path: str | None,
    day: str | None,
    config_path: str | None,
    queue: str | None,
    days: int,
    replications: int,
    seed: int,
    jobs: int,
    sweep_calls: str | None,
    schedule_path: str | None,
    requirements_path: str | None,
    forecast_path: str | None,
    weeks: int,
    target: float | None,
    sl: float | None,
    as_json: bool,
) -> None:
    """What-if simulation: days of calls through the real ACD engine, in virtual time.

    The engine and the controller's protocol mapping run against the simulated
    switch's callers and agents, with no serial line: a day takes a fraction of a
    second. Figures per hour and overall come with 95 % confidence intervals over the
    replications, beside the Erlang A (M/M/n+M) expectation of the same traffic, and
    the queue's answer-rate target holds when the interval's lower bound reaches it.

    Either a scenario (--scenario, with the site's --config), or flags: --agents,
    --calls-per-day, --aht, --patience (agents who answer at once, take no break and
    no wrap-up; the reference town hall's front desk unless --config says otherwise).

    \b
    Examples:
      acd simulate --agents 6 --calls-per-day 700 --aht 180 --patience 120
      acd simulate --agents 6 --aht 180 --patience 120 --sweep-calls 250:700:50
      acd simulate --scenario town-hall-weekday-700 --config examples/town-hall.toml \\
                   --days 5 --replications 20 --json
      acd simulate --schedule shifts.csv --forecast forecast.csv --aht 180 --patience 120

    The twin (--schedule with --forecast) runs exactly the schedule's agents (logged
    in at the shift's start, not ready during the break, logged out at its end)
    against calls drawn from the forecast, its uncertainty included, for --weeks
    simulated weeks, and gives the share of weeks and of days reaching the target.
    --requirements instead of --schedule plays a requirement exactly (the agents of
    each interval on the phones for all of it, no pause).
    """
    config = load_config(config_path) if config_path is not None else None
    if any(p is not None for p in (schedule_path, requirements_path, forecast_path)):
        _twin(
            schedule_path, requirements_path, forecast_path, weeks, target, sl, config, queue,
            aht, sd, patience, distribution, seed, jobs, as_json,
        )  # fmt: skip
        return
    refuse(("weeks", "target", "sl"), "is for the twin (--schedule with --forecast)")
    if sweep_calls is not None:
        refuse(
            ("calls_per_day",), "and --sweep-calls exclude each other: the sweep sets the volume"
        )
    volumes = _volumes(sweep_calls) if sweep_calls is not None else None
    if scenario_path is not None:
        if named := given(*_FLAGS):
            fail(f"{', '.join(named)}: not with --scenario (the scenario file says that)")
        if config is None:
            fail("--scenario needs the site's configuration: --config FILE")
        spec = whatif.for_scenario(load_scenario(scenario_path), config, queue, days)
        if calls_per_day is not None:
            spec = whatif.with_volume(spec, calls_per_day)
        mode = "scenario"
    else:
        missing = [
            name
            for name, value in (
                ("--agents", agents),
                ("--aht", aht),
                ("--patience", patience),
                (
                    "--calls-per-day or --sweep-calls",
                    calls_per_day if calls_per_day is not None else volumes,
                ),
            )
            if value is None
        ]
        if missing:
            fail(f"give {', '.join(missing)} (or --scenario FILE)")
        flags = Flags(
            agents=agents,
            calls_per_day=calls_per_day if calls_per_day is not None else volumes[0],
            aht_s=aht,
            patience_s=patience,
            distribution=distribution or "exponential",
            aht_sd=sd,
            profile=load_profile(profile_path) if profile_path is not None else None,
            day=day or "weekday",
        )
        if sd is not None and flags.distribution != "lognormal":
            fail("--sd is for --distribution lognormal")
        spec = whatif.for_flags(flags, config, queue, days)
        mode = "flags"
    if replications < 1:
        fail(f"--replications must be at least 1, got {replications}")
    if jobs < 1:
        fail(f"--jobs must be at least 1, got {jobs}")
    total_days = days * replications * (len(volumes) if volumes else 1)
    started = time.perf_counter()
    with Progress("simulated days", total=total_days) as progress:  # erased before output

        def on_replication(run: whatif.Replication) -> None:
            progress.advance(run.days)

        if volumes is not None:
            points = whatif.sweep(spec, volumes, replications, seed, on_replication, jobs)
        else:
            result = whatif.replicate(spec, replications, seed, on_replication, jobs)
    wall = time.perf_counter() - started
    if volumes is not None:
        _show_sweep(spec, mode, points, seed, wall, as_json)
    else:
        expected, why = whatif.expectation(spec)
        _show_run(spec, mode, result, expected, why, seed, wall, as_json)
    if not as_json:
        for text in whatif.warnings(spec):
            click.echo(f"Warning: {text}.")


def _volumes(text: str) -> list[float]:
    """``250:700:50`` (both ends included) or ``250,400,700``."""
    try:
        if ":" in text:
            first, last, step = (float(x) for x in text.split(":"))
            if step <= 0 or last < first:
                raise ValueError
            count = int((last - first) / step + 1e-9) + 1
            if count > 200:
                fail(f"--sweep-calls {text}: {count} volumes, at most 200")
            return [first + i * step for i in range(count)]
        values = [float(x) for x in text.split(",")]
    except ValueError:
        fail(f"--sweep-calls must be FIRST:LAST:STEP (LAST >= FIRST, STEP > 0) or a,b,c: {text!r}")
    if not values or any(v < 0 for v in values):
        fail(f"--sweep-calls: volumes must be zero or more: {text!r}")
    return sorted(values)


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f} %"


def _ci(e: Estimate | None) -> str:
    """``98.91 % (98.50 .. 99.32)`` for a rate."""
    if e is None:
        return "-"
    if e.low is None or e.high is None:
        return _pct(e.mean)
    return f"{_pct(e.mean)} ({100 * e.low:.2f} .. {100 * e.high:.2f})"


def _mean(e: Estimate | None, fmt: str = "{:.1f}") -> str:
    return "-" if e is None else fmt.format(e.mean)


def _title(spec: WhatIf, mode: str, volume: bool = True) -> str:
    """What was simulated; with ``volume``, the calls planned on the first day."""
    source = f"scenario {spec.scenario.name}" if mode == "scenario" else spec.scenario.name
    title = f"What-if: {source}; queue {spec.queue}"
    if volume:
        plan = spec.scenario.traffic.plan_for(spec.dates()[0])
        title += f"; {plan.volume:g} calls per day"
    return title


def _model_line(expected: Expectation | None, why: str) -> str:
    if expected is None:
        return f"Erlang A: {why}."
    if all(p.agents == expected.agents for p in expected.hours.values()):
        team = f"{expected.agents} agents"
    else:
        team = f"n = agents on the phones in the hour (column n; {expected.agents} in the team)"
    head = (
        f"Erlang A (M/M/n+M): {team}, AHT {expected.aht_s:g} s, patience {expected.patience_s:g} s"
    )
    if expected.exact:
        return head + "; the simulated system is that model."
    return head + "; approximate here: " + "; ".join(expected.notes) + "."


def _expectation_json(expected: Expectation | None, why: str) -> dict[str, Any] | None:
    if expected is None:
        return {"applies": False, "reason": why}
    return {
        "applies": True,
        "exact": expected.exact,
        "notes": list(expected.notes),
        "agents": expected.agents,
        "aht_s": expected.aht_s,
        "patience_s": expected.patience_s,
        "overall": expected.overall,
        "hours": {
            f"{h:02d}": {
                "agents": p.agents,
                "answer_rate": p.answer_rate,
                "sl_offered": p.sl_offered,
                "asa": p.asa_s,
                "p_wait": p.p_wait,
                "abandon_rate": p.p_abandon,
            }
            for h, p in expected.hours.items()
        },
    }


def _figures_json(figures: dict[str, Estimate | None]) -> dict[str, Any]:
    return {name: None if e is None else e.to_dict() for name, e in figures.items()}


def _head_json(spec: WhatIf, mode: str, result: Result, seed: int) -> dict[str, Any]:
    """What was simulated, how often, from which seed (a run's or a sweep's first keys)."""
    return {
        "mode": mode,
        "scenario": spec.scenario.name,
        "queue": spec.queue,
        "days": [d.isoformat() for d in result.days],
        "replications": result.replications,
        "seed": seed,
        "confidence": whatif.CONFIDENCE,
    }


def _run_json(spec: WhatIf, mode: str, result: Result, seed: int) -> dict[str, Any]:
    verdict, text = result.verdict
    return {
        **_head_json(spec, mode, result, seed),
        "calls_simulated": result.calls,
        "unfinished_legs": result.unfinished,
        "target": result.target,
        "verdict": verdict,
        "verdict_text": text,
        "overall": _figures_json(result.overall),
        "hours": {f"{h:02d}": _figures_json(f) for h, f in result.hours.items()},
    }


def _show_run(
    spec: WhatIf,
    mode: str,
    result: Result,
    expected: Expectation | None,
    why: str,
    seed: int,
    wall: float,
    as_json: bool,
) -> None:
    if as_json:
        data = _run_json(spec, mode, result, seed)
        data["wall_s"] = round(wall, 3)
        data["erlang_a"] = _expectation_json(expected, why)
        data["warnings"] = whatif.warnings(spec)
        emit_json(data)
        return
    threshold = spec.config.queues[spec.queue].sl_threshold
    click.echo(_title(spec, mode))
    click.echo(
        f"{len(result.days)} day(s) x {result.replications} replication(s), seed {seed}:"
        f" {result.calls:,} calls simulated in {wall:.1f} s (real engine, virtual time)"
    )
    click.echo("")
    header = (
        f"{'hour':5}  {'calls/day':>9}  {'answer rate (95 % CI)':28}  {'n':>5}  {'Erlang A':>8}"
        f"  {f'SL {threshold:g} s':>8}  {'ASA s':>6}  {'P(wait)':>8}"
    )
    click.echo(header)
    click.echo("-" * len(header))
    model_hours = expected.hours if expected is not None else {}
    for hour, figures in result.hours.items():
        click.echo(_row(f"{hour:02d}:00", figures, model_hours.get(hour)))
    overall_model = expected.overall["answer_rate"] if expected is not None else None
    click.echo(_row("all", result.overall, None, overall_model))
    click.echo("")
    click.echo(_model_line(expected, why))
    missed = result.overall["missed_rings"]
    if missed is not None and missed.mean > 0:
        click.echo(f"Rings missed (timed out or refused): {missed.mean:.1f} per day.")
    if result.unfinished:
        click.echo(f"{result.unfinished} leg(s) were still in progress at the end of a day.")
    click.echo(f"Target: {result.verdict[1]}.")


def _row(
    label: str,
    f: dict[str, Estimate | None],
    hour: HourExpectation | None,
    model: float | None = None,
) -> str:
    """One line of the table: simulated figures, the hour's Erlang A n and answer rate
    (or, for the overall line, the ``model`` answer rate)."""
    agents = "-" if hour is None else f"{hour.agents:.2f}".rstrip("0").rstrip(".")
    model = model if hour is None else hour.answer_rate
    return (
        f"{label:5}  {_mean(f['offered']):>9}  {_ci(f['answer_rate']):28}  {agents:>5}"
        f"  {_pct(model):>8}"
        f"  {_pct(_m(f['sl_offered']), 1):>8}  {_mean(f['asa']):>6}  {_pct(_m(f['p_wait']), 1):>8}"
    )


def _m(e: Estimate | None) -> float | None:
    return None if e is None else e.mean


def _show_sweep(
    spec: WhatIf,
    mode: str,
    points: list[whatif.SweepPoint],
    seed: int,
    wall: float,
    as_json: bool,
) -> None:
    best = whatif.highest_holding(points)
    target = points[0].result.target
    if as_json:
        emit_json(
            {
                **_head_json(spec, mode, points[0].result, seed),
                "target": target,
                "wall_s": round(wall, 3),
                "calls_simulated": sum(p.result.calls for p in points),
                "sweep": [
                    {
                        "calls_per_day": p.calls_per_day,
                        "overall": _figures_json(p.result.overall),
                        "erlang_a_answer_rate": None
                        if p.expected is None
                        else p.expected.overall["answer_rate"],
                        "verdict": p.result.verdict[0],
                    }
                    for p in points
                ],
                "highest_holding": best,
                "warnings": whatif.warnings(spec),
            }
        )
        return
    first = points[0].result
    click.echo(_title(spec, mode, volume=False) + f"; target {100 * target:g} % answered")
    click.echo(
        f"{len(first.days)} day(s) x {first.replications} replication(s) per volume, seed"
        f" {seed}: {sum(p.result.calls for p in points):,} calls simulated in {wall:.1f} s"
    )
    click.echo("")
    header = f"{'calls/day':>9}  {'answer rate (95 % CI)':28}  {'Erlang A':>8}  target"
    click.echo(header)
    click.echo("-" * (len(header) + 8))
    for p in points:
        model = None if p.expected is None else p.expected.overall["answer_rate"]
        click.echo(
            f"{p.calls_per_day:>9g}  {_ci(p.result.overall['answer_rate']):28}"
            f"  {_pct(model):>8}  {p.result.verdict[0]}"
        )
    click.echo("")
    if best is None:
        click.echo(f"No volume of the sweep is shown to reach {100 * target:g} % answered.")
    else:
        click.echo(
            f"Highest volume that holds: {best:g} calls per day ({100 * target:g} % answered"
            " at 95 % confidence, as at every lower volume of the sweep)."
        )


_NOT_TWIN = (
    "scenario_path", "agents", "calls_per_day", "profile_path", "day", "sweep_calls", "days",
    "replications",
)  # fmt: skip


def _twin(
    schedule_path: str | None,
    requirements_path: str | None,
    forecast_path: str | None,
    weeks: int,
    target: float | None,
    sl: float | None,
    config: Config | None,
    queue: str | None,
    aht: float | None,
    sd: float | None,
    patience: float | None,
    distribution: str | None,
    seed: int,
    jobs: int,
    as_json: bool,
) -> None:
    """``acd simulate --schedule --forecast``: the twin (acd.planning.twin)."""
    if named := given(*_NOT_TWIN):
        fail(f"{', '.join(named)}: not with the twin (--schedule and --forecast say that)")
    if (schedule_path is None) == (requirements_path is None) or forecast_path is None:
        fail("the twin needs --forecast FILE and one of --schedule FILE, --requirements FILE")
    missing = [name for name, value in (("--aht", aht), ("--patience", patience)) if value is None]
    if missing:
        fail(f"give {' and '.join(missing)} for the twin")
    if sd is not None and distribution != "lognormal":
        fail("--sd is for --distribution lognormal")
    if weeks < 1:
        fail(f"--weeks must be at least 1, got {weeks}")
    if jobs < 1:
        fail(f"--jobs must be at least 1, got {jobs}")
    flags = Flags(1, 0.0, aht, patience, distribution or "exponential", sd)
    if requirements_path is not None:
        shifts = twin.exact_schedule(load_requirements(requirements_path))
        source = f"the requirement {requirements_path} played exactly"
    else:
        shifts = twin.load_schedule(schedule_path)
        source = f"{schedule_path}"
    spec = twin.build(
        load_forecast(forecast_path),
        shifts,
        flags.handling(),
        patience,
        config,
        queue,
        target,
        sl=sl,
    )
    started = time.perf_counter()
    with Progress("simulated weeks", total=weeks) as progress:

        def on_week(week: tuple[twin.DayResult, ...]) -> None:
            progress.advance(1)

        result = twin.run(spec, weeks, seed, jobs, on_week)
    wall = time.perf_counter() - started
    _show_twin(spec, result, source, forecast_path, flags, wall, as_json)


def _show_twin(
    spec: twin.Twin,
    result: twin.TwinResult,
    source: str,
    forecast_path: str,
    flags: Flags,
    wall: float,
    as_json: bool,
) -> None:
    threshold = spec.config.queues[spec.queue].sl_threshold
    on_sl = result.metric == "sl_offered"
    pct = f"{100 * result.target:g} %" + (f" in {threshold:g} s" if on_sl else "")
    goal = f"{100 * result.target:g} % answered"
    if on_sl:
        goal += f" within {threshold:g} s (of offered calls)"
    hours = spec.on_phones_hours()
    exact = source.startswith("the requirement")
    who = source if exact else f"{len(spec.agents)} agents of {source}"
    spread = spec.forecast.day_spread()
    calls = sum(r.mean for r in spec.forecast.intervals)
    week_range = result.week_rate_range()
    skipped = sorted(set(spec.schedule) - set(spec.days))
    if as_json:
        emit_json(
            {
                "mode": "twin",
                "schedule": source,
                "forecast": forecast_path,
                "queue": spec.queue,
                "agents": list(spec.agents),
                "agent_hours_on_phones": hours,
                "forecast_calls": calls,
                "days": [d.isoformat() for d in spec.days],
                "schedule_days_not_simulated": [d.isoformat() for d in skipped],
                "aht_s": flags.aht_s,
                "handling": flags.distribution,
                "patience_s": spec.patience_s,
                "target": result.target,
                "target_metric": result.metric,
                "weeks": len(result.weeks),
                "seed": result.seed,
                "confidence": whatif.CONFIDENCE,
                "calls_simulated": result.calls,
                "wall_s": round(wall, 3),
                "weeks_met": result.weeks_met.to_dict(),
                "days_met": result.days_met.to_dict(),
                "days_met_by_day": {
                    d.isoformat(): s.to_dict() for d, s in result.days_met_by_day().items()
                },
                "answer_rate": result.answer_rate,
                "answer_rate_by_day": {
                    d.isoformat(): r for d, r in result.answer_rate_by_day().items()
                },
                "unstaffed_days": [d.isoformat() for d in spec.unstaffed_days()],
                "sl_offered": result.sl_offered,
                "week_5_95": week_range,
            }
        )
        return
    click.echo(
        f"Twin: {who} ({hours:.1f} agent-hours on the"
        f" phones) against {forecast_path} ({_days(len(spec.days))}, {calls:,.0f} calls"
        f" forecast, day level ±{100 * max(spread.values()) ** 0.5:.0f} %)"
    )
    click.echo(
        f"Queue {spec.queue}, AHT {flags.aht_s:g} s ({flags.distribution}), patience"
        f" {spec.patience_s:g} s; target {goal}"
    )
    click.echo(
        f"{len(result.weeks)} weeks, seed {result.seed}: {result.calls:,} calls through the"
        f" real engine in {wall:.1f} s"
    )
    click.echo("")
    click.echo(f"  {'day':15} {'answered':>9}   days reaching {pct} (95 % CI)")
    rates = result.answer_rate_by_day()
    for day, share in result.days_met_by_day().items():
        label = f"{day.strftime('%a %Y-%m-%d'):15}"
        if share.n == 0:
            click.echo(f"  {label} {'-':>9}   no call forecast")
            continue
        click.echo(f"  {label} {_pct(rates[day]):>9}   {_share(share)}")
    click.echo("")
    click.echo(f"  {'weeks reaching ' + pct:32} {_share(result.weeks_met)}")
    click.echo(f"  {'days reaching ' + pct:32} {_share(result.days_met)}")
    click.echo(f"  {'answered, all calls':32} {_pct(result.answer_rate)}")
    click.echo(f"  {f'answered within {threshold:g} s':32} {_pct(result.sl_offered)}")
    if week_range is not None:
        low, high = week_range
        what = f"a week's SL {threshold:g} s" if on_sl else "a week answers"
        click.echo(f"  {what + ' (5-95 %)':32} {_pct(low)} .. {_pct(high)}")
    unstaffed = spec.unstaffed_days()
    if unstaffed:
        click.echo("")
        days = ", ".join(d.strftime("%a %Y-%m-%d") for d in unstaffed)
        click.echo(f"No shift on {days}, though calls are forecast: none is answered.")
    if skipped:
        click.echo("")
        click.echo(
            f"Schedule days outside the forecast, not simulated: {', '.join(map(str, skipped))}."
        )


def _share(share: twin.Share) -> str:
    return f"{_pct(share.value, 1)} ({100 * share.low:.1f} .. {100 * share.high:.1f}) of {share.n}"


def _days(n: int) -> str:
    return "1 day" if n == 1 else f"{n} days"

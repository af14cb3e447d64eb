"""Weekly shifts that meet a requirement of agents per interval: a set-covering tour
model solved with HiGHS.

The requirement is a number of agents per interval (``start,agents`` rows, local time,
any interval length). Candidate shifts are generated per day: a start on the interval
grid inside the day's opening (its first interval to the end of its last), a length of
work from ``[schedule] shift_hours`` and, when the work reaches ``break_after_hours``, an
unpaid pause of ``break_minutes`` placed near the middle so that no stretch of work
reaches that length (:class:`~acd.config.ScheduleConfig`).

Named agents (:func:`schedule_named`) get a binary ``x[agent, day, shift]``: at most
one shift a day, weekly work within the contract and ``max_week_hours``, the daily rest
between shifts on different days. A free head count (:func:`schedule_pool`) gets integer
counts ``y[day, shift]`` (at most the head count a day, weekly work within head count ×
contract), turned into individual tours afterwards. In both, per interval
``coverage + shortfall − over-staffing = requirement`` and the objective (:func:`cost`)
is ``weight × shortfall + over-staffing`` in agent-hours: minimum shortfall first, then
minimum over-staffing (with the default weight, 1,000, one agent-hour short costs as
much as 1,000 agent-hours over). Each further agent short in the same interval costs a
little more (``shortfall_spread``, 10 % at the largest requirement), so that a team too
small for the week leaves every interval a little short rather than some intervals with
nobody: answered calls fall faster than linearly with the agents missing.

The LP bound is the optimum of the same model with integrality relaxed: no schedule can
do better, and ``objective / bound − 1`` says how far the schedule found can be from
the best one.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import pairwise
from pathlib import Path

from acd.config import ScheduleConfig
from acd.errors import AcdError
from acd.planning.demand import StaffingPlan
from acd.planning.staffing import scheduled_agents

CSV_COLUMNS = ("agent", "day", "start", "end", "break_start", "break_end")
"""Columns of a schedule file, one row per shift (times HH:MM local, day ISO)."""


class ScheduleError(AcdError):
    """A requirement, a team or rules that cannot be scheduled as given, or a schedule
    file that cannot be read (missing column, bad time, overlapping rows)."""


@dataclass(frozen=True)
class Requirement:
    """Agents required per interval: ``starts`` (naive local times, sorted, on a grid of
    ``step``) and ``agents`` (same length). A day is open from its first interval to
    the end of its last."""

    starts: tuple[datetime, ...]
    agents: tuple[float, ...]
    step: timedelta

    @property
    def step_hours(self) -> float:
        return self.step.total_seconds() / 3600

    def days(self) -> list[date]:
        """The days with at least one interval, in order."""
        return sorted({s.date() for s in self.starts})

    def by_day(self) -> dict[date, list[int]]:
        """Day → indices of its intervals."""
        out: dict[date, list[int]] = defaultdict(list)
        for i, start in enumerate(self.starts):
            out[start.date()].append(i)
        return dict(out)

    def agent_hours(self) -> float:
        return sum(self.agents) * self.step_hours


@dataclass(frozen=True)
class Shift:
    """One day's shift: from ``start`` to ``end`` with an optional pause."""

    start: datetime
    end: datetime
    break_start: datetime | None = None
    break_end: datetime | None = None

    @property
    def day(self) -> date:
        return self.start.date()

    @property
    def work_hours(self) -> float:
        pause = self.break_end - self.break_start if self.break_start and self.break_end else None
        span = self.end - self.start - (pause or timedelta())
        return span.total_seconds() / 3600

    def work_periods(self) -> list[tuple[datetime, datetime]]:
        """The spans of work (two when there is a pause)."""
        if self.break_start is None or self.break_end is None:
            return [(self.start, self.end)]
        return [(self.start, self.break_start), (self.break_end, self.end)]


@dataclass(frozen=True)
class Assignment:
    """A shift worked by an agent."""

    agent: str
    shift: Shift


@dataclass(frozen=True)
class Schedule:
    """A solved schedule with its coverage and how good it is.

    ``objective`` is recomputed from the shifts (:func:`cost` of their coverage,
    agent-hours); ``lp_bound`` is the optimum of the relaxed model (never above it)."""

    assignments: tuple[Assignment, ...]
    requirement: Requirement
    coverage: tuple[float, ...]  # agents working, per interval
    rules: ScheduleConfig
    lp_bound: float
    status: str  # "optimal" (within mip_gap), "time limit" or "best found"
    seconds: float
    candidates: int  # candidate shifts over the days, for each agent
    unassigned: int = 0  # pool shifts no agent could take within the rules
    best_bound: float = 0.0  # the solver's proven bound (at least the LP bound)
    shortfall: tuple[float, ...] = field(init=False)
    over: tuple[float, ...] = field(init=False)

    def __post_init__(self) -> None:
        need = self.requirement.agents
        object.__setattr__(
            self,
            "shortfall",
            tuple(max(r - c, 0.0) for r, c in zip(need, self.coverage, strict=True)),
        )
        object.__setattr__(
            self, "over", tuple(max(c - r, 0.0) for r, c in zip(need, self.coverage, strict=True))
        )

    @property
    def shortfall_hours(self) -> float:
        return sum(self.shortfall) * self.requirement.step_hours

    @property
    def over_hours(self) -> float:
        return sum(self.over) * self.requirement.step_hours

    @property
    def work_hours(self) -> float:
        return sum(a.shift.work_hours for a in self.assignments)

    @property
    def objective(self) -> float:
        return cost(self.requirement, self.coverage, self.rules)

    @property
    def gap(self) -> float:
        """``objective / lp_bound − 1`` (0 when both are 0, infinite when only the bound is)."""
        if self.lp_bound <= 1e-9:
            return 0.0 if self.objective <= 1e-9 else math.inf
        return max(self.objective / self.lp_bound - 1, 0.0)

    def shortfall_by_day(self) -> dict[date, float]:
        """Day → agent-hours short."""
        out: dict[date, float] = {}
        for day, indices in self.requirement.by_day().items():
            out[day] = sum(self.shortfall[i] for i in indices) * self.requirement.step_hours
        return out

    def to_csv(self) -> str:
        """The schedule file: ``agent,day,start,end,break_start,break_end``."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for a in sorted(self.assignments, key=lambda a: (a.shift.start, a.agent)):
            s = a.shift
            writer.writerow(
                [
                    a.agent,
                    s.day.isoformat(),
                    _hhmm(s.start, s.day),
                    _hhmm(s.end, s.day),
                    _hhmm(s.break_start, s.day) if s.break_start else "",
                    _hhmm(s.break_end, s.day) if s.break_end else "",
                ]
            )
        return buf.getvalue()


def _hhmm(moment: datetime, day: date) -> str:
    """``HH:MM``; a shift ending at midnight writes ``24:00``."""
    if moment.date() > day and moment.time() == datetime.min.time():
        return "24:00"
    return moment.strftime("%H:%M")


# ---------------------------------------------------------------------------- input


def _read_rows(text: str, source: str, columns: Sequence[str]) -> Iterator[tuple[str, dict]]:
    """Rows of a CSV with a header holding ``columns`` (others ignored); ``where`` first."""
    reader = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in columns if c not in header]
    if missing:
        raise ScheduleError(
            f"{source}: expected a header with {','.join(columns)} (missing {', '.join(missing)})"
        )
    reader.fieldnames = header
    for number, row in enumerate(reader, start=2):
        yield f"{source}:{number}", row


def _moment(text: str | None, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise ScheduleError(
            f"{where}: start must be a local date and time like 2026-12-07 08:00, got {text!r}"
        ) from None
    if moment.tzinfo is not None:
        raise ScheduleError(f"{where}: start must be local time without a UTC offset")
    return moment


def _number(text: str | None, name: str, where: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise ScheduleError(f"{where}: {name} must be a number, got {text!r}") from None
    if not 0 <= value < math.inf:
        raise ScheduleError(f"{where}: {name} must be zero or more, got {text!r}")
    return value


def _grid(starts: list[datetime], source: str) -> timedelta:
    """The interval length: the shortest gap between starts, all on its grid."""
    if len(starts) != len(set(starts)):
        dup = next(s for s in starts if starts.count(s) > 1)
        raise ScheduleError(f"{source}: interval {dup:%Y-%m-%d %H:%M} given twice")
    ordered = sorted(starts)
    gaps = [b - a for a, b in pairwise(ordered) if a.date() == b.date()]
    if not gaps:
        raise ScheduleError(f"{source}: give at least two intervals of one day (their length)")
    step = min(gaps)
    if step < timedelta(minutes=1) or step.total_seconds() % 60:
        raise ScheduleError(f"{source}: intervals must be whole minutes apart")
    for a, b in pairwise(ordered):
        if a.date() == b.date() and (b - a) % step:
            raise ScheduleError(
                f"{source}: {b:%Y-%m-%d %H:%M} is not on the grid of"
                f" {step.total_seconds() / 60:g}-minute intervals"
            )
    for s in ordered:
        if s + step > datetime.combine(s.date(), datetime.min.time()) + timedelta(days=1):
            raise ScheduleError(f"{source}: interval {s:%Y-%m-%d %H:%M} runs past midnight")
    return step


def parse_requirements(text: str, source: str = "<requirements>") -> Requirement:
    """A requirement from ``start,agents`` rows (local time, one row per interval)."""
    rows = {}
    for where, row in _read_rows(text, source, ("start", "agents")):
        start = _moment(row["start"], where)
        if start in rows:
            raise ScheduleError(f"{where}: interval {start:%Y-%m-%d %H:%M} given twice")
        rows[start] = _number(row["agents"], "agents", where)
    if not rows:
        raise ScheduleError(f"{source}: no intervals")
    step = _grid(list(rows), source)
    starts = tuple(sorted(rows))
    return Requirement(starts, tuple(rows[s] for s in starts), step)


def load_requirements(path: str | os.PathLike[str]) -> Requirement:
    """Read a requirement file (see `parse_requirements`)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ScheduleError(f"{path}: cannot read the requirements ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ScheduleError(f"{path}: not a UTF-8 text file") from None
    return parse_requirements(text, str(path))


def requirement_from_plan(plan: StaffingPlan, shrinkage: float = 0.0) -> Requirement:
    """The agents per interval of a staffing plan (``acd staffing --forecast``), scheduled
    for ``shrinkage`` (see :func:`with_shrinkage`)."""
    needs = sorted(plan.intervals, key=lambda need: need.start)
    starts = [need.start for need in needs]
    agents = tuple(float(need.agents) for need in needs)
    req = Requirement(tuple(starts), agents, _grid(starts, "the forecast"))
    return with_shrinkage(req, shrinkage)


def with_shrinkage(req: Requirement, shrinkage: float) -> Requirement:
    """Agents to schedule so that ``req``'s are on the phones when ``shrinkage`` of paid
    time is off them (meetings, training, sickness; the pause is in the shifts already):
    ``⌈agents / (1 − shrinkage)⌉`` (not rounded for a fractional requirement)."""
    scheduled_agents(0, shrinkage)  # checks the shrinkage
    if shrinkage == 0:
        return req
    agents = tuple(
        float(scheduled_agents(int(a), shrinkage)) if a.is_integer() else a / (1 - shrinkage)
        for a in req.agents
    )
    return Requirement(req.starts, agents, req.step)


# ---------------------------------------------------------------------------- shifts


def candidate_shifts(req: Requirement, rules: ScheduleConfig) -> dict[date, list[Shift]]:
    """Day → the shifts the rules allow inside the day's opening, without duplicates."""
    step = timedelta(minutes=rules.start_step_minutes) if rules.start_step_minutes else req.step
    pause = timedelta(minutes=rules.break_minutes)
    out: dict[date, list[Shift]] = {}
    for day, indices in req.by_day().items():
        opening = req.starts[indices[0]]
        closing = req.starts[indices[-1]] + req.step
        shifts: list[Shift] = []
        for hours in sorted(set(rules.shift_hours)):
            work = timedelta(minutes=round(hours * 60))
            if hours > rules.max_day_hours + 1e-9:
                continue
            offsets = _break_offsets(work, rules)
            if offsets is None:
                continue  # no pause placement keeps every stretch short enough
            span = work + (pause if offsets else timedelta())
            if span.total_seconds() / 3600 > rules.max_amplitude_hours + 1e-9:
                continue
            start = opening
            while start + span <= closing:
                if not offsets:
                    shifts.append(Shift(start, start + work))
                for offset in offsets:
                    b = start + offset
                    shifts.append(Shift(start, start + span, b, b + pause))
                start += step
        out[day] = shifts
    return out


def _break_offsets(work: timedelta, rules: ScheduleConfig) -> list[timedelta] | None:
    """Where the pause may start, from the start of the shift: ``[]`` when the work is
    short enough to need none, None when no placement keeps both stretches short."""
    limit = timedelta(hours=rules.break_after_hours)
    if work < limit:
        return []
    if rules.break_minutes == 0:
        return None
    step = timedelta(minutes=rules.break_step_minutes)
    window = timedelta(hours=rules.break_window_hours)
    middle = work / 2
    offsets = []
    first = step
    while first < work:
        if first < limit and work - first < limit and abs(first - middle) <= window:
            offsets.append(first)
        first += step
    return offsets or None


def _coverage(shift: Shift, req: Requirement, indices: list[int]) -> list[tuple[int, float]]:
    """(interval index, fraction of the interval worked) for the shift's day."""
    out = []
    step = req.step.total_seconds()
    periods = shift.work_periods()
    for i in indices:
        a = req.starts[i]
        b = a + req.step
        worked = sum(max((min(b, e) - max(a, s)).total_seconds(), 0.0) for s, e in periods)
        if worked > 0:
            out.append((i, worked / step))
    return out


def coverage_of(assignments: Iterable[Assignment], req: Requirement) -> tuple[float, ...]:
    """Agents working per interval of ``req`` (fractions for partly worked intervals)."""
    by_day = req.by_day()
    cover = [0.0] * len(req.starts)
    for a in assignments:
        for i, frac in _coverage(a.shift, req, by_day.get(a.shift.day, [])):
            cover[i] += frac
    return tuple(cover)


def _week(day: date) -> tuple[int, int]:
    iso = day.isocalendar()
    return iso[0], iso[1]


# ---------------------------------------------------------------------------- model


class _Model:
    """A sparse model built column by column, then solved by HiGHS."""

    def __init__(self) -> None:
        self.cost: list[float] = []
        self.upper: list[float] = []
        self.integer: list[bool] = []
        self.columns: list[list[tuple[int, float]]] = []
        self.row_lower: list[float] = []
        self.row_upper: list[float] = []
        self.slacks: list[tuple[int, list[int]]] = []  # per coverage row: over, short

    def row(self, lower: float, upper: float) -> int:
        self.row_lower.append(lower)
        self.row_upper.append(upper)
        return len(self.row_lower) - 1

    def column(self, cost: float, upper: float, integer: bool, entries) -> int:
        self.cost.append(cost)
        self.upper.append(upper)
        self.integer.append(integer)
        self.columns.append(list(entries))
        return len(self.cost) - 1

    def add_to(self, col: int, row: int, value: float) -> None:
        self.columns[col].append((row, value))

    def solve(
        self, relax: bool, rules: ScheduleConfig, deadline: float, start: list[float] | None = None
    ) -> tuple[list[float], float, float, str]:
        """Column values, objective, best bound and status (``optimal`` or ``time
        limit``), stopping by ``deadline`` (``time.perf_counter()``); ``start`` is a
        feasible solution to begin from."""
        import highspy
        import numpy as np

        inf = highspy.kHighsInf
        lp = highspy.HighsLp()
        lp.num_col_ = len(self.cost)
        lp.num_row_ = len(self.row_lower)
        lp.col_cost_ = np.array(self.cost, dtype=np.double)
        lp.col_lower_ = np.zeros(len(self.cost))
        lp.col_upper_ = np.array([min(u, inf) for u in self.upper], dtype=np.double)
        lp.row_lower_ = np.array([max(v, -inf) for v in self.row_lower], dtype=np.double)
        lp.row_upper_ = np.array([min(v, inf) for v in self.row_upper], dtype=np.double)
        starts, index, value = [0], [], []
        for entries in self.columns:
            for r, v in entries:
                index.append(r)
                value.append(v)
            starts.append(len(index))
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
        lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
        lp.a_matrix_.value_ = np.array(value, dtype=np.double)
        if not relax:
            kinds = highspy.HighsVarType
            lp.integrality_ = [kinds.kInteger if i else kinds.kContinuous for i in self.integer]
        h = _highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("random_seed", 1)
        if not relax:  # the LP bound is always wanted: a relaxation runs to its end
            h.setOptionValue("time_limit", max(deadline - time.perf_counter(), 0.1))
        h.setOptionValue("mip_rel_gap", float(rules.mip_gap))
        h.passModel(lp)
        if start is not None:
            cols = np.arange(len(start), dtype=np.int32)
            h.setSolution(len(start), cols, np.array(start, dtype=np.double))
        h.run()
        status = h.getModelStatus()
        ok = highspy.HighsModelStatus
        info = h.getInfo()
        found = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if status == ok.kOptimal:
            text = "optimal"
        elif status == ok.kTimeLimit and found:
            text = "time limit"
        elif status == ok.kTimeLimit and start is not None:  # stopped before taking it
            objective = math.fsum(c * v for c, v in zip(self.cost, start, strict=True))
            return list(start), objective, -math.inf, "time limit"
        else:
            raise ScheduleError(f"the solver stopped: {h.modelStatusToString(status)}")
        objective = info.objective_function_value
        bound = objective if relax else info.mip_dual_bound
        return list(h.getSolution().col_value), objective, bound, text


def _highs():
    """A HiGHS instance; its one-time banner (printed by the C library on standard
    output when the first instance is made) is kept out of our output."""
    import highspy

    sys.stdout.flush()
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, io.UnsupportedOperation):
        return highspy.Highs()
    saved = os.dup(fd)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), fd)
            return highspy.Highs()
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@dataclass(frozen=True)
class _Options:
    """The candidate shifts of each day with the intervals each covers."""

    shifts: dict[date, list[Shift]]
    cover: dict[date, list[list[tuple[int, float]]]]
    count: int


def _options(req: Requirement, rules: ScheduleConfig) -> _Options:
    shifts = candidate_shifts(req, rules)
    by_day = req.by_day()
    cover = {d: [_coverage(s, req, by_day[d]) for s in shifts[d]] for d in shifts}
    count = sum(len(v) for v in shifts.values())
    if count == 0:
        longest = max(len(v) for v in by_day.values()) * req.step_hours
        raise ScheduleError(
            f"no shift fits the opening hours (longest day open {longest:g} h):"
            " give shorter shift_hours"
        )
    return _Options(shifts, cover, count)


def _base_model(req: Requirement, rules: ScheduleConfig) -> tuple[_Model, list[int]]:
    """Coverage rows (one per interval), each with its over-staffing column and one
    shortfall column per agent that can be missing (costs of :func:`cost`); the rows."""
    model = _Model()
    rows = [model.row(need, need) for need in req.agents]
    h = req.step_hours
    model.slacks = []
    for r, levels in zip(rows, _levels(req, rules), strict=True):
        over = model.column(h, math.inf, False, [(r, -1.0)])
        short = [model.column(c * h, 1.0, False, [(r, 1.0)]) for c in levels]
        model.slacks.append((over, short))
    return model, rows


def _start(model: _Model, req: Requirement, coverage: Sequence[float], chosen: set[int]):
    """A full solution vector: the ``chosen`` shift columns at 1, slacks to match."""
    start = [0.0] * len(model.cost)
    for (over, short), need, have in zip(model.slacks, req.agents, coverage, strict=True):
        start[over] = max(have - need, 0.0)
        missing = max(need - have, 0.0)
        for k, col in enumerate(short):
            start[col] = min(1.0, max(missing - k, 0.0))
    for c in chosen:
        start[c] = 1.0
    return start


MAX_PATTERNS = 20_000
"""Most week patterns per contract; beyond, the head-count model bounds weekly hours
in total only (its shifts may then not pack into tours)."""

Slots = dict[str, dict[date, float]]  # agent -> day -> hours of work of their shift


def _patterns(lengths: dict[date, list[float]], limit: float) -> list[dict[date, float]] | None:
    """The maximal weeks of work: a length (or none) per day, in all at most ``limit``
    hours, to which no day can be added or lengthened. None when there are more than
    :data:`MAX_PATTERNS`."""
    days = sorted(lengths)
    out: list[dict[date, float]] = []
    chosen: dict[date, float] = {}

    def maximal(total: float) -> bool:
        return not any(
            longer > chosen[d] and total - chosen[d] + longer <= limit + 1e-9
            for d in days
            for longer in lengths[d]
        )

    def walk(i: int, total: float) -> bool:
        if i == len(days):
            if maximal(total):
                out.append({d: h for d, h in chosen.items() if h})
            return len(out) <= MAX_PATTERNS
        for hours in (0.0, *lengths[days[i]]):
            if total + hours <= limit + 1e-9:
                chosen[days[i]] = hours
                if not walk(i + 1, total + hours):
                    return False
        return True

    return out if walk(0, 0.0) else None


def _aggregate(
    req: Requirement,
    opts: _Options,
    rules: ScheduleConfig,
    team: Sequence[tuple[str, float]],
    deadline: float,
) -> tuple[list[tuple[Shift, int]], Slots | None, float, float, str]:
    """The head-count model: agents per shift, and each agent's week of work; the LP
    bound, best bound and status.

    Agents of the same weekly hours are interchangeable: integer numbers of them take
    each maximal week pattern (a length of work per day within their hours, see
    :func:`_patterns`), and a day's shifts of a length are at most the patterns' slots
    of that length, so that the shifts pack into tours by construction (the rest rule
    aside). With too many patterns, weekly hours are bounded in total, and the slots
    are None."""
    model, cover_rows = _base_model(req, rules)
    days = sorted(opts.shifts)
    by_week: dict[tuple[int, int], list[date]] = defaultdict(list)
    for d in days:
        by_week[_week(d)].append(d)
    lengths = {d: sorted({s.work_hours for s in opts.shifts[d]}) for d in days}
    groups: dict[float, list[str]] = defaultdict(list)
    for name, weekly in team:
        groups[weekly].append(name)
    patterns = {
        (weekly, w): _patterns({d: lengths[d] for d in wdays}, weekly)
        for weekly in groups
        for w, wdays in by_week.items()
    }
    exact = all(p is not None for p in patterns.values())
    slot_rows: dict[tuple[date, float], int] = {}
    if exact:
        slot_rows = {(d, h): model.row(-math.inf, 0.0) for d in days for h in lengths[d]}
        pattern_cols = []
        for (weekly, _), found in patterns.items():
            size = len(groups[weekly])
            row = model.row(-math.inf, float(size))
            for pattern in found or ():
                entries = [(row, 1.0)] + [(slot_rows[d, h], -1.0) for d, h in pattern.items()]
                pattern_cols.append((weekly, pattern, model.column(0.0, size, True, entries)))
    else:
        total = sum(weekly for _, weekly in team)
        weeks = {w: model.row(-math.inf, total) for w in by_week}
        heads = {d: model.row(-math.inf, float(len(team))) for d in days}
    columns: list[tuple[Shift, int]] = []
    for d in days:
        for shift, cover in zip(opts.shifts[d], opts.cover[d], strict=True):
            entries = [(cover_rows[i], f) for i, f in cover]
            if exact:
                entries.append((slot_rows[d, shift.work_hours], 1.0))
            else:
                entries += [(heads[d], 1.0), (weeks[_week(d)], shift.work_hours)]
            columns.append((shift, model.column(0.0, float(len(team)), True, entries)))
    lp_bound = model.solve(True, rules, deadline)[1]
    nobody = _start(model, req, [0.0] * len(req.agents), set())  # feasible: a start
    values, _, bound, status = model.solve(False, rules, deadline, nobody)
    counts = [(shift, round(values[c])) for shift, c in columns if values[c] > 0.5]
    if not exact:
        return counts, None, lp_bound, bound, status
    slots: Slots = {name: {} for name, _ in team}
    taken: dict[tuple[float, tuple[int, int]], int] = defaultdict(int)
    for weekly, pattern, col in pattern_cols:
        week = _week(next(iter(pattern))) if pattern else None
        for _ in range(round(values[col])):
            if week is None:
                continue
            name = groups[weekly][taken[weekly, week]]
            taken[weekly, week] += 1
            slots[name].update(pattern)
    return counts, slots, lp_bound, bound, status


def _fill(
    counts: list[tuple[Shift, int]], slots: Slots, rules: ScheduleConfig
) -> tuple[list[Assignment], int]:
    """Give each shift of ``counts`` to an agent whose week has a slot of its length that
    day: day by day, the latest shifts first, each to the rested agent who ended latest
    before (the matching that keeps the rest rule whenever it can be kept). The
    assignments and the shifts nobody could take."""
    rest = timedelta(hours=rules.min_rest_hours)
    worked: dict[str, list[Shift]] = defaultdict(list)
    by_slot: dict[tuple[date, float], list[Shift]] = defaultdict(list)
    for shift, n in counts:
        by_slot[shift.day, shift.work_hours].extend([shift] * n)
    out: list[Assignment] = []
    unassigned = 0
    for (day, hours), shifts in sorted(by_slot.items()):
        holders = [name for name, week in slots.items() if week.get(day) == hours]
        for shift in sorted(shifts, key=lambda s: s.start, reverse=True):
            free = [
                (max((w.end for w in worked[n]), default=datetime.min), i, n)
                for i, n in enumerate(holders)
                if all(w.end + rest <= shift.start or shift.end + rest <= w.start
                       for w in worked[n])
            ]  # fmt: skip
            if not free:
                unassigned += 1
                continue
            name = max(free)[2]
            holders.remove(name)
            worked[name].append(shift)
            out.append(Assignment(name, shift))
    return out, unassigned


def schedule_pool(
    req: Requirement, head_count: int, contract_hours: float, rules: ScheduleConfig | None = None
) -> Schedule:
    """Weekly shifts for ``head_count`` interchangeable agents of ``contract_hours``:
    the number of agents on each shift, then tours ``agent-01``, ``agent-02`` ... that
    take them within the rules (a shift no agent can take is counted as unassigned)."""
    began = time.perf_counter()
    rules = rules or ScheduleConfig()
    if head_count < 1:
        raise ScheduleError(f"the head count must be at least 1, got {head_count}")
    if not 0 < contract_hours < math.inf:
        raise ScheduleError(f"contract hours must be positive, got {contract_hours:g}")
    opts = _options(req, rules)
    weekly = min(contract_hours, rules.max_week_hours)
    width = max(2, len(str(head_count)))
    team = [(f"agent-{i + 1:0{width}d}", weekly) for i in range(head_count)]
    deadline = began + rules.time_limit_s
    counts, slots, lp_bound, bound, status = _aggregate(req, opts, rules, team, deadline)
    small = head_count <= 20  # the agent-by-agent model stays quick
    assignments, status = _assign(
        req,
        opts,
        team,
        rules,
        counts,
        slots,
        bound,
        status,
        full=small,
        deadline=deadline,
    )
    counted = sum(n for _, n in counts)
    return Schedule(
        tuple(assignments), req, coverage_of(assignments, req), rules,
        lp_bound, status, time.perf_counter() - began, opts.count,
        max(counted - len(assignments), 0), max(bound, lp_bound),
    )  # fmt: skip


def schedule_named(
    req: Requirement, agents: Sequence[tuple[str, float]], rules: ScheduleConfig | None = None
) -> Schedule:
    """Weekly shifts for named agents: ``(name, contract hours a week)`` each.

    The head-count model is solved first: it relaxes this one (it ignores who works
    which shift), so when its shifts can all be given to the agents within their
    contracts and the rest rule, that schedule is optimal here too. Otherwise the
    agent-by-agent model is solved, starting from the shifts that could be given."""
    began = time.perf_counter()
    rules = rules or ScheduleConfig()
    if not agents:
        raise ScheduleError("no agents to schedule")
    names = [name for name, _ in agents]
    if len(set(names)) != len(names):
        raise ScheduleError("agent names must differ")
    for name, hours in agents:
        if not 0 < hours < math.inf:
            raise ScheduleError(f"{name}: contract hours must be positive, got {hours:g}")
    team = [(name, min(hours, rules.max_week_hours)) for name, hours in agents]
    opts = _options(req, rules)
    deadline = began + rules.time_limit_s
    counts, slots, _, bound, status = _aggregate(req, opts, rules, team, deadline)
    lp_bound = _named_model(req, opts, team, rules)[0].solve(True, rules, deadline)[1]
    assignments, status = _assign(
        req, opts, team, rules, counts, slots, bound, status, full=True, deadline=deadline
    )
    return Schedule(
        tuple(assignments), req, coverage_of(assignments, req), rules,
        lp_bound, status, time.perf_counter() - began, opts.count, 0, max(bound, lp_bound),
    )  # fmt: skip


def _assign(
    req: Requirement,
    opts: _Options,
    team: Sequence[tuple[str, float]],
    rules: ScheduleConfig,
    counts: list[tuple[Shift, int]],
    slots: Slots | None,
    bound: float,
    status: str,
    full: bool,
    deadline: float,
) -> tuple[list[Assignment], str]:
    """Give the head-count model's shifts to ``team``; the assignments and the status.

    That model relaxes the agent-by-agent one, so a schedule as good as its optimum is
    optimal. Tried in turn, until one is: :func:`_tours` (greedy); the agent-by-agent
    model over the shifts starting when one it chose starts (small); with ``full``, over
    every candidate shift, starting from the best so far. The status says ``optimal``
    when proven (within ``mip_gap``), ``time limit`` when the last solve ran out of
    time, ``best found`` otherwise."""
    assignments = (_tours(counts, team, rules) if slots is None else _fill(counts, slots, rules))[0]
    reached = bound * (1 + rules.mip_gap) + 1e-6

    def objective(chosen: list[Assignment]) -> float:
        return cost(req, coverage_of(chosen, req), rules)

    if objective(assignments) <= reached:
        return assignments, status
    starts = {shift.start for shift, _ in counts}  # any length or pause from these
    few = {d: [s for s in opts.shifts[d] if s.start in starts] for d in opts.shifts}
    by_day = req.by_day()
    cover = {d: [_coverage(s, req, by_day[d]) for s in few[d]] for d in few}
    last = status
    for subset in [_Options(few, cover, 0)] + ([opts] if full else []):
        if time.perf_counter() > deadline - 0.5:
            return assignments, "time limit"
        model, columns = _named_model(req, subset, team, rules)
        index = {(n, s): c for n, s, c in columns}
        start = _start(model, req, coverage_of(assignments, req),
                       {index[a.agent, a.shift] for a in assignments})  # fmt: skip
        values, _, _, last = model.solve(False, rules, deadline, start)
        found = [Assignment(n, s) for n, s, c in columns if values[c] > 0.5]
        if objective(found) <= objective(assignments):
            assignments = found
        if objective(assignments) <= reached:
            return assignments, status
    return assignments, "time limit" if last == "time limit" else "best found"


def _levels(req: Requirement, rules: ScheduleConfig) -> list[tuple[float, ...]]:
    """Per interval, the cost of each further agent short, per agent-hour: the k-th
    costs ``weight × (1 + spread × k / K)``, K the largest requirement."""
    top = max(1, *(math.ceil(n - 1e-9) for n in req.agents))
    w, spread = rules.shortfall_weight, rules.shortfall_spread
    return [
        tuple(w * (1 + spread * k / top) for k in range(math.ceil(need - 1e-9)))
        for need in req.agents
    ]


def cost(req: Requirement, coverage: Sequence[float], rules: ScheduleConfig) -> float:
    """The objective of a coverage, agent-hours weighted: each agent short in an
    interval costs ``shortfall_weight``, raised by ``shortfall_spread`` for the further
    ones of the same interval (spread a shortfall rather than pile it on a few
    intervals); each agent over costs 1."""
    total = 0.0
    for levels, need, have in zip(_levels(req, rules), req.agents, coverage, strict=True):
        short = max(need - have, 0.0)
        total += sum(c * min(1.0, short - k) for k, c in enumerate(levels) if short > k)
        total += max(have - need, 0.0)
    return total * req.step_hours


def _named_model(
    req: Requirement, opts: _Options, team: Sequence[tuple[str, float]], rules: ScheduleConfig
) -> tuple[_Model, list[tuple[str, Shift, int]]]:
    """The agent-by-agent model: ``x[agent, day, shift]`` with its columns."""
    model, cover_rows = _base_model(req, rules)
    days = sorted(opts.shifts)
    columns: list[tuple[str, Shift, int]] = []
    rest = timedelta(hours=rules.min_rest_hours)
    for name, weekly in team:
        weeks = {w: model.row(-math.inf, weekly) for w in sorted({_week(d) for d in days})}
        day_cols: dict[date, list[int]] = {}
        for d in days:
            one = model.row(-math.inf, 1.0)
            cols = []
            for shift, cover in zip(opts.shifts[d], opts.cover[d], strict=True):
                entries = [(cover_rows[i], f) for i, f in cover]
                entries += [(one, 1.0), (weeks[_week(d)], shift.work_hours)]
                col = model.column(0.0, 1.0, True, entries)
                cols.append(col)
                columns.append((name, shift, col))
            day_cols[d] = cols
        _rest_rows(model, opts.shifts, day_cols, rest)
    return model, columns


def _rest_rows(
    model: _Model,
    shifts: dict[date, list[Shift]],
    day_cols: dict[date, list[int]],
    rest: timedelta,
) -> None:
    """For one agent, forbid two shifts closer than ``rest``: for each end time E of a
    day, the shifts ending at E or later and the shifts of a later day starting before
    E + rest share one row with bound 1 (exactly the incompatible pairs)."""
    days = sorted(shifts)
    for i, d in enumerate(days):
        for later in days[i + 1 :]:
            if not shifts[later] or not shifts[d]:
                continue
            if max(s.end for s in shifts[d]) + rest <= min(s.start for s in shifts[later]):
                continue
            for end in sorted({s.end for s in shifts[d]}):
                early = [
                    c
                    for s, c in zip(shifts[later], day_cols[later], strict=True)
                    if s.start < end + rest
                ]
                if not early:
                    continue
                row = model.row(-math.inf, 1.0)
                for s, c in zip(shifts[d], day_cols[d], strict=True):
                    if s.end >= end:
                        model.add_to(c, row, 1.0)
                for c in early:
                    model.add_to(c, row, 1.0)


def _tours(
    counts: list[tuple[Shift, int]], team: Sequence[tuple[str, float]], rules: ScheduleConfig
) -> tuple[list[Assignment], int]:
    """Give each shift of ``counts`` (shift, how many agents) to one of ``team`` (name,
    weekly hours): the busiest days first (the days nearly everyone must work), longest
    shifts first, each to the agent with the most hours left that week who is free that
    day and rested before and after. The assignments and the shifts nobody could take."""
    used: dict[tuple[str, tuple[int, int]], float] = defaultdict(float)
    worked: dict[str, list[Shift]] = defaultdict(list)
    rest = timedelta(hours=rules.min_rest_hours)
    out: list[Assignment] = []
    unassigned = 0
    by_day: dict[date, list[Shift]] = defaultdict(list)
    for shift, n in counts:
        by_day[shift.day].extend([shift] * n)

    def rested(name: str, shift: Shift) -> bool:
        return all(
            other.end + rest <= shift.start or shift.end + rest <= other.start
            for other in worked[name]
        )

    for day in sorted(by_day, key=lambda d: (-len(by_day[d]), d)):
        week = _week(day)
        busy: set[str] = set()
        for shift in sorted(by_day[day], key=lambda s: (-s.work_hours, s.start)):
            free = [
                (used[name, week] - weekly, i, name)
                for i, (name, weekly) in enumerate(team)
                if name not in busy
                and used[name, week] + shift.work_hours <= weekly + 1e-9
                and rested(name, shift)
            ]
            if not free:
                unassigned += 1
                continue
            agent = min(free)[2]  # most hours left, then the first
            busy.add(agent)
            used[agent, week] += shift.work_hours
            worked[agent].append(shift)
            out.append(Assignment(agent, shift))
    return out, unassigned

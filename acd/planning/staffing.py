"""Staffing maths: Erlang B, Erlang C and Erlang A (M/M/n+M), and staffing searches.

Models (time in seconds, rates per second): Poisson arrivals at rate λ, exponential
handling times of mean AHT (μ = 1/AHT), ``n`` agents, offered traffic a = λ/μ erlangs.

* **Erlang B** by the stable recursion ``B(k) = a·B(k-1) / (k + a·B(k-1))``.
* **Erlang C** (M/M/n, callers never hang up): closed forms from B.
* **Erlang A** (M/M/n+M, exponential patience of mean 1/θ), after Mandelbaum & Zeltyn.
  With A = 1 + Σ_{j≥1} Π_{i=1..j} λ/(nμ + iθ) (their A(nμ/θ, λ/θ), an incomplete-gamma
  ratio), P(wait) = A·B(n) / (1 − B(n) + A·B(n)). Given that a caller waits, the
  offered wait V (the wait of an infinitely patient caller) has density proportional to
  exp(φ(u)) with φ(u) = λ(1 − e^{−θu})/θ − nμu, so that A = nμ∫exp(φ) and every figure
  is a ratio of integrals of exp(φ): P(abandon | wait) = E[1 − e^{−θV}], answered
  within t = E[e^{−θV}; V ≤ t], P(V > t), the wait of answered calls E[V e^{−θV}].
  These are the closed forms' incomplete-gamma ratios (substitute y = (λ/θ)e^{−θu});
  φ is concave, so they are computed to machine precision by Gauss-Legendre panels
  around its maximum, in logarithms and with positive integrands only: no overflow and
  no cancellation for any number of agents, and P(abandon) = θ·E[wait] holds exactly.

Staffing is the smallest number of agents meeting every target, searched upward from a
lower bound (under Erlang A fewer agents than the load can meet a target), then
shrinkage: scheduled = ⌈agents / (1 − shrinkage)⌉.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise
from typing import NamedTuple

from acd.errors import AcdError, must_be

MAX_AGENTS = 100_000
SL_METRICS = ("sl_offered", "sl_answered", "sl_wait")


class StaffingError(AcdError):
    """Impossible traffic, targets or team (negative AHT, unreachable target ...)."""


def _legendre(order: int, x: float) -> tuple[float, float]:
    """P_order(x) and its derivative, by the three-term recurrence."""
    p0, p1 = 1.0, x
    for k in range(2, order + 1):
        p0, p1 = p1, ((2 * k - 1) * x * p1 - (k - 1) * p0) / k
    return p1, order * (x * p1 - p0) / (x * x - 1)


def _gauss_legendre(order: int) -> tuple[tuple[float, float], ...]:
    """Nodes and weights of Gauss-Legendre quadrature mapped to [0, 1] (Newton's method
    on the roots of P_order from Tricomi's initial guesses)."""
    rule = []
    for i in range(1, order + 1):
        x = math.cos(math.pi * (i - 0.25) / (order + 0.5))
        for _ in range(100):
            value, slope = _legendre(order, x)
            x -= value / slope
            if abs(value / slope) < 1e-16:
                break
        slope = _legendre(order, x)[1]
        rule.append(((x + 1) / 2, 1 / ((1 - x * x) * slope * slope)))
    return tuple(rule)


_RULE = _gauss_legendre(20)
_PANELS = 8  # panels per side of the maximum of φ
_DROP = 42.0  # nats below the maximum where the integrals are cut (e^-42 ≈ 6e-19)


@dataclass(frozen=True)
class Traffic:
    """Calls offered per interval, their mean handling time and, for Erlang A, patience."""

    calls: float
    aht_s: float
    interval_s: float = 3600.0
    patience_s: float | None = None  # None: callers never abandon (Erlang C)
    arrival_rate: float = field(init=False, repr=False)  # λ, calls per second
    erlangs: float = field(init=False, repr=False)  # offered traffic a = λ·AHT

    def __post_init__(self) -> None:
        if not 0 <= self.calls < math.inf:
            raise StaffingError(must_be("calls", "zero or more", self.calls))
        if not 0 < self.aht_s < math.inf:
            raise StaffingError(must_be("AHT", "a positive number of seconds", self.aht_s))
        if not 0 < self.interval_s < math.inf:
            raise StaffingError(must_be("interval", "positive", self.interval_s))
        if self.patience_s is not None and not 0 < self.patience_s < math.inf:
            raise StaffingError(must_be("patience", "positive", self.patience_s))
        object.__setattr__(self, "arrival_rate", self.calls / self.interval_s)
        object.__setattr__(self, "erlangs", self.arrival_rate * self.aht_s)

    @property
    def model(self) -> str:
        return "erlang_c" if self.patience_s is None else "erlang_a"


class Performance(NamedTuple):
    """Steady-state figures of one team facing one traffic (fractions of offered calls)."""

    agents: int
    traffic_erlangs: float
    threshold_s: float
    p_wait: float  # P(all agents busy on arrival)
    p_abandon: float
    answer_rate: float  # answered / offered (taux de décroché)
    sl_offered: float  # answered within threshold / offered
    sl_answered: float  # answered within threshold / answered
    sl_wait: float  # (answered + abandoned within threshold) / (answered + abandoned)
    asa_s: float  # mean wait of answered calls
    mean_wait_s: float  # mean wait of all calls (abandoned ones until they hang up)
    occupancy: float  # busy fraction of the agents' time


# Target option, metric it bounds (None: the chosen service level), at least?, allowed.
_GOALS = (
    ("sl", None, True, "]0, 1]"),
    ("max_abandon", "p_abandon", False, "]0, 1["),
    ("min_answer_rate", "answer_rate", True, "]0, 1]"),
    ("max_asa_s", "asa_s", False, "]0, inf["),
    ("max_occupancy", "occupancy", False, "]0, 1]"),
)


@dataclass(frozen=True)
class Targets:
    """Goals a team must meet; ``None`` leaves a goal out."""

    sl: float | None = None  # this fraction ...
    threshold_s: float = 20.0  # ... within this many seconds
    sl_metric: str = "sl_offered"  # which service level (docs/staffing.md) the goal is on
    max_abandon: float | None = None
    min_answer_rate: float | None = None
    max_asa_s: float | None = None
    max_occupancy: float | None = None
    # (metric, at least?, goal, as text) per goal given
    _checks: tuple[tuple[str, bool, float, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.sl_metric not in SL_METRICS:
            raise StaffingError(f"service level must be one of {', '.join(SL_METRICS)}")
        if not 0 <= self.threshold_s < math.inf:
            raise StaffingError(must_be("threshold", "zero or more seconds", self.threshold_s))
        checks = []
        for option, metric, at_least, allowed in _GOALS:
            goal = getattr(self, option)
            if goal is None:
                continue
            top = 1.0 if allowed.startswith("]0, 1") else math.inf
            if not (0 < goal < top or (goal == top and allowed.endswith("]"))):
                raise StaffingError(f"{option} must be in {allowed}, got {goal:g}")
            name = metric or self.sl_metric
            text = f"{name} {'>=' if at_least else '<='} {goal:g}"
            checks.append((name, at_least, goal, text))
        object.__setattr__(self, "_checks", tuple(checks))

    def goals(self) -> list[str]:
        """Every goal as text, e.g. ``["sl_offered >= 0.8", "answer_rate >= 0.99"]``."""
        return [text for *_, text in self._checks]

    def unmet(self, perf: Performance) -> list[str]:
        """The goals ``perf`` misses, e.g. ``["answer_rate >= 0.99"]``; empty when all met."""
        return [
            text
            for metric, up, goal, text in self._checks
            if not (getattr(perf, metric) >= goal if up else getattr(perf, metric) <= goal)
        ]


def erlang_b(agents: int, traffic: float) -> float:
    """Blocking probability of M/M/n/n with ``traffic`` erlangs offered."""
    b = 1.0
    for k in range(1, agents + 1):
        b = traffic * b / (k + traffic * b)
    return b


def erlang_c(agents: int, traffic: float) -> float:
    """Probability of waiting in M/M/n (1 when the team cannot carry the load)."""
    if agents <= traffic:
        return 1.0
    b = erlang_b(agents, traffic)
    return agents * b / (agents - traffic * (1 - b))


class _ErlangBTable:
    """B(n) and 1 − B(n) for one traffic, the recursion resumed from the nearest n below
    already computed (a search probes upward, then bisects between probes)."""

    def __init__(self, traffic: float) -> None:
        self.traffic = traffic
        self.known = {0: (1.0, 0.0)}
        self.top = 0

    def at(self, agents: int) -> tuple[float, float]:
        if agents in self.known:
            return self.known[agents]
        if agents > self.top:
            start, self.top = self.top, agents
        else:
            start = max(k for k in self.known if k < agents)
        a, b, previous = self.traffic, self.known[start][0], 0.0
        for k in range(start + 1, agents + 1):
            previous = a * b
            b = previous / (k + previous)
        self.known[agents] = (b, agents / (agents + previous))
        return self.known[agents]


def evaluate(traffic: Traffic, agents: int, threshold_s: float = 20.0) -> Performance:
    """The figures of ``agents`` agents facing ``traffic`` (threshold for service levels)."""
    return _evaluate(traffic, agents, threshold_s, _ErlangBTable(traffic.erlangs))


def _evaluate(
    traffic: Traffic, agents: int, threshold_s: float, table: _ErlangBTable
) -> Performance:
    if agents < 0 or agents > MAX_AGENTS:
        raise StaffingError(f"agents must be between 0 and {MAX_AGENTS}, got {agents}")
    a = traffic.erlangs
    if a == 0:
        return Performance(agents, 0.0, threshold_s, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0)
    if agents == 0:
        raise StaffingError("no agents for a traffic of calls: give at least one agent")
    b, complement = table.at(agents)
    if traffic.patience_s is None:
        return _erlang_c(traffic, agents, threshold_s, b, complement)
    return _erlang_a(traffic, agents, threshold_s, b, complement)


def _erlang_c(traffic: Traffic, n: int, t: float, b: float, complement: float) -> Performance:
    a = traffic.erlangs
    if n <= a:
        raise StaffingError(
            f"{n} agents cannot carry {a:.4g} erlangs when callers never hang up: the queue"
            " grows without bound (give a patience for Erlang A, or more agents)"
        )
    p_wait = n * b / (n - a * complement)
    spare = n / traffic.aht_s - traffic.arrival_rate  # nμ − λ
    sl = 1 - p_wait * math.exp(-spare * t)
    asa = p_wait / spare
    return Performance(n, a, t, p_wait, 0.0, 1.0, sl, sl, sl, asa, asa, a / n)


def _erlang_a(traffic: Traffic, n: int, t: float, b: float, complement: float) -> Performance:
    lam = traffic.arrival_rate
    theta = 1 / traffic.patience_s
    s = _WaitIntegrals(lam, n / traffic.aht_s, theta, t)
    if b == 0.0:
        p_wait = 0.0
    else:
        log_ab = math.log(n / traffic.aht_s) + s.log_scale + math.log(s.total) + math.log(b)
        if log_ab >= 0:
            p_wait = 1 / (1 + complement * math.exp(-log_ab))
        else:
            e = math.exp(log_ab)
            p_wait = e / (e + complement)
    p_abandon = p_wait * s.abandoned / s.total
    answer_rate = 1 - p_abandon
    sl_offered = (1 - p_wait) + p_wait * s.answered_within / s.total
    sl_wait = 1 - p_wait * s.beyond / s.total * math.exp(-theta * t)
    asa = p_wait * s.answered_wait / s.total / answer_rate
    a = traffic.erlangs
    return Performance(
        agents=n,
        traffic_erlangs=a,
        threshold_s=t,
        p_wait=p_wait,
        p_abandon=p_abandon,
        answer_rate=answer_rate,
        sl_offered=sl_offered,
        sl_answered=min(1.0, sl_offered / answer_rate),
        sl_wait=sl_wait,
        asa_s=asa,
        mean_wait_s=p_abandon * traffic.patience_s,
        occupancy=min(1.0, a * answer_rate / n),
    )


class _WaitIntegrals:
    """Integrals over u ≥ 0 of exp(φ(u) − log_scale), φ(u) = λ(1 − e^{−θu})/θ − nμu.

    ``total`` = ∫ 1, ``abandoned`` = ∫ (1 − e^{−θu}), ``answered_within`` = ∫_{u≤t} e^{−θu},
    ``beyond`` = ∫_{u>t} 1, ``answered_wait`` = ∫ u e^{−θu}; all scaled by e^{−log_scale}.
    """

    def __init__(self, lam: float, nmu: float, theta: float, t: float) -> None:
        self.lam, self.nmu, self.theta = lam, nmu, theta
        # Panels fit both exp(φ) and the answered calls' exp(φ(u) − θu), whose scales
        # differ when callers are far less patient than the agents are quick.
        edges = sorted(set(self._edges(0.0)) | set(self._edges(theta)))
        if edges[0] < t < edges[-1]:
            edges.append(t)
            edges.sort()
        top = self.log_scale = max(self.phi(u) for u in edges)
        total = abandoned = within = beyond = waited = 0.0
        for left, right in pairwise(edges):
            width = right - left
            for x, w in _RULE:
                u = left + x * width
                weight = w * width * math.exp(self.phi(u) - top)
                kept = math.exp(-theta * u)
                total += weight
                abandoned -= weight * math.expm1(-theta * u)
                waited += weight * kept * u
                if u <= t:
                    within += weight * kept
                else:
                    beyond += weight
        self.total, self.abandoned, self.beyond = total, abandoned, beyond
        self.answered_within, self.answered_wait = within, waited

    def phi(self, u: float, extra: float = 0.0) -> float:
        """φ(u) − extra·u."""
        return -self.lam * math.expm1(-self.theta * u) / self.theta - (self.nmu + extra) * u

    def _edges(self, extra: float) -> list[float]:
        """Panel edges over the range where φ(u) − extra·u is within _DROP of its maximum."""
        lam, theta = self.lam, self.theta
        rate = self.nmu + extra
        mode = math.log(lam / rate) / theta if lam > rate else 0.0
        top = self.phi(mode, extra)
        slope = lam * math.exp(-theta * mode)
        scale = 1 / (abs(slope - rate) + math.sqrt(theta * slope))
        cuts = [mode, self._cut(mode, top, scale, extra)]
        if mode > 0:
            left = self.phi(0, extra) < top - _DROP
            cuts.insert(0, self._cut(mode, top, -scale, extra) if left else 0.0)
        edges = [cuts[-1]]
        for left, right in pairwise(cuts):
            width = (right - left) / _PANELS
            edges.extend(left + i * width for i in range(_PANELS))
        return edges

    def _cut(self, start: float, top: float, step: float, extra: float) -> float:
        """The point past ``start`` (towards the sign of ``step``) where the log drops _DROP."""
        near, far = start, start + step
        while self.phi(far, extra) > top - _DROP:
            near, far = far, far + 2 * (far - start)
        for _ in range(12):  # the cut need not be exact: it only bounds the integrals
            mid = (near + far) / 2
            near, far = (mid, far) if self.phi(mid, extra) > top - _DROP else (near, mid)
        return max(far, 0.0)


def lower_bound(traffic: Traffic, targets: Targets) -> int:
    """A number of agents no team meeting ``targets`` can be below (at least 1)."""
    a = traffic.erlangs
    bounds = [1.0]
    if traffic.patience_s is None:
        bounds.append(math.floor(a) + 1)  # stability: n > a
        if targets.max_occupancy is not None:
            bounds.append(a / targets.max_occupancy)
    else:
        # Busy agents carry a·answer_rate erlangs, so n ≥ a·answer_rate.
        answered = [
            targets.min_answer_rate,
            None if targets.max_abandon is None else 1 - targets.max_abandon,
            targets.sl if targets.sl_metric == "sl_offered" else None,
        ]
        bounds.extend(a * r for r in answered if r is not None)
    return max(1, math.ceil(max(bounds) * (1 - 1e-12)))


def required_agents(
    traffic: Traffic, targets: Targets, max_agents: int = MAX_AGENTS
) -> Performance:
    """The smallest team meeting every target, with its figures.

    Searches upward from :func:`lower_bound` by doubling steps, then bisects the last
    step (every figure is monotone in the number of agents). With no calls, no agents.
    """
    t = targets.threshold_s
    if traffic.erlangs == 0:
        return evaluate(traffic, 0, t)
    table = _ErlangBTable(traffic.erlangs)
    low = lower_bound(traffic, targets)
    if low > max_agents:
        raise StaffingError(f"no team of up to {max_agents} agents can carry this traffic")
    checked: dict[int, Performance] = {}

    def meets(n: int) -> bool:
        checked[n] = _evaluate(traffic, n, t, table)
        return not targets.unmet(checked[n])

    if meets(low):
        return checked[low]
    # Teams meeting a target exceed the load by O(√a) agents: steps start at √a / 2.
    step, failing = max(1, math.isqrt(int(traffic.erlangs)) // 2), low
    while True:
        probe = min(failing + step, max_agents)
        if meets(probe):
            break
        if probe == max_agents:
            missed = ", ".join(targets.unmet(checked[probe]))
            raise StaffingError(f"no team of up to {max_agents} agents meets {missed}")
        failing, step = probe, step * 2
    while probe - failing > 1:
        mid = (failing + probe) // 2
        failing, probe = (failing, mid) if meets(mid) else (mid, probe)
    return checked[probe]


def scheduled_agents(agents: int, shrinkage: float) -> int:
    """Agents to schedule so that ``agents`` are on the phones: ⌈agents / (1 − shrinkage)⌉."""
    if not 0 <= shrinkage < 1:
        raise StaffingError(f"shrinkage must be in [0, 1[, got {shrinkage:g}")
    return math.ceil(agents / (1 - shrinkage) * (1 - 1e-12))

"""Simulated switch and what-if simulation: how fast simulated days run in-process.

Two parts, both in virtual time:

* **The wire** (``sim_day_700_*``, ``sim_msgs_per_s``, ``sim_wire_cost_ratio``): a
  weekday at 700 calls (the reference site's busy case) runs through the switch
  endpoint, the link layer and the codec to a controller-side link, with a minimal
  router (queue every call, deflect to the longest-idle agent, transfer escalations to
  an idle specialist); the wire's cost is the ratio of the full run's time to the same
  day driven on the bare `Switch` (same seed, same routing), measured in the same run.
* **The what-if run** (``sim_calls_per_s``, ``sim_vs_ciw``): the whole stack of
  ``acd simulate`` — the switch's models, the bridge and the real engine — on a
  stationary M/M/6+M (84 calls/h, AHT 180 s, patience 120 s, 11 h days), against ciw
  (a general-purpose queueing simulator, the ``bench`` extra) simulating the same model
  for the same time. Rounds alternate ours and ciw's; each side's figure is its median
  round; both sides' abandon rates are reported beside exact Erlang A's, to show they
  simulate the same model. ``sim_engine_calls_per_s`` times the engine alone on the same
  days: every call the what-if run made to it (events, timer checks) is recorded, then
  replayed into a fresh engine with the same seed, and only that replay is timed;
  ``sim_engine_vs_ciw`` is that rate over ciw's: the ceiling of ``sim_vs_ciw`` for any
  what-if run built on the real engine, however cheap its switch side. The target is
  ``sim_engine_vs_ciw`` ≥ 1 (the engine alone; no second, speed-built switch model is
  kept beside the simulated PBX); ``sim_vs_ciw`` is reported for information.
  ``sim_calls_per_s_2_jobs`` is the same run with replications in two processes
  (``acd simulate --jobs 2``); ``sim_town_hall_calls_per_s`` runs the shipped town-hall
  weekday scenario (breaks, escalations, announcements) in one process.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

from acd.config import load_config
from acd.core.engine import Engine
from acd.planning import whatif
from acd.planning.staffing import Traffic, evaluate
from acd.runtime.clock import Clock
from firmware_sim.runner import SwitchEndpoint
from firmware_sim.scenario import load_scenario
from protocols import messages as m
from protocols.link import Link, MessageReceived, Role
from protocols.testing import ToyRouter

CONFIG = Path(__file__).resolve().parents[1] / "examples" / "town-hall.toml"
AGENTS, PER_HOUR, AHT, PATIENCE, HOURS = 6, 84.0, 180.0, 120.0, 11
DAYS = 20  # per round: about 18,000 calls
ROUNDS = 3


def router_for(sc) -> ToyRouter:
    """Queue at once, ring the longest-idle front-desk agent (2xx), transfer escalations
    to the longest-idle specialist (3xx)."""
    specialists = {a.extension for a in sc.agents if a.extension.startswith("3")}
    return ToyRouter({"*": specialists}, queue=None, front="2")


def over_the_wire() -> tuple[float, int, float]:
    sc = load_scenario("town-hall-weekday-700")
    started = time.perf_counter()
    ep = SwitchEndpoint(sc, Clock(sc.start_s, 0.0, 1.0))
    ctl = Link(Role.SWITCH)
    router = router_for(sc)
    end = sc.end_s - sc.start_s
    now = 0.0
    ep.start(now)
    ctl.start(now)
    while now < end:
        ctl.receive_data(ep.data_to_send(now), now)
        while (event := ctl.next_event()) is not None:
            if isinstance(event, MessageReceived):
                for req in router.on_message(event.message):
                    ctl.send(req, now)
        ep.receive_data(ctl.data_to_send(), now)
        ep.handle_timer(now)
        ctl.handle_timer(now)
        nxt = min(t for t in (ep.next_deadline(), ctl.next_deadline(), end) if t is not None)
        now = nxt if nxt > now else now + 1e-6
    wall = time.perf_counter() - started
    assert ep.switch.stats.answered > 500, ep.switch.stats  # the router kept calls flowing
    return wall, len(ep.sent) + len(ep.received), end


def bare_switch() -> float:
    sc = load_scenario("town-hall-weekday-700")
    started = time.perf_counter()
    sw = sc.build_switch()
    router = router_for(sc)
    sw.start(sc.start_s)
    pending: list[m.Message] = []
    while (t := sw.next_deadline()) is not None and t < sc.end_s:
        pending = sw.advance(t)
        while pending:
            msg = pending.pop(0)
            for req in router.on_message(msg):
                pending += sw.handle(req, t)
    return time.perf_counter() - started


def ours(days: int, seed: int, jobs: int = 1) -> tuple[int, float, float]:
    """Calls simulated, wall seconds and the abandon rate: ``days`` replications of one
    stationary day."""
    flags = whatif.Flags(
        agents=AGENTS,
        calls_per_day=PER_HOUR * HOURS,
        aht_s=AHT,
        patience_s=PATIENCE,
        profile={8 + h: 1.0 for h in range(HOURS)},
        trunks=1000,
    )
    spec = whatif.for_flags(flags)
    started = time.perf_counter()
    result = whatif.replicate(spec, days, seed, jobs=jobs)
    return result.calls, time.perf_counter() - started, result.overall["abandon_rate"].mean


class _Recording(Engine):
    """The engine, logging every call made to it (method name and arguments)."""

    runs: list[_Recording] = []  # noqa: RUF012

    def __init__(self, config, now, rng, **options) -> None:
        self.log: list[tuple[str, tuple]] = []
        self.made = (config, now, rng.getstate(), options)
        _Recording.runs.append(self)
        super().__init__(config, now, rng, **options)


for _name in ("handle", "next_deadline", "reconcile", "import_sessions"):

    def _logged(self, *args, _name=_name):
        self.log.append((_name, args))
        return getattr(Engine, _name)(self, *args)

    setattr(_Recording, _name, _logged)


def engine_alone(days: int, seed: int) -> tuple[int, float]:
    """Calls and the engine's own seconds in ``ours(days, seed)``: the run's calls to
    the engine are recorded, then replayed into fresh engines and only those timed."""
    _Recording.runs = []
    whatif.runs.Engine = _Recording
    try:
        calls, _, _ = ours(days, seed)
    finally:
        whatif.runs.Engine = Engine
    wall = 0.0
    for recorded in _Recording.runs:
        config, now, state, options = recorded.made
        rng = random.Random()
        rng.setstate(state)
        engine = Engine(config, now, rng, **options)
        calls_made = [(getattr(engine, name), args) for name, args in recorded.log]
        started = time.perf_counter()
        for method, args in calls_made:
            method(*args)
        wall += time.perf_counter() - started
        # the same run: as many timers scheduled and events refused, the same calls left
        same = (engine._n, engine.refused, len(engine._calls))
        if same != (recorded._n, recorded.refused, len(recorded._calls)):
            raise RuntimeError("the engine's replay diverged from the what-if run")
    return calls, wall


def ciw_run(days: int, seed: int) -> tuple[int, float, float]:
    """The same model in ciw for the same simulated time: customers, wall seconds and
    the fraction that reneged (abandoned)."""
    import ciw

    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=PER_HOUR / 3600.0)],
        service_distributions=[ciw.dists.Exponential(rate=1.0 / AHT)],
        number_of_servers=[AGENTS],
        reneging_time_distributions=[ciw.dists.Exponential(rate=1.0 / PATIENCE)],
    )
    ciw.seed(seed)
    started = time.perf_counter()
    simulation = ciw.Simulation(network)
    simulation.simulate_until_max_time(days * HOURS * 3600.0)
    wall = time.perf_counter() - started
    records = simulation.get_all_records()
    reneged = sum(r.record_type == "renege" for r in records)
    return len(records), wall, reneged / len(records)


def town_hall(days: int) -> tuple[int, float]:
    spec = whatif.for_scenario(load_scenario("town-hall-weekday-700"), load_config(CONFIG))
    started = time.perf_counter()
    result = whatif.replicate(spec, days, 1)
    return result.calls, time.perf_counter() - started


def what_if() -> dict[str, float | str | None]:
    try:
        import ciw  # noqa: F401
    except ImportError as exc:
        reason: str | None = f"ciw cannot be imported ({exc}): pip install ciw (bench extra)"
    else:
        reason = None
    rates, engine_rates, theirs, abandons, their_abandons = [], [], [], [], []
    for r in range(ROUNDS):
        calls, wall, abandon = ours(DAYS, seed=r + 1)
        rates.append(calls / wall)
        abandons.append(abandon)
        calls, wall = engine_alone(DAYS, seed=r + 1)
        engine_rates.append(calls / wall)
        if reason is None:
            customers, wall, abandon = ciw_run(DAYS, seed=r + 1)
            theirs.append(customers / wall)
            their_abandons.append(abandon)
    ours_rate = statistics.median(rates)
    engine_rate = statistics.median(engine_rates)
    ciw_rate = statistics.median(theirs) if theirs else None
    exact = evaluate(Traffic(PER_HOUR, AHT, 3600.0, PATIENCE), AGENTS)
    parallel, parallel_wall, _ = ours(DAYS, seed=1, jobs=2)
    calls, wall = town_hall(5)
    figures: dict[str, float | str | None] = {
        "sim_calls_per_s": round(ours_rate),
        "sim_calls_per_s_2_jobs": round(parallel / parallel_wall),
        "sim_town_hall_calls_per_s": round(calls / wall),
        "sim_ciw_calls_per_s": round(ciw_rate) if ciw_rate else None,
        "sim_vs_ciw": round(ours_rate / ciw_rate, 2) if ciw_rate else None,
        "sim_engine_calls_per_s": round(engine_rate),
        "sim_engine_vs_ciw": round(engine_rate / ciw_rate, 2) if ciw_rate else None,
        "sim_abandon_rate": round(statistics.fmean(abandons), 4),
        "sim_ciw_abandon_rate": round(statistics.fmean(their_abandons), 4) if theirs else None,
        "sim_erlang_a_abandon_rate": round(exact.p_abandon, 4),
    }
    if reason is not None:
        figures["sim_vs_ciw_reason"] = reason
    return figures


def run() -> dict[str, float | str | None]:
    wall, messages, simulated = over_the_wire()
    bare = bare_switch()
    return {
        "sim_day_700_wall_s": round(wall, 3),
        "sim_day_700_speedup": round(simulated / wall),
        "sim_day_700_messages": messages,
        "sim_msgs_per_s": round(messages / wall),
        "sim_wire_cost_ratio": round(wall / bare, 2),
        **what_if(),
    }

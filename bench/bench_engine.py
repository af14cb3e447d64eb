"""ACD engine throughput, decision latency and scaling with the number of agents.

A steady random load in virtual time: Poisson arrivals spread over all queues, sized so
that agents are about 70 % busy; rung agents answer after 2 s (5 % never answer and the
ring times out), talk an exponential 60 s and wrap up 5 s; 3 % of callers hang up while
waiting. Every agent has 3 skills (queues) out of the queues. Only the time spent inside
``Engine.handle`` counts (the load generator is excluded). Each size first runs for ten
call durations of virtual time (steady state: as many calls in progress as it will keep);
then the cyclic GC's objects so far are frozen (``gc.freeze()``, as a long-running
controller does after start-up), thresholds left at their defaults. The generator keeps
its future events as tuples of atoms, which the GC untracks, so that the engine's
collections do not also walk the generator's memory.

- ``engine_events_per_s``: events handled per second with 10,000 agents, 1,000 queues.
- ``engine_decision_p99_us``: 99th percentile of ``handle(CallOffered)`` when it routes
  the call (call offered → route command, in process).
- ``engine_scaling_ratio``: mean cost of an event with 10,000 agents / with 100 agents
  (10 queues), same load per agent (target ≤ 1.8: the part above the algorithm's own
  growth is CPython's cache misses on a state ~100× larger, accepted as such).
- ``engine_scaling_ratio_1000_vs_100``: the same with 1,000 agents (100 queues) / 100
  agents (target ≤ 1.2: what the algorithm itself costs as the floor grows).
"""

from __future__ import annotations

import gc
import heapq
import itertools
import random
import time
from array import array

from acd.config import AcdConfig, AgentConfig, Config, QueueConfig, SiteConfig
from acd.core.commands import RouteCall
from acd.core.engine import Engine
from acd.core.events import Answered, CallOffered, Cleared, Login, Tick
from acd.core.pins import hash_pin
from acd.runtime.bridge import handle_checking_pins

T0 = 1_796_025_600.0  # a Monday 09:00 in Paris
TALK, WRAPUP, ANSWER_DELAY = 60.0, 5.0, 2.0
WARMUP_S = 10 * (ANSWER_DELAY + TALK + WRAPUP)  # virtual time before measuring
PIN_HASH = hash_pin("1234", n=2, r=1, p=1, salt=b"bench-salt-16byt")


def site(agents: int, queues: int, seed: int) -> Config:
    rng = random.Random(seed)
    qcfg = {
        f"q{i}": QueueConfig(id=f"q{i}", numbers=(f"{5000 + i}",), wrapup=WRAPUP)
        for i in range(queues)
    }
    acfg = {}
    for i in range(agents):
        skills = {f"q{j}": rng.randint(1, 5) for j in rng.sample(range(queues), 3)}
        acfg[f"a{i}"] = AgentConfig(id=f"a{i}", pin_hash=PIN_HASH, skills=skills)
    return Config(
        site=SiteConfig(id="bench", seed=seed),
        acd=AcdConfig(max_misses=1000),
        queues=qcfg,
        agents=acfg,
    )


class Load:
    """One engine under a steady random load, run in chunks of events."""

    def __init__(self, agents: int, queues: int, seed: int = 7) -> None:
        self.engine = Engine(site(agents, queues, seed), T0)
        self.queues = queues
        self.rng = random.Random(seed)
        for i in range(agents):
            handle_checking_pins(self.engine, Login(T0, f"d{i}", f"a{i}", "1234"))
        self.rate = 0.7 * agents / (TALK + WRAPUP + ANSWER_DELAY)  # calls per second
        # the switch's side: future (at, seq, answered?, call id, device), atoms only, so
        # that the cyclic GC untracks them and the engine's collections do not walk them
        self.pending: list[tuple[float, int, bool, int, str]] = []
        self.seq = itertools.count()
        self.next_call = T0
        self.call_id = 0
        self.costs = array("d")  # contiguous: the bench's own memory stays out of the way
        self.decisions = array("d")

    def push(self, at: float, answered: bool, call_id: int, device: str) -> None:
        heapq.heappush(self.pending, (at, next(self.seq), answered, call_id, device))

    def run(self, events: int, measure: bool = True) -> None:
        """Handle ``events`` events; with ``measure``, keep their costs."""
        engine, rng, pending, push = self.engine, self.rng, self.pending, self.push
        handle = engine.handle
        perf = time.perf_counter
        for _ in range(events):
            now = self.next_call
            if pending and pending[0][0] < now:
                now = pending[0][0]
            deadline = engine.next_deadline()
            if deadline is not None and deadline < now:
                now = deadline
            if now == self.next_call:
                self.call_id += 1
                number = f"{5000 + rng.randrange(self.queues)}"
                event = CallOffered(now, self.call_id, number, "0600000000")
                self.next_call = now + rng.expovariate(self.rate)
                if rng.random() < 0.03:  # an impatient caller
                    push(now + rng.expovariate(1 / 20), False, self.call_id, "")
            elif pending and now == pending[0][0]:
                _, _, answered, call_id, device = heapq.heappop(pending)
                event = (Answered if answered else Cleared)(now, call_id, device)
            else:
                event = Tick(now)
            started = perf()
            out = handle(event)
            cost = perf() - started
            if measure:
                self.costs.append(cost)
            for o in out:
                if type(o) is RouteCall:
                    if measure and type(event) is CallOffered:
                        self.decisions.append(cost)
                    if rng.random() < 0.95:  # else the ring times out
                        push(now + ANSWER_DELAY, True, o.call_id, o.device)
                        talk = ANSWER_DELAY + rng.expovariate(1 / TALK)
                        push(now + talk, False, o.call_id, o.device)

    def mean_cost(self) -> float:
        return sum(self.costs) / len(self.costs)


def run() -> dict:
    sizes = {100: 10, 1_000: 100, 10_000: 1_000}
    loads = {agents: Load(agents, queues) for agents, queues in sizes.items()}
    for load in loads.values():  # reach the steady state: many talk times, not events
        load.run(30_000, measure=False)
        while load.engine.now < T0 + WARMUP_S:
            load.run(10_000, measure=False)
    gc.collect()
    gc.freeze()  # as a long-running controller would after start-up
    for _ in range(10):  # interleaved: every size sees the same machine load
        for load in loads.values():
            load.run(15_000)
    gc.unfreeze()
    cost = {agents: load.mean_cost() for agents, load in loads.items()}
    decisions = sorted(loads[10_000].decisions)
    return {
        "engine_events_per_s": round(1 / cost[10_000]),
        "engine_decision_p99_us": round(decisions[int(0.99 * (len(decisions) - 1))] * 1e6, 1),
        "engine_scaling_ratio": round(cost[10_000] / cost[100], 3),
        "engine_scaling_ratio_1000_vs_100": round(cost[1_000] / cost[100], 3),
        "engine_event_us_100_agents": round(cost[100] * 1e6, 2),
        "engine_event_us_1000_agents": round(cost[1_000] * 1e6, 2),
        "engine_event_us_10000_agents": round(cost[10_000] * 1e6, 2),
    }


if __name__ == "__main__":
    print(run())

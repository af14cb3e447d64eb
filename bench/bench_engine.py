"""ACD engine throughput, decision latency and scaling with the number of agents.

A steady random load in virtual time: Poisson arrivals spread over all queues, sized so
that agents are about 70 % busy; rung agents answer after 2 s (5 % never answer and the
ring times out), talk an exponential 60 s and wrap up 5 s; 3 % of callers hang up while
waiting. Every agent has 3 skills (queues) out of the queues. Only the time spent inside
``Engine.handle`` counts (the load generator is excluded).

- ``engine_events_per_s``: events handled per second with 10,000 agents, 1,000 queues.
- ``engine_decision_p99_us``: 99th percentile of ``handle(CallOffered)`` when it routes
  the call (call offered → route command, in process).
- ``engine_scaling_ratio``: mean cost of an event with 10,000 agents / with 100 agents
  (10 queues), same load per agent.
"""

from __future__ import annotations

import gc
import heapq
import itertools
import random
import time
from array import array
from dataclasses import replace

from acd.commands import RouteCall
from acd.config import AcdConfig, AgentConfig, Config, QueueConfig, SiteConfig
from acd.engine import Engine
from acd.events import Answered, CallOffered, Cleared, Event, Login, Tick
from acd.pins import hash_pin

T0 = 1_796_025_600.0  # a Monday 09:00 in Paris
TALK, WRAPUP, ANSWER_DELAY = 60.0, 5.0, 2.0
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


def load(agents: int, queues: int, events: int, seed: int = 7) -> tuple[list[float], list[float]]:
    """Run the load; return (seconds per event, seconds per routing CallOffered)."""
    cfg = site(agents, queues, seed)
    engine = Engine(cfg, T0)
    rng = random.Random(seed)
    for i in range(agents):
        engine.handle(Login(T0, f"d{i}", f"a{i}", "1234"))
    gc.collect()
    gc.freeze()  # as a long-running controller would after start-up: static objects stay
    # out of every collection
    rate = 0.7 * agents / (TALK + WRAPUP + ANSWER_DELAY)  # calls per second
    pending: list[tuple[float, int, Event]] = []  # the switch's side: future events
    seq = itertools.count()

    def push(at: float, event: Event) -> None:
        heapq.heappush(pending, (at, next(seq), event))

    next_call = T0
    call_id = 0
    costs = array("d")  # contiguous: the bench's own memory stays out of the engine's way
    decisions = array("d")
    warmup = events // 5
    handle = engine.handle
    perf = time.perf_counter
    while len(costs) < events:
        now = next_call
        if pending and pending[0][0] < now:
            now = pending[0][0]
        deadline = engine.next_deadline()
        if deadline is not None and deadline < now:
            now = deadline
        if now == next_call:
            call_id += 1
            event = CallOffered(now, call_id, f"{5000 + rng.randrange(queues)}", "0600000000")
            next_call = now + rng.expovariate(rate)
            if rng.random() < 0.03:  # an impatient caller
                push(now + rng.expovariate(1 / 20), Cleared(now, call_id))
        elif pending and now == pending[0][0]:
            event = replace(heapq.heappop(pending)[2], at=now)
        else:
            event = Tick(now)
        started = perf()
        out = handle(event)
        cost = perf() - started
        if warmup:
            warmup -= 1
        else:
            costs.append(cost)
        for o in out:
            if type(o) is RouteCall:
                if type(event) is CallOffered and not warmup:
                    decisions.append(cost)
                if rng.random() < 0.95:  # else the ring times out
                    push(now + ANSWER_DELAY, Answered(now, o.call_id, o.device))
                    talk = ANSWER_DELAY + rng.expovariate(1 / TALK)
                    push(now + talk, Cleared(now, o.call_id, o.device))
    gc.unfreeze()
    return list(costs), list(decisions)


def run() -> dict:
    big, decisions = load(10_000, 1_000, 150_000)
    small, _ = load(100, 10, 150_000)
    mean_big = sum(big) / len(big)
    mean_small = sum(small) / len(small)
    decisions.sort()
    p99 = decisions[int(0.99 * (len(decisions) - 1))]
    return {
        "engine_events_per_s": round(1 / mean_big),
        "engine_decision_p99_us": round(p99 * 1e6, 1),
        "engine_scaling_ratio": round(mean_big / mean_small, 3),
        "engine_events_measured": len(big),
    }


if __name__ == "__main__":
    print(run())

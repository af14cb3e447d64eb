"""Routing strategies (a registry of `Strategy` objects) and the pools they pick from.

A `Strategy` says three things: the *key kind* that orders a pool's agents, how it
*picks* from a pool, and how it *rings* (one agent, all, or one more every
``progressive_interval``). ``REGISTRY`` maps each name to its strategy; the names are
the values ``[queues.X] strategy`` accepts. Adding one is a `register` call::

    register(Strategy("newest-idle", BY_IDLE, lambda pool: pool.members[-1]))

A pool keeps its agents sorted by an integer key in two parallel sequences: ``keys``, a
contiguous ``array('q')``, and ``members``, the agents in the same order. The caller
keeps each agent's key (the engine, on the agent itself) and gives it back to remove the
agent: no per-pool dict to touch. Adding or removing an agent is a binary search
over the contiguous keys and one insertion or deletion (a C ``memmove``); picking is O(1)
(first entry, random index) or O(log n) (round-robin successor): nothing scans the
members, and a search touches a few cache lines instead of one object per comparison.
The strategies:

==================  ============================================  ====================
strategy            key                                           pick
==================  ============================================  ====================
longest-idle        idle sequence number (when it became idle)    first
round-robin         position (skill level desc., config order)    next after the last
ordered             position                                      first
fewest-calls        calls answered << 32 | idle sequence          first
least-talk          talk milliseconds << 32 | idle sequence       first
random              position                                      uniform index
weighted-random     position                                      index, accepted with
                                                                  weight / max weight
ring-all            position                                      every entry
ring-progressive    position                                      first, then the next
==================  ============================================  ====================
"""

from __future__ import annotations

import enum
import random
from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

M = TypeVar("M")  # the member type (the engine's agents)
_RANDOM_TRIES = 32  # rejection-sampling rounds before weighted-random takes the last draw


class Pool(Generic[M]):
    """Available agents of one queue tier, in strategy order."""

    # hot fields first: they share the object's first cache line
    __slots__ = ("members", "keys", "strategy", "last", "rng", "weights", "max_weight")  # noqa: RUF023

    def __init__(self, strategy: Strategy, rng: random.Random) -> None:
        self.strategy = strategy
        self.rng = rng
        self.keys = array("q")
        self.members: list[M] = []
        self.last: int | None = None  # round-robin memory: key of the last agent picked
        self.weights: dict[M, int] = {}  # weighted-random only
        self.max_weight = 1

    def __len__(self) -> int:
        return len(self.members)

    def add(self, member: M, key: int) -> None:
        """Insert ``member`` at its ``key`` (after members with the same key)."""
        i = bisect_right(self.keys, key)
        self.keys.insert(i, key)
        self.members.insert(i, member)

    def remove(self, member: M, key: int) -> None:
        """Take out ``member``, added with ``key``."""
        members = self.members
        i = bisect_left(self.keys, key)
        while members[i] is not member:  # equal keys are rare: at most a short run
            i += 1
        del self.keys[i]
        del members[i]

    def pick(self) -> M:
        """The agent the strategy chooses (the pool must not be empty)."""
        return self.strategy.pick(self)

    def all(self) -> list[M]:
        """Every agent, in order (ring-all)."""
        return list(self.members)


# -- the strategies ---------------------------------------------------------------------

# key kinds: what orders a pool (the engine computes the key when an agent joins it)
BY_POSITION, BY_IDLE, BY_CALLS, BY_TALK = 0, 1, 2, 3


class RingMode(enum.Enum):
    """How a call rings the agents a strategy picks."""

    ONE = "one"  # the agent picked (RouteCall)
    ALL = "all"  # every agent of the pool at once (RingDevices)
    PROGRESSIVE = "progressive"  # the agent picked, one more every progressive_interval


@dataclass(frozen=True, slots=True)
class Strategy:
    """A routing strategy: pool order, pick, ring mode (see the module docstring)."""

    name: str
    key: int  # BY_POSITION, BY_IDLE, BY_CALLS or BY_TALK
    pick: Callable[[Pool[Any]], Any]  # chooses from a pool that is not empty
    ring: RingMode = RingMode.ONE
    weighted: bool = False  # the pool keeps each agent's [agents.X] weight


def _first(pool: Pool[M]) -> M:
    return pool.members[0]


def _next_after_last(pool: Pool[M]) -> M:
    i = bisect_right(pool.keys, pool.last) if pool.last is not None else 0
    if i == len(pool.members):
        i = 0
    pool.last = pool.keys[i]
    return pool.members[i]


def _uniform(pool: Pool[M]) -> M:
    members = pool.members
    return members[pool.rng.randrange(len(members))]


def _weighted(pool: Pool[M]) -> M:
    members, rng, weights, top = pool.members, pool.rng, pool.weights, pool.max_weight
    for _ in range(_RANDOM_TRIES):
        member = members[rng.randrange(len(members))]
        if rng.random() * top < weights[member]:
            break
    return member


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Make ``strategy`` known by its name (the configuration accepts it from then on)."""
    REGISTRY[strategy.name] = strategy
    return strategy


for _strategy in (
    Strategy("longest-idle", BY_IDLE, _first),
    Strategy("round-robin", BY_POSITION, _next_after_last),
    Strategy("ordered", BY_POSITION, _first),
    Strategy("fewest-calls", BY_CALLS, _first),
    Strategy("least-talk", BY_TALK, _first),
    Strategy("random", BY_POSITION, _uniform),
    Strategy("weighted-random", BY_POSITION, _weighted, weighted=True),
    Strategy("ring-all", BY_POSITION, _first, RingMode.ALL),
    Strategy("ring-progressive", BY_POSITION, _first, RingMode.PROGRESSIVE),
):
    register(_strategy)

"""Pools of available agents, one per (queue, tier), ordered for the queue's strategy.

A pool keeps its agents sorted by an integer key in two parallel sequences: ``keys``, a
contiguous ``array('q')``, and ``members``, the agents in the same order. The caller
keeps each agent's key (the engine, on the agent itself) and gives it back to remove the
agent: no per-pool dict to touch. Adding or removing an agent is a binary search
over the contiguous keys and one insertion or deletion (a C ``memmove``); picking is O(1)
(first entry, random index) or O(log n) (round-robin successor): nothing scans the
members, and a search touches a few cache lines instead of one object per comparison.
The key decides the order:

==================  ============================================  ====================
strategy            key                                           pick
==================  ============================================  ====================
longest-idle        idle sequence number (when it became idle)    first
ordered             position (skill level desc., config order)    first
round-robin         position                                      next after the last
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

import random
from array import array
from bisect import bisect_left, bisect_right
from typing import Generic, TypeVar

M = TypeVar("M")  # the member type (the engine's agents)
_RANDOM_TRIES = 32  # rejection-sampling rounds before weighted-random takes the last draw


class Pool(Generic[M]):
    """Available agents of one queue tier, in strategy order."""

    # hot fields first: they share the object's first cache line
    __slots__ = ("members", "keys", "strategy", "last", "rng", "weights", "max_weight")  # noqa: RUF023

    def __init__(self, strategy: str, rng: random.Random) -> None:
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
        members = self.members
        strategy = self.strategy
        if strategy == "round-robin":
            i = bisect_right(self.keys, self.last) if self.last is not None else 0
            if i == len(members):
                i = 0
            self.last = self.keys[i]
            return members[i]
        if strategy == "random":
            return members[self.rng.randrange(len(members))]
        if strategy == "weighted-random":
            rng, weights, top = self.rng, self.weights, self.max_weight
            for _ in range(_RANDOM_TRIES):
                member = members[rng.randrange(len(members))]
                if rng.random() * top < weights[member]:
                    break
            return member
        return members[0]

    def all(self) -> list[M]:
        """Every agent, in order (ring-all)."""
        return list(self.members)

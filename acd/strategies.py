"""Pools of available agents, one per (queue, tier), ordered for the queue's strategy.

A pool keeps its agents sorted by an integer key in two parallel sequences: ``keys``, a
contiguous ``array('q')``, and ``ids``, the agent ids in the same order (plus a dict from
agent id to key). Adding or removing an agent is a binary search over the contiguous keys
and one insertion or deletion (a C ``memmove``); picking is O(1) (first entry, random
index) or O(log n) (round-robin successor): nothing scans the members, and a search
touches a few cache lines instead of one object per comparison. The key decides the order:

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

_RANDOM_TRIES = 32  # rejection-sampling rounds before weighted-random takes the last draw


class Pool:
    """Available agents of one queue tier, in strategy order."""

    __slots__ = ("entries", "ids", "keys", "last", "max_weight", "rng", "strategy", "weights")

    def __init__(self, strategy: str, rng: random.Random) -> None:
        self.strategy = strategy
        self.rng = rng
        self.keys = array("q")
        self.ids: list[str] = []
        self.entries: dict[str, int] = {}
        self.last: int | None = None  # round-robin memory: key of the last agent picked
        self.weights: dict[str, int] = {}  # weighted-random only
        self.max_weight = 1

    def __len__(self) -> int:
        return len(self.ids)

    def add(self, agent_id: str, key: int) -> None:
        self.entries[agent_id] = key
        i = bisect_right(self.keys, key)
        self.keys.insert(i, key)
        self.ids.insert(i, agent_id)

    def remove(self, agent_id: str) -> None:
        key = self.entries.pop(agent_id)
        ids = self.ids
        i = bisect_left(self.keys, key)
        while ids[i] != agent_id:  # equal keys are rare: at most a short run
            i += 1
        del self.keys[i]
        del ids[i]

    def pick(self) -> str:
        """The agent the strategy chooses (the pool must not be empty)."""
        ids = self.ids
        strategy = self.strategy
        if strategy == "round-robin":
            i = bisect_right(self.keys, self.last) if self.last is not None else 0
            if i == len(ids):
                i = 0
            self.last = self.keys[i]
            return ids[i]
        if strategy == "random":
            return ids[self.rng.randrange(len(ids))]
        if strategy == "weighted-random":
            rng, weights, top = self.rng, self.weights, self.max_weight
            for _ in range(_RANDOM_TRIES):
                agent_id = ids[rng.randrange(len(ids))]
                if rng.random() * top < weights[agent_id]:
                    break
            return agent_id
        return ids[0]

    def all(self) -> list[str]:
        """Every agent, in order (ring-all)."""
        return list(self.ids)

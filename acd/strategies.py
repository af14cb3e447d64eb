"""Pools of available agents, one per (queue, tier), ordered for the queue's strategy.

A pool is a sorted list of ``(key, agent_id)`` entries plus a dict from agent id to its
entry. Adding or removing an agent is a binary search and one list insertion (a C
``memmove``); picking is O(1) (first entry, random index) or O(log n) (round-robin
successor): nothing scans the members. The key decides the order:

==================  ============================================  ====================
strategy            key                                           pick
==================  ============================================  ====================
longest-idle        idle sequence number (when it became idle)    first
ordered             position (skill level desc., config order)    first
round-robin         position                                      next after the last
fewest-calls        (calls answered, idle sequence)               first
least-talk          (talk seconds, idle sequence)                 first
random              position                                      uniform index
weighted-random     position                                      index, accepted with
                                                                  weight / max weight
ring-all            position                                      every entry
ring-progressive    position                                      first, then the next
==================  ============================================  ====================
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort
from typing import Any

_RANDOM_TRIES = 32  # rejection-sampling rounds before weighted-random takes the last draw


class Pool:
    """Available agents of one queue tier, in strategy order."""

    __slots__ = ("entries", "items", "last", "max_weight", "rng", "strategy", "weights")

    def __init__(self, strategy: str, rng: random.Random) -> None:
        self.strategy = strategy
        self.rng = rng
        self.items: list[tuple[Any, str]] = []
        self.entries: dict[str, tuple[Any, str]] = {}
        self.last: Any = None  # round-robin memory: key of the last agent picked
        self.weights: dict[str, int] = {}
        self.max_weight = 1

    def __len__(self) -> int:
        return len(self.items)

    def add(self, agent_id: str, key: Any) -> None:
        entry = (key, agent_id)
        self.entries[agent_id] = entry
        insort(self.items, entry)

    def remove(self, agent_id: str) -> None:
        entry = self.entries.pop(agent_id)
        items = self.items
        del items[bisect_left(items, entry)]

    def pick(self) -> str:
        """The agent the strategy chooses (the pool must not be empty)."""
        items = self.items
        strategy = self.strategy
        if strategy == "round-robin":
            i = bisect_right(items, (self.last, "\uffff")) if self.last is not None else 0
            entry = items[i] if i < len(items) else items[0]
            self.last = entry[0]
            return entry[1]
        if strategy == "random":
            return items[self.rng.randrange(len(items))][1]
        if strategy == "weighted-random":
            rng, weights, top = self.rng, self.weights, self.max_weight
            for _ in range(_RANDOM_TRIES):
                agent_id = items[rng.randrange(len(items))][1]
                if rng.random() * top < weights.get(agent_id, 1):
                    break
            return agent_id
        return items[0][1]

    def all(self) -> list[str]:
        """Every agent, in order (ring-all)."""
        return [entry[1] for entry in self.items]

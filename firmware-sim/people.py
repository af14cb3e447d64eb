"""The people around the switch: callers and agents, as profiles and decisions.

The switch (``switch.py``) keeps their state and their timers; this module holds what
they are like (patience, handling times, shifts) and draws their decisions from a
seeded ``random.Random``: when a caller gives up, whether and when an agent answers,
how long they talk, whether they escalate.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from firmware_sim.distributions import Distribution
from firmware_sim.traffic import choose


@dataclass(frozen=True)
class CallerModel:
    """What callers are like: patience, menu choices, where they call from."""

    patience: Distribution
    menu: dict[str, float] = field(default_factory=dict)  # digits -> weight; empty: no menu
    menu_delay: float = 8.0  # s after the call is offered until the digits are keyed
    calling_prefix: str = "06"


@dataclass(frozen=True)
class Caller:
    """One caller, drawn when the call arrives."""

    calling: str
    patience: float  # s the caller waits unanswered before hanging up
    digits: str  # menu choice ("" if the service has no menu)


def draw_caller(model: CallerModel, rng: random.Random) -> Caller:
    """A caller with a random number, patience and menu choice."""
    width = 10 - len(model.calling_prefix)
    number = model.calling_prefix + f"{rng.randrange(10**width):0{width}d}"
    digits = choose(model.menu, rng) if model.menu else ""
    return Caller(number, model.patience.sample(rng), digits)


@dataclass(frozen=True)
class Break:
    """A planned pause: the agent presses not-ready with ``reason`` at ``start_s``."""

    start_s: float
    duration_s: float
    reason: int


@dataclass(frozen=True)
class Shift:
    """Working hours (seconds after midnight) with planned breaks."""

    start_s: float
    end_s: float
    breaks: tuple[Break, ...] = ()


@dataclass(frozen=True)
class Behaviour:
    """How an agent handles calls."""

    answer_delay: Distribution  # s from the first ring to picking up
    no_answer: float  # probability of letting a ring go unanswered
    handling: Distribution  # talk time, s
    wrap_up: Distribution  # s after the call before pressing wrap-up done
    escalate: float = 0.0  # probability of escalating a call at the end of the talk
    escalate_to: dict[str, float] = field(default_factory=dict)  # group -> weight
    ready_after_miss: float = 30.0  # s after a missed ring before pressing ready again


@dataclass(frozen=True)
class Agent:
    """An agent: identity, handset, PIN, behaviour and shift."""

    agent_id: str
    extension: str
    pin: str
    behaviour: Behaviour
    shift: Shift


def answer_delay(behaviour: Behaviour, rng: random.Random) -> float | None:
    """Seconds until the agent answers a ring, or None if they let it ring."""
    if rng.random() < behaviour.no_answer:
        return None
    return behaviour.answer_delay.sample(rng)


def escalation(behaviour: Behaviour, rng: random.Random) -> str | None:
    """The specialist group the agent escalates this call to, or None."""
    if behaviour.escalate_to and rng.random() < behaviour.escalate:
        return choose(behaviour.escalate_to, rng)
    return None

"""The states of a call's leg in the engine, and every transition between them.

``TRANSITIONS`` is the whole state machine: the engine moves a leg only along its
edges (a test records every move the engine makes and checks it against the table),
and the diagram below is drawn from it by ``diagram()`` (a test checks they agree)::

    new        -> menu         offered to a number with a menu
    new        -> waiting      offered to a queue; next leg after an escalation or overflow
    new        -> connected    adopted after a restart (connected at an agent)
    menu       -> waiting      digits chosen, or the menu timed out
    menu       -> ended        abandoned at the menu; lost during a link outage
    waiting    -> ringing      agents rung
    waiting    -> connected    late answer (the switch connected a ring already given up)
    waiting    -> ended        abandoned, closed, overflowed, rejected; lost during a link outage
    ringing    -> waiting      ring timeout, rings refused or cancelled: back to its place
    ringing    -> connected    answered
    ringing    -> ended        abandoned while ringing; lost during a link outage
    connected  -> ended        cleared, transferred or escalated: the agent wraps up

A leg that ends leaves the engine's calls (an escalation or an overflow to a queue goes
on as a new leg, which starts at ``new``); the leg an agent wraps up is kept by the agent.
"""

from __future__ import annotations

import enum


class CallState(enum.StrEnum):
    """Where a call's current leg is (the values are those of the public views)."""

    NEW = "new"  # made, not yet at a menu or in a queue
    MENU = "menu"  # collecting digits
    WAITING = "waiting"  # in its queue's waiting line
    RINGING = "ringing"  # ringing one or more agents
    CONNECTED = "connected"  # answered by an agent
    ENDED = "ended"  # left the ACD (or went on as a next leg)


_S = CallState

# (from, to) -> what makes the leg move
TRANSITIONS: dict[tuple[CallState, CallState], str] = {
    (_S.NEW, _S.MENU): "offered to a number with a menu",
    (_S.NEW, _S.WAITING): "offered to a queue; next leg after an escalation or overflow",
    (_S.NEW, _S.CONNECTED): "adopted after a restart (connected at an agent)",
    (_S.MENU, _S.WAITING): "digits chosen, or the menu timed out",
    (_S.MENU, _S.ENDED): "abandoned at the menu; lost during a link outage",
    (_S.WAITING, _S.RINGING): "agents rung",
    (_S.WAITING, _S.CONNECTED): "late answer (the switch connected a ring already given up)",
    (_S.WAITING, _S.ENDED): "abandoned, closed, overflowed, rejected; lost during a link outage",
    (_S.RINGING, _S.WAITING): "ring timeout, rings refused or cancelled: back to its place",
    (_S.RINGING, _S.CONNECTED): "answered",
    (_S.RINGING, _S.ENDED): "abandoned while ringing; lost during a link outage",
    (_S.CONNECTED, _S.ENDED): "cleared, transferred or escalated: the agent wraps up",
}


def diagram() -> str:
    """The transition table as the text diagram of the module docstring."""
    return "\n".join(
        f"    {old:<10} -> {new:<12} {why}".rstrip() for (old, new), why in TRANSITIONS.items()
    )

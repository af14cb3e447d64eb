"""The switch's own routing while the controller is gone (docs/cti-protocol.md §9.7).

`FallbackSettings` are the scenario's ``[fallback]`` table; `pick_handset` chooses the
group handset a waiting call rings next; `report` is one call as the calls snapshot
lists it. The routing itself lives in `firmware_sim.switch.Switch`, which owns the
calls and handsets.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from protocols.messages import NOT_YET, FallbackCall

Order = Literal["in-order", "longest-idle"]
ORDERS: tuple[Order, ...] = ("in-order", "longest-idle")


@dataclass(frozen=True)
class FallbackSettings:
    """When and where the switch routes calls itself."""

    enabled: bool = False
    after_s: float = 30.0  # link down, or an Offered unanswered by any request, this long
    group: tuple[str, ...] = ()  # extensions, in the order "in-order" rings them
    order: Order = "in-order"
    announcement: int = 0  # played to a call that finds no handset free (0: none)
    ring_s: float = 20.0  # a handset rings this long before the next one is tried


class _Handset(Protocol):
    extension: str
    idle_since: float


def pick_handset(free: Sequence[_Handset], order: Order) -> _Handset | None:
    """The handset to ring among the free ones (given in group order), or None."""
    if not free:
        return None
    if order == "longest-idle":
        return min(free, key=lambda h: h.idle_since)
    return free[0]


def ago_ms(then: float | None, now: float) -> int:
    """Milliseconds from ``then`` to ``now`` as a snapshot carries them (`NOT_YET`: None)."""
    if then is None:
        return NOT_YET
    return min(max(round((now - then) * 1000), 0), NOT_YET - 1)


def report(
    call_id: int,
    calling: str,
    called: str,
    device: str,
    times: tuple[float, float | None, float | None],
    now: float,
) -> FallbackCall:
    """One fallback-routed call for the calls snapshot: ``times`` are when it was
    offered, answered and ended (None: not yet)."""
    offered, answered, ended = times
    return FallbackCall(
        call_id,
        calling,
        called,
        device,
        ago_ms(offered, now),
        ago_ms(answered, now),
        ago_ms(ended, now),
    )

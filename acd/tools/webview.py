"""The live picture `acd web` serves (pure: no I/O, time passed in).

`WebState` folds the MQTT messages of every visible site (``<prefix>/<site>/...``,
``docs/mqtt.md``) into one `acd.tools.monitor_view.MonitorState` per site, and `snapshot`
turns them into the JSON the pages draw, with each queue's answer rate and service
level graded ``green`` (at or above the target), ``amber`` (less than `AMBER_MARGIN`
below) or ``red``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from acd.runtime.topics import ID_PATTERN, Topics
from acd.tools.monitor_view import MonitorState

AMBER_MARGIN = 0.05  # below the target by less than this: amber, else red


def grade(value: Any, target: Any) -> str | None:
    """``green``, ``amber`` or ``red`` for ``value`` against ``target``; None if unknown."""
    numbers = (int, float)
    if not isinstance(value, numbers) or not isinstance(target, numbers):
        return None
    if value >= target:
        return "green"
    return "amber" if value >= target - AMBER_MARGIN else "red"


class WebState:
    """Every visible site's latest state; sites appear when first heard of.

    ``sites`` limits what is shown (empty: every site); ``new_site(topics)`` makes the
    `MonitorState` of a site (with names, reasons and targets when the configuration
    knows them); ``sl_thresholds`` gives the service-level threshold (s) per queue."""

    def __init__(
        self,
        prefix: str,
        sites: Iterable[str] = (),
        new_site: Callable[[Topics], MonitorState] | None = None,
        sl_thresholds: dict[tuple[str, str], float] | None = None,
    ) -> None:
        self.prefix = prefix
        self.allowed = frozenset(sites)
        self.new_site = new_site or MonitorState
        self.sl_thresholds = sl_thresholds or {}
        self.broker = "connecting"
        self.sites: dict[str, MonitorState] = {}
        self.version = 0  # increases with each change of the picture

    def site_of(self, topic: str) -> str | None:
        """The site a topic belongs to, if it is one we show."""
        if not topic.startswith(self.prefix + "/"):
            return None
        site = topic[len(self.prefix) + 1 :].split("/", 1)[0]
        if not ID_PATTERN.fullmatch(site) or (self.allowed and site not in self.allowed):
            return None
        return site

    def apply(self, topic: str, payload: bytes, at: float, retained: bool = False) -> bool:
        """Fold one message in; True when the picture changed."""
        site = self.site_of(topic)
        if site is None:
            return False
        state = self.sites.get(site)
        if state is None:
            state = self.sites[site] = self.new_site(Topics(self.prefix, site))
        changed = state.apply(topic, payload, at, retained)
        if changed:
            self.version += 1
        return changed

    def set_broker(self, status: str) -> None:
        """``up``, ``down`` or ``connecting``; the retained state comes again after a
        reconnection, so what was known is forgotten when the broker comes ``up``."""
        if status == "up":
            for state in self.sites.values():
                state.controller, state.agents, state.queues, state.alarms = None, {}, {}, {}
        self.broker = status
        self.version += 1

    def snapshot(self, now: float) -> dict[str, Any]:
        """The picture as JSON-ready data: ``broker``, ``version`` and ``sites`` (each
        as `MonitorState.snapshot`, queues graded)."""
        sites = []
        for site in sorted(self.sites):
            state = self.sites[site]
            state.broker = self.broker
            snap = state.snapshot(now)
            snap["reasons"] = {str(code): label for code, label in state.reasons.items()}
            for q in snap["queues"]:
                q["ts"] = state.queues.get(q["queue_id"], {}).get("ts")  # for the ticking wait
                q["rate_grade"] = grade(q.get("answer_rate"), q.get("target"))
                q["sl_grade"] = grade(q.get("sl_offered"), q.get("sl_target", q.get("target")))
                q["sl_threshold"] = self.sl_thresholds.get((site, q["queue_id"]))
            sites.append(snap)
        return {"broker": self.broker, "version": self.version, "sites": sites}

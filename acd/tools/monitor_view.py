"""The live monitor's state model and screen layout (pure: no I/O, time passed in).

`MonitorState.apply(topic, payload)` folds the MQTT messages of one site's tree
(``docs/mqtt.md``) into the latest controller status, agent states, queue figures and
active alarms; `MonitorState.snapshot(now)` is that picture as JSON-ready data, and
`render(snapshot, width, height)` lays it out as screen lines that fit the terminal
(long lines cut, surplus agents summarised on one line), coloured with ANSI codes on
request: answer rate and service level below target in red, alarms in red.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from acd.runtime.topics import LINK_DOWN_ALARM, Topics

if TYPE_CHECKING:
    from acd.config import Config

RED, GREEN, YELLOW, BOLD = "31", "32", "33", "1"
_STATUS_COLOURS = {"ready": GREEN, "not_ready": YELLOW}
_STATUS_ORDER = {"ready": 0, "not_ready": 1, "logged_out": 2}


@dataclass
class MonitorState:
    """The latest retained picture of one site, fed message by message.

    ``names`` (agent id → name), ``reasons`` (code → label) and ``targets`` (queue id →
    target answer rate) come from the site configuration when the monitor has it; a
    ``target`` or ``sl_target`` figure in a queue's payload takes precedence; clock
    times are shown in the site's ``timezone`` (IANA name) when known.
    """

    topics: Topics
    names: Mapping[str, str] = field(default_factory=dict)
    reasons: Mapping[int, str] = field(default_factory=dict)
    targets: Mapping[str, float] = field(default_factory=dict)
    timezone: str | None = None
    broker: str = "connecting"  # connecting, up, down
    controller: dict[str, Any] | None = None
    agents: dict[str, dict[str, Any]] = field(default_factory=dict)
    queues: dict[str, dict[str, Any]] = field(default_factory=dict)
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: int = 0
    ignored: int = 0
    skew: float | None = None  # the controller's clock minus ours (s), from live ``ts``
    newest: tuple[float, float] | None = None  # (greatest retained ts, our time then), s

    def apply(
        self, topic: str, payload: bytes, at: float | None = None, retained: bool = False
    ) -> bool:
        """Fold one message in; False if it was not for us or not understood.

        ``at`` (our time of receipt, s) lets ages be counted on the controller's clock,
        which differs from ours when it runs a simulated day: a live message's ``ts``
        gives the offset; retained ones (possibly old) only the newest time known.
        """
        root = self.topics.base + "/"
        if not topic.startswith(root):
            self.ignored += 1
            return False
        parts = topic[len(root) :].split("/")
        if parts[0] == "alarm" and len(parts) == 2 and not payload:
            self.messages += 1
            return self.alarms.pop(parts[1], None) is not None  # cleared
        try:
            data = json.loads(payload)
        except (UnicodeDecodeError, json.JSONDecodeError):
            data = None
        if not isinstance(data, dict):
            self.ignored += 1
            return False
        ts = data.get("ts")
        if at is not None and isinstance(ts, int | float) and not isinstance(ts, bool):
            if not retained:
                self.skew = ts / 1000 - at
            elif self.newest is None or ts / 1000 > self.newest[0]:
                self.newest = (ts / 1000, at)
        if parts == ["controller", "status"]:
            self.controller = data
        elif len(parts) == 3 and parts[0] == "agent" and parts[2] == "state":
            self.agents[parts[1]] = data
        elif len(parts) == 3 and parts[0] == "queue" and parts[2] == "stats":
            self.queues[parts[1]] = data
        elif len(parts) == 2 and parts[0] == "alarm":
            self.alarms[parts[1]] = data
        else:
            return False  # call events, commands, replies: not part of the picture
        self.messages += 1
        return True

    def link(self) -> str:
        """``up``, ``down`` or ``unknown`` (the controller is offline or unheard)."""
        status = self.controller or {}
        if isinstance(status.get("link"), str):
            return status["link"]
        if LINK_DOWN_ALARM in self.alarms:
            return "down"
        if status.get("role") == "standby":  # a standby's status: the link is not its
            return "unknown"
        return "up" if status.get("online") is True else "unknown"

    def controller_time(self, now: float) -> float:
        """Our time ``now`` on the controller's clock: ours, unless its messages show a
        clock more than a day away (a simulated day), then the newest time it sent."""
        if self.skew is not None:
            return now + self.skew
        if self.newest is not None and abs(self.newest[0] - now) > 86_400:
            return self.newest[0] + now - self.newest[1]
        return now

    def snapshot(self, now: float) -> dict[str, Any]:
        """The picture as JSON-ready data (times in ms as published, ``now`` in s of our
        clock; the snapshot's ``time`` is on the controller's clock)."""
        agents = []
        for agent_id, a in sorted(self.agents.items(), key=_agent_order):
            reason = a.get("reason")
            agents.append(
                {
                    "agent_id": agent_id,
                    "name": self.names.get(agent_id, ""),
                    "status": a.get("status"),
                    "state": a.get("state"),
                    "reason": reason,
                    "reason_label": self.reasons.get(reason, "") if reason is not None else "",
                    "device": a.get("device"),
                    "since": a.get("since") or None,  # 0: never logged in
                    "calls_today": a.get("calls_today"),
                }
            )
        queues = []
        for queue_id, q in sorted(self.queues.items()):
            target = q.get("target", self.targets.get(queue_id))
            rate = q.get("answer_rate")
            sl = q.get("sl_offered")
            if sl is None and q.get("offered") and isinstance(q.get("answered_in_sl"), int):
                sl = q["answered_in_sl"] / q["offered"]
            sl_target = q.get("sl_target")
            queues.append(
                {
                    **{k: v for k, v in q.items() if k not in ("ts", "seq")},
                    "queue_id": queue_id,
                    "longest_wait_s": q.get("longest_wait_s", q.get("longest_wait")),
                    "sl_offered": sl,
                    "target": target,
                    "below_target": _below(rate, target),
                    "sl_below_target": _below(sl, sl_target),
                }
            )
        status = self.controller or {}
        return {
            "site": self.topics.site,
            "timezone": self.timezone,
            "time": round(self.controller_time(now) * 1000),
            "broker": self.broker,
            "controller": {
                "online": status.get("online"),
                "since": status.get("since"),
                "version": status.get("version"),
                "reason": status.get("reason"),
                "role": status.get("role"),  # a pair's ([ha]): active / standby
                "instance": status.get("instance"),
                "active": pair_active(status),
                "standby": status.get("standby"),
            },
            "link": self.link(),
            "agents": agents,
            "queues": queues,
            "alarms": [self.alarms[name] | {"name": name} for name in sorted(self.alarms)],
        }


def pair_active(status: dict[str, Any]) -> str | None:
    """The active controller of a pair, by a ``controller/status`` payload: its own
    instance if it is the active one and online, the one a standby names, else None."""
    if status.get("role") == "active" and status.get("online") is True:
        return status.get("instance")
    if status.get("role") == "standby":
        return status.get("active")
    return None


def configured_state(topics: Topics, config: Config | None) -> MonitorState:
    """An empty picture of ``topics``' site, with the agent names, reason labels, queue
    targets and time zone of ``config`` if given (`acd monitor`, `acd web`'s own site)."""
    if config is None:
        return MonitorState(topics)
    return MonitorState(
        topics,
        names={a.id: a.name for a in config.agents.values() if a.name},
        reasons=dict(config.acd.reasons),
        targets={q.id: q.target for q in config.queues.values()},
        timezone=config.site.timezone,
    )


def _agent_order(item: tuple[str, dict[str, Any]]) -> tuple[int, str]:
    return _STATUS_ORDER.get(item[1].get("status"), 3), item[0]


def _below(value: Any, target: Any) -> bool:
    numbers = (int, float)
    return isinstance(value, numbers) and isinstance(target, numbers) and value < target


# --- layout ------------------------------------------------------------------------


class _Line:
    """Segments of text, some coloured, cut at ``width`` visible characters."""

    def __init__(self, width: int, colour: bool) -> None:
        self.width = width
        self.colour = colour
        self.parts: list[str] = []
        self.used = 0

    def add(self, text: str, code: str | None = None) -> _Line:
        room = self.width - self.used
        if room <= 0:
            return self
        text = text[:room]
        self.used += len(text)
        self.parts.append(f"\x1b[{code}m{text}\x1b[0m" if code and self.colour else text)
        return self

    def __str__(self) -> str:
        return "".join(self.parts)


def clock(ms: Any, tz: tzinfo | None) -> str:
    """``HH:MM:SS`` of a published time (ms) in ``tz`` (None: this machine's zone)."""
    if not isinstance(ms, int | float):
        return "--:--:--"
    return datetime.fromtimestamp(ms / 1000, tz).strftime("%H:%M:%S")


def site_zone(snap: Mapping[str, Any]) -> tzinfo | None:
    """The site's time zone of a snapshot, None (this machine's) when not known."""
    name = snap.get("timezone")
    return ZoneInfo(name) if name else None


def fit(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, a cut marked with "…" and a short last
    word kept, so that "Civil status 1" and "Civil status 2" still read apart."""
    if len(text) <= width:
        return text
    words = text.split()
    tail = f" {words[-1]}" if len(words) > 1 and len(words[-1]) < width // 3 else ""
    return text[: width - 1 - len(tail)].rstrip() + "…" + tail


def _age(ms: Any, now_ms: int) -> str:
    if not isinstance(ms, int | float):
        return "-"
    s = max(0, int((now_ms - ms) / 1000))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


def _pct(value: Any) -> str:
    return f"{100 * value:.1f}%" if isinstance(value, int | float) else "-"


def _num(value: Any, digits: int = 0) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "-"
    return f"{value:.{digits}f}"


def render(
    snap: Mapping[str, Any],
    width: int = 80,
    height: int = 24,
    colour: bool = False,
    tz: tzinfo | None = None,
) -> list[str]:
    """Screen lines for a snapshot: at most ``height`` lines of ``width`` characters;
    clock times in ``tz``, else the snapshot's site zone."""
    width, height = max(width, 20), max(height, 6)
    tz = tz or site_zone(snap)
    now = snap["time"]
    lines: list[_Line] = []

    def line() -> _Line:
        lines.append(_Line(width, colour))
        return lines[-1]

    ctl = snap["controller"]
    head = line().add(f"{snap['site']}  ", BOLD)
    who = f" {ctl['instance']}" if ctl.get("instance") else ""
    if ctl["online"] is True and ctl.get("role") == "standby":
        head.add(f"controller:{who} STANDBY", YELLOW).add(f", active: {ctl['active'] or 'none'}")
    elif ctl["online"] is True:
        head.add(f"controller:{who} online", GREEN).add(f" since {clock(ctl['since'], tz)}")
        if ctl.get("role") == "active":
            head.add(f", standby: {ctl['standby'] or 'none'}")
    elif ctl["online"] is False:
        head.add(f"controller:{who} OFFLINE", RED)
    else:
        head.add("controller: unknown", YELLOW)
    link = snap["link"]
    head.add("  link: ").add(link, GREEN if link == "up" else RED if link == "down" else YELLOW)
    broker = snap["broker"]
    head.add("  broker: ").add(broker, GREEN if broker == "up" else RED)
    head.add(f"  {clock(now, tz)}")

    queues = snap["queues"]
    line().add(
        f"{'QUEUE':<14}{'WAIT':>5}{'LONGEST':>8}{'OFFER':>7}{'ANSW':>6}{'ABAN':>6}"
        f"{'ANSWER':>8}{'TARGET':>8}{'SL':>8}",
        BOLD,
    )
    for q in queues:
        row = line().add(f"{fit(q['queue_id'], 13):<14}{_num(q.get('waiting')):>5}")
        longest = q.get("longest_wait_s")
        row.add(f"{_num(longest) + 's' if longest is not None else '-':>8}")
        row.add(f"{_num(q.get('offered')):>7}{_num(q.get('answered')):>6}")
        row.add(f"{_num(q.get('abandoned')):>6}")
        row.add(f"{_pct(q.get('answer_rate')):>8}", RED if q["below_target"] else GREEN)
        row.add(f"{_pct(q.get('target')):>8}")
        row.add(f"{_pct(q.get('sl_offered')):>8}", RED if q["sl_below_target"] else None)
    if not queues:
        line().add("(no queue figures yet)")

    alarms = snap["alarms"]
    alarm_lines = min(len(alarms), 3)
    fixed = len(lines) + 2 + (alarm_lines + 1 if alarms else 0)  # blank + agents header
    room = height - fixed

    line()
    line().add(
        f"{'AGENT':<7}{'NAME':<14}{'STATUS':<11}{'STATE':<9}{'REASON':<14}{'SINCE':>7}"
        f"{'CALLS':>7}  DEV",
        BOLD,
    )
    agents = snap["agents"]
    shown = agents if len(agents) <= room else agents[: max(room - 1, 0)]
    for a in shown:
        row = line().add(f"{fit(a['agent_id'], 6):<7}{fit(a['name'] or '', 13):<14}")
        status = a["status"] or "?"
        row.add(f"{status:<11}", _STATUS_COLOURS.get(status))
        row.add(f"{(a['state'] or '?'):<9}")
        reason = "" if a["reason"] is None else f"{a['reason']} {a['reason_label']}".strip()
        row.add(f"{fit(reason, 13):<14}{_age(a['since'], now):>7}{_num(a['calls_today']):>7}")
        row.add(f"  {a['device'] or ''}")
    rest = agents[len(shown) :]
    if rest:
        counts: dict[str, int] = {}
        for a in rest:
            counts[a["status"] or "?"] = counts.get(a["status"] or "?", 0) + 1
        text = ", ".join(f"{n} {s.replace('_', ' ')}" for s, n in counts.items())
        line().add(f"+ {len(rest)} more agents: {text}", YELLOW)
    if not agents:
        line().add("(no agent states yet)")

    if alarms:
        line().add(f"ALARMS ({len(alarms)})", RED)
        for alarm in alarms[:alarm_lines]:
            sev = alarm.get("severity", "?")
            text = f"{sev:<9}{alarm['name']}: {alarm.get('message', '')}"
            line().add(f"{text}  since {clock(alarm.get('since'), tz)}", RED)
        if len(alarms) > alarm_lines:
            lines[-1] = _Line(width, colour).add(f"... and {len(alarms) - alarm_lines + 1} more")
    return [str(x) for x in lines[:height]]

"""The ACD engine: a pure, deterministic state machine.

``Engine(config, now)`` then ``handle(event) -> list[Output]`` for every event (each
carries its time ``at``); ``next_deadline()`` says when the next timer falls due and
``advance(now)`` (or a ``Tick``) fires it. The engine never reads a clock, never sleeps,
does no I/O; its only randomness is a seeded ``random.Random``. Time never goes back: an
event older than the engine's time is handled at the engine's time.

This module holds the transitions: every event handler and everything that moves a
call or an agent, in one place. A call's leg moves only along ``acd.core.call_states``'s
table (new, menu, waiting, ringing, connected, ended; a diagram is in its docstring).
The mechanisms live apart: ``acd.core.timers`` (timer lanes) and ``acd.core.recovery`` (sessions,
legs carried over a restart, ``reconcile``) are base classes of `Engine`;
``acd.core.strategies`` (the strategy registry and agent pools), ``acd.core.daily`` (counts of the
day, calendar cache) and ``acd.core.views`` (the read-only ``calls()`` / ``agents()``) are
used by it.

Data structures (nothing scans all agents or all waiting calls):

- ``_agents`` (id → ``_Agent``) and ``_by_device`` (extension → agent): O(1) lookups.
- Per queue, ``waiting``: a sorted list of ``(-priority, seq, call_id)`` where priority
  is the queue's plus the caller's and ``seq`` a global arrival counter: the head is the
  highest-priority, longest-waiting call; a caller who was rung and not answered goes
  back to its own place (same entry), and the position announced is a binary search.
- Per queue and tier, a ``Pool`` of available agents (see ``acd.core.strategies``): an agent
  with skills for k queues sits in k pools while ready, idle and on hook, and is taken out
  of them when it rings. Choosing an agent for a call looks at the pools of that call's
  queue only, best tier first.
- Fairness across queues: when an agent becomes available it looks at the head of each of
  its k queues and takes the smallest entry: the highest priority, then the lowest
  ``seq`` (longest wait), whatever the queue. O(k).
- Timers: one FIFO lane per distinct delay (``acd.core.timers``): scheduling is an append,
  the next timer the earliest lane head.
- Calendars answer ``(open, until)`` and are cached until ``until``; live daily counts
  restart lazily per queue at local midnight (``acd.core.daily``).
"""

from __future__ import annotations

import math
import random
from bisect import bisect_left, insort
from collections.abc import Mapping
from types import MappingProxyType
from zoneinfo import ZoneInfo

from acd.config import AgentConfig, Config, QueueConfig
from acd.core.agents import AgentState, AgentStatus
from acd.core.calendar import Calendar
from acd.core.call_states import CallState
from acd.core.commands import (
    AgentChanged,
    CallEnded,
    CancelRing,
    ClearCall,
    CollectDigits,
    Display,
    Lamp,
    LegReleased,
    Output,
    PinLocked,
    PlayAnnouncement,
    QueueCall,
    QueueChanged,
    QueueFigures,
    Refused,
    RingDevices,
    RouteCall,
    TransferCall,
    VerifyPin,
)
from acd.core.daily import (
    ABANDONED,
    ANSWERED,
    ANSWERED_IN_SL,
    ENDED,
    OFFERED,
    SHORT_ABANDONED,
    CalendarCache,
    DailyCounts,
    no_counts,
)
from acd.core.events import (
    Alerting,
    Answered,
    CallOffered,
    Cleared,
    Escalate,
    Event,
    Hook,
    Login,
    Logout,
    MenuChoice,
    NotReady,
    PinChecked,
    Ready,
    RouteFailed,
    SetAgentStatus,
    Tick,
    Transferred,
    WrapUpDone,
)
from acd.core.records import CallRecord, LiveLeg, Outcome, RingAttempt, RingOutcome
from acd.core.recovery import ENDED_UNHEARD as ENDED_UNHEARD  # re-exported
from acd.core.recovery import FALLBACK as FALLBACK  # re-exported
from acd.core.recovery import RestartRecovery
from acd.core.strategies import BY_CALLS, BY_IDLE, BY_POSITION, REGISTRY, Pool, RingMode
from acd.core.timers import Timer, TimerLanes
from acd.core.views import AgentView, CallView

_READY, _NOT_READY, _LOGGED_OUT = AgentStatus.READY, AgentStatus.NOT_READY, AgentStatus.LOGGED_OUT
_IDLE, _RINGING, _ON_CALL, _WRAP_UP = (
    AgentState.IDLE,
    AgentState.RINGING,
    AgentState.ON_CALL,
    AgentState.WRAP_UP,
)

_NO_TIMERS = ()  # a call's timers until it has one: no list per call
_NO_ENTRY = (0, 0, 0)  # a call's waiting order until it enters a queue: no tuple per call
# a call's rings while it rings nowhere: no dict per call (read-only, never written)
_NO_RINGING: Mapping[str, tuple[_Agent, float]] = MappingProxyType({})

_NEW, _MENU, _WAITING, _ALERTING, _CONNECTED, _ENDED = CallState

_RING_ALL, _RING_ONE, _RING_PROGRESSIVE = RingMode.ALL, RingMode.ONE, RingMode.PROGRESSIVE


class ReloadRefused(ValueError):
    """A new configuration that cannot be applied to the live state (see `Engine.reload`)."""


class _Queue:
    # hot fields first (see _Agent)
    __slots__ = (  # noqa: RUF023
        "waiting",
        "pools",
        "afters",
        "strategy",
        "ring_timeout",
        "dirty",
        "counts",
        "day",
        "id",
        "logged_in",
        "sl_threshold",
        "wrapup",
        "priority",
        "display_timer",
        "display_text",
        "calendar",
        "cfg",
        "handle_avg",
    )

    def __init__(self, cfg: QueueConfig, calendar: Calendar | None, rng: random.Random):
        self.id = cfg.id
        self.configure(cfg, calendar, rng)
        self.waiting: list[tuple[int, int]] = []
        self.logged_in = 0
        self.day = 0.0  # local midnight of the day the counts belong to
        self.counts = no_counts()
        self.handle_avg = 180.0  # s, moving average of talk + wrap-up for wait estimates
        self.dirty = False
        self.display_timer: Timer | None = None
        self.display_text = ""

    def configure(self, cfg: QueueConfig, calendar: Calendar | None, rng: random.Random) -> None:
        """Take the settings of ``cfg`` (at creation and on reload); new, empty pools."""
        self.cfg = cfg
        self.priority = cfg.priority
        # hot settings copied here: one object less to touch per decision
        self.strategy = REGISTRY[cfg.strategy]
        self.ring_timeout = cfg.ring_timeout
        self.sl_threshold = cfg.sl_threshold
        self.wrapup = cfg.wrapup
        self.calendar = calendar
        self.afters = tuple(t.after for t in cfg.tiers)
        self.pools = [Pool(self.strategy, rng) for _ in cfg.tiers]


class _Agent:
    # hot fields first: the ones every event reads share the object's first cache lines
    __slots__ = (  # noqa: RUF023
        "available",
        "status",
        "state",
        "off_hook",
        "memberships",
        "keys",
        "idle_seq",
        "call",
        "device",
        "id",
        "reason",
        "since",
        "calls",
        "talk",
        "misses",
        "wrapup",
        "pending",
        "wrapup_timer",
        "display",
        "lamp",
        "cfg",
        "wrong_pins",
        "pin_failures",
        "pin_locks",
        "locked_until",
        "pin_check",
    )

    def __init__(self, cfg: AgentConfig) -> None:
        self.cfg = cfg
        self.id = cfg.id
        self.status = _LOGGED_OUT
        self.reason = 0
        self.state = _IDLE
        self.device: str | None = None
        self.since = 0.0
        self.call: _Call | None = None
        self.pending: _Call | None = None  # the leg in wrap-up
        self.wrapup_timer: Timer | None = None
        self.wrapup = cfg.wrapup  # None: the queue's
        self.available = False
        self.off_hook = False
        self.idle_seq = 0
        self.calls = 0
        self.talk = 0.0
        self.misses = 0
        self.wrong_pins = 0
        self.pin_failures = 0  # wrong PINs since the last good one
        self.pin_locks = 0  # locks since the last good PIN: each one twice as long
        self.locked_until = 0.0
        self.pin_check: tuple[int, str] | None = None  # (check, device) awaiting PinChecked
        self.display = ""  # text last sent to the handset display
        self.lamp = "off"  # mode last sent to the queue lamp
        # (queue, pool, key kind, position, tier wait) for each queue the agent serves,
        # one per queue (the best tier the agent's level reaches)
        self.memberships: tuple[tuple[_Queue, Pool, int, int, float], ...] = ()
        self.keys: list[int] = []  # the agent's key in each membership's pool, when in it


class _Call:
    """A call in the ACD and its current leg (one visit to a queue) in progress: the
    routing state and the fields of the leg's `CallRecord` in one object. An agent in
    wrap-up keeps the object of the leg it took (``_Agent.pending``)."""

    # hot fields first (see _Agent)
    __slots__ = (  # noqa: RUF023
        "state",
        "queue",
        "ringing",
        "agent",
        "queued_at",
        "entry",
        "ring_timer",
        "timers",
        "id",
        "rings",
        "answered_at",
        "released_at",
        "priority",
        "overflow_due",
        "menu",
        # the rest of the leg's record
        "leg",
        "caller",
        "dialled",
        "trunk",
        "arrived_at",
        "menu_choice",
        "escalated_from",
        "agent_id",
        "device",
        "escalated_to",
        "transferred_to",
        "reason",
        "fallback",
    )

    def __init__(
        self,
        call_id: int,
        caller: str,
        dialled: str,
        trunk: int,
        at: float,
        leg: int = 1,
        escalated_from: str | None = None,
    ) -> None:
        self.id = call_id
        self.state = _NEW
        self.queue: _Queue | None = None  # the record's queue (None at a menu)
        # (-(queue priority + caller priority), arrival seq, call id): the waiting order
        self.entry: tuple[int, int, int] = _NO_ENTRY  # set when it enters a queue
        self.priority = 0  # the caller's, added to the queue's
        # device -> (agent, ring start); a dict only while it rings somewhere
        self.ringing: dict[str, tuple[_Agent, float]] | Mapping = _NO_RINGING
        self.agent: _Agent | None = None
        # cancelled when the call leaves the queue (a list once it has one)
        self.timers: list[Timer] | tuple[()] = _NO_TIMERS
        self.ring_timer: Timer | None = None
        self.menu = None
        self.overflow_due = False
        self.leg = leg
        self.caller = caller
        self.dialled = dialled
        self.trunk = trunk
        self.arrived_at = at
        self.queued_at = at
        self.menu_choice: str | None = None
        self.escalated_from = escalated_from
        self.answered_at: float | None = None
        self.released_at: float | None = None
        self.agent_id: str | None = None
        self.device: str | None = None
        self.rings: tuple[RingAttempt, ...] = ()  # grown by concatenation: no list per leg
        self.escalated_to: str | None = None
        self.transferred_to: str | None = None
        self.reason = ""  # kept into the record unless ``record`` gives one
        self.fallback = False  # the switch's fallback routed it (cti-protocol §9.7)

    def next_leg(self) -> _Call:
        """The call's next leg (after an escalation or an overflow to a queue), to enter
        its queue (``Engine._enter`` sets its queue and time); this object keeps the leg
        that ends."""
        nxt = _Call(
            self.id,
            self.caller,
            self.dialled,
            self.trunk,
            self.arrived_at,
            self.leg + 1,
            self.queue.id,
        )
        nxt.priority = self.priority
        nxt.menu_choice = self.menu_choice
        return nxt

    def record(
        self,
        ended_at: float,
        outcome: Outcome,
        *,
        wrapup_end: float | None = None,
        abandoned_ringing: bool = False,
        reason: str = "",
    ) -> CallRecord:
        """The finished leg's record."""
        return CallRecord(  # positional, in field order: cheaper than keywords
            self.id,
            self.leg,
            self.queue.id,
            self.caller,
            self.dialled,
            self.trunk,
            self.arrived_at,
            self.queued_at,
            ended_at,
            outcome,
            self.answered_at,
            self.released_at,
            wrapup_end,
            self.agent_id,
            self.device,
            self.rings,
            self.menu_choice,
            self.escalated_from,
            self.escalated_to,
            self.transferred_to,
            abandoned_ringing,
            reason or self.reason,
            self.fallback,
        )


class Engine(TimerLanes, RestartRecovery):
    """The ACD: events in, commands and notifications out (see the module docstring)."""

    def __init__(
        self,
        config: Config,
        now: float,
        rng: random.Random | None = None,
        *,
        queue_notes: bool = True,
        release_notes: bool = True,
        agent_notes: bool = True,
    ) -> None:
        """``queue_notes=False`` leaves out the ``QueueChanged`` notifications (a what-if
        run that reads only call records); ``queue_figures`` still answers.
        ``release_notes=False`` leaves out ``LegReleased`` (a run that stores nothing
        before the final records). ``agent_notes=False`` leaves out ``AgentChanged`` (a
        run that reads no agent states); ``agent_states()`` still answers."""
        self.config = config
        self._queue_notes = queue_notes
        self._release_notes = release_notes
        self._agent_notes = agent_notes
        self.now = now
        self.rng = rng if rng is not None else random.Random(config.site.seed)
        self.tz = ZoneInfo(config.site.timezone)
        self.refused = 0
        self._out: list[Output] = []
        self._init_timers()
        self._idle_n = 0
        self._calls: dict[int, _Call] = {}
        self._init_recovery()
        self._dirty: list[_Queue] = []
        self._counts = DailyCounts(self.tz).of  # (queue, now) -> today's counts
        self._acd = config.acd
        self._pins = config.pins
        self._pin_seq = 0
        self._checks: dict[int, _Agent] = {}  # PIN checks awaiting PinChecked
        self._ann = config.announcements
        calendars = {name: Calendar(c, self.tz) for name, c in config.calendars.items()}
        self._calendars = CalendarCache()
        self._queues = {
            q.id: _Queue(q, calendars[q.calendar] if q.calendar else None, self.rng)
            for q in config.queues.values()
        }
        self._numbers = config.queue_for_number()
        self._agents = {a.id: _Agent(a) for a in config.agents.values()}
        self._by_device: dict[str, _Agent] = {}
        self._build_memberships()
        self._handlers = {
            Tick: lambda e: None,
            CallOffered: self._on_offered,
            MenuChoice: self._on_menu_choice,
            Alerting: self._on_alerting,
            Answered: self._on_answered,
            Cleared: self._on_cleared,
            RouteFailed: self._on_route_failed,
            Transferred: self._on_transferred,
            Login: self._on_login,
            PinChecked: self._on_pin_checked,
            Logout: self._on_logout,
            Ready: self._on_ready,
            NotReady: self._on_not_ready,
            WrapUpDone: self._on_wrapup_done,
            Escalate: self._on_escalate,
            Hook: self._on_hook,
            SetAgentStatus: self._on_set_status,
        }

    def _build_memberships(self) -> None:
        by_skill: dict[str, list[tuple[_Agent, int, int]]] = {}
        for order, agent in enumerate(self._agents.values()):
            for skill, level in agent.cfg.skills.items():
                by_skill.setdefault(skill, []).append((agent, level, order))
        memberships: dict[_Agent, list[tuple[_Queue, Pool, int, int, float]]] = {}
        for q in self._queues.values():
            members = sorted(by_skill.get(q.cfg.skill, ()), key=lambda m: (-m[1], m[2]))
            kind = q.strategy.key
            for position, (agent, level, _) in enumerate(members):
                for tier, pool in zip(q.cfg.tiers, q.pools, strict=True):
                    if level >= tier.min_level:
                        membership = (q, pool, kind, position, tier.after)
                        memberships.setdefault(agent, []).append(membership)
                        if q.strategy.weighted:
                            pool.weights[agent] = agent.cfg.weight
                            pool.max_weight = max(pool.max_weight, agent.cfg.weight)
                        break
        for agent, mine in memberships.items():
            # copies made one after the other: an agent's memberships share cache lines
            agent.memberships = tuple([(*m,) for m in mine])
            agent.keys = [0] * len(mine)

    # -- public API ---------------------------------------------------------------------

    def handle(self, event: Event) -> list[Output]:
        """Apply one event at its time; return the commands and notifications, in order."""
        out = self._out = []
        at = event.at
        if at > self.now:
            if at >= self._due:
                self._fire_due(at)
            else:
                self.now = at
        handler = self._handlers.get(type(event))
        if handler is None:
            self._refuse(event, "unknown event type")
        else:
            handler(event)
        if self._dirty:
            self._flush_dirty()
        return out

    def advance(self, now: float) -> list[Output]:
        """Fire every timer due at or before ``now`` (same as ``handle(Tick(now))``)."""
        return self.handle(Tick(now))

    def queue_figures(self, queue_id: str) -> QueueFigures:
        """The live figures of a queue now."""
        return self._figures(self._queues[queue_id])

    def agent_states(self) -> list[AgentChanged]:
        """The state of every configured agent (a full snapshot for MQTT)."""
        return [self._agent_note(a) for a in self._agents.values()]

    def calls(self) -> tuple[CallView, ...]:
        """Read-only snapshots of the calls in the ACD (their current legs), oldest first."""
        return tuple(
            CallView(
                c.id,
                c.leg,
                c.state,
                c.queue.id if c.queue is not None else None,
                c.caller,
                c.dialled,
                c.priority,
                c.queued_at,
                MappingProxyType({device: a.id for device, (a, _) in c.ringing.items()}),
                c.agent.id if c.agent is not None else None,
                c.device,
                c.rings,
            )
            for c in self._calls.values()
        )

    def agents(self) -> tuple[AgentView, ...]:
        """Read-only snapshots of every configured agent, in configuration order."""
        return tuple(
            AgentView(
                a.id,
                a.device,
                a.status,
                a.reason,
                a.state,
                a.call.id if a.call is not None else None,
                a.pending.id if a.pending is not None else None,
                a.pending.queue.id if a.pending is not None else None,
                a.available,
                a.calls,
            )
            for a in self._agents.values()
        )

    def active_legs(self) -> dict[str, int]:
        """Legs offered to each queue and not yet ended (waiting, ringing, connected or
        in wrap-up; a call still at a menu is in no queue yet)."""
        counts = dict.fromkeys(self._queues, 0)
        for call in self._calls.values():
            if call.state is not _MENU:
                counts[call.queue.id] += 1
        for agent in self._agents.values():
            if agent.pending is not None:
                counts[agent.pending.queue.id] += 1
        return counts

    def wrong_pins(self, agent_id: str) -> int:
        """How many logins with a wrong PIN the agent had."""
        return self._agents[agent_id].wrong_pins

    def logged_in_at(self, device: str) -> str | None:
        """The agent logged in at ``device`` (its session in ``export_sessions``), or None."""
        agent = self._by_device.get(device)
        return agent.id if agent is not None else None

    def reload(self, config: Config, at: float) -> list[Output]:
        """Apply a new configuration to the live state (``SIGHUP``): agents, queues,
        skills, calendars, menus, announcements and ACD settings change in place; calls
        in progress, agent sessions, today's counts and the timers already running stay
        (a setting read when a timer is set applies from the next one). The site and its
        time zone are kept. `ReloadRefused` (state untouched) if a queue to remove still
        has calls or an agent to remove is logged in."""
        self._out = []
        self._set_time(at)
        busy = self.active_legs()
        problems = [
            f"queue {q} has {busy[q]} call(s) in progress"
            for q in self._queues
            if q not in config.queues and busy[q]
        ] + [
            f"agent {a.id} is logged in"
            for a in self._agents.values()
            if a.id not in config.agents and (a.status is not _LOGGED_OUT or a.pending)
        ]
        problems += [
            f"call {c.id} is at a menu leading to queue {target}"
            for c in self._calls.values()
            if c.state is _MENU
            for target in sorted({*c.menu.choices.values(), c.menu.default})
            if target not in config.queues
        ]
        if problems:
            raise ReloadRefused("; ".join(problems) + ": retry once that is over")
        available = [a for a in self._agents.values() if a.available]
        for agent in available:  # out of the old pools; back into the new ones below
            for i, membership in enumerate(agent.memberships):
                membership[1].remove(agent, agent.keys[i])
            agent.available = False
        self.config = config
        self._acd = config.acd
        self._ann = config.announcements
        self._numbers = config.queue_for_number()
        calendars = {name: Calendar(c, self.tz) for name, c in config.calendars.items()}
        self._calendars.clear()
        for qid in [q for q in self._queues if q not in config.queues]:
            gone = self._queues.pop(qid)
            if gone.display_timer is not None:
                gone.display_timer.cancel()
        for qc in config.queues.values():
            calendar = calendars[qc.calendar] if qc.calendar else None
            q = self._queues.get(qc.id)
            if q is None:
                self._queues[qc.id] = _Queue(qc, calendar, self.rng)
                continue
            q.configure(qc, calendar, self.rng)
        new = [ac for ac in config.agents.values() if ac.id not in self._agents]
        self._agents = {
            ac.id: self._agents.get(ac.id) or _Agent(ac) for ac in config.agents.values()
        }
        for agent in self._agents.values():
            agent.cfg, agent.wrapup = config.agents[agent.id], config.agents[agent.id].wrapup
            agent.memberships, agent.keys = (), []
        self._build_memberships()
        for q in self._queues.values():
            q.logged_in = 0
        for agent in self._agents.values():
            if agent.status is not _LOGGED_OUT:
                for q, *_ in agent.memberships:
                    q.logged_in += 1
        self._out.extend(self._agent_note(self._agents[ac.id]) for ac in new)
        for q in self._queues.values():
            self._touch(q)
        for agent in available:
            if agent.id in self._agents:
                self._update_available(agent)  # takes waiting callers it now serves
        self._flush_dirty()
        return self._out

    def _resumed(
        self, call_id: int, caller: str, dialled: str, trunk: int, carried: LiveLeg | None
    ) -> _Call:
        """A new call object: a new call, or the continuation of a previous run's leg."""
        if carried is None:
            return _Call(call_id, caller, dialled, trunk, self.now)
        call = _Call(
            call_id,
            caller,
            dialled,
            trunk or carried.trunk,
            carried.arrived_at,
            carried.leg,
            carried.escalated_from,
        )
        call.queued_at = carried.queued_at
        call.menu_choice = carried.menu_choice
        call.priority = carried.priority
        if carried.fallback:
            call.fallback, call.reason = True, FALLBACK
        return call

    # -- time ---------------------------------------------------------------------------

    def _set_time(self, at: float) -> None:
        if at > self.now:
            self._fire_due(at)

    def _call_timer(self, call: _Call, delay: float, fire, arg) -> None:
        """Schedule a timer that ends when the call leaves its queue (``_cancel_timers``)."""
        timer = self._schedule(delay, fire, arg)
        timer.listed = True
        if call.timers:
            call.timers.append(timer)
        else:
            call.timers = [timer]

    # -- outputs ------------------------------------------------------------------------

    def _refuse(self, event: object, reason: str) -> None:
        self.refused += 1
        self._out.append(Refused(self.now, event, reason))

    def _touch(self, q: _Queue) -> None:
        """The queue's figures changed: a ``QueueChanged`` once the event is handled (none
        without ``queue_notes``: then nothing is listed), a display refresh due."""
        if not q.dirty:
            if self._queue_notes:
                q.dirty = True
                self._dirty.append(q)
            if self._acd.display_interval > 0 and q.display_timer is None:
                q.display_timer = self._schedule(
                    self._acd.display_interval, Engine._refresh_display, q
                )

    def _flush_dirty(self) -> None:
        out = self._out
        for q in self._dirty:
            q.dirty = False
            out.append(QueueChanged(self.now, self._figures(q)))
        self._dirty.clear()

    def _figures(self, q: _Queue) -> QueueFigures:
        counts = self._counts(q, self.now)
        head = self._calls[q.waiting[0][2]].queued_at if q.waiting else self.now
        return QueueFigures(
            q.id,
            len(q.waiting),
            self.now - head,
            q.logged_in,
            sum(map(len, q.pools)),
            *counts,  # in QueueFigures order (see acd.core.daily.COUNT_NAMES)
        )

    def _refresh_display(self, q: _Queue) -> None:
        """Show queue length and longest wait to the available agents of a queue, when
        the text changed (fan-out over that queue's available agents, at most once per
        ``display_interval``; each device is sent only text it does not show yet)."""
        q.display_timer = None
        waiting = len(q.waiting)
        if waiting:
            wait = int(self.now - self._calls[q.waiting[0][2]].queued_at)
            text = f"{q.cfg.name[:12]}: {waiting} wait {wait // 60}:{wait % 60:02d}"
        else:
            text = f"{q.cfg.name[:12]}: 0 wait"
        if text == q.display_text:
            return
        q.display_text = text
        mode = "flash" if waiting else "off"
        out = self._out
        for pool in q.pools:
            for agent in pool.members:
                if agent.display != text:
                    agent.display = text
                    out.append(Display(agent.device, text))
                if agent.lamp != mode:
                    agent.lamp = mode
                    out.append(Lamp(agent.device, "queue", mode))

    def _agent_note(self, agent: _Agent) -> AgentChanged:
        call = agent.call
        return AgentChanged(
            self.now,
            agent.id,
            agent.device,
            agent.status,
            agent.reason,
            agent.state,
            call.id if call is not None else None,
            agent.since,
        )

    def _agent_changed(self, agent: _Agent) -> None:
        agent.since = self.now
        if self._agent_notes:
            self._out.append(self._agent_note(agent))

    # -- availability -------------------------------------------------------------------

    def _update_available(self, agent: _Agent) -> None:
        """Put the agent in or out of its pools; an agent who becomes available takes
        the best waiting caller of its queues."""
        should = agent.status is _READY and agent.state is _IDLE and not agent.off_hook
        if should == agent.available:
            return
        agent.available = should
        keys = agent.keys
        if not should:
            for i, membership in enumerate(agent.memberships):
                membership[1].remove(agent, keys[i])
            return
        for i, (_, pool, kind, position, _) in enumerate(agent.memberships):
            if kind == BY_IDLE:
                key = agent.idle_seq
            elif kind == BY_POSITION:
                key = position
            elif kind == BY_CALLS:
                key = agent.calls << 32 | agent.idle_seq & 0xFFFFFFFF
            else:
                key = min(int(agent.talk * 1000), 1 << 30) << 32 | agent.idle_seq & 0xFFFFFFFF
            keys[i] = key
            pool.add(agent, key)
        self._serve(agent)

    def _serve(self, agent: _Agent) -> None:
        """While the agent is available, route the best eligible head of its queues."""
        for _ in range(len(agent.memberships)):
            best: _Call | None = None
            now = self.now
            for q, _, _, _, after in agent.memberships:
                if not q.waiting:
                    continue
                call = self._calls[q.waiting[0][2]]
                if now - call.queued_at < after:
                    continue
                if best is None or call.entry < best.entry:
                    best = call
            if best is None or not self._route(best) or not agent.available:
                return

    def _dispatch(self, q: _Queue) -> None:
        """Route the queue's head callers while agents are available for them."""
        while q.waiting and self._route(self._calls[q.waiting[0][2]]):
            pass

    # -- routing ------------------------------------------------------------------------

    def _pool_for(self, call: _Call) -> Pool | None:
        """The pool of the best tier with an available agent that the call has waited
        long enough for, or None."""
        q = call.queue
        wait = self.now - call.queued_at
        afters = q.afters
        for i, pool in enumerate(q.pools):
            if afters[i] > wait:
                return None
            if pool.members:
                return pool
        return None

    def _route(self, call: _Call) -> bool:
        """Ring the agent(s) the strategy picks for a waiting call; False if none."""
        pool = self._pool_for(call)
        if pool is None:
            return False
        q = call.queue
        strategy = q.strategy
        ring = strategy.ring
        agents = pool.all() if ring is _RING_ALL else [strategy.pick(pool)]
        self._ring(call, agents, single=ring is _RING_ONE)
        if ring is _RING_PROGRESSIVE:
            self._call_timer(call, q.cfg.progressive_interval, Engine._ring_next, call)
        return True

    def _ring(self, call: _Call, agents: list[_Agent], single: bool) -> None:
        q = call.queue
        if call.state is _WAITING:
            waiting = q.waiting
            del waiting[bisect_left(waiting, call.entry)]
            call.state = _ALERTING
            self._touch(q)
        now = self.now
        ringing = call.ringing
        if not ringing:
            ringing = call.ringing = {}
        for agent in agents:
            agent.state = _RINGING
            agent.call = call
            self._update_available(agent)
            ringing[agent.device] = (agent, now)
            self._agent_changed(agent)
        if single:
            self._out.append(RouteCall(call.id, agents[0].device))
        else:
            self._out.append(RingDevices(call.id, tuple([a.device for a in agents])))
        if call.ring_timer is not None:
            call.ring_timer.cancel()
        call.ring_timer = self._schedule(q.ring_timeout, Engine._ring_timeout, call)

    def _ring_next(self, call: _Call) -> None:
        """Ring-progressive: add the next available agent to a call still ringing."""
        if call.state is not _ALERTING:
            return
        pool = self._pool_for(call)
        if pool is not None:
            self._ring(call, [pool.pick()], single=False)
        self._call_timer(call, call.queue.cfg.progressive_interval, Engine._ring_next, call)

    def _ring_timeout(self, call: _Call) -> None:
        call.ring_timer = None
        missed = []
        for device in list(call.ringing):
            self._out.append(CancelRing(call.id, device))
            missed.append(self._stop_ring(call, device, RingOutcome.NO_ANSWER))
        self._requeue(call)  # first: the caller keeps its place ahead of later callers
        for agent in missed:
            self._update_available(agent)

    def _stop_ring(self, call: _Call, device: str, outcome: RingOutcome) -> _Agent:
        """End one ring attempt; a missed ring may make the agent not ready. The caller
        updates the agent's availability once the call is back in its place."""
        ringing = call.ringing
        agent, started = ringing.pop(device)
        if not ringing:
            call.ringing = _NO_RINGING
        call.rings += (RingAttempt(agent.id, device, started, self.now, outcome),)
        agent.call = None
        agent.state = _IDLE
        if outcome in (RingOutcome.NO_ANSWER, RingOutcome.FAILED):
            agent.misses += 1
            self._idle_n += 1
            agent.idle_seq = self._idle_n  # to the back of longest-idle
            if agent.misses >= self._acd.max_misses and agent.status is _READY:
                agent.status = _NOT_READY
                agent.reason = self._acd.no_answer_reason
                self._out.append(Lamp(device, "ready", "off"))
        self._agent_changed(agent)
        return agent

    def _requeue(self, call: _Call) -> None:
        """A call no longer ringing anywhere goes back to its place in its queue."""
        if call.ring_timer is not None:
            call.ring_timer.cancel()
            call.ring_timer = None
        for timer in call.timers:  # progressive ring steps
            if timer.fire is Engine._ring_next:
                timer.cancel()
        call.state = _WAITING
        q = call.queue
        insort(q.waiting, call.entry)
        self._touch(q)
        if call.overflow_due:
            self._overflow(call, Outcome.OVERFLOWED, "max wait")
        else:
            self._dispatch(q)

    # -- call events --------------------------------------------------------------------

    def _on_offered(self, e: CallOffered) -> None:
        if e.call_id in self._calls:
            self._refuse(e, "call id already in progress")
            return
        queue_id = self._numbers.get(e.dialled)
        menu = self.config.menus.get(e.dialled)
        if queue_id is None and menu is None:
            self._refuse(e, f"number {e.dialled} is not served")
            return
        carried = self._carried.pop(e.call_id, None)
        call = self._resumed(e.call_id, e.caller, e.dialled, e.trunk, carried)
        if carried is None:
            call.priority = e.priority
        self._calls[e.call_id] = call
        self._mark(e.call_id)
        if carried is not None and carried.queue in self._queues:
            self._enter(call, self._queues[carried.queue], carried.queued_at)
            return
        if menu is not None:
            call.state = _MENU
            call.menu = menu
            self._out.append(CollectDigits(e.call_id, menu.announcement))
            self._call_timer(call, menu.timeout, Engine._menu_timeout, call)
            return
        self._enter(call, self._queues[queue_id])

    def _on_menu_choice(self, e: MenuChoice) -> None:
        call = self._calls.get(e.call_id)
        if call is None or call.state is not _MENU:
            self._refuse(e, "no call waiting at a menu")
            return
        self._cancel_timers(call)
        call.menu_choice = e.digits
        queue_id = call.menu.choices.get(e.digits, call.menu.default)
        self._enter(call, self._queues[queue_id])

    def _menu_timeout(self, call: _Call) -> None:
        call.timers = _NO_TIMERS
        self._enter(call, self._queues[call.menu.default])

    def _enter(self, call: _Call, q: _Queue, queued_at: float | None = None) -> None:
        """A leg starts in a queue (or, ``queued_at`` given, goes on in it after a
        restart): closed, rejected (full) or queued and routed."""
        call.queued_at = self.now if queued_at is None else queued_at
        self._mark(call.id)
        call.queue = q
        call.state = _WAITING
        counts = self._counts(q, self.now)
        self._touch(q)
        cfg = q.cfg
        if q.calendar is not None and not self._calendars.is_open(q.calendar, self.now):
            self._end_unanswered(call, Outcome.CLOSED, announcement=self._ann.closed)
            return
        counts[OFFERED] += 1
        if cfg.max_length and len(q.waiting) >= cfg.max_length:
            self._overflow(call, Outcome.REJECTED, "queue full")
            return
        self._n += 1
        call.entry = (-(q.priority + call.priority), self._n, call.id)
        insort(q.waiting, call.entry)  # after every caller of the same priority
        self._out.append(QueueCall(call.id, q.id, self._ann.welcome if cfg.welcome else 0))
        if cfg.max_wait:
            self._call_timer(call, cfg.max_wait, Engine._max_wait, call)
        if cfg.max_wait_no_agent and not q.logged_in:
            self._call_timer(call, cfg.max_wait_no_agent, Engine._no_agent, call)
        for after in q.afters[1:]:
            self._call_timer(call, after, Engine._dispatch, q)
        if cfg.periodic and (cfg.announce_position or cfg.announce_wait or self._ann.periodic):
            self._call_timer(call, cfg.periodic, Engine._announce, call)
        self._dispatch(q)

    def _announce(self, call: _Call) -> None:
        """Periodic announcements to a waiting caller: position, estimated wait, music."""
        q = call.queue
        cfg = q.cfg
        self._call_timer(call, cfg.periodic, Engine._announce, call)
        if call.state is not _WAITING:
            return
        position = bisect_left(q.waiting, call.entry) + 1
        out = self._out
        if cfg.announce_position and self._ann.position:
            out.append(PlayAnnouncement(call.id, self._ann.position, position))
        if cfg.announce_wait and self._ann.estimated_wait:
            staff = max(1, q.logged_in)
            out.append(
                PlayAnnouncement(
                    call.id, self._ann.estimated_wait, round(position * q.handle_avg / staff)
                )
            )
        if self._ann.periodic:
            out.append(PlayAnnouncement(call.id, self._ann.periodic, 0))

    def _max_wait(self, call: _Call) -> None:
        if call.state is _WAITING:
            self._overflow(call, Outcome.OVERFLOWED, "max wait")
        else:
            call.overflow_due = True  # ringing: overflow if it comes back to the queue

    def _no_agent(self, call: _Call) -> None:
        if call.state is _WAITING and not call.queue.logged_in:
            self._overflow(call, Outcome.OVERFLOWED, "no agent logged in")

    def _overflow(self, call: _Call, outcome: Outcome, reason: str) -> None:
        """The leg ends (overflowed or rejected) and the call goes to the overflow."""
        q = call.queue
        to = q.cfg.overflow
        if to.queue is not None:
            call.escalated_to = to.queue
            self._leave_queue(call)
            call.state = _ENDED
            self._emit_record(q, call.record(self.now, outcome, reason=reason))
            self._next_leg(call, self._queues[to.queue])
        elif to.device is not None:
            call.transferred_to = to.device
            self._out.append(TransferCall(call.id, to.device))
            self._end_unanswered(call, outcome, reason=reason)
        else:
            self._end_unanswered(call, outcome, announcement=self._ann.busy, reason=reason)

    def _next_leg(self, call: _Call, target: _Queue) -> None:
        """Start the call's next leg in ``target`` (its current leg has ended, or waits
        for the agent's wrap-up)."""
        nxt = self._calls[call.id] = call.next_leg()
        self._enter(nxt, target)

    def _leave_queue(self, call: _Call) -> None:
        """Take a call out of its queue's waiting list and cancel its timers."""
        if call.state is _WAITING:
            waiting = call.queue.waiting
            i = bisect_left(waiting, call.entry)
            if i < len(waiting) and waiting[i] == call.entry:
                del waiting[i]
            self._touch(call.queue)
        self._cancel_timers(call)

    def _cancel_timers(self, call: _Call) -> None:
        for timer in call.timers:
            timer.cancel()
        call.timers = _NO_TIMERS
        if call.ring_timer is not None:
            call.ring_timer.cancel()
            call.ring_timer = None

    def _end_unanswered(
        self,
        call: _Call,
        outcome: Outcome,
        *,
        announcement: int = 0,
        reason: str = "",
    ) -> None:
        """The call leaves the ACD without an agent: record, count, maybe clear it."""
        abandoned = outcome is Outcome.ABANDONED
        rung = [agent for agent, _ in call.ringing.values()]
        abandoned_ringing = abandoned and bool(rung)
        ring_outcome = RingOutcome.ABANDONED if abandoned else RingOutcome.CANCELLED
        for device in list(call.ringing):
            if not abandoned:
                self._out.append(CancelRing(call.id, device))
            self._stop_ring(call, device, ring_outcome)
        q = call.queue
        if call.state is _MENU:  # a menu call counts against the menu's default queue
            q = call.queue = self._queues[call.menu.default]
            self._counts(q, self.now)[OFFERED] += 1
        self._leave_queue(call)
        call.state = _ENDED
        del self._calls[call.id]
        self._mark(call.id)
        if announcement and not abandoned:
            self._out.append(ClearCall(call.id, announcement))
        record = call.record(self.now, outcome, abandoned_ringing=abandoned_ringing, reason=reason)
        self._emit_record(q, record)
        for agent in rung:  # free only now: they must not be offered this call again
            self._update_available(agent)

    def _emit_record(self, q: _Queue, record: CallRecord) -> None:
        outcome = record.outcome
        if outcome is not Outcome.ANSWERED:
            counts = self._counts(q, self.now)
            if outcome is Outcome.ABANDONED:
                if record.wait < self._acd.short_abandon:
                    counts[SHORT_ABANDONED] += 1
                    counts[OFFERED] -= 1
                else:
                    counts[ABANDONED] += 1
            else:
                counts[ENDED[outcome]] += 1
            self._touch(q)
        self._out.append(CallEnded(self.now, record))

    def _on_alerting(self, e: Alerting) -> None:
        call = self._calls.get(e.call_id)
        if call is None or e.device not in call.ringing:
            self._refuse(e, "call is not ringing at that device")

    def _on_answered(self, e: Answered) -> None:
        call = self._calls.get(e.call_id)
        if call is None or not self._answer(call, e.device):
            self._refuse(e, "call is not ringing at that device")

    def _answer(self, call: _Call, device: str) -> bool:
        """The switch connected the call at ``device``: a ring answered, or a late
        answer (see ``_late_answer``). False when it cannot be taken."""
        ringing = call.ringing
        if call.state is _ALERTING and device in ringing:
            agent, started = ringing.pop(device)
            if not ringing:
                call.ringing = _NO_RINGING
            call.rings += (RingAttempt(agent.id, device, started, self.now, RingOutcome.ANSWERED),)
        else:
            agent = self._late_answer(call, device)
            if agent is None:
                return False
        self._connect(call, agent, device)
        return True

    def _late_answer(self, call: _Call, device: str) -> _Agent | None:
        """An answer at ``device`` after the engine gave up ringing it (the switch had
        connected the agent before the cancel reached it): accepted while the call is
        still in the ACD (waiting, or ringing elsewhere) and the agent is logged in
        there and on no other call. The missed ring attempt is corrected to answered.
        Returns the agent, or None when the answer cannot be taken."""
        if call.state is not _WAITING and call.state is not _ALERTING:
            return None
        agent = self._by_device.get(device)
        if agent is None or agent.state is _ON_CALL or agent.state is _WRAP_UP:
            return None
        rings = call.rings
        for i in range(len(rings) - 1, -1, -1):
            ring = rings[i]
            if ring.device == device and ring.agent_id == agent.id:
                break
        else:
            return None  # never rung there: the switch cannot have connected it
        if ring.outcome is not RingOutcome.NO_ANSWER and ring.outcome is not RingOutcome.CANCELLED:
            return None
        answered = RingAttempt(agent.id, device, ring.started, self.now, RingOutcome.ANSWERED)
        call.rings = (*rings[:i], answered, *rings[i + 1 :])
        if (
            ring.outcome is RingOutcome.NO_ANSWER
            and agent.status is _NOT_READY
            and agent.reason == self._acd.no_answer_reason
            and agent.misses == self._acd.max_misses
        ):  # that miss made the agent not ready: it was no miss
            agent.status = _READY
            agent.reason = 0
            self._out.append(Lamp(device, "ready", "on"))
        self._leave_queue(call)  # out of the waiting line before other calls move
        self._unring(agent)
        return agent

    def _unring(self, agent: _Agent) -> None:
        """Free a ringing agent (for a call the switch connected it to, or at logout):
        the ring is cancelled and that caller goes back to its place. No-op otherwise."""
        if agent.state is _RINGING:
            call = agent.call
            self._out.append(CancelRing(call.id, agent.device))
            self._stop_ring(call, agent.device, RingOutcome.CANCELLED)
            if not call.ringing:
                self._requeue(call)

    def _connect(self, call: _Call, agent: _Agent, device: str) -> None:
        """The call is answered by ``agent`` at ``device``: other rings are cancelled,
        the agent is on the call, the queue counts an answer."""
        others = []
        for ringing in list(call.ringing):
            self._out.append(CancelRing(call.id, ringing))
            others.append(self._stop_ring(call, ringing, RingOutcome.CANCELLED))
        self._cancel_timers(call)
        now = self.now
        call.state = _CONNECTED
        call.agent = agent
        call.answered_at = now
        self._mark(call.id)
        call.agent_id = agent.id
        call.device = device
        agent.state = _ON_CALL
        agent.call = call
        agent.misses = 0
        agent.calls += 1
        self._agent_changed(agent)
        self._update_available(agent)  # a late answer may find the agent available
        for other in others:
            self._update_available(other)
        q = call.queue
        counts = self._counts(q, self.now)
        counts[ANSWERED] += 1
        if now - call.queued_at <= q.sl_threshold:
            counts[ANSWERED_IN_SL] += 1
        self._touch(q)

    def _on_cleared(self, e: Cleared) -> None:
        call = self._calls.get(e.call_id)
        if call is None:
            self._refuse(e, "unknown call")
            return
        if call.state is _CONNECTED:
            if e.device and e.device != call.agent.device:
                self._refuse(e, "device is not in the call")
                return
            self._release(call, None)
        elif e.device:
            if e.device not in call.ringing:
                self._refuse(e, "device is not in the call")
                return
            self._route_failed(call, e.device)  # the agent rejected the ring
        else:
            self._end_unanswered(call, Outcome.ABANDONED)

    def _on_route_failed(self, e: RouteFailed) -> None:
        call = self._calls.get(e.call_id)
        if call is None or e.device not in call.ringing:
            self._refuse(e, "call is not ringing at that device")
            return
        self._route_failed(call, e.device)

    def _route_failed(self, call: _Call, device: str) -> None:
        agent = self._stop_ring(call, device, RingOutcome.FAILED)
        if not call.ringing:
            self._requeue(call)
        self._update_available(agent)

    def _on_transferred(self, e: Transferred) -> None:
        call = self._calls.get(e.call_id)
        if call is None or call.state is not _CONNECTED or call.agent.device != e.device:
            self._refuse(e, "call is not connected at that device")
            return
        call.transferred_to = e.to_device
        self._release(call, None)

    def _on_escalate(self, e: Escalate) -> None:
        agent = self._by_device.get(e.device)
        call = self._calls.get(e.call_id)
        target = self._queues.get(e.group)
        if agent is None or call is None or call.agent is not agent or call.state is not _CONNECTED:
            self._refuse(e, "no such call connected at that device")
            return
        if target is None or target is call.queue:
            self._refuse(e, f"no other group {e.group!r}")
            return
        call.escalated_to = target.id
        self._release(call, target)

    def _release(self, call: _Call, target: _Queue | None) -> None:
        """The connected call leaves the agent (cleared, transferred, escalated to
        ``target``); the agent wraps up. The leg's record so far is out at once
        (``LegReleased``), complete (``CallEnded``) when the wrap-up ends."""
        agent = call.agent
        q = call.queue
        call.state = _ENDED
        call.released_at = self.now
        agent.talk += self.now - call.answered_at
        agent.call = None
        agent.state = _WRAP_UP
        agent.pending = call
        wrapup = agent.wrapup if agent.wrapup is not None else q.wrapup
        self._agent_changed(agent)
        if wrapup > 0 and self._release_notes:  # known now: stored now, completed later
            self._out.append(LegReleased(self.now, call.record(self.now, Outcome.ANSWERED)))
        if target is not None:
            self._next_leg(call, target)
        else:
            del self._calls[call.id]
            self._mark(call.id)
        if wrapup > 0:
            agent.wrapup_timer = self._schedule(wrapup, Engine._end_wrapup, agent)
        else:
            self._end_wrapup(agent)

    def _end_wrapup(self, agent: _Agent) -> None:
        if agent.wrapup_timer is not None:
            agent.wrapup_timer.cancel()
            agent.wrapup_timer = None
        leg = agent.pending
        q = leg.queue
        agent.pending = None
        record = leg.record(leg.released_at, Outcome.ANSWERED, wrapup_end=self.now)
        q.handle_avg += 0.1 * (record.talk + record.wrapup - q.handle_avg)
        self._emit_record(q, record)
        self._idle_n += 1
        agent.idle_seq = self._idle_n
        agent.state = _IDLE
        self._agent_changed(agent)
        self._update_available(agent)

    # -- handset keys -------------------------------------------------------------------

    def _agent_at(self, e: Event, device: str) -> _Agent | None:
        agent = self._by_device.get(device)
        if agent is None:
            self._refuse(e, f"no agent logged in at {device}")
        return agent

    def _on_login(self, e: Login) -> None:
        """A login key: checks that need no PIN, then a `VerifyPin` for the runtime; the
        login goes on in `_on_pin_checked`. A locked PIN, a PIN shorter than
        ``[agents] pin_min_length`` and a second login while one is checked cost no hash."""
        agent = self._login_target(e, e.device, e.agent_id)
        if agent is None:
            return
        if self.now < agent.locked_until:
            self._refuse(e, f"PIN locked for {math.ceil(agent.locked_until - self.now)} s")
            self._out.append(Display(e.device, "PIN locked"))
            return
        if agent.pin_check is not None:
            self._refuse(e, "a PIN check is in progress")
            return
        if len(e.pin) < self._pins.min_length:
            self._wrong_pin(e, agent, e.device)
            return
        self._pin_seq += 1
        agent.pin_check = (self._pin_seq, e.device)
        self._checks[self._pin_seq] = agent
        self._out.append(VerifyPin(self._pin_seq, agent.id, e.device, e.pin, agent.cfg.pin_hash))

    def _on_pin_checked(self, e: PinChecked) -> None:
        agent = self._checks.pop(e.check, None)
        if agent is None or agent.pin_check is None:
            self._refuse(e, "no such PIN check")
            return
        device = agent.pin_check[1]
        agent.pin_check = None
        if not e.ok:
            self._wrong_pin(e, agent, device)
            return
        agent.pin_failures = agent.pin_locks = 0
        if self._login_target(e, device, agent.id) is None:  # the desk changed meanwhile
            return
        if agent.status is not _LOGGED_OUT:
            if agent.device == device:
                self._refuse(e, "already logged in here")
                return
            if agent.state is not _IDLE:
                self._refuse(e, f"busy at {agent.device}")
                return
            self._log_out(agent)  # moves to the new desk
        status = _READY if self._acd.login_status == "ready" else _NOT_READY
        self._log_in(agent, device, status, 0, self.now)

    def _login_target(self, e: Event, device: str, agent_id: str) -> _Agent | None:
        """The agent a login at ``device`` is for, or None (refused) if unknown or if
        another agent is logged in there."""
        agent = self._agents.get(agent_id)
        if agent is None:
            self._refuse(e, "unknown agent")
            self._out.append(Display(device, "Unknown agent"))
            return None
        other = self._by_device.get(device)
        if other is not None and other is not agent:
            self._refuse(e, f"agent {other.id} is logged in at {device}")
            return None
        return agent

    def _wrong_pin(self, e: Event, agent: _Agent, device: str) -> None:
        """Count a wrong PIN; the ``[agents] pin_attempts``-th in a row locks the PIN for
        ``pin_lockout`` s, doubled at each further lock (``PinLocked``)."""
        agent.wrong_pins += 1
        agent.pin_failures += 1
        self._refuse(e, "wrong PIN")
        self._out.append(Display(device, "Wrong PIN"))
        pins = self._pins
        if agent.pin_failures >= pins.attempts:
            length = min(pins.lockout * 2**agent.pin_locks, pins.lockout_max)
            agent.pin_locks += 1
            agent.locked_until = self.now + length
            self._out.append(
                PinLocked(self.now, agent.id, device, agent.pin_failures, agent.locked_until)
            )
            agent.pin_failures = 0

    def _log_in(
        self, agent: _Agent, device: str, status: AgentStatus, reason: int, since: float
    ) -> None:
        agent.device = device
        agent.status = status
        agent.reason = reason
        agent.state = _IDLE
        agent.misses = 0
        agent.off_hook = False
        self._by_device[device] = agent
        self._idle_n += 1
        agent.idle_seq = self._idle_n
        for q, _, _, _, _ in agent.memberships:
            q.logged_in += 1
            self._touch(q)
        self._out.append(Lamp(device, "ready", "on" if status is _READY else "off"))
        self._agent_changed(agent)
        agent.since = since  # a restored session keeps its start
        self._update_available(agent)

    def _on_logout(self, e: Logout) -> None:
        agent = self._agent_at(e, e.device)
        if agent is None:
            return
        if agent.state is _ON_CALL:
            self._refuse(e, "on a call")
            return
        self._log_out(agent)

    def _log_out(self, agent: _Agent) -> None:
        agent.status = _LOGGED_OUT
        agent.reason = 0
        self._update_available(agent)
        if agent.state is _WRAP_UP:
            self._end_wrapup(agent)
        else:
            self._unring(agent)
        for q, _, _, _, _ in agent.memberships:
            q.logged_in -= 1
            self._touch(q)
        self._out.append(Lamp(agent.device, "ready", "off"))
        del self._by_device[agent.device]
        agent.device = None
        self._agent_changed(agent)

    def _on_ready(self, e: Ready) -> None:
        agent = self._agent_at(e, e.device)
        if agent is not None:
            self._set_status(agent, _READY, 0)

    def _on_not_ready(self, e: NotReady) -> None:
        agent = self._agent_at(e, e.device)
        if agent is None:
            return
        if not self._known_reason(e.reason):
            self._refuse(e, self._unknown_reason(e.reason))
            return
        self._set_status(agent, _NOT_READY, e.reason)

    def _known_reason(self, reason: int) -> bool:
        """A not-ready reason an agent or a supervisor may give: 0 or one of
        ``[acd.reasons]``."""
        return reason == 0 or reason in self._acd.reasons

    def _unknown_reason(self, reason: int) -> str:
        """Why ``reason`` is refused, with the codes the site knows."""
        known = ", ".join(f"{c} {label}" for c, label in sorted(self._acd.reasons.items()))
        return f"unknown reason code {reason} (known: 0, {known})"

    def _set_status(self, agent: _Agent, status: AgentStatus, reason: int) -> None:
        if agent.status is status and agent.reason == reason:
            return
        agent.status = status
        agent.reason = reason
        if status is _READY:
            agent.misses = 0
        self._out.append(Lamp(agent.device, "ready", "on" if status is _READY else "off"))
        self._agent_changed(agent)
        self._update_available(agent)

    def _on_wrapup_done(self, e: WrapUpDone) -> None:
        agent = self._agent_at(e, e.device)
        if agent is None:
            return
        if agent.state is not _WRAP_UP:
            self._refuse(e, "not in wrap-up")
            return
        self._end_wrapup(agent)

    def _on_hook(self, e: Hook) -> None:
        agent = self._by_device.get(e.device)
        if agent is not None and agent.off_hook != e.off_hook:
            agent.off_hook = e.off_hook
            self._update_available(agent)

    def _on_set_status(self, e: SetAgentStatus) -> None:
        agent = self._agents.get(e.agent_id)
        if agent is None or agent.status is _LOGGED_OUT:
            self._refuse(e, "agent is not logged in")
            return
        if e.status is _LOGGED_OUT:
            if agent.state is _ON_CALL:
                self._refuse(e, "on a call")
            else:
                self._log_out(agent)
        elif e.status is _READY:
            self._set_status(agent, _READY, 0)
        elif e.status is not _NOT_READY:  # not an AgentStatus
            self._refuse(e, f"unknown status {e.status}")
        elif self._known_reason(e.reason):
            self._set_status(agent, _NOT_READY, e.reason)
        else:
            self._refuse(e, self._unknown_reason(e.reason))

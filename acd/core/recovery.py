"""Restart recovery, a part of the engine: carrying agent sessions and legs in progress
over a controller restart, and aligning with the switch after a link loss or a restart
(``reconcile``: calls lost, rings given up, answers missed, calls adopted; the calls
the switch's fallback routed meanwhile, ``fallback_leg``).

`RestartRecovery` is a base class of `acd.core.engine.Engine`: its methods work on the
engine's state with the engine's transitions (``_release``, ``_end_unanswered``,
``_answer``, ``_connect`` ...), which stay in ``acd/core/engine.py`` with the others. The
legs a previous run had in progress (``continue_legs``) are continued by the engine when
their calls come back (``_carried``); ``_mark`` notes a leg that changed, to be saved.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from acd.core.agents import AgentSession, AgentState, AgentStatus
from acd.core.call_states import CallState
from acd.core.commands import Output
from acd.core.daily import ANSWERED, OFFERED
from acd.core.events import FallbackLeg, SwitchCall
from acd.core.records import CallRecord, LiveLeg, Outcome, RingOutcome

ENDED_UNHEARD = "ended while the controller was down (end time unknown)"
"""The reason of the record of a leg whose call ended while no controller could hear."""
FALLBACK = "routed by the switch's fallback"
"""The reason of the record of a leg the switch's fallback routed (cti-protocol §9.7)."""

_WAITING, _ALERTING, _CONNECTED = CallState.WAITING, CallState.RINGING, CallState.CONNECTED
_ON_CALL, _WRAP_UP = AgentState.ON_CALL, AgentState.WRAP_UP
_LOGGED_OUT = AgentStatus.LOGGED_OUT


class RestartRecovery:
    """Sessions, legs in progress and reconciling (see the module docstring)."""

    def _init_recovery(self) -> None:
        self._moved: dict[int, None] | None = None  # calls whose leg changed (see drain_legs)
        self._carried: dict[int, LiveLeg] = {}  # legs of a previous run, by call id

    def export_sessions(self) -> list[AgentSession]:
        """Who is logged in where, with status: to survive a controller restart."""
        return [
            AgentSession(a.id, a.device, a.status, a.reason, a.since)
            for a in self._agents.values()
            if a.status is not _LOGGED_OUT and a.device is not None
        ]

    def import_sessions(self, at: float, sessions: Iterable[AgentSession]) -> list[Output]:
        """Log agents back in as exported (idle, without PIN); unknown agents, agents
        already logged in and taken devices are refused."""
        self._out = []
        self._set_time(at)
        for s in sessions:
            agent = self._agents.get(s.agent_id)
            if agent is None or agent.status is not _LOGGED_OUT or s.device in self._by_device:
                self._refuse(s, "cannot restore session")
                continue
            self._log_in(agent, s.device, s.status, s.reason, s.since)
        self._flush_dirty()
        return self._out

    def wrapups_in_progress(self, at: float, reason: str) -> list[CallRecord]:
        """The final records of the legs whose agents are in wrap-up, as if it ended at
        ``at`` (say why in ``reason``); the engine is unchanged (for a clean stop)."""
        records = []
        for agent in self._agents.values():
            leg = agent.pending
            if leg is not None:
                why = f"{leg.reason}; {reason}" if leg.reason else reason
                records.append(
                    leg.record(leg.released_at, Outcome.ANSWERED, wrapup_end=at, reason=why)
                )
        return records

    def continue_legs(self, legs: Iterable[LiveLeg]) -> None:
        """Keep track of the legs in progress (``drain_legs``) and continue ``legs``, the
        legs a previous run had in progress, when their calls come back: a call taken
        over (``reconcile``) or offered again keeps its leg number, arrival, queue and
        times; the next ``reconcile`` forgets those the switch no longer has."""
        if self._moved is None:
            self._moved = {}
        self._carried.update((leg.call_id, leg) for leg in legs)

    def drain_legs(self) -> dict[int, LiveLeg | None]:
        """The legs in progress that changed since the last call, by call id (None: the
        call left the ACD), to be saved; empty unless ``continue_legs`` was called."""
        moved = self._moved
        if not moved:
            return {}
        self._moved = {}
        return {call_id: self._live_leg(call_id) for call_id in moved}

    def _live_leg(self, call_id: int) -> LiveLeg | None:
        call = self._calls.get(call_id)
        if call is None:
            return self._carried.get(call_id)
        return LiveLeg(
            call_id,
            call.leg,
            call.queue.id if call.queue is not None else None,
            call.trunk,
            call.arrived_at,
            call.queued_at,
            call.answered_at,
            call.agent_id,
            call.device,
            call.menu_choice,
            call.escalated_from,
            call.priority,
            call.fallback,
        )

    def _mark(self, call_id: int) -> None:
        """The leg of ``call_id`` changed (to be saved, when tracked)."""
        if self._moved is not None:
            self._moved[call_id] = None

    def reconcile(self, at: float, switch_calls: Mapping[int, str | SwitchCall]) -> list[Output]:
        """Align with the switch's view after a link loss or a controller restart.

        ``switch_calls`` maps every call the switch still has to where it is: either the
        extension it rings or is connected at (``""`` when held in a queue), or a
        ``SwitchCall`` that also says whether it is connected there.

        - Calls the switch no longer knows end: unanswered legs as ``failed``, answered
          ones as released at ``at`` (the agent wraps up).
        - Calls ringing an extension the switch no longer rings go back to their place
          in the queue.
        - A call the engine has waiting or ringing that the switch reports connected at
          an agent's extension is answered there (an answer lost with the link).
        - A call the engine does not know that the switch reports connected (a
          ``SwitchCall`` with ``connected``) at the extension of a logged-in agent on no
          other call is adopted: a leg in ``SwitchCall.queue``, else the queue of the
          dialled number if the agent serves it, else the agent's first queue
          (configuration order); answered at ``at`` (the real time is unknown), the
          record's reason ``"adopted after restart"``; the agent is on the call, and
          wraps up when it clears. A leg of a previous run (``continue_legs``) keeps its
          number, arrival, queue and times, and its answer time when still at the same
          extension. Other unknown calls are refused (the caller offers unanswered ones as
          new calls; those continue their previous run's leg too).
        - Legs of a previous run whose calls the switch no longer has ended while no
          controller could hear: recorded with reason ``ENDED_UNHEARD``, answered if
          they were (the end time unknown: ``at``), else failed.
        """
        self._out = []
        self._set_time(at)
        for call_id in [c for c in self._carried if c not in switch_calls]:
            self._ended_unheard(self._carried.pop(call_id))
            self._mark(call_id)
        for call in list(self._calls.values()):
            if self._calls.get(call.id) is not call:
                continue  # ended meanwhile (an overflow on going back to its queue)
            where = switch_calls.get(call.id)
            if where is None:
                if call.state is _CONNECTED:
                    self._release(call, None)
                else:
                    self._end_unanswered(call, Outcome.FAILED, reason="lost during link outage")
                continue
            device, connected = (
                (where, False) if isinstance(where, str) else (where.device, where.connected)
            )
            if connected and call.state in (_WAITING, _ALERTING) and self._answer(call, device):
                continue
            if call.state is _ALERTING:
                freed = [
                    self._stop_ring(call, dev, RingOutcome.CANCELLED)
                    for dev in list(call.ringing)
                    if dev != device
                ]
                if not call.ringing:
                    self._requeue(call)
                for agent in freed:
                    self._update_available(agent)
        for call_id, where in switch_calls.items():
            if call_id not in self._calls and not isinstance(where, str) and where.connected:
                self._adopt(call_id, where)
        self._flush_dirty()
        return self._out

    def _ended_unheard(self, leg: LiveLeg) -> None:
        """A previous run's leg whose call the switch no longer has: it ended while no
        controller could hear. Recorded as such, answered if it was (its end is unknown:
        the record ends now), so that every call the switch took has its records; a leg
        the switch's fallback routed stays marked."""
        q = self._queues.get(leg.queue or "")
        if q is None:  # still at a menu: no queue to record it in
            return
        answered = leg.answered_at is not None
        record = CallRecord(
            leg.call_id,
            leg.leg,
            q.id,
            "",
            "",
            leg.trunk,
            leg.arrived_at,
            leg.queued_at,
            self.now,
            Outcome.ANSWERED if answered else Outcome.FAILED,
            leg.answered_at,
            agent_id=leg.agent_id,
            device=leg.device,
            menu_choice=leg.menu_choice,
            escalated_from=leg.escalated_from,
            reason=ENDED_UNHEARD,
            fallback=leg.fallback,
        )
        self._emit_record(q, record)

    def fallback_leg(self, at: float, leg: FallbackLeg) -> list[Output]:
        """Record a call the switch's fallback routed and that ended unheard: one leg
        marked ``fallback``, in the queue of its dialled number (else the first queue of
        the agent logged in at its device), numbered after the legs the engine has of
        that call (those end as ``reconcile`` says). Call before ``reconcile``."""
        self._out = []
        self._set_time(at)
        agent = self._by_device.get(leg.device) if leg.device else None
        q = self._queues.get(self._numbers.get(leg.dialled, ""))
        if q is None and agent is not None and agent.memberships:
            q = agent.memberships[0][0]
        if q is None:
            self._refuse(leg, f"no queue for the fallback call {leg.call_id}")
            return self._out
        known = self._calls.get(leg.call_id) or self._carried.get(leg.call_id)
        answered = leg.answered_at is not None
        record = CallRecord(
            leg.call_id,
            known.leg + 1 if known is not None else 1,
            q.id,
            leg.caller,
            leg.dialled,
            0,
            leg.arrived_at,
            leg.arrived_at,
            leg.ended_at,
            Outcome.ANSWERED if answered else Outcome.ABANDONED,
            leg.answered_at,
            leg.ended_at if answered else None,
            leg.ended_at if answered else None,
            agent.id if agent is not None and answered else None,
            leg.device or None,
            reason=FALLBACK,
            fallback=True,
        )
        counts = self._counts(q, self.now)
        counts[OFFERED] += 1
        if answered:
            counts[ANSWERED] += 1
        self._emit_record(q, record)
        return self._out

    def _adopt(self, call_id: int, sc: SwitchCall) -> None:
        """Take over a call the switch has connected to an agent (see ``reconcile``)."""
        agent = self._by_device.get(sc.device)
        if agent is None or agent.state is _ON_CALL or agent.state is _WRAP_UP:
            self._refuse(sc, "no agent free at that device to adopt the call")
            return
        served = [m[0] for m in agent.memberships]
        if sc.queue:
            q = self._queues.get(sc.queue)
        else:
            q = self._queues.get(self._numbers.get(sc.dialled, ""))
            if q not in served:
                q = served[0] if served else None
        if q is None:
            self._refuse(sc, f"no queue to adopt the call at {sc.device} into")
            return
        carried = self._carried.pop(call_id, None)
        if carried is not None and carried.queue in self._queues:
            q = self._queues[carried.queue]
        self._unring(agent)
        call = self._calls[call_id] = self._resumed(call_id, sc.caller, sc.dialled, 0, carried)
        call.queue = q
        call.reason = "adopted after restart"
        self._counts(q, self.now)[OFFERED] += 1
        self._connect(call, agent, sc.device)
        if carried is not None and carried.answered_at is not None and carried.device == sc.device:
            call.answered_at = carried.answered_at  # answered there before the restart
        if sc.fallback is not None and (carried is None or carried.fallback):
            # the switch's fallback answered it there (a leg saved unmarked is one a
            # controller took over from the fallback: the switch's times are not its)
            call.fallback = True
            call.reason = FALLBACK
            if carried is None:
                call.arrived_at = call.queued_at = sc.fallback[0]
            call.answered_at = sc.fallback[1]

"""Random event sequences, nonsense included, against the engine's invariants."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from acd.config import Config
from acd.core import figures
from acd.core.agents import AgentState, AgentStatus
from acd.core.commands import AgentChanged, CallEnded, RingDevices, RouteCall
from acd.core.engine import Engine
from acd.core.events import (
    Alerting,
    Answered,
    CallOffered,
    Cleared,
    Escalate,
    Hook,
    Login,
    Logout,
    MenuChoice,
    NotReady,
    Ready,
    RouteFailed,
    SetAgentStatus,
    SwitchCall,
    Tick,
    Transferred,
    WrapUpDone,
)
from acd.core.pins import hash_pin
from acd.core.records import Outcome
from acd.core.strategies import REGISTRY
from acd.runtime.bridge import handle_checking_pins

# every call-state move the engine makes is checked against the table
pytestmark = pytest.mark.usefixtures("checked_call_states")


T0 = 1_796_025_600.0  # Monday 09:00 Paris
PIN = hash_pin("1234", n=2, r=1, p=1, salt=b"0123456789abcdef")
AGENTS = ["a", "b", "c", "d", "ghost"]  # ghost is not configured
DEVICES = ["200", "201", "202", "203", "299"]
CALL_IDS = st.integers(1, 8)
QUEUES = ["front", "back"]


def config(strategy: str) -> Config:
    return Config.from_dict(
        {
            "site": {"id": "t", "timezone": "Europe/Paris", "seed": 5},
            "acd": {"max_misses": 2, "reasons": {"1": "break"}, "display_interval": 7.0},
            "calendars": {"day": {"hours": {"mon": "08:00-12:00"}}},
            "queues": {
                "front": {
                    "numbers": ["3000"],
                    "strategy": strategy,
                    "ring_timeout": 8.0,
                    "progressive_interval": 3.0,
                    "wrapup": 5.0,
                    "max_wait": 120.0,
                    "max_length": 4,
                    "overflow": "queue:back",
                    "periodic": 20.0,
                    "announce_position": True,
                    "tiers": [{"min_level": 3}, {"min_level": 1, "after": 15.0}],
                },
                "back": {
                    "numbers": ["3001"],
                    "priority": 2,
                    "strategy": "longest-idle",
                    "calendar": "day",
                    "max_wait_no_agent": 30.0,
                    "wrapup": 0.0,
                },
            },
            "menus": {"3900": {"announcement": 9, "choices": {"1": "back"}, "default": "front"}},
            "agents": {
                "a": {"pin_hash": PIN, "skills": {"front": 5}},
                "b": {"pin_hash": PIN, "skills": {"front": 1, "back": 2}},
                "c": {"pin_hash": PIN, "skills": {"front": 3, "back": 1}, "wrapup": 2.0},
                "d": {"pin_hash": PIN, "skills": {"back": 1}},
            },
        }
    )


class EngineMachine(RuleBasedStateMachine):
    @initialize(
        strategy=st.sampled_from(list(REGISTRY)),
        logged_in=st.lists(st.sampled_from(AGENTS[:4]), unique=True),
    )
    def start(self, strategy: str, logged_in: list[str]) -> None:
        self.engine = Engine(config(strategy), T0)
        self.now = T0
        self.records = []
        self.seen_legs: set[tuple[int, float, int]] = set()
        self.where: dict[str, str] = {}  # device -> agent, from the notifications
        self.model: dict[str, tuple[AgentStatus, AgentState]] = {}
        for agent in logged_in:
            self.send(Login(T0, DEVICES[AGENTS.index(agent)], agent, "1234"))

    def send(self, event) -> None:
        self.now = max(self.now, event.at)
        self.check(handle_checking_pins(self.engine, event))

    def check(self, outputs) -> None:
        """Only ready, idle agents start ringing; no leg ends twice."""
        for out in outputs:
            if isinstance(out, AgentChanged):
                before = self.model.get(out.agent_id, (AgentStatus.LOGGED_OUT, AgentState.IDLE))
                if out.state is AgentState.RINGING and before[1] is not AgentState.RINGING:
                    assert before == (AgentStatus.READY, AgentState.IDLE), (out, before)
                self.model[out.agent_id] = (out.status, out.state)
                if out.device is not None:
                    self.where[out.device] = out.agent_id
            elif isinstance(out, RouteCall | RingDevices):
                devices = (out.device,) if isinstance(out, RouteCall) else out.devices
                for device in devices:
                    ringing = (AgentStatus.READY, AgentState.RINGING)
                    assert self.model[self.where[device]] == ringing
            elif isinstance(out, CallEnded):
                key = (out.record.call_id, out.record.arrived_at, out.record.leg)
                assert key not in self.seen_legs, f"leg ended twice: {key}"
                self.seen_legs.add(key)
                self.records.append(out.record)

    def at(self, dt: float) -> float:
        return self.now + dt

    # -- calls --------------------------------------------------------------------------

    @rule(
        dt=st.floats(0.001, 20),  # after the last event: a reused call id arrives later
        call_id=CALL_IDS,
        number=st.sampled_from(["3000", "3001", "3900", "0"]),
        priority=st.sampled_from([0, 0, 3]),
    )
    def offer(self, dt, call_id, number, priority):
        self.send(CallOffered(self.at(dt), call_id, number, "0600000000", 1, priority))

    @rule(dt=st.floats(-5, 10), call_id=CALL_IDS, digits=st.sampled_from(["1", "7", ""]))
    def menu(self, dt, call_id, digits):
        self.send(MenuChoice(self.at(dt), call_id, digits))

    @rule(dt=st.floats(-5, 10), call_id=CALL_IDS, device=st.sampled_from(DEVICES))
    def alerting(self, dt, call_id, device):
        self.send(Alerting(self.at(dt), call_id, device))

    @rule(dt=st.floats(-5, 10), call_id=CALL_IDS, device=st.sampled_from(DEVICES))
    def answer(self, dt, call_id, device):
        self.send(Answered(self.at(dt), call_id, device))

    @rule(dt=st.floats(-5, 30), call_id=CALL_IDS, device=st.sampled_from(["", *DEVICES]))
    def clear(self, dt, call_id, device):
        self.send(Cleared(self.at(dt), call_id, device))

    @rule(dt=st.floats(0, 5), call_id=CALL_IDS, device=st.sampled_from(DEVICES))
    def route_failed(self, dt, call_id, device):
        self.send(RouteFailed(self.at(dt), call_id, device, "busy"))

    @rule(dt=st.floats(0, 5), call_id=CALL_IDS, device=st.sampled_from(DEVICES))
    def transfer(self, dt, call_id, device):
        self.send(Transferred(self.at(dt), call_id, device, "9999"))

    @rule(
        dt=st.floats(0, 5),
        call_id=CALL_IDS,
        device=st.sampled_from(DEVICES),
        group=st.sampled_from([*QUEUES, "nowhere"]),
    )
    def escalate(self, dt, call_id, device, group):
        self.send(Escalate(self.at(dt), device, call_id, group))

    # guided rules: sensible events for calls in progress, so that deep states are reached

    def _ringing(self) -> list[tuple[int, str]]:
        return [(c.call_id, d) for c in self.engine.calls() for d in c.ringing]

    def _connected(self) -> list[tuple[int, str]]:
        device = {a.agent_id: a.device for a in self.engine.agents()}
        return [(c.call_id, device[c.agent]) for c in self.engine.calls() if c.state == "connected"]

    @rule(dt=st.floats(0, 8), data=st.data())
    def answer_ringing(self, dt, data):
        ringing = self._ringing()
        if ringing:
            call_id, device = data.draw(st.sampled_from(ringing))
            self.send(Answered(self.at(dt), call_id, device))

    @rule(dt=st.floats(0, 8), data=st.data())
    def refuse_ringing(self, dt, data):
        ringing = self._ringing()
        if ringing:
            call_id, device = data.draw(st.sampled_from(ringing))
            self.send(RouteFailed(self.at(dt), call_id, device, "busy"))

    @rule(
        dt=st.floats(0, 120), data=st.data(), how=st.sampled_from(["agent", "caller", "transfer"])
    )
    def end_connected(self, dt, data, how):
        connected = self._connected()
        if connected:
            call_id, device = data.draw(st.sampled_from(connected))
            if how == "transfer":
                self.send(Transferred(self.at(dt), call_id, device, "9999"))
            else:
                self.send(Cleared(self.at(dt), call_id, device if how == "agent" else ""))

    @rule(dt=st.floats(0, 60), data=st.data(), group=st.sampled_from(QUEUES))
    def escalate_connected(self, dt, data, group):
        connected = self._connected()
        if connected:
            call_id, device = data.draw(st.sampled_from(connected))
            self.send(Escalate(self.at(dt), device, call_id, group))

    @rule(dt=st.floats(0, 60))
    def tick(self, dt):
        self.send(Tick(self.at(dt)))

    @rule(dt=st.floats(0, 8), data=st.data())
    def answer_late(self, dt, data):
        """An answer at a device whose ring the engine already gave up."""
        missed = [
            (c.call_id, r.device)
            for c in self.engine.calls()
            if c.state in ("waiting", "ringing")
            for r in c.rings
            if r.device not in c.ringing
        ]
        if missed:
            call_id, device = data.draw(st.sampled_from(missed))
            self.send(Answered(self.at(dt), call_id, device))

    @rule(dt=st.floats(0, 10), data=st.data())
    def reconcile(self, dt, data):
        calls = [c.call_id for c in self.engine.calls()]
        kept = data.draw(st.lists(st.sampled_from(calls), unique=True)) if calls else []
        where = st.one_of(
            st.sampled_from(["", *DEVICES]),
            st.builds(
                SwitchCall,
                st.sampled_from(DEVICES),
                st.booleans(),
                st.sampled_from(["", *QUEUES]),
                dialled=st.sampled_from(["", "3000", "3001"]),
            ),
        )
        switch_calls = {call_id: data.draw(where) for call_id in kept}
        for call_id in data.draw(st.lists(CALL_IDS, max_size=2, unique=True)):
            if call_id not in calls:  # connected before a restart: adopt
                switch_calls[call_id] = data.draw(where)
        self.now = self.at(dt)
        self.check(self.engine.reconcile(self.now, switch_calls))

    # -- handset keys ---------------------------------------------------------------------

    @rule(
        dt=st.floats(0, 5),
        device=st.sampled_from(DEVICES),
        agent=st.sampled_from(AGENTS),
        pin=st.sampled_from(["1234", "1234", "0000"]),
    )
    def login(self, dt, device, agent, pin):
        self.send(Login(self.at(dt), device, agent, pin))

    @rule(dt=st.floats(0, 5), device=st.sampled_from(DEVICES))
    def logout(self, dt, device):
        self.send(Logout(self.at(dt), device))

    @rule(dt=st.floats(0, 5), device=st.sampled_from(DEVICES))
    def ready(self, dt, device):
        self.send(Ready(self.at(dt), device))

    @rule(dt=st.floats(0, 5), device=st.sampled_from(DEVICES), reason=st.sampled_from([0, 1, 42]))
    def not_ready(self, dt, device, reason):
        self.send(NotReady(self.at(dt), device, reason))

    @rule(dt=st.floats(0, 5), device=st.sampled_from(DEVICES))
    def wrapup_done(self, dt, device):
        self.send(WrapUpDone(self.at(dt), device))

    @rule(dt=st.floats(0, 5), device=st.sampled_from(DEVICES), off=st.booleans())
    def hook(self, dt, device, off):
        self.send(Hook(self.at(dt), device, off))

    @rule(
        dt=st.floats(0, 5),
        agent=st.sampled_from(AGENTS),
        status=st.sampled_from([*AgentStatus, "busy"]),  # busy: not a status
    )
    def supervisor(self, dt, agent, status):
        self.send(SetAgentStatus(self.at(dt), agent, status, 1))

    # -- invariants -----------------------------------------------------------------------

    @invariant()
    def no_agent_holds_or_rings_two_calls(self):
        held = Counter()
        for call in self.engine.calls():
            for agent_id in call.ringing.values():
                held[agent_id] += 1
            if call.agent is not None and call.state == "connected":
                held[call.agent] += 1
        assert all(n == 1 for n in held.values()), held
        agents = {a.agent_id: a for a in self.engine.agents()}
        for agent_id in held:
            agent = agents[agent_id]
            assert agent.state in (AgentState.RINGING, AgentState.ON_CALL)
            assert agent.call is not None

    @invariant()
    def no_deadline_in_the_past(self):
        deadline = self.engine.next_deadline()
        assert deadline is None or deadline > self.engine.now

    @invariant()
    def outcomes_add_up_and_figures_match_records(self):
        active = self.engine.active_legs()
        for queue in QUEUES:
            live = self.engine.queue_figures(queue)
            mine = [r for r in self.records if r.queue == queue]
            recomputed = figures.compute(mine, short_abandon=5.0)
            in_progress_answered = sum(
                1 for c in self.engine.calls() if c.queue == queue and c.state == "connected"
            ) + sum(1 for a in self.engine.agents() if a.wrapup_queue == queue)
            assert live.offered == recomputed.offered + active[queue]
            assert live.answered == recomputed.answered + in_progress_answered
            for name in (
                "abandoned",
                "short_abandoned",
                "overflowed",
                "closed",
                "rejected",
                "failed",
            ):
                assert getattr(live, name) == getattr(recomputed, name), name
            ended = (
                recomputed.answered
                + recomputed.abandoned
                + recomputed.overflowed
                + recomputed.rejected
                + recomputed.failed
            )
            assert ended == recomputed.offered
            assert recomputed.calls == ended + recomputed.closed + recomputed.short_abandoned
            assert all(r.outcome in Outcome for r in mine)


TestEngineMachine = EngineMachine.TestCase
# each example is cheap: run five times the profile's examples, with longer sequences
TestEngineMachine.settings = settings(
    max_examples=settings.default.max_examples * 5, stateful_step_count=80
)

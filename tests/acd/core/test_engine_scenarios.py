"""Scenario tests of the ACD engine: given this configuration and these events, exactly
these commands (and records)."""

from __future__ import annotations

import dataclasses
from typing import Any, get_type_hints

import pytest

import acd.core.engine
from acd.config import Config, PinPolicy
from acd.core import strategies
from acd.core.agents import AgentSession, AgentState, AgentStatus
from acd.core.call_states import TRANSITIONS, CallState
from acd.core.commands import (
    AgentChanged,
    CallEnded,
    CancelRing,
    ClearCall,
    CollectDigits,
    Command,
    LegReleased,
    PinLocked,
    PlayAnnouncement,
    QueueCall,
    QueueChanged,
    Refused,
    RingDevices,
    RouteCall,
    TransferCall,
    VerifyPin,
)
from acd.core.engine import ENDED_UNHEARD, Engine, ReloadRefused
from acd.core.events import (
    Answered,
    CallOffered,
    Cleared,
    Escalate,
    Hook,
    Login,
    Logout,
    MenuChoice,
    NotReady,
    PinChecked,
    Ready,
    RouteFailed,
    SetAgentStatus,
    SwitchCall,
    Tick,
    Transferred,
    WrapUpDone,
)
from acd.core.pins import Pin, hash_pin
from acd.core.records import Outcome, RingOutcome
from acd.runtime import controller
from acd.runtime.bridge import handle_checking_pins

# every call-state move the engine makes is checked against the table
pytestmark = pytest.mark.usefixtures("checked_call_states")


T0 = 1_796_025_600.0  # Monday 2026-11-30 09:00 Europe/Paris
PIN = hash_pin("1234", n=2, r=1, p=1, salt=b"0123456789abcdef")


def site(queues: dict[str, dict], agents: dict[str, Any], **extra: Any) -> Config:
    """A config: ``agents`` maps id → skills dict, or → full agent table."""
    data: dict[str, Any] = {
        "site": {"id": "test", "timezone": "Europe/Paris"},
        "acd": {"display_interval": 0.0, "max_misses": 2, "reasons": {"1": "break"}},
        "queues": {
            qid: {"numbers": [f"{3000 + i}"], "wrapup": 0.0, "welcome": False, **q}
            for i, (qid, q) in enumerate(queues.items())
        },
        "agents": {
            aid: (a if "skills" in a else {"skills": a}) | {"pin_hash": PIN}
            for aid, a in agents.items()
        },
    }
    for key, value in extra.items():
        data[key] = {**data.get(key, {}), **value}
    return Config.from_dict(data)


class Run:
    """An engine plus helpers that keep only what a scenario asserts."""

    def __init__(self, config: Config, login: list[str] | None = None) -> None:
        self.engine = Engine(config, T0)
        self.now = T0
        self.records = []
        self.notes = []
        for i, agent_id in enumerate(login if login is not None else list(config.agents)):
            self(Login(T0 + i * 0.001, f"{200 + i}", agent_id, "1234"))

    def __call__(self, event) -> list[Command]:
        self.now = max(self.now, event.at)
        out = handle_checking_pins(self.engine, event)
        self.records += [o.record for o in out if isinstance(o, CallEnded)]
        self.notes += out
        return [o for o in out if isinstance(o, Command) and type(o).__name__ != "Lamp"]

    def at(self, dt: float) -> float:
        return T0 + dt

    def routes(self, event) -> list[Command]:
        return [o for o in self(event) if isinstance(o, RouteCall | RingDevices | CancelRing)]

    def call(self, dt: float, call_id: int, number: str = "3000") -> list[Command]:
        return self.routes(CallOffered(T0 + dt, call_id, number, "0600000000"))

    def talk(self, dt: float, call_id: int, device: str, length: float = 10.0) -> None:
        self(Answered(T0 + dt, call_id, device))
        self(Cleared(T0 + dt + length, call_id))


# -- strategies ----------------------------------------------------------------------


def test_longest_idle_takes_the_agent_idle_longest():
    run = Run(site({"q": {}}, {"a": {"q": 1}, "b": {"q": 1}, "c": {"q": 1}}))
    assert run.call(1, 1) == [RouteCall(1, "200")]
    run.talk(2, 1, "200")  # a is idle again at 12 s: now the newest
    assert run.call(20, 2) == [RouteCall(2, "201")]
    assert run.call(21, 3) == [RouteCall(3, "202")]
    assert run.call(22, 4) == [RouteCall(4, "200")]


def test_ordered_rings_the_highest_level_first_then_config_order():
    cfg = site({"q": {"strategy": "ordered"}}, {"a": {"q": 1}, "b": {"q": 5}, "c": {"q": 1}})
    run = Run(cfg)
    assert run.call(1, 1) == [RouteCall(1, "201")]
    assert run.call(2, 2) == [RouteCall(2, "200")]
    assert run.call(3, 3) == [RouteCall(3, "202")]


def test_round_robin_remembers_the_last_agent():
    run = Run(site({"q": {"strategy": "round-robin"}}, {"a": {"q": 1}, "b": {"q": 1}}))
    devices = []
    for i in range(4):
        (route,) = run.call(10 * i, i)
        devices.append(route.device)
        run.talk(10 * i + 1, i, route.device, length=1)
    assert devices == ["200", "201", "200", "201"]


@pytest.mark.parametrize(
    ("strategy", "expected"),
    [
        # a takes a 100 s call, then the calls are 1 s long
        ("fewest-calls", ["200", "201", "200", "201"]),  # ties: longest idle
        ("least-talk", ["200", "201", "201", "201"]),
    ],
)
def test_fewest_calls_and_least_talk(strategy, expected):
    run = Run(site({"q": {"strategy": strategy}}, {"a": {"q": 1}, "b": {"q": 1}}))
    devices = []
    for i, (dt, length) in enumerate(((1, 100), (200, 1), (210, 1), (220, 1))):
        (route,) = run.call(dt, i)
        devices.append(route.device)
        run.talk(dt + 1, i, route.device, length=length)
    assert devices == expected


def test_random_is_seeded_and_spreads():
    def picks(seed: int) -> list[str]:
        cfg = site({"q": {"strategy": "random"}}, {x: {"q": 1} for x in "abcd"})
        run = Run(cfg.__class__(**{**cfg.__dict__, "site": cfg.site.__class__(id="t", seed=seed)}))
        out = []
        for i in range(20):
            (route,) = run.call(10 * i, i)
            out.append(route.device)
            run.talk(10 * i + 1, i, route.device, length=1)
        return out

    assert picks(3) == picks(3)
    assert len(set(picks(3))) > 1


def test_weighted_random_prefers_heavy_agents():
    agents = {"a": {"skills": {"q": 1}, "weight": 50}, "b": {"skills": {"q": 1}, "weight": 1}}
    run = Run(site({"q": {"strategy": "weighted-random"}}, agents))
    counts = {"200": 0, "201": 0}
    for i in range(40):
        (route,) = run.call(10 * i, i)
        counts[route.device] += 1
        run.talk(10 * i + 1, i, route.device, length=1)
    assert counts["200"] > 30


@pytest.fixture
def newest_idle():
    """A strategy of the test's own, registered for the test only."""
    yield strategies.register(
        strategies.Strategy("newest-idle", strategies.BY_IDLE, lambda pool: pool.members[-1])
    )
    del strategies.REGISTRY["newest-idle"]


def test_a_registered_strategy_is_configured_by_name_and_routes(newest_idle):
    run = Run(site({"q": {"strategy": "newest-idle"}}, {x: {"q": 1} for x in "abc"}))
    assert run.call(1, 1) == [RouteCall(1, "202")]  # c logged in last
    run.talk(2, 1, "202", length=1)  # c is idle again: the newest
    assert run.call(4, 2) == [RouteCall(2, "202")]
    assert run.call(5, 3) == [RouteCall(3, "201")]


def test_ring_all_rings_every_available_agent_and_cancels_the_others():
    run = Run(site({"q": {"strategy": "ring-all"}}, {x: {"q": 1} for x in "abc"}))
    assert run.call(1, 1) == [RingDevices(1, ("200", "201", "202"))]
    assert run.routes(Answered(run.at(3), 1, "201")) == [CancelRing(1, "200"), CancelRing(1, "202")]
    assert run.call(4, 2) == [RingDevices(2, ("200", "202"))]


def test_ring_progressive_adds_one_extension_per_interval():
    q = {"strategy": "ring-progressive", "progressive_interval": 5.0, "ring_timeout": 30.0}
    run = Run(site({"q": q}, {x: {"q": 1} for x in "abc"}))
    assert run.call(1, 1) == [RingDevices(1, ("200",))]
    assert run.routes(Tick(run.at(6))) == [RingDevices(1, ("201",))]
    assert run.routes(Tick(run.at(11))) == [RingDevices(1, ("202",))]
    assert run.routes(Answered(run.at(12), 1, "202")) == [
        CancelRing(1, "200"),
        CancelRing(1, "201"),
    ]


def test_tiers_widen_with_waiting_time():
    q = {"tiers": [{"min_level": 5}, {"min_level": 1, "after": 30.0}]}
    run = Run(site({"q": q}, {"expert": {"q": 5}, "novice": {"q": 1}}))
    assert run.call(1, 1) == [RouteCall(1, "200")]
    run(Answered(run.at(1.5), 1, "200"))
    assert run.call(2, 2) == []  # the expert is busy, the novice not yet eligible
    assert run.routes(Tick(run.at(31))) == []
    assert run.routes(Tick(run.at(32))) == [RouteCall(2, "201")]


# -- fairness, priorities --------------------------------------------------------------


def test_agent_takes_highest_priority_then_longest_wait_across_queues():
    queues = {"low": {"priority": 1}, "high": {"priority": 5}, "low2": {"priority": 1}}
    run = Run(site(queues, {"a": {"low": 1, "high": 1, "low2": 1}}))
    run.call(0, 1, "3000")
    run(Answered(run.at(1), 1, "200"))
    run.call(10, 2, "3002")  # low2, waits longest
    run.call(20, 3, "3000")  # low
    run.call(30, 4, "3001")  # high, arrives last
    assert run.routes(Cleared(run.at(100), 1)) == [RouteCall(4, "200")]
    run(Answered(run.at(101), 4, "200"))
    assert run.routes(Cleared(run.at(102), 4)) == [RouteCall(2, "200")]


def test_fair_order_serves_longest_wait_at_equal_priority():
    run = Run(site({"x": {}, "y": {}}, {"a": {"x": 1, "y": 1}}))
    run.call(0, 1, "3000")
    run(Answered(run.at(1), 1, "200"))
    run.call(10, 2, "3001")
    run.call(20, 3, "3000")
    assert run.routes(Cleared(run.at(100), 1)) == [RouteCall(2, "200")]


def test_caller_priority_goes_ahead_of_longer_waits():
    run = Run(site({"q": {}}, {"a": {"q": 1}}))
    run.call(0, 1)
    run(Answered(run.at(1), 1, "200"))
    run.call(10, 2)
    run(CallOffered(run.at(20), 3, "3000", "vip", priority=5))
    assert run.routes(Cleared(run.at(30), 1)) == [RouteCall(3, "200")]


# -- ring no answer, wrap-up -------------------------------------------------------------


def test_ring_no_answer_keeps_the_callers_place_and_makes_the_agent_not_ready():
    run = Run(site({"q": {"ring_timeout": 10.0}}, {"a": {"q": 1}}))
    assert run.call(0, 1) == [RouteCall(1, "200")]
    assert run.call(1, 2) == []
    # first miss: cancel, the same caller (first in line) rings again
    assert run.routes(Tick(run.at(10))) == [CancelRing(1, "200"), RouteCall(1, "200")]
    # second miss: the agent goes not ready with reason no-answer (9)
    assert run.routes(Tick(run.at(20))) == [CancelRing(1, "200")]
    last = [n for n in run.notes if isinstance(n, AgentChanged)][-1]
    assert (last.status, last.reason, last.state) == (AgentStatus.NOT_READY, 9, AgentState.IDLE)
    assert run.routes(Ready(run.at(25), "200")) == [RouteCall(1, "200")]
    run(Answered(run.at(26), 1, "200"))
    run(Cleared(run.at(30), 1))
    (record,) = run.records
    assert [r.outcome for r in record.rings] == [
        RingOutcome.NO_ANSWER,
        RingOutcome.NO_ANSWER,
        RingOutcome.ANSWERED,
    ]
    assert record.wait == 26


def test_route_failed_requeues_and_counts_a_miss():
    run = Run(site({"q": {}}, {"a": {"q": 1}, "b": {"q": 1}}))
    assert run.call(0, 1) == [RouteCall(1, "200")]
    assert run.routes(RouteFailed(run.at(1), 1, "200", "busy")) == [RouteCall(1, "201")]
    assert run.routes(RouteFailed(run.at(2), 1, "201", "busy")) == [RouteCall(1, "200")]
    assert run.routes(RouteFailed(run.at(3), 1, "200", "busy")) == [RouteCall(1, "201")]
    assert run.routes(RouteFailed(run.at(4), 1, "201", "busy")) == []  # both not ready


def test_wrapup_per_queue_per_agent_and_early_end():
    agents = {"a": {"skills": {"q": 1}}, "b": {"skills": {"q": 1}, "wrapup": 5.0}}
    run = Run(site({"q": {"wrapup": 60.0}}, agents))
    run.call(0, 1)
    run.call(0, 2)
    run.talk(1, 1, "200")
    run.talk(1, 2, "201")
    assert run.call(12, 3) == []  # both in wrap-up
    assert run.routes(Tick(run.at(16))) == [RouteCall(3, "201")]  # b's 5 s wrap-up
    run.call(17, 4)
    assert run.routes(WrapUpDone(run.at(18), "200")) == [RouteCall(4, "200")]
    a_record = next(r for r in run.records if r.agent_id == "a")
    assert (a_record.talk, a_record.wrapup) == (10, 7)


# -- overflow, closing, menus, escalation ---------------------------------------------------


def test_max_wait_overflows_to_the_busy_announcement():
    run = Run(site({"q": {"max_wait": 60.0}}, {"a": {"q": 1}}), login=[])
    run.call(0, 1)
    assert run(Tick(run.at(60))) == [ClearCall(1, 6)]
    assert run.records[0].outcome is Outcome.OVERFLOWED


def test_max_wait_overflows_to_another_queue_and_to_a_device():
    queues = {"q": {"max_wait": 30.0, "overflow": "queue:backup"}, "backup": {"welcome": True}}
    run = Run(site(queues, {"a": {"backup": 1}}), login=[])
    run.call(0, 1)
    run(Login(run.at(1), "200", "a", "1234"))
    assert run(Tick(run.at(30))) == [QueueCall(1, "backup", 1), RouteCall(1, "200")]
    (first,) = run.records
    assert (first.outcome, first.escalated_to) == (Outcome.OVERFLOWED, "backup")
    run2 = Run(site({"q": {"max_wait": 30.0, "overflow": "device:555"}}, {}), login=[])
    run2.call(0, 1)
    assert run2(Tick(run2.at(30))) == [TransferCall(1, "555")]


def test_max_wait_with_no_agent_logged_in():
    acd = {"login_status": "not_ready"}
    run = Run(site({"q": {"max_wait_no_agent": 10.0}}, {"a": {"q": 1}}, acd=acd), login=[])
    run.call(0, 1)
    run(Login(run.at(5), "200", "a", "1234"))
    assert run(Tick(run.at(20))) == []  # an agent is logged in: no overflow
    run(Logout(run.at(21), "200"))
    run.call(22, 3)
    assert run(Tick(run.at(32))) == [ClearCall(3, 6)]
    assert [r.call_id for r in run.records] == [3]


def test_max_length_rejects():
    run = Run(site({"q": {"max_length": 1}}, {}), login=[])
    run.call(0, 1)
    assert run(CallOffered(run.at(1), 2, "3000", "x")) == [ClearCall(2, 6)]
    assert run.records[0].outcome is Outcome.REJECTED


def test_closed_hours_get_the_closed_announcement():
    calendars = {"main": {"hours": {"mon": "08:00-19:00"}, "holidays": "FR"}}
    cfg = site({"q": {"calendar": "main"}}, {"a": {"q": 1}}, calendars=calendars)
    run = Run(cfg)
    assert run.call(60, 3) == [RouteCall(3, "200")]
    run.talk(61, 3, "200")
    assert run(CallOffered(T0 + 11 * 3600, 1, "3000", "x")) == [ClearCall(1, 5)]  # 20:00
    assert run(CallOffered(T0 + 86400, 2, "3000", "x")) == [ClearCall(2, 5)]  # Tuesday
    closed = [r.outcome for r in run.records if r.call_id != 3]
    assert closed == [Outcome.CLOSED, Outcome.CLOSED]


def test_menu_choice_and_timeout():
    menus = {"3900": {"announcement": 7, "choices": {"1": "x", "2": "y"}, "default": "x"}}
    run = Run(site({"x": {}, "y": {}}, {"a": {"y": 1}}, menus=menus))
    assert run(CallOffered(run.at(0), 1, "3900", "c")) == [CollectDigits(1, 7)]
    assert run(MenuChoice(run.at(2), 1, "2")) == [QueueCall(1, "y", 0), RouteCall(1, "200")]
    run(CallOffered(run.at(3), 2, "3900", "c"))
    assert run(Tick(run.at(13))) == [QueueCall(2, "x", 0)]


def test_escalation_to_a_specialist_group_makes_a_second_leg():
    queues = {"desk": {}, "civil": {"welcome": True}}
    run = Run(site(queues, {"a": {"desk": 1}, "s": {"civil": 1}}))
    run.call(0, 1)
    run(Answered(run.at(1), 1, "200"))
    assert run(Escalate(run.at(30), "200", 1, "civil")) == [
        QueueCall(1, "civil", 1),
        RouteCall(1, "201"),
    ]
    run(Answered(run.at(35), 1, "201"))
    run(Transferred(run.at(50), 1, "201", "9999"))
    desk, civil = run.records
    assert (desk.outcome, desk.escalated_to, desk.talk) == (Outcome.ANSWERED, "civil", 29)
    assert (civil.leg, civil.escalated_from, civil.transferred_to) == (2, "desk", "9999")
    assert civil.wait == 5


def test_periodic_announcements_give_position_and_estimated_wait():
    q = {"periodic": 30.0, "announce_position": True, "announce_wait": True}
    run = Run(site({"q": q}, {}), login=[])
    run.call(0, 1)
    run.call(10, 2)
    assert run(Tick(run.at(40))) == [
        PlayAnnouncement(1, 2, 1),
        PlayAnnouncement(1, 3, 180),
        PlayAnnouncement(1, 4, 0),
        PlayAnnouncement(2, 2, 2),
        PlayAnnouncement(2, 3, 360),
        PlayAnnouncement(2, 4, 0),
    ]


def test_abandons_in_queue_and_while_ringing():
    run = Run(site({"q": {}}, {"a": {"q": 1}}))
    run.call(0, 1)
    run.call(1, 2)
    assert run(Cleared(run.at(3), 2)) == []  # in queue, after 2 s: a short abandon
    assert run(Cleared(run.at(4), 1)) == []  # while ringing: the switch stops the ring
    short, ringing = run.records
    assert (short.outcome, short.abandoned_ringing) == (Outcome.ABANDONED, False)
    assert (ringing.outcome, ringing.abandoned_ringing) == (Outcome.ABANDONED, True)
    assert ringing.rings[0].outcome is RingOutcome.ABANDONED
    figures = run.engine.queue_figures("q")
    assert (figures.offered, figures.abandoned, figures.short_abandoned) == (0, 0, 2)


def test_off_hook_agents_are_not_offered_calls():
    run = Run(site({"q": {}}, {"a": {"q": 1}}))
    run(Hook(run.at(0), "200", True))
    assert run.call(1, 1) == []
    assert run.routes(Hook(run.at(2), "200", False)) == [RouteCall(1, "200")]


# -- agents ---------------------------------------------------------------------------------


def test_login_checks_the_pin_and_counts_wrong_ones():
    run = Run(site({"q": {}}, {"a": {"q": 1}}), login=[])
    out = handle_checking_pins(run.engine, Login(T0, "200", "a", "9999"))
    assert any(isinstance(o, Refused) and o.reason == "wrong PIN" for o in out)
    assert run.engine.wrong_pins("a") == 1
    out = run.engine.handle(Login(T0, "200", "zz", "1234"))
    assert any(isinstance(o, Refused) and o.reason == "unknown agent" for o in out)
    run(Login(T0 + 1, "200", "a", "1234"))
    out = handle_checking_pins(run.engine, Login(T0 + 2, "201", "b", "1234"))
    assert isinstance(out[0], Refused)


def test_logout_refused_on_a_call_and_moves_desks_when_idle():
    run = Run(site({"q": {}}, {"a": {"q": 1}}))
    run.call(0, 1)
    run(Answered(run.at(1), 1, "200"))
    out = run.engine.handle(Logout(run.at(2), "200"))
    assert [o.reason for o in out if isinstance(o, Refused)] == ["on a call"]
    run(Cleared(run.at(3), 1))
    run(Login(run.at(4), "250", "a", "1234"))  # moves to another desk
    assert [s.device for s in run.engine.export_sessions()] == ["250"]


def test_not_ready_reason_must_be_configured_and_supervisor_can_set_status():
    run = Run(site({"q": {}}, {"a": {"q": 1}}))
    out = run.engine.handle(NotReady(run.at(1), "200", 42))
    assert [o.reason for o in out if isinstance(o, Refused)] == [
        "unknown reason code 42 (known: 0, 1 break, 9 no-answer)"
    ]
    # a supervisor
    out = run.engine.handle(SetAgentStatus(run.at(2), "a", AgentStatus.NOT_READY, 5))
    assert [o.reason for o in out if isinstance(o, Refused)] == [
        "unknown reason code 5 (known: 0, 1 break, 9 no-answer)"
    ]
    run(SetAgentStatus(run.at(2), "a", AgentStatus.NOT_READY, 1))
    assert run.call(3, 1) == []
    assert run.routes(SetAgentStatus(run.at(4), "a", AgentStatus.READY)) == [RouteCall(1, "200")]


def test_supervisor_commands_carry_an_agent_status_not_a_string():
    assert get_type_hints(SetAgentStatus)["status"] is AgentStatus
    assert all(type(status) is AgentStatus for status in controller._ACTIONS.values())


def test_sessions_survive_a_restart():
    cfg = site({"q": {}}, {"a": {"q": 1}, "b": {"q": 1}})
    run = Run(cfg)
    run(NotReady(run.at(1), "201", 1))
    sessions = [AgentSession.from_dict(s.to_dict()) for s in run.engine.export_sessions()]
    fresh = Engine(cfg, T0 + 10)
    fresh.import_sessions(T0 + 10, sessions)
    assert fresh.export_sessions() == run.engine.export_sessions()
    out = fresh.handle(CallOffered(T0 + 11, 1, "3000", "x"))
    assert RouteCall(1, "200") in out


def test_reconcile_after_a_link_loss():
    run = Run(site({"q": {}}, {"a": {"q": 1}, "b": {"q": 1}}))
    run.call(0, 1)  # rings a
    run.call(0, 2)  # rings b
    run(Answered(run.at(1), 2, "201"))
    run.call(2, 3)  # waits
    out = run.engine.reconcile(run.at(30), {2: "201"})  # the switch lost calls 1 and 3
    ended = {o.record.call_id: o.record.outcome for o in out if isinstance(o, CallEnded)}
    assert ended == {1: Outcome.FAILED, 3: Outcome.FAILED}
    assert run.call(31, 4) == [RouteCall(4, "200")]


# -- late answers, adopted calls ----------------------------------------------------------


def last_state(run: Run, agent_id: str) -> AgentChanged:
    return [n for n in run.notes if isinstance(n, AgentChanged) and n.agent_id == agent_id][-1]


def test_late_answer_while_the_call_rings_elsewhere_is_taken():
    run = Run(site({"q": {"ring_timeout": 10.0}}, {"a": {"q": 1}, "b": {"q": 1}}))
    assert run.call(1, 1) == [RouteCall(1, "200")]
    assert run.routes(Tick(run.at(11))) == [CancelRing(1, "200"), RouteCall(1, "201")]
    # the switch had connected a before the cancel reached it
    assert run.routes(Answered(run.at(11.2), 1, "200")) == [CancelRing(1, "201")]
    assert last_state(run, "a").state is AgentState.ON_CALL
    assert last_state(run, "b").state is AgentState.IDLE
    assert run.call(12, 2) == [RouteCall(2, "201")]  # b is free again
    run(Cleared(run.at(40), 1))
    (record,) = run.records
    assert (record.outcome, record.agent_id, record.answered_at) == (
        Outcome.ANSWERED,
        "a",
        run.at(11.2),
    )
    assert [(r.agent_id, r.ended, r.outcome) for r in record.rings] == [
        ("a", run.at(11.2), RingOutcome.ANSWERED),
        ("b", run.at(11.2), RingOutcome.CANCELLED),
    ]
    assert run.engine.queue_figures("q").answered == 2 - 1  # call 2 not answered yet


def test_late_answer_of_a_waiting_call_undoes_the_miss_that_made_the_agent_not_ready():
    cfg = site({"q": {"ring_timeout": 10.0}}, {"a": {"q": 1}}, acd={"max_misses": 1})
    run = Run(cfg)
    run.call(1, 1)
    assert run.routes(Tick(run.at(11))) == [CancelRing(1, "200")]
    assert (last_state(run, "a").status, last_state(run, "a").reason) == (
        AgentStatus.NOT_READY,
        9,
    )
    assert run(Answered(run.at(11.5), 1, "200")) == []
    note = last_state(run, "a")
    assert (note.status, note.state, note.call_id) == (AgentStatus.READY, AgentState.ON_CALL, 1)
    assert run.engine.queue_figures("q").waiting == 0
    run(Cleared(run.at(20), 1))
    assert [r.outcome for r in run.records[0].rings] == [RingOutcome.ANSWERED]
    assert run.call(21, 2) == [RouteCall(2, "200")]  # ready again, not stuck not-ready


def test_late_answer_cancels_the_agents_ring_for_another_call():
    queues = {"q": {"ring_timeout": 10.0}, "vip": {"priority": 5}}
    run = Run(site(queues, {"a": {"q": 1, "vip": 1}}))
    run.call(1, 1, "3000")
    run.call(2, 2, "3001")  # waits, higher priority
    assert run.routes(Tick(run.at(11))) == [CancelRing(1, "200"), RouteCall(2, "200")]
    assert run.routes(Answered(run.at(11.3), 1, "200")) == [CancelRing(2, "200")]
    assert run.engine.queue_figures("vip").waiting == 1  # call 2 back in its place
    assert run.routes(Cleared(run.at(30), 1)) == [RouteCall(2, "200")]


def test_late_answers_that_cannot_be_taken_are_refused():
    run = Run(site({"q": {"ring_timeout": 10.0}}, {"a": {"q": 1}, "b": {"q": 1}}))
    run.call(1, 1)  # rings a
    run.call(1, 2)  # rings b
    run(Answered(run.at(2), 2, "201"))
    for event in (
        Answered(run.at(3), 1, "201"),  # b never rang for call 1 (and is on call 2)
        Answered(run.at(3), 1, "299"),  # nobody there
    ):
        (refused,) = run.engine.handle(event)
        assert isinstance(refused, Refused)
    run(Tick(run.at(11)))  # a misses call 1, which rings a again
    run(Answered(run.at(12), 1, "200"))
    run(Cleared(run.at(13), 1))
    assert isinstance(run.engine.handle(Answered(run.at(14), 1, "200"))[0], Refused)


def restarted(cfg: Config, at: float) -> Run:
    """A fresh engine with a and b logged back in at 200 and 201."""
    run = Run(cfg, login=[])
    run.engine = Engine(cfg, at)
    run.now = at
    sessions = [AgentSession(a, f"{200 + i}", AgentStatus.READY, 0, T0) for i, a in enumerate("ab")]
    run.notes += run.engine.import_sessions(at, sessions)
    return run


def test_reconcile_adopts_a_call_connected_before_a_restart():
    cfg = site({"q": {"wrapup": 5.0}}, {"a": {"q": 1}, "b": {"q": 1}})
    run = restarted(cfg, T0 + 100)
    out = run.engine.reconcile(
        T0 + 100, {7: SwitchCall("200", connected=True, caller="0611", dialled="3000")}
    )
    run.notes += out
    assert not [o for o in out if isinstance(o, Refused)]
    note = last_state(run, "a")
    assert (note.state, note.call_id) == (AgentState.ON_CALL, 7)
    assert run.call(101, 8) == [RouteCall(8, "201")]  # a is busy
    run(Answered(run.at(102), 8, "201"))
    assert run.call(103, 9) == []
    # the adopted call clears: a wraps up, then takes the waiting caller
    assert run.routes(Cleared(run.at(160), 7)) == []
    assert last_state(run, "a").state is AgentState.WRAP_UP
    assert run.routes(Tick(run.at(165))) == [RouteCall(9, "200")]
    (record,) = run.records
    assert (record.call_id, record.queue, record.agent_id, record.device) == (7, "q", "a", "200")
    assert (record.outcome, record.reason) == (Outcome.ANSWERED, "adopted after restart")
    assert (record.answered_at, record.released_at, record.wrapup_end) == (
        T0 + 100,
        run.at(160),
        run.at(165),
    )
    assert (record.caller, record.dialled) == ("0611", "3000")
    figures = run.engine.queue_figures("q")
    assert (figures.offered, figures.answered) == (3, 2)


def test_adopted_call_goes_to_the_given_queue_the_dialled_one_or_the_agents_first():
    cfg = site({"x": {}, "y": {}, "z": {}}, {"a": {"y": 1, "z": 1}, "b": {"x": 1, "y": 1}})

    def adopted_into(device: str, **where) -> str:
        run = restarted(cfg, T0)
        out = run.engine.reconcile(T0, {1: SwitchCall(device, connected=True, **where)})
        run(Cleared(T0 + 5, 1))
        assert not [o for o in out if isinstance(o, Refused)]
        return run.records[0].queue

    assert adopted_into("200", queue="z") == "z"
    assert adopted_into("201", dialled="3001") == "y"  # the dialled number's queue
    assert adopted_into("200", dialled="3000") == "y"  # a does not serve x: its first
    assert adopted_into("201", dialled="999") == "x"


def test_reconcile_refuses_what_it_cannot_adopt_and_answers_a_lost_answer():
    run = Run(site({"q": {}}, {"a": {"q": 1}, "b": {"q": 1}}))
    run.call(0, 1)  # rings a
    run(Answered(run.at(1), 1, "200"))
    run.call(2, 2)  # rings b
    out = run.engine.reconcile(
        run.at(3),
        {
            1: "200",
            2: SwitchCall("201", connected=True),  # b answered while the link was down
            5: SwitchCall("200", connected=True),  # a is on call 1
            6: SwitchCall("299", connected=True),  # nobody logged in there
            7: "201",  # an unknown call in the old form: not adopted
        },
    )
    refused = [o.event for o in out if isinstance(o, Refused)]
    assert refused == [SwitchCall("200", connected=True), SwitchCall("299", connected=True)]
    assert {c.call_id for c in run.engine.calls()} == {1, 2}
    assert run.engine.queue_figures("q").answered == 2
    run(Cleared(run.at(9), 2))
    assert [r.outcome for r in run.records[0].rings] == [RingOutcome.ANSWERED]


@pytest.mark.parametrize(
    "event",
    [
        Answered(T0, 99, "200"),
        Cleared(T0, 99),
        RouteFailed(T0, 99, "200"),
        MenuChoice(T0, 99, "1"),
        Ready(T0, "999"),
        WrapUpDone(T0, "200"),
        Escalate(T0, "200", 99, "q"),
        CallOffered(T0, 5, "1234", "x"),
    ],
)
def test_nonsense_is_refused_with_a_reason(event):
    run = Run(site({"q": {}}, {"a": {"q": 1}}))
    out = run.engine.handle(event)
    assert len(out) >= 1 and isinstance(out[0], Refused) and out[0].reason


def test_queue_notes_can_be_left_out_and_figures_still_answer():
    cfg = site({"q": {}}, {"a": {"q": 1}})
    quiet = Engine(cfg, T0, queue_notes=False)
    out = handle_checking_pins(quiet, Login(T0, "200", "a", "1234"))
    out += quiet.handle(CallOffered(T0 + 1, 1, "3000", "x"))
    out += quiet.handle(Answered(T0 + 2, 1, "200"))
    assert RouteCall(1, "200") in out
    assert not [o for o in out if type(o).__name__ == "QueueChanged"]
    figures = quiet.queue_figures("q")
    assert (figures.offered, figures.answered, figures.agents_logged_in) == (1, 1, 1)


def test_agent_notes_can_be_left_out_and_agent_states_still_answer():
    cfg = site({"q": {}}, {"a": {"q": 1}})
    quiet = Engine(cfg, T0, agent_notes=False)
    out = handle_checking_pins(quiet, Login(T0, "200", "a", "1234"))
    out += quiet.handle(CallOffered(T0 + 1, 1, "3000", "x"))
    out += quiet.handle(Answered(T0 + 2, 1, "200"))
    assert RouteCall(1, "200") in out
    assert not [o for o in out if isinstance(o, AgentChanged)]
    (state,) = quiet.agent_states()
    assert (state.state, state.call_id, state.since) == (AgentState.ON_CALL, 1, T0 + 2)


def test_the_engine_asks_the_runtime_to_check_a_pin_and_never_hashes(monkeypatch):
    import hashlib

    run = Run(site({"q": {}}, {"a": {"q": 1}}), login=[])
    monkeypatch.setattr(hashlib, "scrypt", lambda *a, **k: pytest.fail("hashed in the engine"))
    out = run.engine.handle(Login(T0, "200", "a", Pin("1234")))
    (check,) = [o for o in out if isinstance(o, VerifyPin)]
    assert (check.agent_id, check.pin_hash) == ("a", PIN) and check.pin.reveal() == "1234"
    assert "1234" not in repr(out) and run.engine.agent_states()[0].device is None
    again = run.engine.handle(Login(T0 + 0.01, "200", "a", "1234"))
    assert [o.reason for o in again if isinstance(o, Refused)] == ["a PIN check is in progress"]
    run.engine.handle(PinChecked(T0 + 0.03, check.check, True))
    assert run.engine.agent_states()[0].device == "200"


def test_wrong_pins_lock_for_a_doubling_time_and_short_pins_cost_no_hash():
    cfg = site({"q": {}}, {"a": {"q": 1}})
    run = Run(dataclasses.replace(cfg, pins=PinPolicy(attempts=3, lockout=60.0)), login=[])

    def key(at: float, pin: str) -> list:
        return handle_checking_pins(run.engine, Login(at, "200", "a", pin))

    assert not [
        o for o in run.engine.handle(Login(T0, "200", "a", "123")) if isinstance(o, VerifyPin)
    ]
    locked = [o for o in key(T0 + 1, "9999") + key(T0 + 2, "0000") if isinstance(o, PinLocked)]
    assert locked == [PinLocked(T0 + 2, "a", "200", 3, T0 + 62)]  # the short one counted
    out = run.engine.handle(Login(T0 + 30, "200", "a", "1234"))  # the right PIN, but locked
    assert [o.reason for o in out if isinstance(o, Refused)] == ["PIN locked for 32 s"]
    assert not [o for o in out if isinstance(o, VerifyPin)]
    for i in range(3):
        out = key(T0 + 70 + i, "9999")
    assert [o.until for o in out if isinstance(o, PinLocked)] == [T0 + 72 + 120]  # doubled
    key(T0 + 300, "1234")
    assert run.engine.agent_states()[0].device == "200" and run.engine.wrong_pins("a") == 6


# -- reload (SIGHUP): a new configuration applied to live state ----------------------

RELOAD_QUEUES = {"q": {"ring_timeout": 15.0}, "r": {}}
RELOAD_AGENTS = {"a": {"q": 1}, "b": {"r": 1}, "c": {"r": 1}}


def _states(run: Run) -> dict[str, tuple]:
    return {n.agent_id: (n.status, n.state, n.device, n.call_id) for n in run.engine.agent_states()}


def test_reload_changes_skills_agents_queues_in_place_and_keeps_calls_and_sessions():
    run = Run(site(RELOAD_QUEUES, RELOAD_AGENTS))
    assert run.call(1, 1) == [RouteCall(1, "200")]
    run(Answered(run.at(2), 1, "200"))
    assert run.call(3, 2) == []  # waits: a is busy, b and c serve r only
    new = site(
        {"q": {"ring_timeout": 30.0}, "r": {}, "s": {}},
        {"a": {"q": 1}, "b": {"q": 1, "r": 1}, "c": {"r": 1}, "d": {"q": 1}},
    )
    out = run.engine.reload(new, run.at(4))
    # b now serves q and takes the waiting caller at once; d is known, logged out
    assert RouteCall(2, "201") in out
    assert (
        AgentChanged(run.at(4), "d", None, AgentStatus.LOGGED_OUT, 0, AgentState.IDLE, None, 0.0)
        in out
    )
    figures = {n.figures.queue: n.figures for n in out if isinstance(n, QueueChanged)}
    assert figures["q"].agents_logged_in == 2 and figures["s"].agents_logged_in == 0
    assert _states(run)["a"] == (AgentStatus.READY, AgentState.ON_CALL, "200", 1)
    run.talk(5, 2, "201", length=1)
    run(Cleared(run.at(60), 1))  # the call in progress ends as usual, recorded
    assert [(r.call_id, r.outcome, r.agent_id) for r in run.records] == [
        (2, Outcome.ANSWERED, "b"),
        (1, Outcome.ANSWERED, "a"),
    ]
    # the new queue's number is served; the new ring timeout applies to the next ring
    assert not [
        o for o in run(CallOffered(run.at(61), 3, "3002", "0600")) if isinstance(o, Refused)
    ]
    run(Login(run.at(62), "203", "d", "1234"))
    assert run.call(70, 4) == [RouteCall(4, "201")]  # b: idle longest
    assert CancelRing(4, "201") not in run(Tick(run.at(70 + 16)))
    assert CancelRing(4, "201") in run(Tick(run.at(70 + 31)))


def test_a_reload_the_live_state_forbids_is_refused_and_changes_nothing():
    run = Run(site(RELOAD_QUEUES, RELOAD_AGENTS))
    assert run.call(1, 1) == [RouteCall(1, "200")]
    before = _states(run)
    for config, message in (
        (site(RELOAD_QUEUES, {"b": {"r": 1}, "c": {"r": 1}}), "agent a is logged in"),
        (site({"r": {}}, RELOAD_AGENTS | {"a": {"r": 1}}), r"queue q has 1 call\(s\) in progress"),
    ):
        with pytest.raises(ReloadRefused, match=message):
            run.engine.reload(config, run.at(2))
        assert _states(run) == before
    run(Answered(run.at(3), 1, "200"))
    run(Cleared(run.at(9), 1))
    assert [r.outcome for r in run.records] == [Outcome.ANSWERED]
    # once the queue is empty (and a's skill moved) it can go
    out = run.engine.reload(site({"r": {}}, {"a": {"r": 1}, "b": {"r": 1}, "c": {}}), run.at(10))
    assert not [o for o in out if isinstance(o, Refused)]
    assert run.call(11, 2, "3000") == [RouteCall(2, "201")]  # r's number now (first queue)
    assert run.engine.queue_figures("r").agents_logged_in == 2
    assert run.now > T0


# -- records at release, legs across restarts -------------------------------------------


def test_an_answered_leg_is_out_at_its_release_and_complete_after_its_wrapup():
    run = Run(site({"q": {"wrapup": 60.0}, "r": {}}, {"a": {"q": 1, "r": 1}}))
    run.call(0, 1)
    run.talk(1, 1, "200", length=19.0)
    (released,) = [n.record for n in run.notes if isinstance(n, LegReleased)]
    assert (released.outcome, released.released_at, released.wrapup_end) == (
        Outcome.ANSWERED,
        run.at(20),
        None,
    )
    assert run.records == []  # the wrap-up runs: the final record waits for it
    (cut,) = run.engine.wrapups_in_progress(run.at(50), "stopped")
    assert cut == dataclasses.replace(released, wrapup_end=run.at(50), reason="stopped")
    run(Tick(run.at(80)))
    assert run.records == [dataclasses.replace(released, wrapup_end=run.at(80))]
    assert run.engine.wrapups_in_progress(run.at(90), "stopped") == []
    run.call(100, 2, "3001")  # queue r has no wrap-up: nothing to store before the end
    run.talk(101, 2, "200")
    assert len([n for n in run.notes if isinstance(n, LegReleased)]) == 1
    assert run.records[-1].wrapup == 0
    quiet = Run(site({"q": {"wrapup": 60.0}}, {"a": {"q": 1}}))
    quiet.engine = Engine(quiet.engine.config, T0, release_notes=False)  # a what-if run
    quiet(Login(T0, "200", "a", "1234"))
    quiet.call(1, 1)
    quiet.talk(2, 1, "200")
    quiet(Tick(quiet.at(100)))
    assert not [n for n in quiet.notes if isinstance(n, LegReleased)]
    assert quiet.records[0].wrapup == 60


def test_a_restart_continues_each_call_s_leg_its_number_arrival_queue_and_times():
    queues = {"desk": {"wrapup": 30.0}, "civil": {}}
    cfg = site(queues, {"a": {"desk": 1}, "s": {"civil": 1}, "b": {"desk": 1}})
    run = Run(cfg)
    run.engine.continue_legs([])  # track the legs in progress
    run.call(0.5, 1)  # a answers, escalates it to civil, where s answers
    run(Answered(run.at(1), 1, "200"))
    run.call(2, 3)  # b answers, escalates it to civil, where it waits (s is busy)
    run(Answered(run.at(3), 3, "202"))
    run(Escalate(run.at(30), "200", 1, "civil"))
    run(Answered(run.at(35), 1, "201"))
    run(Escalate(run.at(40), "202", 3, "civil"))
    run.call(41, 4)  # a caller waiting at the desk: the controller then dies
    saved = run.engine.drain_legs()
    assert {c: (leg.leg, leg.queue) for c, leg in saved.items()} == {
        1: (2, "civil"),
        3: (2, "civil"),
        4: (1, "desk"),
    }
    assert run.engine.drain_legs() == {}  # only what changed since

    fresh = Run(cfg, login=[])
    fresh.engine = Engine(cfg, T0 + 100)
    sessions = [
        AgentSession(a, f"{200 + i}", AgentStatus.READY, 0, T0) for i, a in enumerate("asb")
    ]
    fresh.engine.import_sessions(T0 + 100, sessions)
    gone = dataclasses.replace(saved[4], call_id=9)  # a call that ended meanwhile
    fresh.engine.continue_legs([*saved.values(), gone])
    switch = {1: SwitchCall("201", connected=True, caller="0611", dialled="3000"), 3: "", 4: ""}
    fresh.notes += fresh.engine.reconcile(T0 + 100, switch)
    fresh.records += [o.record for o in fresh.notes if isinstance(o, CallEnded)]
    assert [o for o in fresh.notes if isinstance(o, Refused)] == []
    fresh(CallOffered(T0 + 100, 3, "3000", "0622"))  # unanswered: offered again
    fresh(CallOffered(T0 + 100, 4, "3000", "0633"))
    fresh(Cleared(T0 + 150, 1))
    fresh(Cleared(T0 + 151, 3))
    fresh(Cleared(T0 + 152, 4))
    legs = {r.call_id: r for r in fresh.records}
    one, three, four = legs[1], legs[3], legs[4]
    assert (one.leg, one.queue, one.escalated_from) == (2, "civil", "desk")
    assert (one.arrived_at, one.queued_at, one.answered_at) == (T0 + 0.5, T0 + 30, T0 + 35)
    assert (one.agent_id, one.released_at, one.reason) == ("s", T0 + 150, "adopted after restart")
    assert (three.leg, three.queue, three.escalated_from, three.outcome) == (
        2,
        "civil",
        "desk",
        Outcome.ABANDONED,
    )
    assert (three.arrived_at, three.queued_at, three.wait) == (T0 + 2, T0 + 40, 111)
    assert (four.leg, four.queue, four.arrived_at, four.queued_at) == (1, "desk", T0 + 41, T0 + 41)
    # call 9 ended while no controller ran: recorded as such, not forgotten
    gone_record = legs[9]
    assert (gone_record.leg, gone_record.queue, gone_record.outcome) == (1, "desk", Outcome.FAILED)
    assert (gone_record.arrived_at, gone_record.reason) == (T0 + 41, ENDED_UNHEARD)
    # every saved leg is to be deleted: ended here, or gone while the controller was down
    assert fresh.engine.drain_legs() == dict.fromkeys([1, 3, 4, 9])


# -- call states ----------------------------------------------------------------------


def test_an_edge_out_of_the_table_is_caught(checked_call_states):
    call = acd.core.engine._Call(1, "0600", "3000", 1, T0)
    with pytest.raises(AssertionError, match="new -> ringing is not in the table"):
        call.state = CallState.RINGING


def test_scenarios_take_every_edge_of_the_table_and_no_other(checked_call_states):
    config = site(
        {"q": {"ring_timeout": 5.0}, "r": {}},
        {"a": {"q": 1}},
        menus={"3900": {"announcement": 9, "choices": {"1": "q"}, "default": "q"}},
    )
    run = Run(config)  # a at 200
    run(CallOffered(run.at(1), 1, "3900", "0600"))  # new -> menu
    run(MenuChoice(run.at(2), 1, "1"))  # menu -> waiting -> ringing (a)
    run(Answered(run.at(3), 1, "200"))  # ringing -> connected
    run(Cleared(run.at(4), 1))  # connected -> ended
    run(CallOffered(run.at(5), 2, "3900", "0600"))
    run(Cleared(run.at(6), 2))  # menu -> ended
    run(CallOffered(run.at(7), 3, "3001", "0600"))  # nobody serves r
    run(Cleared(run.at(8), 3))  # waiting -> ended
    run(CallOffered(run.at(9), 4, "3000", "0600"))
    run(Cleared(run.at(10), 4))  # ringing -> ended
    run(CallOffered(run.at(11), 5, "3000", "0600"))
    run(NotReady(run.at(12), "200", 1))  # still rung
    run(Tick(run.at(17)))  # ring timeout: ringing -> waiting
    run(Answered(run.at(18), 5, "200"))  # late answer: waiting -> connected
    run(Cleared(run.at(19), 5))
    run.engine.reconcile(run.at(20), {8: SwitchCall("200", connected=True, queue="q")})
    assert [c.state for c in run.engine.calls()] == [CallState.CONNECTED]  # new -> connected
    assert checked_call_states == set(TRANSITIONS)

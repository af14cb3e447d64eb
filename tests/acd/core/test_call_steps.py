"""Call steps told from the engine alone: no bridge, no wire protocol (any driver's)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from acd.config import load_config
from acd.core import events as ev
from acd.core.calendar import midnight
from acd.core.call_steps import CallStep, CallSteps, StepKind
from acd.core.commands import CallEnded, RouteCall
from acd.core.engine import Engine
from acd.core.pins import Pin
from acd.runtime.bridge import handle_checking_pins

ROOT = Path(__file__).resolve().parents[3]
T0 = midnight(dt.date(2026, 3, 10), "Europe/Paris") + 9 * 3600.0  # a Tuesday, 09:00


def feed(engine: Engine, steps: CallSteps, event: ev.Event) -> list:
    return steps.after(event, handle_checking_pins(engine, event), event.at)


def test_steps_of_an_answered_call_in_order_among_the_engine_outputs():
    engine, steps = Engine(load_config(ROOT / "examples" / "town-hall.toml"), T0), CallSteps()
    feed(engine, steps, ev.Login(T0, "201", "1001", Pin("1111")))
    feed(engine, steps, ev.Ready(T0, "201"))
    offered = feed(engine, steps, ev.CallOffered(T0 + 1, 5, "3000", "0611"))
    kinds = [o.event if type(o) is CallStep else type(o).__name__ for o in offered]
    assert kinds[0] == StepKind.OFFERED
    ring = kinds.index(StepKind.RINGING)
    assert kinds[ring + 1] == "RouteCall"  # each command's step just before it
    assert StepKind.QUEUED in kinds[:ring]
    (ringing,) = [o for o in offered if type(o) is CallStep and o.event is StepKind.RINGING]
    assert (ringing.agent_id, ringing.device, ringing.caller, ringing.offered_at) == (
        "1001",
        "201",
        "0611",
        T0 + 1,
    )
    answered = feed(engine, steps, ev.Answered(T0 + 4, 5, "201"))
    assert [(o.event, o.agent_id) for o in answered if type(o) is CallStep] == [
        (StepKind.ANSWERED, "1001")
    ]
    feed(engine, steps, ev.Cleared(T0 + 60, 5, ""))
    assert steps.calls == {5}  # in wrap-up: its record (the leg's end) is not out yet
    done = steps.after(None, engine.advance(T0 + 600), T0 + 600)
    assert any(type(o) is CallEnded for o in done) and steps.calls == frozenset()


def test_refused_events_are_no_steps_and_outputs_without_steps_are_kept_as_they_are():
    engine, steps = Engine(load_config(ROOT / "examples" / "town-hall.toml"), T0), CallSteps()
    assert feed(engine, steps, ev.Answered(T0, 99, "202")) == engine.handle(
        ev.Answered(T0, 99, "202")
    )
    outputs = [RouteCall(7, "201")]
    (step, route) = steps.after(None, outputs, T0)
    assert (step.event, step.caller, step.offered_at, route) == (
        StepKind.RINGING,
        None,
        T0,
        outputs[0],
    )
    nothing: list = []
    assert steps.after(ev.Tick(T0), nothing, T0) is nothing

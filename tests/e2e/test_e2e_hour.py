"""An hour of the reference site over a real pty, in scaled time: the simulated switch
in a thread, the controller in the test's event loop, records in SQLite, state on the
real Mosquitto."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter

import aiomqtt
import pytest

from acd.core.figures import compute
from acd.runtime.controller import Controller
from acd.runtime.store_sqlite import SqliteStore as CallStore

BROKER = ("127.0.0.1", 1883)

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


async def collect(config, topic: str, into: list[dict], subscribed: asyncio.Event) -> None:
    """Append every payload published on ``<prefix>/<site>/<topic>`` to ``into``."""
    name = f"{config.mqtt.prefix}/{config.site.id}/{topic}"
    async with aiomqtt.Client(*BROKER, identifier=f"t-{uuid.uuid4().hex[:8]}") as client:
        await client.subscribe(name, qos=1)
        subscribed.set()
        async for message in client.messages:
            into.append(json.loads(message.payload))


async def run_hour(kit, sim, config):
    """Run the controller until the simulated run is over and every call has ended;
    the call events published meanwhile are collected."""
    events: list[dict] = []
    subscribed = asyncio.Event()
    collector = asyncio.create_task(collect(config, "event/call", events, subscribed))
    await asyncio.wait_for(subscribed.wait(), 10)
    store = CallStore(config.store.path)
    controller = Controller(config, store=store, clock=sim.engine_clock())
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    try:
        await kit.wait_until(lambda: kit.calls_over(sim), 60, "every call to end")
        await kit.wait_until(
            lambda: sum(controller.engine.active_legs().values()) == 0, 10, "every call to end"
        )
        await asyncio.sleep(0.5)  # the last rate-limited figures reach the broker
        agents, stats, alarms, status = await asyncio.gather(  # each read waits for quiet
            kit.settled_agents(config, controller),
            kit.retained(config, "queue/+/stats"),
            kit.retained(config, "alarm/+"),
            kit.retained(config, "controller/status"),
        )
        status = json.loads(status["controller/status"])
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        collector.cancel()
    return controller, store, agents, stats, alarms, status, events


def test_an_hour_every_call_one_record_mqtt_equals_engine_and_database(
    broker, kit, sim_thread, tmp_path
):
    sim = sim_thread(kit.hour_scenario(volume=40, speed=700))
    config = kit.site_config(tmp_path, sim.url)
    controller, store, agents, stats, alarms, status, events = asyncio.run(
        run_hour(kit, sim, config)
    )

    offered = kit.offered_ids(sim)
    assert len(offered) >= 25
    records = list(store.calls())
    firsts = sorted(r.call_id for r in records if r.leg == 1)
    assert firsts == sorted(offered)  # exactly one first-leg record per offered call
    assert len({(r.call_id, r.leg) for r in records}) == len(records)
    assert sum(r.outcome == "answered" for r in records if r.leg == 1) >= len(offered) / 3
    assert controller.counters["link_ups"] == 1 and controller.counters["store_errors"] == 0

    # the retained agent states are the engine's (settled_agents), with today's calls
    assert any(p["status"] == "ready" for p in agents.values())
    answered = Counter(r.agent_id for r in records if r.outcome == "answered")
    assert {a: p["calls_today"] for a, p in agents.items() if p["calls_today"]} == answered

    # the status and the call events are stamped in engine time (the scaled day)
    start, end = kit.EPOCH + 8 * 3600 + 55 * 60, kit.EPOCH + 10 * 3600 + 41 * 60
    assert status["online"] is True and start <= status["since"] / 1000 <= status["ts"] / 1000
    assert status["ts"] / 1000 <= end
    assert all(start <= e["ts"] / 1000 <= end for e in events)
    assert [e["seq"] for e in events] == sorted({e["seq"] for e in events})

    # each call's steps, its caller masked; each leg's record ends with one "ended"
    steps: dict[str, list[dict]] = {}
    for e in events:
        steps.setdefault(e["call_id"], []).append(e)
    assert set(steps) == {str(c) for c in offered}
    for call_id, seen in steps.items():
        assert seen[0]["event"] == "offered", call_id
        assert all(e["since"] == seen[0]["ts"] for e in seen), [
            (e["event"], e["ts"], e["since"], e["device"], e["agent_id"]) for e in seen
        ]
        assert all(e["caller"] is None or "*" in e["caller"] for e in seen), call_id
    ended = sorted(
        (int(e["call_id"]), e["leg"], e["outcome"]) for e in events if e["event"] == "ended"
    )
    assert ended == sorted((r.call_id, r.leg, str(r.outcome)) for r in records)
    for r in records:
        if r.outcome == "answered" and r.agent_id:
            kinds = [(e["event"], e["agent_id"]) for e in steps[str(r.call_id)]]
            assert ("ringing", r.agent_id) in kinds and ("answered", r.agent_id) in kinds

    # the published figures are those recomputed from the database
    front = json.loads(stats["queue/front-desk/stats"])
    legs = [r for r in records if r.queue == "front-desk" and r.queued_at >= kit.EPOCH]
    figures = compute(legs, sl_threshold=20.0, short_abandon=config.acd.short_abandon)
    for name in ("offered", "answered", "abandoned", "short_abandoned", "overflowed", "closed"):
        assert front[name] == getattr(figures, name), name
    assert front["answered_in_sl"] == figures.answered_in_sl
    assert front["waiting"] == 0

    # below the 99 % target over the last hour: the alarm is raised (retained)
    rate = figures.answered / figures.offered
    if rate < 0.99:
        alarm = json.loads(alarms["alarm/answer-rate-front-desk"])
        assert alarm["threshold"] == 0.99 and alarm["value"] < 0.99
    store.close()

"""An hour of the reference site over a real pty, in scaled time: the simulated switch
in a thread, the controller in the test's event loop, records in SQLite, state on the
real Mosquitto."""

from __future__ import annotations

import asyncio
import json

import pytest

from acd.controller import Controller
from acd.figures import compute
from acd.store import CallStore
from protocols import messages as m

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]


def offered_ids(sim) -> set[int]:
    return {x.call_id for x in sim.endpoint.sent if isinstance(x, m.Offered)}


async def run_hour(kit, sim, config, extra=None):
    """Run the controller until the simulated run is over and every call has ended."""
    store = CallStore(config.store.path)
    controller = Controller(
        config, store=store, extensions=kit.EXTENSIONS, clock=sim.engine_clock()
    )
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    try:
        if extra is not None:
            await extra(controller)
        await kit.wait_until(lambda: not sim.thread.is_alive(), timeout=60)
        await kit.wait_until(lambda: sum(controller.engine.active_legs().values()) == 0, 5)
        await asyncio.sleep(0.5)  # the last rate-limited figures reach the broker
        states = await kit.retained(config, "agent/+/state")
        stats = await kit.retained(config, "queue/+/stats")
        alarms = await kit.retained(config, "alarm/+")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    return controller, store, states, stats, alarms


def test_an_hour_every_call_one_record_mqtt_equals_engine_and_database(
    broker, kit, sim_thread, tmp_path
):
    sim = sim_thread(kit.hour_scenario(volume=40, speed=450))
    config = kit.site_config(tmp_path, sim.url)
    controller, store, states, stats, alarms = asyncio.run(run_hour(kit, sim, config))

    offered = offered_ids(sim)
    assert len(offered) >= 25
    records = list(store.calls())
    firsts = sorted(r.call_id for r in records if r.leg == 1)
    assert firsts == sorted(offered)  # exactly one first-leg record per offered call
    assert len({(r.call_id, r.leg) for r in records}) == len(records)
    assert sum(r.outcome == "answered" for r in records if r.leg == 1) >= len(offered) / 3
    assert controller.counters["link_ups"] == 1 and controller.counters["store_errors"] == 0

    # the retained agent states are the engine's
    engine_states = {
        a.agent_id: (str(a.status).replace("-", "_"), str(a.state).replace("-", "_"), a.device)
        for a in controller.engine.agent_states()
    }
    published = {
        topic.split("/")[1]: (p["status"], p["state"], p["device"])
        for topic, p in ((t, json.loads(v)) for t, v in states.items())
    }
    assert published == engine_states
    assert any(s[0] == "ready" for s in published.values())

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

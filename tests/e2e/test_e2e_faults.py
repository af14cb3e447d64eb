"""Fault runs end to end: line noise and a pulled cable over TCP (``socket://``), the
broker (a private Mosquitto with the password file and the shipped ACL) stopped and
restarted behind a proxy, bad supervisor commands, a missing port."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import uuid

import aiomqtt
import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.core.agents import AgentStatus
from acd.runtime.controller import Controller
from acd.runtime.store_sqlite import SqliteStore as CallStore
from firmware_sim.faults import FaultSpec

pytestmark = pytest.mark.timeout(120)


def test_noise_and_pulled_cable_over_tcp_link_recovers_nothing_lost(kit, sim_thread, tmp_path):
    faults = (
        FaultSpec("bit-errors", rate=3e-4),
        FaultSpec("cable", at=9 * 3600.0 + 15 * 60, duration=4.0),  # 4 s of wire: link down
    )
    sim = sim_thread(kit.hour_scenario(volume=40, end="10:30", speed=400, faults=faults), tcp=True)
    assert sim.url.startswith("socket://")
    config = kit.site_config(tmp_path, sim.url)

    async def main():
        store = CallStore(config.store.path)
        controller = Controller(config, store=store, clock=sim.engine_clock(), mqtt=False)
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop))
        await kit.wait_until(lambda: kit.calls_over(sim), 60, "every call to end")
        await kit.wait_until(
            lambda: sum(controller.engine.active_legs().values()) == 0, 10, "every call to end"
        )
        stop.set()
        await asyncio.wait_for(task, 10)
        return controller, store

    controller, store = asyncio.run(main())
    summary = sim.endpoint.summary()
    # the noise was caught: CRC errors at whichever end the flipped bits went to (both
    # ways; how many each way depends on the timing: the switch's end alone saw none once)
    crc_errors = summary["link"]["crc_errors"] + controller.link.stats.crc_errors
    assert summary["faults"]["bits_flipped"] > 0 and crc_errors > 0
    assert controller.counters["link_downs"] >= 1 and controller.counters["link_ups"] >= 2
    records = list(store.calls())
    firsts = [r.call_id for r in records if r.leg == 1]
    assert len(firsts) == len(set(firsts))  # never two records for one leg
    assert kit.offered_ids(sim) <= set(firsts)  # every call we heard of has its record
    assert len({(r.call_id, r.leg) for r in records}) == len(records)
    store.close()


async def command(config, port: int, agent: str, payload: bytes) -> dict:
    """Send a supervisor command as alice and return the reply (on the request's reply
    topic)."""
    base = f"{config.mqtt.prefix}/{config.site.id}"
    ident = f"t-{uuid.uuid4().hex[:8]}"
    async with aiomqtt.Client(
        "127.0.0.1", port, username="alice", password="pw-alice", identifier=ident
    ) as c:
        await c.subscribe(f"{base}/cmd/reply/#", qos=1)
        await c.subscribe(f"{base}/cmd/error", qos=1)
        await c.publish(f"{base}/cmd/agent/{agent}/set", payload, qos=1)
        async with asyncio.timeout(5):
            async for message in c.messages:
                return json.loads(message.payload)


def test_broker_down_and_back_routing_unaffected_state_restored_bad_commands_refused(
    secure_broker, kit, sim_thread, tmp_path, broker_proxy
):
    sim = sim_thread(kit.hour_scenario(volume=30, end="10:15", speed=600))

    async def main():
        proxy = broker_proxy
        proxy.upstream = ("127.0.0.1", secure_broker.port)
        await proxy.start()
        config = kit.site_config(tmp_path, sim.url)
        mqtt = secure_broker.mqtt("acd-townhall", port=proxy.port, stats_interval=0.2)
        config = dataclasses.replace(config, mqtt=mqtt)
        store = CallStore(config.store.path)
        controller = Controller(config, store=store, clock=sim.engine_clock())
        controller_mqtt_reconnect = 0.2
        stop = asyncio.Event()
        task = asyncio.create_task(controller.run(stop))
        await kit.wait_until(
            lambda: controller.mqtt is not None and controller.mqtt.connected, 10, "MQTT up"
        )
        controller.mqtt.reconnect_max = controller_mqtt_reconnect
        # the agents' first logins were keyed before the controller listened: they key
        # them again when asked (docs/cti-protocol.md 9.3)
        await kit.wait_until(
            lambda: any(s.agent_id == "1003" for s in controller.engine.export_sessions()),
            10,
            "1003 logged in",
        )

        # bad input: each refused with a reason, the controller carries on
        bad = await command(config, secure_broker.port, "1001", b"{not json")
        assert bad["ok"] is False and "malformed JSON" in bad["error"]
        unknown = await command(
            config, secure_broker.port, "9999", b'{"request_id": "r1", "action": "ready"}'
        )
        assert (unknown["request_id"], unknown["ok"]) == ("r1", False)
        assert "unknown agent" in unknown["error"]
        await kit.wait_until(
            lambda: any(s.agent_id == "1003" for s in controller.engine.export_sessions()),
            10,
            "agent 1003 to log in",
        )
        done = await command(
            config,
            secure_broker.port,
            "1003",
            b'{"request_id": "r2", "action": "not_ready", "reason": 3}',
        )
        assert (done["request_id"], done["ok"]) == ("r2", True), done

        # the broker goes away for a while: calls keep being routed and answered
        await kit.wait_until(lambda: controller.counters["records"] >= 3, 30, "3 records")
        await proxy.stop()
        await kit.wait_until(lambda: not controller.mqtt.connected, 10, "the broker cut")
        before = controller.counters["records"]
        answered_before = controller.engine.queue_figures("front-desk").answered
        await asyncio.sleep(2.0)  # 20 simulated minutes without a broker (at least)
        await kit.wait_until(
            lambda: (
                controller.counters["records"] > before
                and controller.engine.queue_figures("front-desk").answered > answered_before
            ),
            15,
            "calls answered and recorded while the broker is away",
        )
        await proxy.start()
        await kit.wait_until(lambda: controller.mqtt.connected, 10, "the MQTT reconnection")
        await kit.wait_until(lambda: not sim.thread.is_alive(), 60, "the end of the run")
        # the full retained picture is back after the reconnect (equal to the engine's)
        await kit.settled_agents(config, controller)
        status = await kit.retained(config, "controller/status")
        stop.set()
        await asyncio.wait_for(task, 10)
        await proxy.stop()
        changes = list(store.agent_changes(agent_id="1003"))
        store.close()
        # r2 was applied: 1003 not ready for reason 3 (no simulated agent keys it). Read in
        # the agent changes stored, not in the engine after the reply: the simulated agent
        # finds the ready lamp off and keys ready 30 simulated seconds later (50 ms here).
        assert any(c.status is AgentStatus.NOT_READY and c.reason == 3 for c in changes)
        return controller, status

    controller, status = asyncio.run(main())
    assert json.loads(status["controller/status"])["online"] is True
    assert controller.mqtt.connects >= 2


def test_config_pointing_at_a_missing_port_is_one_line_and_exit_1(kit, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        cli,
        [
            *("run", "--config", str(kit.CONFIG), "--link", "/dev/ttyNOPE7"),
            *("--no-mqtt", "--db", str(tmp_path / "x.db")),
        ],
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "cannot open PBX link /dev/ttyNOPE7" in lines[0]
    assert "Traceback" not in result.output

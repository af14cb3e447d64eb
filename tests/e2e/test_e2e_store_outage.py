"""PostgreSQL fails under a running `acd run` (a real process, the simulated switch, a
PostgreSQL cluster of the test's own, a private Mosquitto): routing goes on, records
wait in the outbox spool, the ``store-down`` alarm is on MQTT, and once the server is
back every record is in it exactly once. Also across a clean stop during the outage."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import time

import psycopg
import pytest

from acd.config import load_config
from protocols import messages as m

from .test_e2e_restart import wait_for

pytestmark = pytest.mark.timeout(90)

LEG_LINE = re.compile(r"call (\d+) leg (\d+)(?: in \S+)?: ")  # ended, or completed at a stop


def site(kit, tmp_path, broker, outbox) -> tuple:
    """The reference site's configuration file (fast link timers, the private broker,
    the outbox spool in ``tmp_path``), its `Config` and the environment of `acd run`."""
    text = (
        kit.CONFIG.read_text()
        .replace("t1 = 1.0", "t1 = 0.2")
        .replace("heartbeat = 5.0", "heartbeat = 1.0")
        .replace("reset_interval = 3.0", "reset_interval = 0.3")
        .replace("port = 1883", f"port = {broker.port}")
        .replace("mask_callers = true", f'mask_callers = true\noutbox = "{outbox}"')
    )
    path = tmp_path / "site.toml"
    path.write_text(text)
    env = {**os.environ, "ACD_MQTT_PASSWORD": broker.password("acd-townhall")}
    config = dataclasses.replace(load_config(kit.CONFIG), mqtt=broker.mqtt("acd-townhall"))
    return path, config, env


def launch(sim, config, url, log, env) -> subprocess.Popen:
    command = [c for c in sim.run_command(config, url) if c != "--no-mqtt"]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log, env=env)


def stored(url: str) -> list[tuple[int, int]]:
    """(call id, leg) of every stored leg, duplicates kept."""
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("SELECT call_id, leg FROM calls").fetchall()
    except psycopg.Error:
        return []


def check_exactly_once(url: str, log_text: str, sim, kit) -> None:
    """Every leg the controller logged (acknowledged) is stored once, nothing else is;
    every call the switch offered has a record or a leg saved in progress."""
    logged = [(int(a), int(b)) for a, b in LEG_LINE.findall(log_text)]
    assert "NOT stored" not in log_text and "Traceback" not in log_text
    rows = stored(url)
    assert len(rows) == len(set(rows)), "a leg stored twice"
    assert sorted(rows) == sorted(set(logged))
    with psycopg.connect(url) as conn:
        live = {c for (c,) in conn.execute("SELECT call_id FROM live_legs")}
        changes = conn.execute(
            "SELECT count(*), count(DISTINCT (at, agent_id, status, state)) FROM agent_changes"
        ).fetchone()
    assert changes[0] == changes[1] > 0, "an agent change stored twice"
    missing = kit.offered_ids(sim) - {c for c, _ in rows} - live
    assert not missing, f"calls offered but neither recorded nor saved in progress: {missing}"


def routed_between(sim, since: float, until: float) -> int:
    """Calls answered at a handset between wire times ``since`` and ``until``."""
    return sum(
        1
        for t, x in list(sim.endpoint.produced)
        if isinstance(x, m.Established) and since <= t < until
    )


def store_alarm(kit, config) -> dict:
    return asyncio.run(kit.retained(config, "alarm/+", quiet=0.5))


def test_postgresql_restarted_mid_traffic_routing_goes_on_and_no_record_is_lost(
    kit, sim_thread, tmp_path, own_pg, secure_broker
):
    sim = sim_thread(kit.hour_scenario(volume=150, start="08:59", end="09:45", speed=400))
    outbox = tmp_path / "outbox.jsonl"
    config_path, config, env = site(kit, tmp_path, secure_broker, outbox)
    log_path = tmp_path / "acd.log"
    with open(log_path, "wb") as log:
        proc = launch(sim, config_path, own_pg.url, log, env)
        try:
            wait_for(lambda: len(stored(own_pg.url)) >= 5, 20, "5 stored records")
            own_pg.stop("immediate")  # a crash of the server
            down_at = time.monotonic()
            wait_for(outbox.exists, 10, "records in the outbox spool")
            time.sleep(2.0)  # traffic goes on
            alarms = store_alarm(kit, config)
            assert "alarm/store-down" in alarms, alarms
            spooled = len(outbox.read_text().splitlines())
            own_pg.start()
            up_at = time.monotonic()
            wait_for(lambda: not outbox.exists(), 15, "the outbox written and deleted")
            assert "alarm/store-down" not in store_alarm(kit, config)
            wait_for(lambda: not sim.thread.is_alive(), 30, "the end of the traffic")
        finally:
            assert kit.stop_process(proc) == 0
    text = log_path.read_text()
    assert "call-record store unreachable" in text and "call-record store back after" in text
    assert spooled >= 3
    assert routed_between(sim, down_at, up_at) >= 3, "no call routed during the outage"
    check_exactly_once(own_pg.url, text, sim, kit)


def test_a_clean_stop_during_the_outage_keeps_the_records_for_the_next_start(
    kit, sim_thread, tmp_path, own_pg, secure_broker
):
    sim = sim_thread(kit.hour_scenario(volume=150, start="08:59", end="09:45", speed=400))
    outbox = tmp_path / "outbox.jsonl"
    config_path, _, env = site(kit, tmp_path, secure_broker, outbox)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with open(first_log, "wb") as log:
        proc = launch(sim, config_path, own_pg.url, log, env)
        try:
            wait_for(lambda: len(stored(own_pg.url)) >= 5, 20, "5 stored records")
            own_pg.stop("immediate")
            wait_for(outbox.exists, 10, "records in the outbox spool")
            time.sleep(1.0)
        finally:
            assert kit.stop_process(proc) == 0  # stopped while the server is down
    assert outbox.exists() and "wait in the outbox" in first_log.read_text()
    own_pg.start()
    with open(second_log, "wb") as log:
        proc = launch(sim, config_path, own_pg.url, log, env)
        try:
            wait_for(lambda: "resynchronised" in second_log.read_text(), 20, "the resync")
            assert not outbox.exists()
            wait_for(lambda: not sim.thread.is_alive(), 30, "the end of the traffic")
        finally:
            assert kit.stop_process(proc) == 0
    text = first_log.read_text() + second_log.read_text()
    assert re.search(r"outbox .*: \d+ batches of call records", second_log.read_text())
    check_exactly_once(own_pg.url, text, sim, kit)

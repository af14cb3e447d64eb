"""`acd monitor --once --json` and `acd agent` against the real controller fed by the
simulated switch over a pty, through a private Mosquitto with the password file and the
shipped ACL (the controller logs in as acd-townhall, the tools as the supervisor alice):
the monitor shows the engine's agents and figures, and a supervisor command changes an
agent end to end."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.config import load_config
from acd.core.calendar import midnight
from acd.runtime.clock import Clock
from acd.runtime.controller import Controller
from firmware_sim.runner import PtyTransport, SwitchEndpoint, serve
from firmware_sim.scenario import load_scenario

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(90)]
ROOT = Path(__file__).resolve().parents[3]
EXTENSIONS = ("201", "202", "203", "204", "205", "206", "301", "302", "303", "304", "305")


class Site:
    """The simulated switch (07:59-08:12 at 200x) and `acd.runtime.controller.Controller`, each
    in its own thread, logged in to the broker on ``port``."""

    def __init__(self, tmp_path: Path, port: int) -> None:
        sc = load_scenario("town-hall-weekday-250")
        link = dataclasses.replace(sc.link, t1=0.2, heartbeat=1.0, reset_interval=0.3)
        sc = dataclasses.replace(
            sc, start_s=7 * 3600 + 59 * 60, end_s=8 * 3600 + 12 * 60, speed=200.0, link=link
        )
        self.transport = PtyTransport()
        origin = time.monotonic()
        self.endpoint = SwitchEndpoint(sc, Clock(sc.start_s, origin, sc.speed))
        self.endpoint.start(origin)
        self.sim = threading.Thread(
            target=serve, args=(self.endpoint, self.transport, lambda: False), daemon=True
        )
        text = (ROOT / "examples" / "town-hall.toml").read_text()
        text = text.replace("port = 1883", f"port = {port}")
        text = text.replace('password_env = "ACD_MQTT_PASSWORD"', 'password = "pw-acd-townhall"')
        text = text.replace('path = "town-hall.db"', f'path = "{tmp_path / "acd.db"}"')
        text = text.replace('url = "/dev/ttyS0"', f'url = "{self.transport.path}"')
        text = text.replace("t1 = 1.0", "t1 = 0.2").replace("heartbeat = 5.0", "heartbeat = 1.0")
        text = text.replace("reset_interval = 3.0", "reset_interval = 0.3")
        self.config_path = tmp_path / "site.toml"
        self.config_path.write_text(text)
        config = load_config(self.config_path)
        assert config.mqtt.port == port and config.link.url == self.transport.path
        clock = Clock(midnight(sc.day, "Europe/Paris") + sc.start_s, origin, sc.speed)
        self.controller = Controller(config, extensions=EXTENSIONS, clock=clock)
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.ctl = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))
        self.sim.start()
        self.ctl.start()

    async def _run(self) -> None:
        self.stop_event = asyncio.Event()
        await self.controller.run(self.stop_event)

    def stop(self) -> None:
        if self.stop_event is not None:
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.ctl.join(timeout=15)
        self.loop.close()
        self.transport.close()


@pytest.fixture
def site(tmp_path, secure_broker):
    s = Site(tmp_path, secure_broker.port)
    yield s
    s.stop()


def acd(*args):
    supervisor = {"ACD_MQTT_USERNAME": "alice", "ACD_MQTT_PASSWORD": "pw-alice"}
    return CliRunner().invoke(cli, list(args), env={"ACD_MQTT_TOKEN": None, **supervisor})


def test_monitor_shows_the_engines_agents_and_figures(site):
    end = time.monotonic() + 40
    engine = site.controller.engine
    while site.sim.is_alive() or site.controller.link_is_up:
        assert time.monotonic() < end, "the simulated run did not finish"
        time.sleep(0.1)
    # the switch has stopped (the link is down): let the engine's timers (200x: 200
    # simulated seconds, longer than any wrap-up) settle and the last news out
    time.sleep(1.0)
    out = acd("monitor", "--once", "--json", "--config", str(site.config_path))
    assert out.exit_code == 0, out.output
    snap = json.loads(out.output)
    assert snap["controller"]["online"] is True and snap["link"] == "down"
    assert [a["name"] for a in snap["alarms"]] == ["link-down"]
    expected = {
        a.agent_id: (str(a.status).replace("-", "_"), str(a.state).replace("-", "_"))
        for a in engine.agent_states()
    }
    shown = {a["agent_id"]: (a["status"], a["state"]) for a in snap["agents"]}
    assert shown == expected
    assert any(s == ("ready", "idle") for s in shown.values())
    front = next(q for q in snap["queues"] if q["queue_id"] == "front-desk")
    figures = engine.queue_figures("front-desk")
    assert figures.offered >= 3
    for name in ("offered", "answered", "abandoned", "waiting"):
        assert front[name] == getattr(figures, name), name
    assert front["target"] == 0.99

    ready = next(a for a, s in shown.items() if s == ("ready", "idle"))
    cfg = ["--config", str(site.config_path)]
    out = acd("agent", "not-ready", ready, "--reason", "3", *cfg)
    assert out.exit_code == 0, out.output
    agents = {a["agent_id"]: a for a in json.loads(acd("agents", "--json", *cfg).output)}
    assert (agents[ready]["status"], agents[ready]["reason"]) == ("not_ready", 3)
    assert agents[ready]["reason_label"] == "back-office"
    out = acd("agent", "logout", "2005", *cfg)  # never logged in
    assert out.exit_code == 1 and out.output.startswith("Error: refused: ")

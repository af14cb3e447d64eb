"""Supervisor commands and the monitor against a private Mosquitto with the password file
and the shipped ACL (the tools log in as the supervisor alice) and a real `MqttBridge`
playing the controller's side (as acd-townhall), in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import aiomqtt
import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.runtime.topics import AgentCommand, CommandAction, agent_state_payload, queue_stats_payload
from drivers.mqtt import MqttBridge

pytestmark = pytest.mark.mqtt
HOST = "127.0.0.1"
SITE = "town-hall"  # the site of the shipped ACL


class Controller:
    """A bridge whose command handler changes the published agent states."""

    def __init__(self, broker, token: str | None = None, agents=("1001", "1002")) -> None:
        self.site = SITE
        self.port = broker.port
        self.config = broker.mqtt("acd-townhall", cmd_token=token, stats_interval=0.0)
        self.states = {a: ("ready", None) for a in agents}
        self.commands: list[AgentCommand] = []
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._run(),))
        self.thread.start()
        assert self.ready.wait(10), "bridge did not connect"

    def _publish(self, agent_id: str) -> None:
        status, reason = self.states[agent_id]
        now = time.time()
        self.bridge.set_agent_state(
            agent_id,
            agent_state_payload(
                agent_id,
                status=status,
                state="idle",
                ts=now,
                since=now,
                seq=1,
                reason=reason,
                device="2" + agent_id[-2:],
            ),
        )

    def on_command(self, cmd: AgentCommand) -> str | None:
        self.commands.append(cmd)
        if cmd.agent_id not in self.states:
            return "unknown agent"
        status = {CommandAction.READY: "ready", CommandAction.NOT_READY: "not_ready"}.get(
            cmd.action, "logged_out"
        )
        self.states[cmd.agent_id] = (status, cmd.reason)
        self._publish(cmd.agent_id)
        return None

    async def _run(self) -> None:
        async with MqttBridge(self.config, self.site, on_command=self.on_command) as bridge:
            self.bridge = bridge
            for agent_id in self.states:
                self._publish(agent_id)
            figures = {
                "waiting": 1,
                "offered": 10,
                "answered": 9,
                "abandoned": 1,
                "answer_rate": 0.9,
                "sl_offered": 0.8,
                "longest_wait_s": 12.0,
            }
            bridge.set_queue_stats(
                "front-desk",
                queue_stats_payload("front-desk", figures, ts=time.time(), since=0, seq=1),
            )
            await self._probe()
            self.ready.set()
            while not self.done.is_set():
                await asyncio.sleep(0.05)

    async def _probe(self) -> None:
        """Wait until the bridge answers commands (it subscribes after its snapshot)."""
        topic = f"acd/v1/{self.site}/cmd/agent/probe/set"
        probe = {"action": "ready", "request_id": "probe", "token": self.config.cmd_token}
        async with aiomqtt.Client(HOST, self.port, username="alice", password="pw-alice") as client:
            await client.subscribe(f"acd/v1/{self.site}/cmd/reply/probe", qos=1)
            for _ in range(40):
                await client.publish(topic, json.dumps(probe), qos=1)
                try:
                    async with asyncio.timeout(0.25):
                        await anext(aiter(client.messages))
                    break
                except TimeoutError:
                    continue
        self.commands.clear()

    def stop(self) -> None:
        self.done.set()
        self.thread.join(timeout=10)
        self.loop.close()


@pytest.fixture
def site(secure_broker) -> str:
    return SITE


@pytest.fixture
def controller(secure_broker):
    started: list[Controller] = []

    def start(**kw) -> Controller:
        started.append(Controller(secure_broker, **kw))
        return started[-1]

    yield start
    for c in started:
        c.stop()


@pytest.fixture
def acd(secure_broker):
    """Run an `acd` command as the supervisor alice on the private broker."""

    def run(*args, env=None):
        base = {"ACD_CONFIG": "", "ACD_MQTT_TOKEN": None}
        alice = {"ACD_MQTT_USERNAME": "alice", "ACD_MQTT_PASSWORD": "pw-alice"}
        port = () if "--port" in args else ("--port", str(secure_broker.port))
        return CliRunner().invoke(cli, [*args, *port], env=base | alice | (env or {}))

    return run


def test_commands_change_agent_states_end_to_end(site, controller, acd):
    ctl = controller()
    out = acd("agent", "not-ready", "1001", "--reason", "2", "--site", site)
    assert out.exit_code == 0, out.output
    assert out.output == "agent 1001: not ready (reason 2): accepted\n"
    assert acd("agent", "logout", "1002", "--site", site).exit_code == 0
    agents = json.loads(acd("agents", "--site", site, "--json").output)
    assert [(a["agent_id"], a["status"], a["reason"]) for a in agents] == [
        ("1001", "not_ready", 2),
        ("1002", "logged_out", None),
    ]
    assert acd("agent", "ready", "1001", "--site", site).exit_code == 0
    assert [c.action.value for c in ctl.commands] == ["not_ready", "logout", "ready"]
    text = acd("agents", "--site", site).output.splitlines()
    assert text[0].startswith("AGENT") and text[1].split()[:3] == ["1001", "ready", "idle"]


def test_refused_unauthorised_and_timed_out_commands(site, controller, acd):
    out = acd("agent", "ready", "1001", "--site", site, "--timeout", "0.5")
    assert out.exit_code == 1
    assert out.output.startswith("Error: no reply within 0.5 s: is the controller")
    ctl = controller(token="s3cret")
    out = acd("agent", "ready", "1001", "--site", site)
    assert (out.exit_code, out.output) == (1, "Error: refused: bad or missing token\n")
    out = acd("agent", "ready", "1001", "--site", site, env={"ACD_MQTT_TOKEN": "s3cret"})
    assert out.exit_code == 0, out.output
    out = acd("agent", "ready", "9999", "--site", site, env={"ACD_MQTT_TOKEN": "s3cret"})
    assert (out.exit_code, out.output) == (1, "Error: refused: unknown agent\n")
    out = acd("agent", "ready", "no/such", "--site", site)
    assert out.exit_code == 1 and "bad agent id" in out.output
    out = acd("agent", "not-ready", "1001", "--reason", "100", "--site", site)
    assert out.exit_code == 2  # usage error: out of range
    assert [c.agent_id for c in ctl.commands] == ["1001", "9999"]


def test_no_password_option_and_broker_down(site, acd):
    assert "--password" not in acd("agent", "ready", "--help").output
    out = acd("status", "--site", site, "--port", "1")
    assert out.exit_code == 1
    assert out.output.startswith("Error: cannot reach the broker at 127.0.0.1:1")
    out = acd("agents")
    assert out.exit_code == 1 and "--site" in out.output


def test_monitor_once_queues_and_status(site, controller, acd):
    controller()
    snap = json.loads(acd("monitor", "--once", "--json", "--site", site).output)
    assert snap["broker"] == "up" and snap["controller"]["online"] is True
    assert snap["link"] == "up"
    assert [a["agent_id"] for a in snap["agents"]] == ["1001", "1002"]
    assert snap["queues"][0]["answer_rate"] == 0.9
    screen = acd("monitor", "--once", "--site", site).output
    assert "controller: online" in screen and "front-desk" in screen and "\x1b" not in screen
    queues = acd("queues", "--site", site).output.splitlines()
    assert queues[1].split()[:4] == ["front-desk", "1", "12s", "10"]
    status = acd("status", "--site", site).output
    assert "controller: online since" in status and "agents:     2 ready" in status

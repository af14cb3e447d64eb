"""`acd web` in a real browser (Debian's Chromium, headless, driven by Playwright) against
a real Mosquitto with a password file and the shipped ACL, a real controller on the
simulated switch and a real `acd web` process.

The floor is quiet (the first call of the scenario comes minutes after the tests end), so
every change seen comes from the tests' own commands. ACD_UPDATE_SCREENSHOTS=1 writes the
screenshots of docs/web.md to docs/images/.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import aiomqtt
import pytest
from playwright.sync_api import expect

from acd.controller import Controller
from acd.pins import hash_pin
from acd.store import CallStore
from drivers.mosquitto import (
    ACL_EXAMPLE,
    HOST,
    free_port,
    mosquitto_binary,
    running_mosquitto,
    secure_conf,
)

pytestmark = [pytest.mark.mqtt, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT / "docs" / "images"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
PASSWORDS = {"acd-townhall": "pw-controller", "alice": "pw-alice", "wallboard": "pw-board"}
WEB_USERS = {"sam": ("supervisor", "sam-secret-1"), "val": ("viewer", "val-secret-1")}
BASE = "acd/v1/town-hall"


class Broker:
    """The private Mosquitto, which a test may stop and start again on the same port."""

    def __init__(self, directory: Path) -> None:
        self.conf, self.port = secure_conf(directory, PASSWORDS, ACL_EXAMPLE.read_text())
        self._stack: contextlib.ExitStack | None = None

    def start(self) -> None:
        self._stack = contextlib.ExitStack()
        self._stack.enter_context(running_mosquitto(self.conf, self.port))

    def stop(self) -> None:
        if self._stack is not None:
            self._stack.close()
            self._stack = None


class ControllerThread:
    """`Controller.run` on its own event loop in a thread."""

    def __init__(self, config, clock) -> None:
        self.config, self.clock = config, clock
        self.controller: Controller | None = None
        self.started = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self.thread.start()
        assert self.started.wait(10)

    async def _main(self) -> None:
        self.loop, self.stop_event = asyncio.get_running_loop(), asyncio.Event()
        store = CallStore(self.config.store.path)
        self.controller = Controller(self.config, store=store, clock=self.clock)
        self.started.set()
        try:
            await self.controller.run(self.stop_event)
        finally:
            store.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(15)
        assert not self.thread.is_alive()


def web_config(directory: Path, kit, broker_port: int) -> Path:
    """The reference site's file with the private broker and two web users."""
    text = kit.CONFIG.read_text()
    assert "\nport = 1883\n" in text
    text = text.replace("\nport = 1883\n", f"\nport = {broker_port}\n")
    text += "\n[web]\n"
    for name, (role, password) in WEB_USERS.items():
        text += f'[web.users.{name}]\nrole = "{role}"\npassword_hash = "{hash_pin(password)}"\n'
    path = directory / "site.toml"
    path.write_text(text)
    path.chmod(0o600)
    return path


def listening(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
        return True
    return False


@pytest.fixture(scope="module")
def floor(kit, tmp_path_factory):
    """Broker, simulated switch, controller and `acd web`, up for the module."""
    if mosquitto_binary() is None:
        pytest.fail("mosquitto is not installed (make broker installs it)")
    d = tmp_path_factory.mktemp("web")
    broker = Broker(d / "mosquitto")
    broker.start()
    # in real time from 4 s before the early shift keys its logins at 07:55 (heard live
    # by the controller, up by then); the day's first call comes at 09:00 at the soonest
    scenario = kit.hour_scenario(volume=1, start="07:54", end="09:30", speed=1)
    sim = kit.SimThread(dataclasses.replace(scenario, start_s=(7 * 60 + 55) * 60 - 4.0))
    config = kit.site_config(d, sim.url, broker_port=broker.port)
    mqtt = dataclasses.replace(config.mqtt, prefix="acd/v1", password=PASSWORDS["acd-townhall"])
    controller = ControllerThread(dataclasses.replace(config, mqtt=mqtt), sim.engine_clock())
    port = free_port()
    env = {**os.environ, "ACD_MQTT_USERNAME": "alice", "ACD_MQTT_PASSWORD": PASSWORDS["alice"]}
    log = (d / "web.log").open("w")
    web = subprocess.Popen(
        [sys.executable, "-m", "acd", "web", "--config", str(web_config(d, kit, broker.port)),
         "--listen", f"{HOST}:{port}"],
        env=env, stdout=log, stderr=log,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 15
        while not listening(port):
            assert web.poll() is None, (d / "web.log").read_text()
            assert time.monotonic() < deadline, "acd web did not listen"
            time.sleep(0.05)
        yield dataclasses.make_dataclass("Floor", ["url", "sim", "broker", "log", "mqtt"])(
            f"http://{HOST}:{port}", sim, broker, d / "web.log", mqtt
        )
    finally:
        assert kit.stop_process(web) == 0
        log.close()
        controller.stop()
        broker.stop()
        sim.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert os.access(CHROMIUM, os.X_OK), f"{CHROMIUM} is missing: make test installs chromium"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def logged_in(browser, floor, user: str, path: str = "/"):
    """A new page of a new browser context, logged in as ``user``, at ``path``."""
    context = browser.new_context(viewport={"width": 1600, "height": 900})
    page = context.new_page()
    page.goto(f"{floor.url}{path}")
    assert page.url.startswith(f"{floor.url}/login")
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", WEB_USERS[user][1])
    page.click("button[type=submit]")
    page.wait_for_url(f"{floor.url}{path}")
    return page


def off_loop(coro):
    """Run ``coro`` to its end on a loop of its own (Playwright's runs in this thread)."""
    out: list = []
    thread = threading.Thread(target=lambda: out.append(asyncio.run(coro)))
    thread.start()
    thread.join(15)
    assert out, "timed out"
    return out[0]


def send_command(floor, agent: str, body: dict) -> dict:
    """A supervisor command straight on MQTT (as alice); the controller's reply."""

    async def main() -> dict:
        rid = f"t-{time.monotonic_ns()}"
        async with aiomqtt.Client(
            HOST, floor.broker.port, username="alice", password=PASSWORDS["alice"]
        ) as c:
            await c.subscribe(f"{BASE}/cmd/reply/{rid}", qos=1)
            await c.publish(
                f"{BASE}/cmd/agent/{agent}/set", json.dumps({**body, "request_id": rid}), qos=1
            )
            async with asyncio.timeout(5):
                async for message in c.messages:
                    return json.loads(message.payload)

    return off_loop(main())


def bucket(page, agent: str) -> str | None:
    return page.get_attribute(f"[data-testid=agent-{agent}]", "data-bucket")


def shoot(page, name: str) -> None:
    if os.environ.get("ACD_UPDATE_SCREENSHOTS") == "1":
        IMAGES.mkdir(exist_ok=True)
        page.screenshot(path=str(IMAGES / name))


def test_wallboard_shows_an_agent_change_within_a_second(browser, floor):
    page = logged_in(browser, floor, "val", "/wallboard")
    page.wait_for_selector("[data-testid=agent-1002][data-bucket=ready]", timeout=15000)
    assert page.is_hidden("[data-testid=stale]")
    assert page.text_content("[data-testid=controller]") == "controller online"
    assert page.text_content("[data-testid=link]") == "link up"
    assert page.text_content("[data-testid=queue-front-desk] [data-testid=waiting]") == "0"
    t0 = time.monotonic()
    assert send_command(floor, "1002", {"action": "not_ready", "reason": 1})["ok"] is True
    page.wait_for_selector("[data-testid=agent-1002][data-bucket=not-ready]", timeout=1000)
    latency = time.monotonic() - t0
    assert latency < 1.0, latency  # command, controller, broker, acd web, browser
    assert "break" in page.text_content("[data-testid=agent-1002] [data-testid=agent-state]")
    ticking = page.text_content("[data-testid=agent-1002] .time")
    expect(page.locator("[data-testid=agent-1002] .time")).not_to_have_text(ticking, timeout=2500)
    shoot(page, "wallboard.png")
    assert send_command(floor, "1002", {"action": "ready"})["ok"] is True
    page.wait_for_selector("[data-testid=agent-1002][data-bucket=ready]", timeout=1000)
    page.context.close()


def test_a_viewer_sees_no_buttons_and_the_endpoint_refuses(browser, floor):
    page = logged_in(browser, floor, "val")
    page.wait_for_selector("[data-testid=agent-1001]")
    assert page.text_content("[data-testid=user]") == "val (viewer)"
    assert page.locator("button[data-action]").count() == 0
    assert page.is_hidden("#actions")
    csrf = page.get_attribute("meta[name=csrf]", "content")
    status = page.evaluate(
        """async (csrf) => (await fetch('/api/agent/town-hall/1001/logout', {method: 'POST',
             headers: {'X-CSRF-Token': csrf, 'Content-Type': 'application/json'},
             body: '{}'})).status""",
        csrf,
    )
    assert status == 403
    assert "refused" in floor.log.read_text()
    page.wait_for_timeout(300)
    assert (
        page.get_attribute("[data-testid=agent-1001] [data-testid=agent-status]", "class")
        == "status ready"
    )
    page.context.close()


def test_a_supervisor_sets_an_agent_not_ready_switch_mqtt_and_page_agree(browser, floor):
    page = logged_in(browser, floor, "sam")
    row = "[data-testid=agent-1003]"
    page.wait_for_selector(f"{row} button[data-action=not_ready]")
    page.select_option("[data-testid=reason]", "2")
    page.click(f"{row} button[data-action=not_ready]")
    page.wait_for_selector("[data-testid=reply].ok", timeout=5000)
    assert "agent 1003 (town-hall): not ready (reason 2): accepted" in page.text_content(
        "[data-testid=reply]"
    )
    expect(page.locator(f"{row} [data-testid=agent-status]")).to_have_text(
        "not ready", timeout=1000
    )
    assert page.text_content(f"{row} [data-testid=agent-reason]") == "2 lunch"
    state = retained_state(floor, "agent/1003/state")
    assert (state["status"], state["reason"]) == ("not_ready", 2)
    assert floor.sim.endpoint.switch.handset_view("203")["lamps"][0] == "off"  # ready lamp
    assert "sam set agent 1003 of town-hall not_ready (reason 2): accepted" in floor.log.read_text()
    # a POST without the CSRF token is refused even for a supervisor
    status = page.evaluate(
        "async () => (await fetch('/api/agent/town-hall/1003/ready', {method: 'POST'})).status"
    )
    assert status == 403
    shoot(page, "console.png")
    page.click(f"{row} button[data-action=ready]")
    expect(page.locator(f"{row} [data-testid=agent-status]")).to_have_text("ready", timeout=2000)
    assert floor.sim.endpoint.switch.handset_view("203")["lamps"][0] != "off"
    page.context.close()


def retained_state(floor, topic: str) -> dict:
    """The retained payload of ``<base>/<topic>`` on the private broker (as alice)."""

    async def main() -> dict:
        async with aiomqtt.Client(
            HOST, floor.broker.port, username="alice", password=PASSWORDS["alice"]
        ) as c:
            await c.subscribe(f"{BASE}/{topic}", qos=1)
            async with asyncio.timeout(5):
                async for message in c.messages:
                    return json.loads(message.payload)

    return off_loop(main())


def test_stale_while_the_broker_is_down_and_recovery_after(browser, floor):
    page = logged_in(browser, floor, "val", "/wallboard")
    page.wait_for_selector("[data-testid=agent-1001]")
    assert page.is_hidden("[data-testid=stale]")
    floor.broker.stop()
    page.wait_for_selector("[data-testid=stale]", state="visible", timeout=3000)
    floor.broker.start()
    page.wait_for_selector("[data-testid=stale]", state="hidden", timeout=10000)
    page.wait_for_selector("[data-testid=agent-1001][data-bucket=ready]", timeout=10000)
    assert page.text_content("[data-testid=controller]") == "controller online"
    page.context.close()


def test_demo_web_shows_the_floor_moving(browser, tmp_path):
    port = free_port()
    demo = subprocess.Popen(
        [sys.executable, "-m", "acd", "demo", "--web", f"{HOST}:{port}", "--speed", "3000",
         "--calls", "60", "--db", str(tmp_path / "day.db")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        for line in demo.stdout:
            if line.startswith("web: "):
                password = line.split("password ")[1].strip()
                break
        else:
            raise AssertionError("acd demo --web printed no web line")
        page = browser.new_page()
        page.goto(f"http://{HOST}:{port}/wallboard")
        page.fill("input[name=username]", "demo")
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        card = page.locator("[data-testid=queue-front-desk] [data-testid=answered-offered]")
        expect(card).not_to_have_text("0 / 0", timeout=15000)  # calls come in
        assert page.is_hidden("[data-testid=stale]")
        page.close()
    finally:
        demo.send_signal(signal.SIGINT)  # the demo stops its broker and server on Ctrl-C
        demo.communicate(timeout=20)

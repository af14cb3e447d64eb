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
import io
import json
import os
import signal
import subprocess
import sys
import threading
import time
from csv import DictReader
from pathlib import Path

import aiomqtt
import pytest
from playwright.sync_api import expect

from acd.core.pins import hash_pin
from acd.runtime.controller import Controller
from acd.runtime.store import CallStore
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
    # in real time from 2 s before the early shift keys its logins at 07:55 (heard live
    # by the controller, up by then); the day's first call comes at 09:00 at the soonest
    scenario = kit.hour_scenario(volume=1, start="07:54", end="09:30", speed=1)
    sim = kit.SimThread(dataclasses.replace(scenario, start_s=(7 * 60 + 55) * 60 - 2.0))
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
        # pages closed with their event stream open end it quietly (no traceback)
        assert "Traceback" not in (d / "web.log").read_text(), (d / "web.log").read_text()
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
        # the report page reads the demo's store: the day by hour, a chart, a CSV
        total = page.locator("[data-testid=report-table] tr:last-child td:nth-child(2)")
        for _ in range(50):
            page.goto(f"http://{HOST}:{port}/report?from=2026-03-10&by=hour")
            if total.text_content() != "0":
                break
            time.sleep(0.2)
        offered = total.text_content()
        assert int(offered) > 0
        assert page.locator("[data-testid=chart] svg rect").count() > 0
        csv_url = page.get_attribute("[data-testid=csv]", "href")
        csv = page.request.get(f"http://{HOST}:{port}{csv_url}")
        assert csv.ok and csv.headers["content-type"].startswith("text/csv")
        rows = list(DictReader(io.StringIO(csv.text())))
        assert rows[-1]["hour"] == "total"
        assert int(rows[-1]["offered"]) >= int(offered)  # the day goes on meanwhile
        assert rows[0]["hour"].startswith("2026-03-10T")
        if os.environ.get("ACD_UPDATE_SCREENSHOTS") == "1":  # a fuller day for the docs
            for _ in range(60):
                page.reload()
                if page.locator("[data-testid=report-table] tbody tr").count() >= 8:
                    break
                time.sleep(0.2)
        shoot(page, "report.png")
        # the console's chart of today (the simulated day, on the controller's clock)
        page.goto(f"http://{HOST}:{port}/")
        chart = page.request.get(f"http://{HOST}:{port}/chart/today.svg")
        assert chart.headers["content-type"].startswith("image/svg+xml")
        assert "<rect" in chart.text() and "target 99%" in chart.text()
        page.wait_for_function("() => document.getElementById('today-chart').naturalWidth > 0")
        page.close()
    finally:
        demo.send_signal(signal.SIGINT)  # the demo stops its broker and server on Ctrl-C
        demo.communicate(timeout=20)


SITES = ("issy", "lyon")
CENTRAL_ACL = (
    "".join(f"user bridge-{s}\ntopic readwrite acd/v1/{s}/#\n\n" for s in SITES)
    + "user alice\ntopic read acd/v1/#\ntopic write acd/v1/+/cmd/agent/#\n"
)


def bridge_lines(site: str, central: int) -> str:
    """The bridge of a site's Mosquitto to the central one, as docs/mqtt.md shows it."""
    text = (ROOT / "docs" / "mqtt.md").read_text()
    block = text.split("```conf\n# Bridge of a site's broker", 1)[1].split("```", 1)[0]
    block = "# Bridge of a site's broker" + block
    for old, new in (
        ("town-hall", site), ("central.example.org:8883", f"{HOST}:{central}"),
        ("bridge_cafile /etc/mosquitto/certs/ca.crt\n", ""), ("CENTRAL_PASSWORD", f"pw-{site}"),
    ):  # fmt: skip
        assert old in block, old
        block = block.replace(old, new)
    return block


class SiteBridges:
    """Each site's controller side (the real MqttBridge), on its own site broker, in a
    thread: agent 7 ready; a command sets its status and is accepted."""

    def __init__(self, ports: dict[str, int]) -> None:
        from acd.config import MqttConfig

        self.configs = {
            s: MqttConfig(port=p, username=f"acd-{s}", password=f"pw-{s}") for s, p in ports.items()
        }
        self.started = threading.Event()
        self.thread = threading.Thread(target=asyncio.run, args=(self._main(),), daemon=True)
        self.thread.start()
        assert self.started.wait(10)

    async def _main(self) -> None:
        from acd.runtime.topics import agent_state_payload, queue_stats_payload
        from drivers.mqtt import MqttBridge

        self.loop, self.stop_event = asyncio.get_running_loop(), asyncio.Event()
        seq = iter(range(1, 1000))

        def agent(status: str, reason: int | None = None) -> dict:
            now = time.time()
            return agent_state_payload(
                "7", status=status, state="idle", reason=reason, ts=now, since=now, seq=next(seq)
            )

        def handler(site: str):
            def on_command(cmd) -> None:
                status = "logged_out" if cmd.action.value == "logout" else cmd.action.value
                self.bridges[site].set_agent_state("7", agent(status, cmd.reason))

            return on_command

        self.bridges: dict[str, MqttBridge] = {}
        async with contextlib.AsyncExitStack() as stack:
            for site, config in self.configs.items():
                bridge = MqttBridge(config, site, on_command=handler(site), reconnect_max=0.5)
                self.bridges[site] = await stack.enter_async_context(bridge)
                bridge.set_agent_state("7", agent("ready"))
                figures = {"waiting": 1, "offered": 4, "answered": 3, "answer_rate": 0.75}
                bridge.set_queue_stats(
                    "accueil",
                    queue_stats_payload("accueil", figures, ts=time.time(), since=0, seq=1),
                )
            self.started.set()
            await self.stop_event.wait()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(10)


def test_two_bridged_sites_on_one_console_and_commands_across_the_bridges(browser, kit, tmp_path):
    with contextlib.ExitStack() as stack:
        users = {f"bridge-{s}": f"pw-{s}" for s in SITES} | {"alice": PASSWORDS["alice"]}
        conf, central = secure_conf(tmp_path / "central", users, CENTRAL_ACL)
        stack.enter_context(running_mosquitto(conf, central))
        ports = {}
        for site in SITES:
            acl = f"user acd-{site}\ntopic readwrite acd/v1/{site}/#\n"
            conf, ports[site] = secure_conf(tmp_path / site, {f"acd-{site}": f"pw-{site}"}, acl)
            with conf.open("a") as fh:
                fh.write(bridge_lines(site, central))
            stack.enter_context(running_mosquitto(conf, ports[site]))
        sites = SiteBridges(ports)
        stack.callback(sites.stop)
        config = tmp_path / "hq.toml"
        config.write_text(
            f'[site]\nid = "hq"\n[mqtt]\nport = {central}\nusername = "alice"\n'
            f'password_env = "ACD_MQTT_PASSWORD"\n[web.users.sam]\nrole = "supervisor"\n'
            f'password_hash = "{hash_pin(WEB_USERS["sam"][1])}"\n'
        )
        port = free_port()
        env = {**os.environ, "ACD_MQTT_PASSWORD": PASSWORDS["alice"]}
        web = subprocess.Popen(
            [sys.executable, "-m", "acd", "web", "--config", str(config),
             "--listen", f"{HOST}:{port}"], env=env, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        stack.callback(kit.stop_process, web)
        deadline = time.monotonic() + 15
        while not listening(port):
            assert web.poll() is None and time.monotonic() < deadline, "acd web did not listen"
            time.sleep(0.05)
        floor = dataclasses.make_dataclass("Hq", ["url"])(f"http://{HOST}:{port}")
        page = logged_in(browser, floor, "sam")
        for site in SITES:  # both sites, through their bridges to the central broker
            page.wait_for_selector(f"[data-testid=site-{site}] [data-testid=agent-7]")
            waiting = f"[data-testid=site-{site}] [data-testid=queue-accueil] td:nth-child(2)"
            assert page.text_content(waiting) == "1"
        page.select_option("[data-testid=site-select]", "lyon")
        expect(page.locator("[data-testid=site-issy]")).to_have_count(0)
        page.select_option("[data-testid=reason]", "0")
        page.click("[data-testid=site-lyon] [data-testid=agent-7] button[data-action=not_ready]")
        expect(page.locator("[data-testid=reply]").first).to_contain_text(
            "agent 7 (lyon): not ready (reason 0): accepted", timeout=5000
        )
        row = page.locator("[data-testid=site-lyon] [data-testid=agent-7]")
        expect(row.locator("[data-testid=agent-status]")).to_have_text("not ready", timeout=2000)
        page.select_option("[data-testid=site-select]", "")
        status = "[data-testid=site-issy] [data-testid=agent-7] [data-testid=agent-status]"
        assert page.text_content(status) == "ready"  # the other site untouched
        page.context.close()

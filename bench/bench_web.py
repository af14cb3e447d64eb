"""`acd web` under load: MQTT state change → visible in a browser's DOM.

Needs the Mosquitto on 127.0.0.1:1883 (``make broker``), Chromium at /usr/bin/chromium
and Playwright (``make test`` installs both). A real `acd web` process follows a
random prefix; 99 event streams (logged-in clients reading ``/events``, as open
wallboards do) and one headless Chromium showing ``/wallboard`` are connected while a
publisher changes the states of 200 agents at 1,000 changes per second for 10 s
(retained, QoS 1, as the controller publishes them). Every 50 ms one "probe" agent gets
a new not-ready reason; the page records when each reason appears in its DOM. Figures:

- ``web_update_p50_ms`` / ``web_update_p99_ms``: publication → text in the page's DOM;
- ``web_changes_per_s``: agent changes the publisher achieved;
- ``web_rss_mb``: peak resident memory of the `acd web` process (VmHWM);
- ``web_streams``: event streams open during the run (the page's included).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import aiohttp
import aiomqtt

from acd.core.pins import hash_pin

HOST, PORT = "127.0.0.1", 1883
AGENTS, RATE, SECONDS, STREAMS = 200, 1000, 10.0, 100
PROBE_EVERY = 0.05
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "bench-password"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _state(agent: str, status: str, reason: int | None, seq: int) -> bytes:
    now = round(time.time() * 1000)
    body = {"agent_id": agent, "status": status, "state": "idle", "reason": reason,
            "device": None, "call_id": None, "calls_today": 0, "ts": now, "seq": seq,
            "since": now}  # fmt: skip
    return json.dumps(body).encode()


async def _publish(base: str, sent: list[tuple[int, float]]) -> int:
    """Change agents at RATE per second for SECONDS; the probe's reason every
    PROBE_EVERY s (``sent``: (reason, time of publication)). Returns the changes made."""
    async with aiomqtt.Client(HOST, PORT, identifier=f"bench-{secrets.token_hex(3)}") as c:
        start = time.monotonic()
        n, probe, next_probe = 0, 0, start
        while (now := time.monotonic()) - start < SECONDS:
            due = int((now - start) * RATE)
            batch = []
            while n < due:
                agent = f"a{n % AGENTS}"
                status = "ready" if n // AGENTS % 2 else "not_ready"
                batch.append(c.publish(f"{base}/agent/{agent}/state",
                             _state(agent, status, 1 if status == "not_ready" else None, n),
                             qos=1, retain=True))  # fmt: skip
                n += 1
            if now >= next_probe:
                probe += 1 + (probe % 100 == 8)  # reason 9 has a label: not "not ready 9"
                reason = probe % 100
                sent.append((reason, time.time()))
                payload = _state("probe", "not_ready", reason, probe)
                batch.append(c.publish(f"{base}/agent/probe/state", payload, qos=1, retain=True))
                next_probe += PROBE_EVERY
            await asyncio.gather(*batch)
            await asyncio.sleep(0.005)
        for agent in [*(f"a{i}" for i in range(AGENTS)), "probe"]:  # leave nothing retained
            await c.publish(f"{base}/agent/{agent}/state", b"", qos=1, retain=True)
        return n


async def _streams(url: str, count: int, stop: asyncio.Event) -> None:
    """``count`` logged-in clients reading /events until ``stop``."""

    async def one() -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:
            page = await (await s.get(f"{url}/login")).text()
            csrf = page.split('name="csrf" value="')[1].split('"')[0]
            data = {"username": "bench", "password": PASSWORD, "csrf": csrf}
            await s.post(f"{url}/login", data=data)
            async with s.get(f"{url}/events") as r:
                while not stop.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(r.content.readany(), 1.0)

    tasks = [asyncio.create_task(one()) for _ in range(count)]
    await stop.wait()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


OBSERVE = """() => {
  window.seen = [];
  let last = null;
  const look = () => {
    const el = document.querySelector('[data-testid=agent-probe] [data-testid=agent-state]');
    if (el && el.textContent !== last) {
      last = el.textContent;
      window.seen.push([last, Date.now()]);
    }
  };
  new MutationObserver(look).observe(document.body, {childList: true, subtree: true});
}"""


def _browser(url: str, ready: threading.Event, done: threading.Event, out: dict) -> None:
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        page = browser.new_context(bypass_csp=True).new_page()  # to run the observer
        page.goto(f"{url}/wallboard")
        page.fill("input[name=username]", "bench")
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/wallboard")
        page.evaluate(OBSERVE)
        ready.set()
        done.wait(SECONDS + 30)
        out["seen"] = page.evaluate("() => window.seen")
        browser.close()


def _delays(sent: list[tuple[int, float]], seen: list[tuple[str, float]]) -> list[float]:
    """Per probe sent, ms until the page showed it or a later probe (a probe superseded
    within the coalescing window is never shown: its successor carries the change)."""
    shown = []  # (index of the probe shown, time)
    for text, at_ms in seen:
        at = at_ms / 1000
        reasons = [i for i, (r, t) in enumerate(sent) if f"not ready {r}" == text and t <= at]
        if reasons:
            shown.append((max(reasons), at))
    out = []
    for i, (_reason, t) in enumerate(sent):
        at = next((a for k, a in shown if k >= i), None)
        if at is not None:
            out.append(1000 * (at - t))
    return out


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def run() -> dict:
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # "N pending publish calls"
    if not os.access(CHROMIUM, os.X_OK):
        return {"web_skipped": f"{CHROMIUM} is missing (make chromium)"}
    prefix, site = f"bench-{secrets.token_hex(4)}", "b"
    port = _free_port()
    url = f"http://{HOST}:{port}"
    with TemporaryDirectory() as tmp:
        config = Path(tmp) / "web.toml"
        config.write_text(
            f'[site]\nid = "{site}"\n[mqtt]\nport = {PORT}\nprefix = "{prefix}"\n'
            f'[web]\nsecure_cookies = false\n[web.users.bench]\nrole = "viewer"\n'
            f'password_hash = "{hash_pin(PASSWORD)}"\n'
        )
        web = subprocess.Popen(
            [sys.executable, "-m", "acd", "web", "--config", str(config), "--listen",
             f"{HOST}:{port}", "--log-level", "warning"],
        )  # fmt: skip
        try:
            for _ in range(200):
                with contextlib.suppress(OSError), socket.create_connection((HOST, port), 0.2):
                    break
                time.sleep(0.05)
            ready, done, out = threading.Event(), threading.Event(), {}
            thread = threading.Thread(target=_browser, args=(url, ready, done, out))
            thread.start()
            ready.wait(30)
            sent: list[tuple[int, float]] = []

            async def main() -> int:
                stop = asyncio.Event()
                streams = asyncio.create_task(_streams(url, STREAMS - 1, stop))
                await asyncio.sleep(2)  # every stream open
                changes = await _publish(f"{prefix}/{site}", sent)
                await asyncio.sleep(1.5)
                stop.set()
                await streams
                return changes

            changes = asyncio.run(main())
            done.set()
            thread.join(30)
            rss = _rss_mb(web.pid)
        finally:
            web.terminate()
            web.wait(10)
    delays = sorted(_delays(sent, out.get("seen", [])))
    if not delays:
        return {"web_skipped": "the page showed no probe change"}
    return {
        "web_update_p50_ms": round(delays[len(delays) // 2], 1),
        "web_update_p99_ms": round(delays[min(len(delays) - 1, int(len(delays) * 0.99))], 1),
        "web_probes": len(sent),
        "web_changes_per_s": round(changes / SECONDS),
        "web_rss_mb": rss,
        "web_streams": STREAMS,
    }

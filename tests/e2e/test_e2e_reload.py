"""SIGHUP to a running `acd run`: the configuration re-read in place while calls flow
(none dropped), a broken file refused with one log line, systemd told RELOADING/READY."""

from __future__ import annotations

import os
import re
import signal
import socket
import sqlite3
import subprocess
import time

import pytest

pytestmark = pytest.mark.timeout(90)

AGENT = """
[agents.1009]
name = "Agent 1009"
pin_hash = "{pin_hash}"
skills = {{ front-desk = 3 }}
"""


def outcomes(db) -> dict[tuple[int, int], str]:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return {
                (c, leg): o for c, leg, o in conn.execute("SELECT call_id, leg, outcome FROM calls")
            }
    except sqlite3.OperationalError:
        return {}


def wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)


def test_sighup_reloads_in_place_and_refuses_a_broken_file(kit, sim_thread, tmp_path):
    sim = sim_thread(kit.hour_scenario(volume=40, speed=700))
    text = kit.CONFIG.read_text().replace("t1 = 1.0", "t1 = 0.2")
    config, db, log_path = tmp_path / "site.toml", tmp_path / "acd.db", tmp_path / "acd.log"
    config.write_text(text)
    pin_hash = re.search(r'pin_hash = "([^"]+)"', text).group(1)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(10)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")}
    with notify, open(log_path, "wb") as log:
        proc = subprocess.Popen(
            sim.run_command(config, db), env=env, stdout=subprocess.DEVNULL, stderr=log
        )
        try:
            assert notify.recv(4096).startswith(b"READY=1")
            wait_for(lambda: len(outcomes(db)) >= 3, 30, "3 records")
            config.write_text(
                text.replace("ring_timeout = 15.0", "ring_timeout = 20.0")
                + AGENT.format(pin_hash=pin_hash)
            )
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "configuration reloaded" in log_path.read_text(), 10, "the reload")
            said = [notify.recv(4096)]
            while not said[-1].startswith(b"READY=1"):
                said.append(notify.recv(4096))
            reloading = [d for d in said if d.startswith(b"RELOADING=1")]
            assert reloading and said.index(reloading[0]) < len(said) - 1, said
            config.write_text(text + "\n[queues.broken\n")
            proc.send_signal(signal.SIGHUP)
            wait_for(lambda: "reload refused" in log_path.read_text(), 10, "the refusal")
            wait_for(lambda: kit.calls_over(sim), 60, "every call to end")
            time.sleep(0.5)
            assert proc.poll() is None
        finally:
            assert kit.stop_process(proc) == 0
    lines = log_path.read_text().splitlines()
    (reloaded,) = [line for line in lines if "configuration reloaded" in line]
    assert "queue front-desk ring_timeout: 15.0 → 20.0" in reloaded and "+ agent 1009" in reloaded
    (refused,) = [line for line in lines if "reload refused" in line]
    assert "the running configuration stays" in refused and "Traceback" not in "\n".join(lines)
    records = outcomes(db)
    firsts = {c for c, leg in records if leg == 1}
    assert firsts == kit.offered_ids(sim)  # every call recorded, across both reloads
    assert "failed" not in records.values()

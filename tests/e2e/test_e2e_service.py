"""`acd run` under a service manager: sd_notify on a real NOTIFY_SOCKET (ready, status,
watchdog, stopping) and log lines in the journal's format."""

from __future__ import annotations

import os
import socket
import subprocess
import time

import pytest

pytestmark = pytest.mark.timeout(60)


def _datagrams(sock: socket.socket, until, timeout: float) -> list[str]:
    """Datagrams received until ``until(received)`` is true (at most ``timeout`` s)."""
    got: list[str] = []
    end = time.monotonic() + timeout
    while not until(got):
        left = end - time.monotonic()
        assert left > 0, f"timed out; received {got}"
        sock.settimeout(left)
        try:
            got.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return got


def test_acd_run_notifies_ready_status_watchdog_and_stopping(kit, sim_thread, tmp_path):
    sim = sim_thread(kit.hour_scenario(volume=5, speed=60))
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    log_path = tmp_path / "acd.log"
    with sock, open(log_path, "wb") as log:
        st = os.fstat(log.fileno())
        env = {
            **os.environ,
            "NOTIFY_SOCKET": path,
            "WATCHDOG_USEC": "200000",
            "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
        }
        command = sim.run_command(kit.CONFIG, tmp_path / "acd.db")
        proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
        try:
            got = _datagrams(
                sock,
                lambda g: (
                    sum(d == "WATCHDOG=1" for d in g) >= 5 and any("STATUS=link up" in d for d in g)
                ),
                30,
            )
            assert got[0].startswith("READY=1\nSTATUS="), got
            assert all(d.startswith(("READY=1", "STATUS=", "WATCHDOG=1")) for d in got), got
        finally:
            assert kit.stop_process(proc) == 0
        rest = _datagrams(sock, lambda g: any(d.startswith("STOPPING=1") for d in g), 5)
    assert "STOPPING=1\nSTATUS=stopping" in rest
    lines = log_path.read_text().splitlines()
    assert "<6>acd.controller link up" in lines, lines[:5]
    assert all(line.startswith("<") and not line[3].isdigit() for line in lines), lines[:5]

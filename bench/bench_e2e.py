"""End to end: `acd run` in its own process on a pty, a scripted switch on the other end.

The switch side is this process: a `protocols.link.Link` on the pty's master, the six
front-desk agents keying their logins (PIN) and going ready once the controller's
snapshots are answered (a login only the snapshot shows is not accepted), callers who hang
up as soon as their call is routed (so agents are free again at once). Figures:

- ``e2e_offer_to_route_p50_us`` / ``_p99_us``: from the moment the last byte of an
  Offered frame is written by the switch side to the moment the last byte of the
  DeflectCall frame for that call is read back, at a steady 100 calls/s (target p99
  ≤ 2,000 µs); ``e2e_route_samples`` how many calls were timed;
- ``e2e_frames_per_s``: frames (I-frames and acknowledgements, both directions)
  crossing the link per second while the switch side keeps the controller's receive
  window full (saturation: the controller's own pace, its queue cannot grow beyond the
  window); ``e2e_messages_in_per_s``: the switch messages it consumed per second then
  (target ≥ 10,000 frames/s); ``e2e_frames_vs_target``: the ratio;
  ``e2e_controller_cpu_share``: the controller process's CPU time / wall time then (1.0:
  it had a core to itself all along), and ``e2e_frames_per_cpu_s``: frames per second
  of controller CPU, the rate it sustains with a core of its own (the machine's load
  does not enter).

The controller's engine runs on a Tuesday 09:00 clock (the site is open), records go
to a temporary SQLite database (WAL, synchronous=FULL, written by its writer thread).
"""

from __future__ import annotations

import os
import select
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

from protocols import messages as m
from protocols.link import Link, LinkUp, MessageReceived, Role

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "town-hall.toml"
AGENTS = {f"20{i}": (f"100{i}", str(i) * 4) for i in range(1, 7)}  # handset -> agent, PIN
RATE = 100.0  # calls per second for the latency figure
LATENCY_S = 4.0
SATURATE_S = 3.0


class SwitchSide:
    """A scripted switch on the pty master: answers requests, offers calls, times routes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.link = Link(Role.CONTROLLER, window=8, t1=1.0, n2=3, heartbeat=5.0)
        self.link.start(time.perf_counter())
        self.up = False
        self.ready = False
        self.event_id = 0
        self.next_call = 1
        self.offered_at: dict[int, float] = {}
        self.latencies: list[float] = []
        self.messages_out = 0

    def offer(self) -> None:
        call_id = self.next_call
        self.next_call += 1
        self._send(m.Offered(self._eid(), call_id, "0612345678", "3000", 1))
        self.offered_at[call_id] = self.flush()

    def key(self, msg: m.Message) -> None:
        """A handset key pressed."""
        self._send(msg)
        self.flush()

    def flush(self) -> float:
        """Write what the link has to send; the time the last byte was written."""
        data = self.link.data_to_send()
        while data:
            n = os.write(self.fd, data)
            data = data[n:]
        return time.perf_counter()

    def pump(self, timeout: float) -> None:
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        now = time.perf_counter()
        if ready:
            self.link.receive_data(os.read(self.fd, 65536), now)
        self.link.handle_timer(now)
        while (event := self.link.next_event()) is not None:
            if isinstance(event, LinkUp):
                self.up = True
            elif isinstance(event, MessageReceived):
                self._answer(event.message, now)
        self.flush()

    def _answer(self, msg: m.Message, now: float) -> None:
        if isinstance(msg, m.SnapshotCalls):
            self._send(m.SnapshotCallsResult(msg.invoke_id, ()))
        elif isinstance(msg, m.SnapshotDevice):
            self._send(m.SnapshotDeviceResult(msg.invoke_id, msg.device, False, "", ()))
            self.ready = self.ready or msg.device == "305"
        elif isinstance(msg, m.DeflectCall):
            started = self.offered_at.pop(msg.call_id, None)
            if started is not None:
                self.latencies.append(now - started)
            self._send(m.PositiveAck(msg.invoke_id))
            cause = m.Cause.caller_abandon
            self._send(m.ConnectionCleared(self._eid(), msg.call_id, "", cause))
        elif not isinstance(msg, m.PositiveAck | m.NegativeAck):
            self._send(m.PositiveAck(msg.invoke_id))

    def _send(self, msg: m.Message) -> None:
        self.messages_out += 1
        self.link.send(msg, time.perf_counter())

    def _eid(self) -> int:
        self.event_id = self.event_id % 0xFFFF + 1
        return self.event_id


def _controller(path: str, db: str) -> subprocess.Popen:
    command = [
        sys.executable,
        *("-m", "acd", "run", "--config", str(CONFIG), "--link", path, "--db", db),
        *("--no-mqtt", "--extensions", "201-206,301-305", "--start", "2026-03-10T09:00"),
        *("--speed", "1", "--log-level", "error"),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def run() -> dict:
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    path = os.ttyname(slave)
    with tempfile.TemporaryDirectory(prefix="acd-bench-") as tmp:
        proc = _controller(path, str(Path(tmp) / "bench.db"))
        try:
            side = SwitchSide(master)
            end = time.perf_counter() + 20
            while not (side.up and side.ready) and time.perf_counter() < end:
                side.pump(0.05)
            if not side.ready:
                raise RuntimeError("the controller did not come up within 20 s")
            for _ in range(20):  # let the resync's outputs settle
                side.pump(0.01)
            for device, (agent, pin) in AGENTS.items():
                side.key(m.KeyLogin(side._eid(), device, agent, pin))
            end = time.perf_counter() + 2.0  # the PINs are checked one by one (scrypt)
            while time.perf_counter() < end:
                side.pump(0.05)
            for device in AGENTS:
                side.key(m.KeyReady(side._eid(), device))
            for _ in range(20):
                side.pump(0.01)

            # steady load: RATE calls per second, routes timed
            period = 1.0 / RATE
            start = time.perf_counter()
            next_offer = start
            while time.perf_counter() - start < LATENCY_S:
                now = time.perf_counter()
                if now >= next_offer:
                    side.offer()
                    next_offer += period
                side.pump(next_offer - time.perf_counter())
            for _ in range(50):
                side.pump(0.01)
            latencies = sorted(side.latencies[20:])  # the first ones warm caches up

            # saturation: keep the controller's receive window full
            stats0 = side.link.stats
            messages0 = side.messages_out
            cpu0 = _cpu_seconds(proc.pid)
            start = time.perf_counter()
            while time.perf_counter() - start < SATURATE_S:
                while side.link.queued < side.link.window:
                    side.offer()
                side.pump(0.001)
            elapsed = time.perf_counter() - start
            cpu = _cpu_seconds(proc.pid) - cpu0
            stats1 = side.link.stats
            frames = (stats1.frames_in - stats0.frames_in) + (stats1.frames_out - stats0.frames_out)
            consumed = side.messages_out - messages0 - side.link.queued
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            os.close(master)
            os.close(slave)
    frames_per_s = frames / elapsed
    return {
        "e2e_offer_to_route_p50_us": round(_percentile(latencies, 50) * 1e6),
        "e2e_offer_to_route_p99_us": round(_percentile(latencies, 99) * 1e6),
        "e2e_route_samples": len(latencies),
        "e2e_frames_per_s": round(frames_per_s),
        "e2e_messages_in_per_s": round(consumed / elapsed),
        "e2e_frames_vs_target": round(frames_per_s / 10_000, 2),
        "e2e_controller_cpu_share": round(cpu / elapsed, 2),
        "e2e_frames_per_cpu_s": round(frames / cpu) if cpu else None,
    }


if __name__ == "__main__":
    print(run())

"""`acd ports` and `acd port test` on real ptys and the simulated switch."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import socket
import threading
import time
import tty

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.runtime.clock import Clock
from drivers.port_test import PortTestError, run_port_test
from firmware_sim.runner import PtyTransport, SwitchEndpoint, serve
from firmware_sim.scenario import load_scenario


class FakeLine:
    """A pty whose master side plays the far end: echo, silence or garbage."""

    def __init__(self, behaviour: str) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.master)
        tty.setraw(self.slave)
        self.path = os.ttyname(self.slave)
        self.behaviour = behaviour
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        noise = bytes((i * 37 + 11) & 0xFF for i in range(64)).replace(b"\x10", b"\x11")
        while not self.stop.is_set():
            ready, _, _ = select.select([self.master], [], [], 0.02)
            if self.behaviour == "garbage":
                os.write(self.master, noise)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:
                    return
                if self.behaviour == "echo":
                    os.write(self.master, data)

    def close(self) -> None:
        if self.stop.is_set():
            return
        self.stop.set()
        self.thread.join(timeout=2)
        for fd in (self.master, self.slave):
            os.close(fd)


@pytest.fixture
def fake_line():
    lines: list[FakeLine] = []

    def make(behaviour: str) -> FakeLine:
        lines.append(FakeLine(behaviour))
        return lines[-1]

    yield make
    for line in lines:
        line.close()


def _cli(*args):
    return CliRunner().invoke(cli, list(args))


def test_loopback_plug_passes(fake_line):
    line = fake_line("echo")
    result = run_port_test(line.path, 115200)
    assert result.ok and result.mode == "loopback", result
    assert result.details == {"sent": 4096, "received": 4096, "errors": 0, "lost": 0, "extra": 0}
    assert result.settings == "115200 baud 8N1"
    out = _cli("port", "test", line.path, "--json")
    assert out.exit_code == 0 and json.loads(out.output)["verdict"].startswith("loopback OK")


def test_silent_line_says_no_echo_and_no_switch(fake_line):
    line = fake_line("silent")
    out = _cli("port", "test", line.path, "--timeout", "0.5")
    assert out.exit_code == 1
    assert "no echo (is the loopback plug fitted?)" in out.output
    assert "no switch answered" in out.output


def test_silent_line_shows_the_wait_on_a_terminal(fake_line, monkeypatch):
    """The handshake waits the whole --timeout on a silent port: a terminal sees it."""
    monkeypatch.setattr("acd.cli.progress.is_tty", lambda: True)
    monkeypatch.setattr("acd.cli.progress.INTERVAL", 0.05)
    line = fake_line("silent")
    out = _cli("port", "test", line.path, "--timeout", "0.6")
    assert out.exit_code == 1
    label = f"{line.path}: waiting for a switch to answer (s): "
    assert out.stderr.count(label) >= 3 and out.stderr.endswith("\r\x1b[K")
    assert f"{label}0/1 (" in out.stderr  # counts up to the timeout (0.6 shown as 1)
    assert out.stdout.startswith("port:")


def test_garbage_says_check_baud_rate_and_parity(fake_line):
    line = fake_line("garbage")
    result = run_port_test(line.path, 9600, "E", timeout=0.5)
    assert not result.ok and result.mode == "handshake"
    assert result.verdict.startswith("garbage:") and "check baud rate and parity" in result.verdict
    assert "9600 baud 8E1" in result.verdict


def test_absent_and_closed_ports_fail_clearly(fake_line, tmp_path):
    out = _cli("port", "test", str(tmp_path / "ttyNOPE"))
    assert out.exit_code == 1
    assert (
        out.output.strip()
        == f"Error: {tmp_path / 'ttyNOPE'}: no such port (check the name with `acd ports`)"
    )
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))  # a port nobody listens on
        url = f"socket://127.0.0.1:{closed.getsockname()[1]}"
        with pytest.raises(PortTestError, match="connection refused: nothing listens there"):
            run_port_test(url)
    line = fake_line("echo")
    path = line.path
    line.close()
    with pytest.raises(PortTestError, match=r"no such port|failed during the test"):
        run_port_test(path)


def test_busy_port(fake_line):
    import serial

    line = fake_line("echo")
    holder = serial.serial_for_url(line.path, exclusive=True)
    try:
        with pytest.raises(PortTestError, match="busy: held by another program"):
            run_port_test(line.path)
    finally:
        holder.close()


def test_handshake_with_the_simulated_switch():
    sc = load_scenario("town-hall-weekday-250")
    sc = dataclasses.replace(sc, start_s=9 * 3600)
    transport = PtyTransport()
    origin = time.monotonic()
    endpoint = SwitchEndpoint(sc, Clock(sc.start_s, origin, 1.0))
    endpoint.start(origin)
    stop = threading.Event()
    thread = threading.Thread(target=serve, args=(endpoint, transport, stop.is_set), daemon=True)
    thread.start()
    try:
        out = _cli("port", "test", transport.path)
        assert out.exit_code == 0, out.output
        assert "test:     handshake" in out.output
        verdict = re.search(r"verdict:  (.*)", out.output).group(1)
        assert re.fullmatch(
            r"peer answers: link up after \d+\.\d\d s, SystemStatus answered with PositiveAck",
            verdict,
        )
    finally:
        stop.set()
        thread.join(timeout=5)
        transport.close()
    assert endpoint.link_ups >= 1


def test_ports_lists_or_says_none():
    out = _cli("ports")
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert lines == ["no serial ports found"] or all("[" in line for line in lines)
    listed = json.loads(_cli("ports", "--json").output)
    assert isinstance(listed, list)
    assert all(set(p) == {"device", "description", "hwid"} for p in listed)

"""End to end over a real pty: a test peer (pyserial + `protocols`) against the simulator."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import time

from firmware_sim.faults import FaultSpec
from firmware_sim.runner import Clock, PtyTransport, SwitchEndpoint, serve
from firmware_sim.scenario import load_scenario
from protocols import messages as m
from protocols.framing import Ctrl, encode_frame

CALLS = """
[[calls]]  # A: the call walked through its life
at = "08:00:02"
calling = "0611111111"
[[calls]]  # B: never routed, abandons after 1 s
at = "08:00:05"
calling = "0622222222"
patience = 1.0
[[calls]]  # C and D take both trunks; E finds them busy
at = "08:00:07"
calling = "0633333333"
[[calls]]
at = "08:00:07"
calling = "0644444444"
[[calls]]
at = "08:00:08"
calling = "0655555555"
"""


def test_call_life_abandon_busy_transfer_and_snapshot_after_reconnect(
    scripted, sim_thread, serial_peer
):
    sc = scripted(CALLS, speed=2.0)  # the calls' lives in half the wall time
    sim = sim_thread(sc)
    peer = serial_peer(sim.url)
    peer.pump(0.5)
    assert peer.up
    # the agents logged in before the link came up: a snapshot tells who is there
    for device, agent in (("201", "1001"), ("202", "1002"), ("301", "2001"), ("299", "")):
        snap = peer.request(m.SnapshotDevice, device)
        assert (snap.device, snap.agent_id, snap.hook_off, snap.calls) == (device, agent, False, ())

    # A: offered, queued, routed, alerting, answered, cleared, wrap-up done
    offered = peer.wait_for(lambda x: isinstance(x, m.Offered))
    assert (offered.calling, offered.called, offered.trunk) == ("0611111111", "3000", 1)
    a = offered.call_id
    assert isinstance(peer.request(m.QueueCall, a, "front-desk", 1), m.PositiveAck)
    assert peer.wait_for(lambda x: isinstance(x, m.Queued)).queue == "front-desk"
    assert isinstance(peer.request(m.PlayAnnouncement, a, 2, 1), m.PositiveAck)
    assert isinstance(peer.request(m.DeflectCall, a, "201"), m.PositiveAck)
    diverted = peer.wait_for(lambda x: isinstance(x, m.Diverted))
    assert (diverted.from_device, diverted.to_device) == ("3000", "201")
    delivered = peer.wait_for(lambda x: isinstance(x, m.Delivered))
    assert (delivered.call_id, delivered.device, delivered.calling) == (a, "201", "0611111111")
    established = peer.wait_for(lambda x: isinstance(x, m.Established))
    assert (established.call_id, established.device) == (a, "201")
    cleared = peer.wait_for(lambda x: isinstance(x, m.ConnectionCleared) and x.device == "201")
    assert (cleared.call_id, cleared.cause) == (a, m.Cause.normal)
    peer.wait_for(lambda x: isinstance(x, m.KeyWrapUpDone) and x.device == "201")

    # B: nobody routes it; the caller hangs up
    b = peer.wait_for(lambda x: isinstance(x, m.Offered)).call_id
    gone = peer.wait_for(lambda x: isinstance(x, m.ConnectionCleared) and x.call_id == b)
    assert (gone.device, gone.cause) == ("", m.Cause.caller_abandon)

    # C and D seize both trunks; E gets busy tone and is never offered
    c = peer.wait_for(lambda x: isinstance(x, m.Offered)).call_id
    d = peer.wait_for(lambda x: isinstance(x, m.Offered)).call_id
    peer.pump(1.5)
    assert not [x for x in peer.inbox if isinstance(x, m.Offered)]

    # C: answered at 202, transferred to the specialist at 301
    assert isinstance(peer.request(m.DeflectCall, c, "202"), m.PositiveAck)
    peer.wait_for(lambda x: isinstance(x, m.Established) and x.device == "202")
    busy = peer.request(m.DeflectCall, d, "202")
    assert isinstance(busy, m.NegativeAck) and busy.error == m.ErrorCode.device_busy
    assert isinstance(peer.request(m.SingleStepTransfer, c, "202", "301"), m.PositiveAck)
    moved = peer.wait_for(lambda x: isinstance(x, m.Transferred))
    assert (moved.call_id, moved.from_device, moved.to_device) == (c, "202", "301")
    peer.wait_for(lambda x: isinstance(x, m.Established) and x.device == "301")

    # the controller restarts: a new port and link, then a snapshot resynchronises it
    peer.close()
    again = serial_peer(sim.url)
    again.pump(0.5)
    assert again.up
    calls = again.request(m.SnapshotCalls).calls
    by_id = {info.call_id: info for info in calls}
    assert set(by_id) == {c, d}
    assert (by_id[c].state, by_id[c].device) == (m.CallState.connected, "301")
    assert by_id[d].state == m.CallState.offered
    snap = again.request(m.SnapshotDevice, "301")
    assert (snap.hook_off, snap.agent_id, [i.call_id for i in snap.calls]) == (True, "2001", [c])
    assert isinstance(again.request(m.ClearConnection, d, ""), m.PositiveAck)
    assert sim.stop()

    calls_stats = sim.endpoint.switch.stats
    assert (calls_stats.offered, calls_stats.busy, calls_stats.abandoned) == (4, 1, 1)
    assert (calls_stats.answered, calls_stats.transferred, calls_stats.cleared) == (2, 1, 1)


def test_undecodable_request_gets_a_negative_ack(scripted, sim_thread, serial_peer):
    sim = sim_thread(scripted())
    peer = serial_peer(sim.url)
    peer.pump(0.5)
    assert peer.up
    peer.link.send(bytes([0xEE, 0x12, 0x34, 0x01]), time.monotonic())
    nak = peer.wait_for(lambda x: isinstance(x, m.NegativeAck))
    assert (nak.invoke_id, nak.error) == (0x1234, m.ErrorCode.invalid_parameter)
    assert "opcode" in nak.detail
    unknown = peer.request(m.SetDisplay, "999", "hello")
    assert isinstance(unknown, m.NegativeAck) and unknown.error == m.ErrorCode.invalid_device
    assert sim.stop()


def test_tcp_serves_one_client_at_a_time_like_a_device_server(scripted, sim_thread, serial_peer):
    sim = sim_thread(scripted(CALLS), tcp=True)
    assert sim.url.startswith("socket://127.0.0.1:")
    peer = serial_peer(sim.url)
    peer.pump(0.5)
    assert peer.up
    intruder = socket.create_connection(("127.0.0.1", sim.transport.port), timeout=2)
    intruder.settimeout(2)
    assert intruder.recv(100) == b""  # the port is taken: closed at once
    intruder.close()
    offered = peer.wait_for(lambda x: isinstance(x, m.Offered), timeout=5)
    assert offered.calling == "0611111111"
    snap = peer.request(m.SnapshotCalls)
    assert [c.call_id for c in snap.calls] == [offered.call_id]
    assert sim.stop()


def test_acd_sim_pty_prints_the_path_first_and_stops_on_sigterm_with_a_summary(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "acd", "sim", "--pty", "--speed", "60", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    try:
        path = proc.stdout.readline().decode().strip()
        assert path.startswith("/dev/")
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        try:  # the switch announces itself: a RESET frame within a few seconds
            deadline = time.monotonic() + 5
            data = b""
            while encode_frame(Ctrl.RESET) not in data and time.monotonic() < deadline:
                if select.select([fd], [], [], 0.1)[0]:
                    data += os.read(fd, 4096)
            assert encode_frame(Ctrl.RESET) in data
        finally:
            os.close(fd)
        proc.send_signal(signal.SIGUSR1)  # live faults: the cable, then a reboot
        proc.send_signal(signal.SIGUSR2)
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    assert proc.returncode == 0, err
    summary = json.loads(out.decode().strip().splitlines()[-1])
    assert summary["stopped_by"] == "SIGTERM"
    assert summary["link"]["frames_out"] >= 1
    assert set(summary["calls"]) >= {"offered", "busy", "answered", "abandoned"}
    assert (summary["faults"]["cable_pulls"], summary["faults"]["reboots"]) == (1, 1)
    assert "fault cable started" in out.decode() and "fault reboot started" in out.decode()


def test_acd_sim_ends_with_a_summary_in_words_and_fault_lines_name_their_own_parameters():
    from click.testing import CliRunner

    from acd.cli import cli

    args = ["sim", "--pty", "--speed", "6000", "--duration", "120"]
    args += ["--fault", "cable:at=07:50:30,duration=5", "--fault", "drop:rate=0.001"]
    signals = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2)
    sim_log = logging.getLogger("firmware_sim")

    def state() -> tuple:
        handlers = [signal.getsignal(s) for s in signals]
        return handlers, sim_log.propagate, list(sim_log.handlers), sim_log.level

    before = state()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert state() == before  # run in this process, it gave back Ctrl-C, SIGTERM, the log
    lines = result.stdout.splitlines()
    assert any(line.endswith("fault cable started at 07:50:30, duration=5") for line in lines)
    assert any(line.endswith("fault drop started rate=0.001") for line in lines)
    assert lines[-5].startswith("summary: town-hall-weekday-250, end of run at 07:5")
    assert [line[:12] for line in lines[-4:]] == [
        "  calls:    ",
        "  messages: ",
        "  link:     ",
        "  faults:   ",
    ]
    assert "1 cable pulls" in lines[-1] and "{" not in result.stdout


def test_acd_sim_started_after_the_scenarios_end_runs_on_to_midnight():
    from click.testing import CliRunner

    from acd.cli import cli

    result = CliRunner().invoke(cli, ["sim", "--pty", "--speed", "60000", "--start", "23:58"])
    assert result.exit_code == 0, result.output
    assert "from 23:58:00 at 60000x" in result.stdout
    assert "end of run at 24:00:00" in result.stdout


def test_serve_runs_everything_due_before_the_end_even_when_it_wakes_up_late():
    """A thread not scheduled until long after the day's end (a loaded machine, a high
    speed) still runs what was due in it: the scheduled fault and the calls, no later."""
    sc = load_scenario("town-hall-weekday-250")
    sc = dataclasses.replace(sc, start_s=9 * 3600.0, end_s=9 * 3600.0 + 600, speed=6000.0)
    cable = FaultSpec("cable", at=9 * 3600.0 + 30, duration=5.0)
    endpoint = SwitchEndpoint(sc, Clock(sc.start_s, 0.0, sc.speed), (cable,))
    endpoint.start(0.0)
    transport = PtyTransport()
    try:
        serve(endpoint, transport, lambda: False, now=lambda: 3600.0)  # an hour late
    finally:
        transport.close()
    assert endpoint.faults.stats.cable_pulls == 1
    offered = [t for t, x in endpoint.produced if isinstance(x, m.Offered)]
    assert offered and max(offered) <= endpoint.clock.when(sc.end_s)

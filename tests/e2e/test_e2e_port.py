"""The PBX port driver over a real pty, a real TCP socket (``socket://``), a real RFC 2217
server (``rfc2217://``) and ``loop://``; exclusive opening; `acd run` and `acd port test`
over each."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import sqlite3
import subprocess
import tty
from collections.abc import Callable

import pytest
from click.testing import CliRunner

from acd.cli import cli
from acd.config import LinkConfig
from acd.errors import AcdError
from drivers.port_test import PortTestError, run_port_test
from drivers.serial_link import open_port
from protocols import messages as m

BUSY = "busy: held by another program"
BUSY_HINT = "(a running `acd run`? stop it first)"


def _reader(fd: int) -> Callable[[], bytearray]:
    """Bytes read so far from non-blocking ``fd``: call ``read()`` to read more."""
    os.set_blocking(fd, False)
    got = bytearray()

    def read() -> bytearray:
        with contextlib.suppress(BlockingIOError):
            got.extend(os.read(fd, 4096))
        return got

    return read


def test_pty_bytes_both_ways_with_capture_and_loss_when_the_other_end_closes(kit):
    async def main() -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        received = bytearray()
        lost: list[object] = []
        captured: list[tuple[str, bytes]] = []
        port = await open_port(
            os.ttyname(slave),
            LinkConfig(baudrate=9600),
            received.extend,
            lost.append,
            capture=lambda d, data, t: captured.append((d, data)),
        )
        os.close(slave)
        port.write(b"\x10\x02hello")
        read = _reader(master)
        await kit.wait_until(lambda: read() == b"\x10\x02hello", 10, "the bytes at the switch end")
        os.write(master, b"from the switch")
        await kit.wait_until(
            lambda: bytes(received) == b"from the switch", 10, "the bytes from the switch"
        )
        assert ("tx", b"\x10\x02hello") in captured and ("rx", b"from the switch") in captured
        assert (port.bytes_in, port.bytes_out) == (15, 7)
        os.close(master)  # the cable is pulled
        await kit.wait_until(lambda: lost, 10, "the port lost")
        assert not port.is_open
        port.write(b"ignored")  # writing to a lost port is a no-op, not a crash
        await port.close()

    asyncio.run(main())


def test_socket_url_talks_to_a_serial_device_server(kit):
    async def main() -> None:
        server = socket.create_server(("127.0.0.1", 0))
        server.settimeout(10)
        url = f"socket://127.0.0.1:{server.getsockname()[1]}"
        received = bytearray()
        lost: list[object] = []
        port = await open_port(url, LinkConfig(), received.extend, lost.append)
        conn, _ = await asyncio.get_running_loop().run_in_executor(None, server.accept)
        port.write(b"ping")
        read = _reader(conn.fileno())
        await kit.wait_until(lambda: read() == b"ping", 10, "the bytes at the device server")
        conn.sendall(b"pong")
        await kit.wait_until(
            lambda: bytes(received) == b"pong", 10, "the bytes from the device server"
        )
        conn.close()
        await kit.wait_until(lambda: lost, 10, "the connection lost")
        await port.close()
        server.close()

    asyncio.run(main())


@pytest.mark.parametrize("url", ["/dev/ttyNOPE9", "socket://127.0.0.1:1"])
def test_missing_port_is_a_clear_error_naming_the_url(url):
    async def main() -> None:
        await open_port(url, LinkConfig(), lambda d: None, lambda e: None)

    with pytest.raises(AcdError, match=f"cannot open PBX link {url}: "):
        asyncio.run(main())


def test_parity_a_pty_cannot_do_is_a_clear_error():
    master, slave = os.openpty()

    async def main() -> None:
        await open_port(os.ttyname(slave), LinkConfig(parity="E"), lambda d: None, print)

    try:
        with pytest.raises(AcdError, match="cannot open PBX link /dev/pts/"):
            asyncio.run(main())
    finally:
        os.close(master)
        os.close(slave)


def test_loop_url_without_a_file_descriptor_echoes_and_closes(kit):
    async def main() -> None:
        received = bytearray()
        lost: list[object] = []
        port = await open_port("loop://", LinkConfig(), received.extend, lost.append)
        port.write(b"\x10\x02echo")
        await kit.wait_until(lambda: bytes(received) == b"\x10\x02echo", 10, "the echo")
        await port.close()
        assert lost == [None] and not port.is_open

    asyncio.run(main())
    result = CliRunner().invoke(cli, ["port", "test", "loop://"])
    assert result.exit_code == 0, result.output
    assert "loopback OK: 4096 bytes sent and received intact" in result.output


def test_rfc2217_port_reaches_the_device_and_is_lost_with_the_server(kit, rfc2217_server):
    async def main() -> None:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        server = rfc2217_server(os.ttyname(slave))
        received = bytearray()
        lost: list[object] = []
        port = await open_port(server.url, LinkConfig(baudrate=9600), received.extend, lost.append)
        port.write(b"to the switch \xff")  # 0xFF is doubled on the wire, undone by the server
        read = _reader(master)
        await kit.wait_until(lambda: read() == b"to the switch \xff", 10, "the bytes at the pty")
        os.write(master, b"from the switch \xff")
        await kit.wait_until(
            lambda: bytes(received) == b"from the switch \xff", 10, "the bytes from the pty"
        )
        server.stop()  # the device server goes away
        await kit.wait_until(lambda: lost, 10, "the port lost")
        await port.close()
        os.close(master)
        os.close(slave)

    asyncio.run(main())


def test_port_test_through_an_rfc2217_server_to_the_simulated_switch(
    kit, sim_thread, rfc2217_server
):
    sim = sim_thread(kit.hour_scenario(volume=10, start="08:00", end="09:00", speed=1))
    server = rfc2217_server(sim.url)
    result = CliRunner().invoke(cli, ["port", "test", server.url])
    assert result.exit_code == 0, result.output
    verdict = re.search(r"verdict:  (.*)", result.output).group(1)
    assert re.fullmatch(
        r"peer answers: link up after \d+\.\d\d s, SystemStatus answered with PositiveAck",
        verdict,
    )
    assert server.sessions == 1 and sim.endpoint.link_ups >= 1


def _answered(db) -> set[int]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT call_id FROM calls WHERE outcome = 'answered'").fetchall()
    return {call_id for (call_id,) in rows}


@pytest.mark.timeout(90)
def test_run_routes_calls_through_an_rfc2217_server(kit, sim_thread, rfc2217_server, tmp_path):
    sim = sim_thread(kit.hour_scenario(volume=120, start="08:55", end="09:12", speed=200))
    server = rfc2217_server(sim.url)
    config = tmp_path / "site.toml"
    config.write_text(kit.CONFIG.read_text().replace("t1 = 1.0", "t1 = 0.2"))
    command = sim.run_command(config, tmp_path / "acd.db")
    command[command.index(sim.url)] = server.url
    with open(tmp_path / "run.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            sim.thread.join(60)
            assert not sim.thread.is_alive(), "the simulated 17 minutes did not end in 60 s"
        finally:
            code = kit.stop_process(proc)
    assert code == 0, (tmp_path / "run.log").read_text()[-2000:]
    offered = kit.offered_ids(sim)
    answered = _answered(tmp_path / "acd.db")
    assert len(offered) >= 5 and len(answered & offered) >= 3  # offered over the live link
    deflected = [x for x in sim.endpoint.received if isinstance(x, m.DeflectCall)]
    assert {x.call_id for x in deflected} >= answered  # each routed by the controller
    assert server.sessions == 1


def test_a_port_is_opened_exclusively(kit):
    async def main() -> None:
        master, slave = os.openpty()
        path = os.ttyname(slave)
        first = await open_port(path, LinkConfig(), lambda d: None, lambda e: None)
        try:
            with pytest.raises(AcdError, match=f"cannot open PBX link {path}: {BUSY}"):
                await open_port(path, LinkConfig(), lambda d: None, lambda e: None)
            with pytest.raises(PortTestError, match=f"{path}: {BUSY}"):
                run_port_test(path)
        finally:
            await first.close()
        second = await open_port(path, LinkConfig(), lambda d: None, lambda e: None)
        await second.close()  # free again once closed
        os.close(master)
        os.close(slave)

    asyncio.run(main())


@pytest.mark.timeout(90)
def test_second_controller_on_the_port_is_refused_and_the_first_keeps_its_link(
    kit, sim_thread, tmp_path
):
    sim = sim_thread(kit.hour_scenario(volume=60, start="08:59", end="09:30", speed=60))
    command = sim.run_command(kit.CONFIG, tmp_path / "acd.db")
    with open(tmp_path / "run.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log)
        try:
            asyncio.run(kit.wait_until(lambda: sim.endpoint.link_ups >= 1, 30, "the link up"))
            second = subprocess.run(
                sim.run_command(kit.CONFIG, tmp_path / "other.db"),
                capture_output=True,
                text=True,
                timeout=30,
            )
            assert second.returncode == 1
            assert second.stderr.strip().splitlines() == [
                f"Error: cannot open PBX link {sim.url}: {BUSY} {BUSY_HINT}"
            ]
            tested = CliRunner().invoke(cli, ["port", "test", sim.url])
            assert tested.exit_code == 1
            assert f"{sim.url}: {BUSY}" in tested.output
            assert proc.poll() is None and sim.endpoint.link_ups == 1
        finally:
            code = kit.stop_process(proc)
    assert code == 0, (tmp_path / "run.log").read_text()[-2000:]

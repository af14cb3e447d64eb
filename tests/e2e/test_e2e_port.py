"""The PBX port driver over a real pty and a real TCP socket (``socket://``)."""

from __future__ import annotations

import asyncio
import os
import socket
import tty

import pytest

from acd.config import LinkConfig
from acd.errors import AcdError
from drivers.serial_link import open_port


async def _wait_for(predicate, timeout: float = 3.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not predicate():
        if loop.time() > end:
            raise AssertionError("timed out")
        await asyncio.sleep(0.01)


def test_pty_bytes_both_ways_with_capture_and_loss_when_the_other_end_closes():
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
        await _wait_for(lambda: os.read(master, 100) == b"\x10\x02hello")
        os.write(master, b"from the switch")
        await _wait_for(lambda: bytes(received) == b"from the switch")
        assert ("tx", b"\x10\x02hello") in captured and ("rx", b"from the switch") in captured
        assert (port.bytes_in, port.bytes_out) == (15, 7)
        os.close(master)  # the cable is pulled
        await _wait_for(lambda: lost)
        assert not port.is_open
        port.write(b"ignored")  # writing to a lost port is a no-op, not a crash
        await port.close()

    asyncio.run(main())


def test_socket_url_talks_to_a_serial_device_server():
    async def main() -> None:
        server = socket.create_server(("127.0.0.1", 0))
        url = f"socket://127.0.0.1:{server.getsockname()[1]}"
        received = bytearray()
        lost: list[object] = []
        port = await open_port(url, LinkConfig(), received.extend, lost.append)
        conn, _ = await asyncio.get_running_loop().run_in_executor(None, server.accept)
        port.write(b"ping")
        assert conn.recv(10) == b"ping"
        conn.sendall(b"pong")
        await _wait_for(lambda: bytes(received) == b"pong")
        conn.close()
        await _wait_for(lambda: lost)
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

"""The PBX port driver over a real pty and a real TCP socket (``socket://``)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import tty
from collections.abc import Callable

import pytest

from acd.config import LinkConfig
from acd.errors import AcdError
from drivers.serial_link import open_port


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

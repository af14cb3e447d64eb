"""The PBX port: a pyserial URL opened on the asyncio event loop (pyserial-asyncio-fast).

``await open_port(url, config, on_data, on_lost)`` opens ``/dev/ttyS0``, a pty path,
``socket://host:port`` (a serial device server) or ``rfc2217://host:port`` with the
baud rate and parity of `acd.config.LinkConfig`, and returns a `SerialPort`. Received
bytes go to ``on_data`` as they arrive; ``on_lost`` is called once when the port fails
or closes (cable pulled, device server gone). A port that cannot be opened raises
`acd.errors.AcdError` naming the URL. This module only moves bytes: framing and the
link layer are ``protocols``'s.

An optional ``capture`` hook sees every chunk: ``capture(direction, data, time)`` with
direction ``"rx"`` (from the switch) or ``"tx"`` (to the switch) and Unix time.
"""

from __future__ import annotations

import asyncio
import termios
import time
from collections.abc import Callable

import serial
import serial_asyncio_fast

from acd.config import LinkConfig
from acd.errors import AcdError

Capture = Callable[[str, bytes, float], None]
"""``capture(direction, data, unix_time)``; direction is ``"rx"`` or ``"tx"``."""


class _Protocol(asyncio.Protocol):
    def __init__(self, port: SerialPort) -> None:
        self.port = port

    def data_received(self, data: bytes) -> None:
        self.port._received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.port._lost(exc)


class SerialPort:
    """An open PBX port. Write with `write`; `close` when done."""

    def __init__(
        self,
        url: str,
        on_data: Callable[[bytes], None],
        on_lost: Callable[[Exception | None], None],
        capture: Capture | None = None,
    ) -> None:
        self.url = url
        self.bytes_in = 0
        self.bytes_out = 0
        self._on_data = on_data
        self._on_lost = on_lost
        self._capture = capture
        self._transport: asyncio.Transport | None = None
        self._closed = asyncio.Event()

    @property
    def is_open(self) -> bool:
        """True until the port failed or was closed."""
        return self._transport is not None and not self._closed.is_set()

    def write(self, data: bytes) -> None:
        """Queue ``data`` for the port (never blocks; dropped once the port is lost)."""
        if not data or not self.is_open:
            return
        self.bytes_out += len(data)
        if self._capture is not None:
            self._capture("tx", data, time.time())
        self._transport.write(data)

    async def close(self, timeout: float = 2.0) -> None:
        """Close the port and wait (at most ``timeout`` s) until it is released."""
        if self._transport is not None and not self._closed.is_set():
            self._transport.close()
            try:
                await asyncio.wait_for(self._closed.wait(), timeout)
            except TimeoutError:
                self._transport.abort()

    def _received(self, data: bytes) -> None:
        self.bytes_in += len(data)
        if self._capture is not None:
            self._capture("rx", data, time.time())
        self._on_data(data)

    def _lost(self, exc: Exception | None) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._on_lost(exc)


async def open_port(
    url: str,
    config: LinkConfig,
    on_data: Callable[[bytes], None],
    on_lost: Callable[[Exception | None], None],
    capture: Capture | None = None,
) -> SerialPort:
    """Open the PBX port at ``url`` (see the module docstring); `AcdError` if impossible."""
    port = SerialPort(url, on_data, on_lost, capture)
    loop = asyncio.get_running_loop()
    try:
        transport, _ = await serial_asyncio_fast.create_serial_connection(
            loop,
            lambda: _Protocol(port),
            url,
            baudrate=config.baudrate,
            parity=config.parity,
            bytesize=serial.EIGHTBITS,
            stopbits=serial.STOPBITS_ONE,
        )
    except (serial.SerialException, OSError, ValueError, termios.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AcdError(f"cannot open PBX link {url}: {reason}") from None
    port._transport = transport
    return port

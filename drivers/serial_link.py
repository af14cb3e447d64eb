"""The PBX port: a pyserial URL opened on the asyncio event loop (pyserial-asyncio-fast).

``await open_port(url, settings, on_data, on_lost)`` opens ``/dev/ttyS0``, a pty path,
``socket://host:port`` (a serial device server, raw TCP), ``rfc2217://host:port`` (one
speaking RFC 2217) or ``loop://`` with the baud rate and parity of ``settings`` (a
`drivers.settings.PortSettings`, such as ``[link]``'s), and returns a `SerialPort`.
Serial devices and ptys are opened exclusively (pyserial's ``exclusive=True``, an
advisory ``flock``): a second controller or ``acd port test`` on a port in use is
refused with "busy: held by another program".
Ports with a file descriptor are watched by the event loop (pyserial-asyncio-fast);
those without one (``rfc2217://``, ``loop://``) are moved by two threads
(`drivers.port_thread`). Received bytes go to ``on_data`` as they arrive; ``on_lost`` is
called once when the port fails or closes (cable pulled, device server gone). A port
that cannot be opened raises `acd.errors.AcdError` naming the URL and the reason. This
module only moves bytes: framing and the link layer are ``protocols``'s.

An optional ``capture`` hook sees every chunk: ``capture(direction, data, time)`` with
direction ``"rx"`` (from the switch) or ``"tx"`` (to the switch) and Unix time.
"""

from __future__ import annotations

import asyncio
import errno
import termios
import time
import urllib.parse
from collections.abc import Callable
from functools import partial

import serial
import serial_asyncio_fast

from acd.errors import AcdError
from drivers.port_thread import ThreadedTransport
from drivers.settings import PortSettings

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

    def abort(self) -> None:
        """Close the port at once, dropping what was not written yet (a controller that
        lost its lease: not one more byte to the switch)."""
        if self._transport is not None and not self._closed.is_set():
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


OPEN_ERRORS = (serial.SerialException, OSError, ValueError, termios.error)
"""What opening a port raises when it cannot be used (see `open_error_reason`)."""


def open_serial(
    url: str,
    baudrate: int,
    parity: str = "N",
    timeout: float = 0.05,
    write_timeout: float | None = None,
) -> serial.SerialBase:
    """Open the pyserial port ``url`` (8 data bits, 1 stop bit), exclusively where the
    port type knows how, reads waiting at most ``timeout`` s; ``write_timeout`` applies
    to OS serial devices and ptys (RFC 2217 ports refuse one). Raises one of `OPEN_ERRORS`."""
    port = serial.serial_for_url(
        url,
        baudrate=baudrate,
        parity=parity,
        bytesize=serial.EIGHTBITS,
        stopbits=serial.STOPBITS_ONE,
        timeout=timeout,
        exclusive=True,
        do_not_open=True,
    )
    if isinstance(port, serial.Serial):  # the OS's own serial port class
        port.write_timeout = write_timeout
    port.open()
    return port


def file_descriptor(port: serial.SerialBase) -> int | None:
    """The port's file descriptor, or None for one without (``rfc2217://``, ``loop://``)."""
    try:
        return port.fileno()
    except (AttributeError, OSError, NotImplementedError):  # io.UnsupportedOperation
        return None


def open_error_reason(exc: Exception) -> str:
    """Plain words for why a port could not be opened."""
    code = getattr(exc, "errno", None)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if code == errno.ENOENT or "No such file" in text:
        return "no such port (check the name with `acd ports`)"
    if code in (errno.EACCES, errno.EPERM) or "Permission denied" in text:
        return "permission denied (add the user to the dialout group, or run as root)"
    if code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK) or "exclusively lock" in text:
        return "busy: held by another program (a running `acd run`? stop it first)"
    if code == errno.ECONNREFUSED or "Connection refused" in text:
        return "connection refused: nothing listens there"
    return text


async def open_port(
    url: str,
    settings: PortSettings,
    on_data: Callable[[bytes], None],
    on_lost: Callable[[Exception | None], None],
    capture: Capture | None = None,
) -> SerialPort:
    """Open the PBX port at ``url`` (see the module docstring); `AcdError` if impossible."""
    port = SerialPort(url, on_data, on_lost, capture)
    loop = asyncio.get_running_loop()
    try:
        if urllib.parse.urlparse(url).scheme == "socket":  # a TCP socket the loop watches
            transport, _ = await serial_asyncio_fast.create_serial_connection(
                loop,
                lambda: _Protocol(port),
                url,
                baudrate=settings.baudrate,
                parity=settings.parity,
            )
        else:
            opened = partial(open_serial, url, settings.baudrate, settings.parity)
            device = await loop.run_in_executor(None, opened)
            if file_descriptor(device) is None:
                transport = ThreadedTransport(loop, _Protocol(port), device)
            else:
                transport, _ = await serial_asyncio_fast.connection_for_serial(
                    loop, lambda: _Protocol(port), device
                )
    except OPEN_ERRORS as exc:
        raise AcdError(f"cannot open PBX link {url}: {open_error_reason(exc)}") from None
    port._transport = transport
    return port

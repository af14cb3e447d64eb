"""An asyncio transport over a pyserial port that has no file descriptor.

``rfc2217://`` and ``loop://`` ports (and any other pyserial URL handler without a
``fileno``) cannot be watched by the event loop. `ThreadedTransport` moves their bytes
with two threads instead: a reader that blocks in ``read`` (the port's own ``timeout``
bounds each wait) and hands what it got to the protocol on the loop, and a writer that
drains a queue, so ``write`` never blocks the loop. A read or write failure, or
``close``, ends both threads, closes the port and calls ``connection_lost`` once.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading

import serial


class ThreadedTransport(asyncio.Transport):
    """``asyncio.Transport`` for an open pyserial port read and written by two threads.

    The port must have been opened with a short read ``timeout`` (e.g. 0.05 s): it is
    how often the reader notices `close`.
    """

    def __init__(
        self, loop: asyncio.AbstractEventLoop, protocol: asyncio.Protocol, port: serial.SerialBase
    ) -> None:
        super().__init__()
        self._loop = loop
        self._protocol = protocol
        self._serial = port
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._error: Exception | None = None
        self._writer = threading.Thread(target=self._write_loop, daemon=True)
        self._reader = threading.Thread(target=self._read_loop, daemon=True)
        loop.call_soon(protocol.connection_made, self)
        self._writer.start()
        self._reader.start()

    def get_extra_info(self, name: str, default: object = None) -> object:
        return self._serial if name == "serial" else default

    def is_closing(self) -> bool:
        return self._closing.is_set()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Queue ``data`` for the writer thread (dropped once closing)."""
        if data and not self._closing.is_set():
            self._outbox.put(bytes(data))

    def close(self) -> None:
        """Send what is queued, then close the port (``connection_lost(None)``)."""
        self._stop(None)

    def abort(self) -> None:
        self.close()

    def _stop(self, error: Exception | None) -> None:
        if not self._closing.is_set():
            self._error = error
            self._closing.set()
            self._outbox.put(None)

    def _write_loop(self) -> None:
        while (data := self._outbox.get()) is not None:
            try:
                self._serial.write(data)
            except Exception as exc:
                self._stop(exc)
                return

    def _read_loop(self) -> None:
        try:
            while not self._closing.is_set():
                data = self._serial.read(max(1, self._serial.in_waiting))
                if data:
                    self._loop.call_soon_threadsafe(self._protocol.data_received, data)
        except Exception as exc:
            self._stop(exc)
        self._writer.join()
        with contextlib.suppress(Exception):
            self._serial.close()
        with contextlib.suppress(RuntimeError):  # the loop may be gone at exit
            self._loop.call_soon_threadsafe(self._protocol.connection_lost, self._error)

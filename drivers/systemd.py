"""The systemd service-manager protocol (``sd_notify``), implemented directly.

A service started with ``Type=notify`` gets ``NOTIFY_SOCKET``: the path of a unix
datagram socket (``@name`` for an abstract one). Each notification is one datagram of
``KEY=VALUE`` lines: ``READY=1``, ``STOPPING=1``, ``RELOADING=1``, ``STATUS=text``,
``WATCHDOG=1``. ``WATCHDOG_USEC`` (and ``WATCHDOG_PID``, when set, naming this process)
says how often the watchdog must be fed. Outside systemd every call is a no-op.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger("acd.systemd")


class Notifier:
    """Sends notifications to the service manager (nothing if ``NOTIFY_SOCKET`` is unset)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address: str | bytes | None = None
        if path.startswith("@"):
            self.address = b"\0" + path[1:].encode()
        elif path.startswith("/"):
            self.address = path
        self.watchdog_interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._warned = False

    @property
    def enabled(self) -> bool:
        """True when a service manager listens."""
        return self.address is not None

    def notify(self, **fields: object) -> bool:
        """Send ``KEY=value`` lines (``notify(READY=1, STATUS="link up")``); True if sent.

        Never blocks (a manager that does not read its full queue loses the message
        rather than stall the event loop); a failure is logged once, never raised."""
        if self.address is None:
            return False
        message = "\n".join(f"{k}={v}" for k, v in fields.items()).encode()
        try:
            if self._sock is None:
                kind = socket.SOCK_DGRAM | socket.SOCK_CLOEXEC | socket.SOCK_NONBLOCK
                self._sock = socket.socket(socket.AF_UNIX, kind)
            self._sock.sendto(message, self.address)
        except OSError as exc:
            if not self._warned:
                self._warned = True
                log.warning("systemd notification not sent: %s", exc)
            return False
        return True

    def close(self) -> None:
        """Release the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    """Seconds between two ``WATCHDOG=1`` (half ``WATCHDOG_USEC``), None if no watchdog."""
    pid = env.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        usec = int(env.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None

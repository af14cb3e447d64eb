"""Serial port diagnostics: list ports, open one, loopback test, link handshake.

Every failure is a `PortTestError` whose message says in plain words what is wrong and
what to check. `run_port_test` opens the port, reads back its settings, then sends a
short probe: if the probe comes back the port has a loopback plug (TX→RX) and a full
pattern is sent at the baud rate and compared; otherwise it brings the CTI link up
(RESET / RESET-ACK with `protocols.link.Link`) with whatever switch answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import serial
import serial.tools.list_ports

from acd.errors import AcdError
from drivers.serial_link import OPEN_ERRORS, open_error_reason, open_serial
from protocols.link import Link, LinkUp, MessageReceived, Role
from protocols.messages import SystemStatus, SystemStatusCode, message_name

READ_WAIT = 0.02
"""Seconds a read waits for the first byte (bounds the pacing of the test loops)."""

PROBE = bytes(range(0x20, 0x60))
"""Sent first: printable bytes, no DLE, so a switch never takes it for a frame."""


class PortTestError(AcdError):
    """The port cannot be used, said in plain words."""


@dataclass(frozen=True)
class PortInfo:
    """One serial port as the OS describes it."""

    device: str
    description: str
    hwid: str


def list_serial_ports() -> list[PortInfo]:
    """The serial ports of this machine, sorted by device name."""
    ports = serial.tools.list_ports.comports()
    return sorted(
        (PortInfo(p.device, p.description or "n/a", p.hwid or "n/a") for p in ports),
        key=lambda p: p.device,
    )


@dataclass
class PortTestResult:
    """What the test found; ``verdict`` is the one-line conclusion."""

    url: str
    ok: bool
    mode: str  # "loopback" or "handshake"
    verdict: str
    settings: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_port(url: str, baudrate: int, parity: str = "N") -> serial.SerialBase:
    """Open ``url`` (device path, pty, ``socket://``, ``rfc2217://``, ``loop://``...)
    exclusively, reads waiting at most `READ_WAIT` s; `PortTestError` in plain words."""
    try:
        # a device that never drains is reported, not waited on
        port = open_serial(url, baudrate, parity, timeout=READ_WAIT, write_timeout=2)
    except ValueError as exc:
        raise PortTestError(f"{url}: bad setting: {exc}") from None
    except OPEN_ERRORS as exc:
        raise PortTestError(f"{url}: {open_error_reason(exc)}") from None
    return port


def _settings(port: serial.SerialBase) -> str:
    stop = {1: "1", 1.5: "1.5", 2: "2"}.get(port.stopbits, str(port.stopbits))
    return f"{port.baudrate} baud {port.bytesize}{port.parity}{stop}"


def _exchange(port: serial.SerialBase, data: bytes, wait: float, expect: int) -> bytes:
    """Write ``data`` (paced in small chunks) and read until ``expect`` bytes or ``wait`` s
    of quiet after the last write."""
    got = bytearray()
    pos = 0
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and len(got) < expect:
        if pos < len(data):
            chunk = data[pos : pos + 256]
            port.write(chunk)
            pos += len(chunk)
            deadline = time.monotonic() + wait
        got += _read(port)
    return bytes(got)


def _read(port: serial.SerialBase) -> bytes:
    """What the port has, waiting at most `READ_WAIT` s for the first byte."""
    return port.read(max(1, port.in_waiting))


def _read_fail(url: str, exc: Exception) -> PortTestError:
    return PortTestError(f"{url}: the port failed during the test ({exc}): is it unplugged?")


def run_port_test(
    url: str,
    baudrate: int = 115200,
    parity: str = "N",
    *,
    pattern_bytes: int = 4096,
    timeout: float = 5.0,
    on_wait: Callable[[float], object] | None = None,
) -> PortTestResult:
    """Open the port, then a loopback test if the probe echoes, else a link handshake;
    while waiting for a switch to answer, ``on_wait`` gets the seconds waited so far."""
    port = open_port(url, baudrate, parity)
    try:
        settings = _settings(port)
        byte_time = 10.0 / baudrate
        try:
            port.reset_input_buffer()
            echo = _exchange(port, PROBE, 0.2 + 2 * len(PROBE) * byte_time, len(PROBE))
        except (OSError, serial.SerialException) as exc:
            raise _read_fail(url, exc) from None
        if PROBE in echo or _similar(echo, PROBE):
            return _loopback(port, url, settings, pattern_bytes, byte_time)
        return _handshake(port, url, settings, echo, timeout, on_wait)
    finally:
        port.close()


def _similar(got: bytes, sent: bytes) -> bool:
    """Mostly the same bytes (an echo through a noisy or mis-set line)."""
    if not got or abs(len(got) - len(sent)) > len(sent) // 4:
        return False
    same = sum(a == b for a, b in zip(got, sent, strict=False))
    return same >= len(sent) // 2


def _loopback(
    port: serial.SerialBase, url: str, settings: str, size: int, byte_time: float
) -> PortTestResult:
    pattern = bytes(i & 0xFF for i in range(size))
    try:
        port.reset_input_buffer()
        got = _exchange(port, pattern, 0.5 + 2 * 256 * byte_time, len(pattern))
    except (OSError, serial.SerialException) as exc:
        raise _read_fail(url, exc) from None
    errors = sum(a != b for a, b in zip(got, pattern, strict=False))
    lost = max(0, len(pattern) - len(got))
    extra = max(0, len(got) - len(pattern))
    details = {
        "sent": len(pattern),
        "received": len(got),
        "errors": errors,
        "lost": lost,
        "extra": extra,
    }
    if not errors and not lost and not extra:
        verdict = f"loopback OK: {len(pattern)} bytes sent and received intact at {settings}"
        return PortTestResult(url, True, "loopback", verdict, settings, details)
    counts = ((errors, "wrong"), (lost, "lost"), (extra, "extra"))
    problems = [f"{n} {what}" for n, what in counts if n]
    verdict = (
        f"loopback FAILED: {', '.join(problems)} of {len(pattern)} bytes: "
        "check the cable, the plug and the baud rate"
    )
    return PortTestResult(url, False, "loopback", verdict, settings, details)


def _handshake(
    port: serial.SerialBase,
    url: str,
    settings: str,
    heard: bytes,
    timeout: float,
    on_wait: Callable[[float], object] | None = None,
) -> PortTestResult:
    """Bring the CTI link up and send one SystemStatus; report what the peer did."""
    link = Link(Role.CONTROLLER, t1=0.5, n2=3, heartbeat=2.0, reset_interval=0.5)
    start = time.monotonic()
    link.start(start)
    link.receive_data(heard, start)  # its counters cover what answered the probe too
    received = len(heard)
    up_after: float | None = None
    answer: str | None = None
    end = start + timeout
    try:
        while time.monotonic() < end and answer is None:
            now = time.monotonic()
            if on_wait is not None:
                on_wait(now - start)
            link.handle_timer(now)
            out = link.data_to_send()
            if out:
                port.write(out)
            data = _read(port)
            if data:
                received += len(data)
                link.receive_data(data, time.monotonic())
            while (event := link.next_event()) is not None:
                if isinstance(event, LinkUp) and up_after is None:
                    up_after = time.monotonic() - start
                    link.send(SystemStatus(1, SystemStatusCode.normal), time.monotonic())
                    end = min(end, time.monotonic() + 2.0)
                elif isinstance(event, MessageReceived) and event.message.invoke_id == 1:
                    answer = message_name(event.message)
        port.write(link.data_to_send())  # the acknowledgement of the answer
    except (OSError, serial.SerialException) as exc:
        raise _read_fail(url, exc) from None
    stats = link.stats
    details = {
        "bytes_received": received,
        "frames": stats.frames_in,
        "bad_crc": stats.crc_errors,
        "bad_length": stats.length_errors,
        "dropped_bytes": stats.dropped_bytes,
        "link_up_s": None if up_after is None else round(up_after, 3),
        "answer": answer,
    }
    if up_after is not None:
        reply = f"SystemStatus answered with {answer}" if answer else "no answer to SystemStatus"
        verdict = f"peer answers: link up after {up_after:.2f} s, {reply}"
        return PortTestResult(url, True, "handshake", verdict, settings, details)
    if received == 0:
        verdict = (
            "nothing received: no echo (is the loopback plug fitted?) and no switch answered "
            "(check the cable, a null-modem if needed, and that the switch's CTI port is on)"
        )
    elif stats.frames_in == 0 or stats.crc_errors + stats.length_errors > stats.frames_in:
        verdict = (
            f"garbage: {received} bytes received but no intact frame: "
            f"check baud rate and parity (this port: {settings})"
        )
    else:
        verdict = (
            f"the peer sends frames ({stats.frames_in} intact) but the link did not come up: "
            "is it a CTI link of this protocol?"
        )
    return PortTestResult(url, False, "handshake", verdict, settings, details)

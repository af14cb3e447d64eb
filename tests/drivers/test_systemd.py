"""The sd_notify protocol against real unix datagram sockets (path and abstract)."""

from __future__ import annotations

import os
import socket
import uuid

from drivers.systemd import Notifier


def _listener(address) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(address)
    sock.settimeout(2)
    return sock


def test_notifications_reach_a_socket_named_by_path(tmp_path):
    path = str(tmp_path / "notify")
    with _listener(path) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": path})
        assert notifier.enabled and notifier.notify(READY=1, STATUS="link up")
        assert sock.recv(4096) == b"READY=1\nSTATUS=link up"
        notifier.close()


def test_an_abstract_socket_is_named_with_an_at_sign():
    name = f"acd-test-{uuid.uuid4().hex}"
    with _listener(b"\0" + name.encode()) as sock:
        notifier = Notifier({"NOTIFY_SOCKET": f"@{name}"})
        assert notifier.notify(WATCHDOG=1)
        assert sock.recv(4096) == b"WATCHDOG=1"
        notifier.close()


def test_without_a_manager_nothing_is_sent_and_a_dead_socket_is_not_fatal(tmp_path, caplog):
    assert not Notifier({}).enabled and not Notifier({}).notify(READY=1)
    gone = Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert not gone.notify(READY=1) and not gone.notify(STATUS="x")
    assert caplog.text.count("systemd notification not sent") == 1


def test_watchdog_interval_is_half_watchdog_usec_for_this_process_only():
    pid = str(os.getpid())
    assert Notifier({"WATCHDOG_USEC": "30000000"}).watchdog_interval == 15.0
    assert Notifier({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": pid}).watchdog_interval == 0.2
    assert Notifier({"WATCHDOG_USEC": "400000", "WATCHDOG_PID": "1"}).watchdog_interval is None
    assert Notifier({"WATCHDOG_USEC": "junk"}).watchdog_interval is None
    assert Notifier({}).watchdog_interval is None


def test_a_manager_that_does_not_read_never_blocks_the_sender(tmp_path):
    path = str(tmp_path / "notify")
    with _listener(path):
        notifier = Notifier({"NOTIFY_SOCKET": path})
        sent = [notifier.notify(WATCHDOG=1) for _ in range(500)]  # the queue fills up
        assert sent[0] and not sent[-1]
        notifier.close()

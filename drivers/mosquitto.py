"""A private Mosquitto on free loopback ports, for `acd demo` and the tests.

It never touches the machine's own broker: it runs its own configuration, password
file and ACL from a directory of ours, and stops when the ``with`` block ends.

Usage::

    with secure_mosquitto(tmp_dir, {"acd-townhall": pw, "wallboard": pw2}, ACL) as port:
        ...  # 127.0.0.1:port refuses anonymous clients and applies the ACL
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

from acd.errors import AcdError
from acd.shipped import example

HOST = "127.0.0.1"
EXAMPLES = example("mosquitto")
ACL_EXAMPLE = EXAMPLES / "acl"  # the ACL of docs/mqtt.md, for the reference site
CONF_EXAMPLE = EXAMPLES / "acd.conf"  # the broker settings of docs/mqtt.md


class MosquittoError(AcdError):
    """Mosquitto is missing or did not start."""


def site_acl(prefix: str, site: str, controller: str) -> str:
    """The shipped ACL (site ``town-hall``, prefix ``acd/v1``, controller account
    ``acd-townhall``) for another site, prefix or controller account."""
    text = ACL_EXAMPLE.read_text().replace("acd/v1/town-hall/", f"{prefix}/{site}/")
    return text.replace("user acd-townhall\n", f"user {controller}\n")


def mosquitto_binary() -> str | None:
    """The path of the ``mosquitto`` program, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found is None and os.access("/usr/sbin/mosquitto", os.X_OK):
        found = "/usr/sbin/mosquitto"
    return found


def free_port() -> int:
    """A TCP port nobody listens on at the moment, on the loopback interface."""
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def password_line(user: str, password: str, iterations: int = 101) -> str:
    """A line of a Mosquitto password file (``$7$``: PBKDF2-SHA512, as mosquitto_passwd
    writes it), so that no other program is needed to make one."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, 64)
    b64 = base64.b64encode
    return f"{user}:$7${iterations}${b64(salt).decode()}${b64(digest).decode()}"


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to a new file only its owner can read (0600)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    return path


@contextlib.contextmanager
def running_mosquitto(conf: Path, port: int, timeout: float = 5.0) -> Iterator[int]:
    """Run Mosquitto with the configuration file ``conf`` until the block ends; yield
    ``port`` once it accepts connections there. `MosquittoError` if it cannot start."""
    binary = mosquitto_binary()
    if binary is None:
        raise MosquittoError("mosquitto is not installed (make broker installs it)")
    proc = subprocess.Popen(
        [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + timeout
        while not _listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                err = proc.communicate()[1].decode(errors="replace").strip().splitlines()
                raise MosquittoError(f"mosquitto did not start: {err[-1] if err else 'no output'}")
            time.sleep(0.02)
        yield port
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if proc.stderr is not None:
            proc.stderr.close()


def _listening(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=0.2):
        return True
    return False


def run_as_us() -> str:
    """The ``user`` line that keeps a Mosquitto started by root as root, so that it can
    read our private files (it would switch to the ``mosquitto`` user otherwise)."""
    return "user root\n" if os.geteuid() == 0 else ""


@contextlib.contextmanager
def secure_mosquitto(directory: Path, users: Mapping[str, str], acl: str) -> Iterator[int]:
    """A Mosquitto on a free loopback port that refuses anonymous clients, knows
    ``users`` (name → password) and applies ``acl`` (the text of an ACL file); yield
    its port. Files go to ``directory`` (0600)."""
    conf, port = secure_conf(directory, users, acl)
    with running_mosquitto(conf, port):
        yield port


def secure_conf(directory: Path, users: Mapping[str, str], acl: str) -> tuple[Path, int]:
    """The configuration file of `secure_mosquitto` and its free port, written to
    ``directory``: run it (again, after a stop) with `running_mosquitto`."""
    directory.mkdir(parents=True, exist_ok=True)
    passwd = write_private(
        directory / "passwd", "".join(password_line(u, p) + "\n" for u, p in users.items())
    )
    acl_file = write_private(directory / "acl", acl)
    port = free_port()
    conf = write_private(
        directory / "mosquitto.conf",
        f"listener {port} {HOST}\nallow_anonymous false\npassword_file {passwd}\n"
        f"acl_file {acl_file}\npersistence false\n{run_as_us()}",
    )
    return conf, port

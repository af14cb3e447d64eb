"""Configuration: TOML files loaded into validated, typed objects.

Every error names the key (dotted path, e.g. ``queues.front-desk.ring_timeout``) and
the problem. Sections: ``[site]``, ``[link]`` (the PBX serial link), ``[mqtt]``,
``[store]`` (call records), and the ACD sections (queues, agents, calendar) added by
the engine.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from acd.errors import ConfigError

T = TypeVar("T")

_MISSING = object()


class Section:
    """A table of the TOML document with its dotted path, read key by key.

    ``get`` checks the type and optional bounds and raises ``ConfigError`` naming the
    full key; ``done`` rejects keys nobody read (typos are errors, not silently ignored).
    """

    def __init__(self, data: dict[str, Any], path: str = "", source: str | None = None):
        if not isinstance(data, dict):
            raise ConfigError(path or "<root>", "must be a table", source)
        self.data = data
        self.path = path
        self.source = source
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.key(name), problem, self.source)

    def get(
        self,
        name: str,
        kind: type[T] | tuple[type, ...],
        default: Any = _MISSING,
        *,
        min: float | None = None,
        max: float | None = None,
        choices: tuple[Any, ...] | None = None,
    ) -> T:
        self._seen.add(name)
        if name not in self.data:
            if default is _MISSING:
                raise self.error(name, "is required")
            return default
        value = self.data[name]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if float in kinds and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and bool not in kinds:
            raise self.error(name, f"must be {_kind_name(kinds)}, not a boolean")
        if not isinstance(value, kinds):
            raise self.error(name, f"must be {_kind_name(kinds)}, got {value!r}")
        if min is not None and value < min:
            raise self.error(name, f"must be at least {min}, got {value!r}")
        if max is not None and value > max:
            raise self.error(name, f"must be at most {max}, got {value!r}")
        if choices is not None and value not in choices:
            allowed = ", ".join(map(str, choices))
            raise self.error(name, f"must be one of {allowed}, got {value!r}")
        return value

    def section(self, name: str, required: bool = False) -> Section:
        self._seen.add(name)
        if name not in self.data:
            if required:
                raise self.error(name, "section is required")
            return Section({}, self.key(name), self.source)
        return Section(self.data[name], self.key(name), self.source)

    def done(self) -> None:
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            raise self.error(unknown[0], "unknown key")


def _kind_name(kinds: tuple[type, ...]) -> str:
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true or false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def read_toml(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML file; a missing file or bad syntax is a ``ConfigError``."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError("<file>", "not found", str(p)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<syntax>", str(exc), str(p)) from None


@dataclass(frozen=True)
class LinkConfig:
    """The PBX CTI link: a pyserial URL and the link-layer timers."""

    url: str = "/dev/ttyS0"  # also a pty path, socket://host:port, rfc2217://host:port
    baudrate: int = 115200
    parity: str = "N"  # N, E, O
    window: int = 8  # 1..16 unacknowledged I-frames
    t1: float = 1.0  # s, retransmit timer
    n2: int = 3  # retries before link down
    heartbeat: float = 5.0  # s of idle line before a heartbeat; 3 missed = link down
    reconnect_max: float = 30.0  # s, cap of the reconnect backoff

    @classmethod
    def from_section(cls, s: Section) -> LinkConfig:
        cfg = cls(
            url=s.get("url", str, cls.url),
            baudrate=s.get("baudrate", int, cls.baudrate, min=300, max=4_000_000),
            parity=s.get("parity", str, cls.parity, choices=("N", "E", "O")),
            window=s.get("window", int, cls.window, min=1, max=16),
            t1=s.get("t1", float, cls.t1, min=0.01),
            n2=s.get("n2", int, cls.n2, min=1, max=100),
            heartbeat=s.get("heartbeat", float, cls.heartbeat, min=0.1),
            reconnect_max=s.get("reconnect_max", float, cls.reconnect_max, min=0.1),
        )
        s.done()
        return cfg


@dataclass(frozen=True)
class MqttConfig:
    """The MQTT broker and topic tree (``<prefix>/<site>/...``)."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 1883
    prefix: str = "acd/v1"
    username: str | None = None
    password: str | None = None  # from the file or the env var named by password_env
    tls: bool = False
    ca_file: str | None = None
    client_id: str | None = None
    stats_interval: float = 1.0  # s, min interval between two queue-stats publications
    supervisors: tuple[str, ...] = ()  # MQTT usernames allowed to send cmd/... (informative)
    cmd_token: str | None = None  # shared secret supervisor commands must carry, if set

    @classmethod
    def from_section(cls, s: Section) -> MqttConfig:
        password = s.get("password", str, None)
        password_env = s.get("password_env", str, None)
        if password_env is not None:
            password = os.environ.get(password_env, password)
        cmd_token = s.get("cmd_token", str, None)
        token_env = s.get("cmd_token_env", str, None)
        if token_env is not None:
            cmd_token = os.environ.get(token_env, cmd_token)
        cfg = cls(
            enabled=s.get("enabled", bool, cls.enabled),
            host=s.get("host", str, cls.host),
            port=s.get("port", int, cls.port, min=1, max=65535),
            prefix=s.get("prefix", str, cls.prefix).strip("/"),
            username=s.get("username", str, None),
            password=password,
            tls=s.get("tls", bool, cls.tls),
            ca_file=s.get("ca_file", str, None),
            client_id=s.get("client_id", str, None),
            stats_interval=s.get("stats_interval", float, cls.stats_interval, min=0.0),
            supervisors=tuple(s.get("supervisors", list, [])),
            cmd_token=cmd_token,
        )
        s.done()
        return cfg


@dataclass(frozen=True)
class StoreConfig:
    """Durable call records: one SQLite file."""

    path: str = "acd.db"
    mask_callers: bool = True  # privacy by default: store and publish masked numbers

    @classmethod
    def from_section(cls, s: Section) -> StoreConfig:
        cfg = cls(
            path=s.get("path", str, cls.path),
            mask_callers=s.get("mask_callers", bool, cls.mask_callers),
        )
        s.done()
        return cfg

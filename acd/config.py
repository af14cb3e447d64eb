"""Configuration: TOML files loaded into validated, typed objects.

Every error names the key (dotted path, e.g. ``queues.front-desk.ring_timeout``) and
the problem. Sections: ``[site]``, ``[link]`` (the PBX serial link), ``[mqtt]``,
``[store]`` (call records), ``[alarms]``, and the ACD sections (queues, agents, calendar) added by
the engine.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from datetime import date
from itertools import pairwise
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from acd.core.pins import is_pin_hash
from acd.core.strategies import REGISTRY as STRATEGY_REGISTRY
from acd.errors import AcdError, ConfigError
from acd.runtime import pbx
from acd.webconfig import WebConfig
from drivers.settings import MqttSettings, PortSettings
from protocols import link as link_layer

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


def _scheme(url: str) -> str:
    from acd.runtime.store import scheme_of

    return scheme_of(url)


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
        data = p.read_bytes()
    except FileNotFoundError:
        raise ConfigError("<file>", "not found", str(p)) from None
    except OSError as exc:  # a directory, no permission ...
        raise ConfigError("<file>", f"cannot be read: {exc.strerror}", str(p)) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        problem = (
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start} (line {line});"
            " save the file as UTF-8"
        )
        raise ConfigError("<file>", problem, str(p)) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError("<syntax>", str(exc), str(p)) from None


def expand_extensions(items: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``["201-203", "301"]`` → ``("201", "202", "203", "301")``: each item an extension
    or a range ``FIRST-LAST`` of equal-width numbers (leading zeros kept). A bad item
    raises ``ValueError`` naming it."""
    out: list[str] = []
    for item in items:
        part = item.strip() if isinstance(item, str) else ""
        first, dash, last = part.partition("-")
        if part and not dash:
            out.append(part)
        elif first.isdigit() and last.isdigit() and len(first) == len(last) and first <= last:
            out.extend(str(n).zfill(len(first)) for n in range(int(first), int(last) + 1))
        else:
            raise ValueError(f"{item!r} is not EXT or FIRST-LAST")
    return tuple(out)


@dataclass(frozen=True)
class LinkConfig(PortSettings):
    """The PBX CTI link: a pyserial URL, its line settings and the link-layer timers."""

    url: str = "/dev/ttyS0"  # also a pty path, socket://host:port, rfc2217://host:port, loop://
    protocol: str = pbx.DEFAULT  # the PBX driver (acd.runtime.pbx registry)
    window: int = link_layer.WINDOW  # 1..16 unacknowledged I-frames
    t1: float = link_layer.T1  # s, retransmit timer
    n2: int = link_layer.N2  # retries before link down
    heartbeat: float = link_layer.HEARTBEAT  # s idle before a heartbeat; 3 missed = link down
    reset_interval: float = link_layer.RESET_INTERVAL  # s between RESETs until the switch answers
    reconnect_max: float = 30.0  # s, cap of the reconnect backoff
    extensions: tuple[str, ...] = ()  # handsets to snapshot on link up (ranges expanded)

    @classmethod
    def from_section(cls, s: Section) -> LinkConfig:
        try:
            extensions = expand_extensions(s.get("extensions", list, []))
        except ValueError as exc:
            raise s.error("extensions", str(exc)) from None
        cfg = cls(
            url=s.get("url", str, cls.url),
            protocol=s.get("protocol", str, cls.protocol, choices=pbx.known()),
            baudrate=s.get("baudrate", int, cls.baudrate, min=300, max=4_000_000),
            parity=s.get("parity", str, cls.parity, choices=("N", "E", "O")),
            window=s.get("window", int, cls.window, min=1, max=16),
            t1=s.get("t1", float, cls.t1, min=0.01),
            n2=s.get("n2", int, cls.n2, min=1, max=100),
            heartbeat=s.get("heartbeat", float, cls.heartbeat, min=0.1),
            reset_interval=s.get("reset_interval", float, cls.reset_interval, min=0.01),
            reconnect_max=s.get("reconnect_max", float, cls.reconnect_max, min=0.1),
            extensions=extensions,
        )
        s.done()
        return cfg


def _secret(s: Section, name: str) -> tuple[str | None, str | None]:
    """``(value, env)``: ``name`` from the file or, overriding it, from the environment
    variable named by ``<name>_env`` when that is set and not empty; ``env`` is that name."""
    value = s.get(name, str, None)
    env = s.get(f"{name}_env", str, None)
    return (os.environ.get(env) or value if env is not None else value), env


@dataclass(frozen=True)
class MqttConfig(MqttSettings):
    """The MQTT broker and topic tree (``<prefix>/<site>/...``): the drivers' settings,
    ``password`` and ``cmd_token`` from the file or the environment variable named by
    ``password_env`` / ``cmd_token_env``. Supervisor commands are accepted only over an
    `authenticated` connection, or with ``allow_anonymous_commands`` (a lab)."""

    enabled: bool = True
    password_env: str | None = None
    supervisors: tuple[str, ...] = ()  # MQTT usernames allowed to send cmd/... (informative)
    cmd_token_env: str | None = None
    allow_anonymous_commands: bool = False  # a lab: commands over an anonymous connection

    @classmethod
    def from_section(cls, s: Section) -> MqttConfig:
        password, password_env = _secret(s, "password")
        cmd_token, cmd_token_env = _secret(s, "cmd_token")
        cfg = cls(
            enabled=s.get("enabled", bool, cls.enabled),
            host=s.get("host", str, cls.host),
            port=s.get("port", int, cls.port, min=1, max=65535),
            prefix=s.get("prefix", str, cls.prefix).strip("/"),
            username=s.get("username", str, None),
            password=password,
            password_env=password_env,
            tls=s.get("tls", bool, cls.tls),
            ca_file=s.get("ca_file", str, None),
            cert_file=s.get("cert_file", str, None),
            key_file=s.get("key_file", str, None),
            client_id=s.get("client_id", str, None),
            stats_interval=s.get("stats_interval", float, cls.stats_interval, min=0.0),
            supervisors=tuple(s.get("supervisors", list, [])),
            cmd_token=cmd_token,
            cmd_token_env=cmd_token_env,
            allow_anonymous_commands=s.get("allow_anonymous_commands", bool, False),
        )
        s.done()
        for name in ("password", "password_env"):
            if cfg.username is None and name in s.data:
                raise s.error(name, "is set but mqtt.username is not (a password needs one)")
        if cfg.key_file is not None and cfg.cert_file is None:
            raise s.error("key_file", "is set but mqtt.cert_file is not: set both")
        if cfg.cert_file is not None and not cfg.tls:
            raise s.error("cert_file", "a client certificate needs mqtt.tls = true")
        return cfg

    @property
    def authenticated(self) -> bool:
        """True when the controller proves who it is to the broker: a user name with a
        password, or a client certificate."""
        return bool(self.username and self.password) or self.cert_file is not None

    def unset_env(self) -> list[tuple[str, str]]:
        """``(key, problem)`` for each ``*_env`` key naming an unset or empty variable
        (with no value in the file to fall back on)."""
        return [
            (f"mqtt.{name}_env", f"{env} is not set (or empty) in the environment")
            for name, env, value in (
                ("password", self.password_env, self.password),
                ("cmd_token", self.cmd_token_env, self.cmd_token),
            )
            if env is not None and value is None
        ]


@dataclass(frozen=True)
class StoreConfig:
    """Durable call records: where (``url``: an SQLite file, the default, or a PostgreSQL
    database, `acd.runtime.store`), masked or not, readable by whom, kept how long."""

    url: str = "acd.db"  # a path, sqlite:///path or postgresql://user@host/db
    mask_callers: bool = True  # privacy by default: store and publish masked numbers
    group: str | None = None  # the database and captures 0640 with this group, else 0600
    retention_days: int = 365  # call detail older than this is purged (figures kept); 0: never
    capture_retention_days: int = 30  # rotated capture files older than this are deleted
    password_env: str | None = None  # PostgreSQL: the variable holding the password
    outbox: str = ""  # the spool of records waiting for the store ("": acd.outbox default)

    @property
    def path(self) -> str:
        """The store's URL (``path`` is its older name, for a file)."""
        return self.url

    @classmethod
    def from_section(cls, s: Section) -> StoreConfig:
        from acd.runtime.store import scheme_of

        if "url" in s.data and "path" in s.data:
            raise s.error("path", "give url or path (its older name), not both")
        key = "url" if "url" in s.data else "path"
        url = s.get(key, str, cls.url)
        if not url.strip():
            raise s.error(key, "must name a file or a database URL")
        try:
            scheme_of(url)
        except AcdError as exc:
            raise s.error(key, str(exc)) from None
        if urlsplit(url).password is not None:
            raise s.error(
                key, "holds a password: name an environment variable in password_env instead"
            )
        cfg = cls(
            url=url,
            mask_callers=s.get("mask_callers", bool, cls.mask_callers),
            group=s.get("group", str, None) or None,
            retention_days=s.get("retention_days", int, cls.retention_days, min=0, max=36500),
            capture_retention_days=s.get(
                "capture_retention_days", int, cls.capture_retention_days, min=0, max=36500
            ),
            password_env=s.get("password_env", str, None) or None,
            outbox=s.get("outbox", str, cls.outbox),
        )
        s.done()
        return cfg


_INSTANCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")


def instance_problem(name: str) -> str | None:
    """Why ``name`` cannot name a controller of a pair, None if it can."""
    if _INSTANCE.fullmatch(name):
        return None
    return (
        "must be 1-63 letters, digits, '.', '-' or '_', starting with a letter or digit,"
        f" got {name!r}"
    )


@dataclass(frozen=True)
class HaConfig:
    """Hot standby (docs/operations.md, Running a pair): two ``acd run`` on one
    PostgreSQL store; the one holding the lease (a session advisory lock) opens the PBX
    link, the other waits. ``instance`` names this controller in logs and MQTT (default:
    the host name); the active one checks its lease every ``check_interval`` s and
    closes the link when it could not confirm it for ``lease_timeout / 2`` s; the
    database ends a lease session silent for ``lease_timeout`` s."""

    enabled: bool = False
    instance: str | None = None  # None: this machine's host name
    check_interval: float = 0.5  # s between lease checks (active) and polls (standby)
    lease_timeout: float = 4.0  # s of silence after which PostgreSQL frees the lease

    @property
    def fence_after(self) -> float:
        """s without a confirmed check after which the active closes the link; also the
        wait of a new holder before it opens the link (an old one has fenced by then)."""
        return self.lease_timeout / 2

    def name(self) -> str:
        """This controller's name: ``instance``, else the host name (cut to 63 characters)."""
        import socket

        return self.instance or socket.gethostname()[:63] or "acd"

    @classmethod
    def from_section(cls, s: Section) -> HaConfig:
        instance = s.get("instance", str, None)
        if instance is not None and (problem := instance_problem(instance)) is not None:
            raise s.error("instance", problem)
        cfg = cls(
            enabled=s.get("enabled", bool, cls.enabled),
            instance=instance,
            check_interval=s.get("check_interval", float, cls.check_interval, min=0.05, max=60.0),
            lease_timeout=s.get("lease_timeout", float, cls.lease_timeout, min=1.0, max=600.0),
        )
        if cfg.check_interval > cfg.lease_timeout / 4:
            raise s.error(
                "check_interval",
                f"must be at most lease_timeout / 4 ({cfg.lease_timeout / 4:g} s), so that"
                f" several checks fit before the lease is given up, got {cfg.check_interval:g}",
            )
        s.done()
        return cfg


@dataclass(frozen=True)
class AlarmsConfig:
    """When the controller raises alarms besides ``link-down``."""

    answer_rate_window: float = 3600.0  # s of ended legs the answer rate is judged over
    answer_rate_min_calls: int = 10  # counted legs in the window before it is judged
    answer_rate_target: float | None = None  # None: each queue's own ``target``
    waiting_threshold: int = 5  # callers waiting in one queue above which to alarm

    @classmethod
    def from_section(cls, s: Section) -> AlarmsConfig:
        cfg = cls(
            answer_rate_window=s.get("answer_rate_window", float, cls.answer_rate_window, min=1.0),
            answer_rate_min_calls=s.get(
                "answer_rate_min_calls", int, cls.answer_rate_min_calls, min=1
            ),
            answer_rate_target=s.get("answer_rate_target", float, None, min=0.0, max=1.0),
            waiting_threshold=s.get("waiting_threshold", int, cls.waiting_threshold, min=0),
        )
        s.done()
        return cfg

    def target(self, queue: QueueConfig) -> float:
        """The answer-rate target the alarm holds ``queue`` to."""
        return queue.target if self.answer_rate_target is None else self.answer_rate_target


# -- the ACD sections -------------------------------------------------------------------

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class SiteConfig:
    """The site: its name, id (in MQTT topics) and time zone (for hours and days)."""

    name: str = "ACD"
    id: str = "site"
    timezone: str = "UTC"
    seed: int = 0  # seeds the random strategies: same events, same decisions

    @classmethod
    def from_section(cls, s: Section) -> SiteConfig:
        tz = s.get("timezone", str, cls.timezone)
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long
            shown = tz if len(tz) <= 64 else f"{tz[:40]}... ({len(tz)} characters)"
            raise s.error("timezone", f"unknown time zone {shown!r}") from None
        site_id = s.get("id", str, cls.id)
        if not site_id or any(ch in site_id for ch in "/+#"):
            raise s.error("id", f"must be a non-empty MQTT topic level, got {site_id!r}")
        cfg = cls(
            name=s.get("name", str, cls.name),
            id=site_id,
            timezone=tz,
            seed=s.get("seed", int, cls.seed),
        )
        s.done()
        return cfg


@dataclass(frozen=True)
class AnnouncementsConfig:
    """Announcement ids (small integers the switch knows); 0 disables one."""

    welcome: int = 1
    position: int = 2
    estimated_wait: int = 3
    periodic: int = 4
    closed: int = 5
    busy: int = 6  # all agents busy / overflow / queue full

    @classmethod
    def from_section(cls, s: Section) -> AnnouncementsConfig:
        values = {f.name: s.get(f.name, int, f.default, min=0, max=65535) for f in fields(cls)}
        s.done()
        return cls(**values)


@dataclass(frozen=True)
class AcdConfig:
    """Site-wide ACD rules."""

    reasons: dict[int, str] = field(default_factory=lambda: {9: "no-answer"})
    no_answer_reason: int = 9  # not-ready reason set after max_misses missed rings
    max_misses: int = 2  # consecutive missed rings before the agent goes not ready
    login_status: str = "ready"  # status right after login: ready or not_ready
    short_abandon: float = 5.0  # s: abandons quicker than this are counted apart
    display_interval: float = 5.0  # s between handset display refreshes (0: never)

    @classmethod
    def from_section(cls, s: Section) -> AcdConfig:
        raw = s.section("reasons")
        reasons: dict[int, str] = {}
        for key in list(raw.data):
            if not key.isdigit() or not 0 <= int(key) <= 255:
                raise raw.error(key, "reason codes are integers 0..255")
            reasons[int(key)] = raw.get(key, str)
        raw.done()
        no_answer = s.get("no_answer_reason", int, cls.no_answer_reason, min=0, max=255)
        reasons.setdefault(no_answer, "no-answer")
        cfg = cls(
            reasons=reasons,
            no_answer_reason=no_answer,
            max_misses=s.get("max_misses", int, cls.max_misses, min=1, max=100),
            login_status=s.get(
                "login_status", str, cls.login_status, choices=("ready", "not_ready")
            ),
            short_abandon=s.get("short_abandon", float, cls.short_abandon, min=0.0),
            display_interval=s.get("display_interval", float, cls.display_interval, min=0.0),
        )
        s.done()
        return cfg


def _parse_hours(s: Section, name: str, text: Any) -> tuple[int, int]:
    """``"08:00-19:00"`` → minutes since midnight ``(480, 1140)``."""
    try:
        start, end = str(text).split("-")
        first, last = (_minutes(start), _minutes(end))
    except ValueError:
        raise s.error(name, f"hours must look like '08:00-19:00', got {text!r}") from None
    if not first < last:
        raise s.error(name, f"opening must end after it starts, got {text!r}")
    return first, last


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.strip().split(":")
    h, m = int(hours), int(minutes)
    if not (0 <= h <= 24 and 0 <= m < 60 and h * 60 + m <= 1440):
        raise ValueError(hhmm)
    return h * 60 + m


def _hours_list(s: Section, name: str) -> tuple[tuple[int, int], ...]:
    value = s.get(name, (list, str))
    items = [value] if isinstance(value, str) else value
    spans = sorted(_parse_hours(s, name, item) for item in items)
    for (_, end), (start, _) in pairwise(spans):
        if start < end:
            raise s.error(name, "opening hours overlap")
    return tuple(spans)


def _date(s: Section, name: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise s.error(name, f"dates look like '2026-12-24', got {text!r}") from None


@dataclass(frozen=True)
class CalendarConfig:
    """Opening hours per weekday, public holidays, exceptional closures and openings."""

    hours: dict[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)  # 0 = Mon
    holidays: str = "none"  # "FR": French public holidays, or "none"
    closures: tuple[tuple[date, date], ...] = ()  # inclusive date ranges, closed all day
    openings: dict[date, tuple[tuple[int, int], ...]] = field(default_factory=dict)

    @classmethod
    def from_section(cls, s: Section) -> CalendarConfig:
        hours_s = s.section("hours", required=True)
        hours = {
            i: _hours_list(hours_s, day) for i, day in enumerate(WEEKDAYS) if day in hours_s.data
        }
        hours_s.done()
        closures = []
        for item in s.get("closures", list, []):
            first, _, last = str(item).partition("/")
            start = _date(s, "closures", first)
            end = _date(s, "closures", last) if last else start
            if end < start:
                raise s.error("closures", f"range ends before it starts: {item!r}")
            closures.append((start, end))
        openings_s = s.section("openings")
        openings = {
            _date(openings_s, day, day): _hours_list(openings_s, day) for day in openings_s.data
        }
        openings_s.done()
        cfg = cls(
            hours=hours,
            holidays=s.get("holidays", str, cls.holidays, choices=("FR", "none")),
            closures=tuple(closures),
            openings=openings,
        )
        s.done()
        return cfg


@dataclass(frozen=True)
class Tier:
    """Agents with at least ``min_level`` in the queue's skill take calls that waited
    at least ``after`` seconds."""

    min_level: int
    after: float


@dataclass(frozen=True, slots=True)
class Overflow:
    """Where a queue sends the callers it cannot keep (max wait, full, no agent): to
    ``queue`` (a new leg there), to ``device`` (transferred out of the ACD), or neither
    (the busy announcement, then cleared). Written ``"clear"``, ``"queue:ID"`` or
    ``"device:EXT"``."""

    queue: str | None = None
    device: str | None = None

    @classmethod
    def parse(cls, text: str) -> Overflow:
        """The overflow ``text`` names; ValueError saying what is accepted otherwise."""
        kind, _, target = text.partition(":")
        if text == "clear":
            return cls()
        if kind == "queue" and target:
            return cls(queue=target)
        if kind == "device" and target:
            return cls(device=target)
        raise ValueError(f"must be 'clear', 'queue:ID' or 'device:EXT', got {text!r}")

    def __str__(self) -> str:
        if self.queue is not None:
            return f"queue:{self.queue}"
        return f"device:{self.device}" if self.device is not None else "clear"


@dataclass(frozen=True)
class QueueConfig:
    """A queue (service): who serves it, how calls are picked, announced and overflowed."""

    id: str
    name: str = ""
    numbers: tuple[str, ...] = ()  # dialled numbers reaching this queue
    priority: int = 0  # higher first, across queues
    strategy: str = "longest-idle"
    skill: str = ""  # default: the queue id
    tiers: tuple[Tier, ...] = (Tier(1, 0.0),)
    ring_timeout: float = 15.0
    progressive_interval: float = 5.0  # s between added extensions (ring-progressive)
    wrapup: float = 10.0
    max_wait: float = 0.0  # s, 0 = no limit
    max_wait_no_agent: float = 0.0  # s with no agent logged in, 0 = no limit
    max_length: int = 0  # waiting calls, 0 = no limit
    overflow: Overflow = Overflow()  # parsed from "clear", "queue:ID" or "device:EXT"
    calendar: str | None = None  # calendar name; None: always open
    welcome: bool = True
    announce_position: bool = False
    announce_wait: bool = False
    periodic: float = 0.0  # s between periodic announcements, 0 = none
    sl_threshold: float = 20.0  # s, service level threshold
    target: float = 0.8  # target answer rate (taux de décroché)

    def __post_init__(self) -> None:
        if not self.skill:
            object.__setattr__(self, "skill", self.id)

    @classmethod
    def from_section(cls, s: Section, queue_id: str) -> QueueConfig:
        tiers_raw = s.get("tiers", list, None)
        if tiers_raw is None:
            tiers = cls.tiers
        else:
            items = []
            for i, item in enumerate(tiers_raw):
                t = Section(item, s.key(f"tiers[{i}]"), s.source)
                items.append(
                    Tier(t.get("min_level", int, min=0), t.get("after", float, 0.0, min=0.0))
                )
                t.done()
            if not items:
                raise s.error("tiers", "needs at least one tier")
            if any(b.after < a.after or b.min_level >= a.min_level for a, b in pairwise(items)):
                raise s.error("tiers", "levels must decrease and waits increase tier by tier")
            tiers = tuple(items)
        numbers = s.get("numbers", list, [])
        if not all(isinstance(n, str) and n for n in numbers):
            raise s.error("numbers", "must be a list of non-empty strings")
        try:
            overflow = Overflow.parse(s.get("overflow", str, "clear"))
        except ValueError as e:
            raise s.error("overflow", str(e)) from None
        cfg = cls(
            id=queue_id,
            name=s.get("name", str, queue_id),
            numbers=tuple(numbers),
            priority=s.get("priority", int, cls.priority),
            strategy=s.get("strategy", str, cls.strategy, choices=tuple(STRATEGY_REGISTRY)),
            skill=s.get("skill", str, queue_id),
            tiers=tiers,
            ring_timeout=s.get("ring_timeout", float, cls.ring_timeout, min=1.0),
            progressive_interval=s.get(
                "progressive_interval", float, cls.progressive_interval, min=0.5
            ),
            wrapup=s.get("wrapup", float, cls.wrapup, min=0.0),
            max_wait=s.get("max_wait", float, cls.max_wait, min=0.0),
            max_wait_no_agent=s.get("max_wait_no_agent", float, cls.max_wait_no_agent, min=0.0),
            max_length=s.get("max_length", int, cls.max_length, min=0),
            overflow=overflow,
            calendar=s.get("calendar", str, None),
            welcome=s.get("welcome", bool, cls.welcome),
            announce_position=s.get("announce_position", bool, cls.announce_position),
            announce_wait=s.get("announce_wait", bool, cls.announce_wait),
            periodic=s.get("periodic", float, cls.periodic, min=0.0),
            sl_threshold=s.get("sl_threshold", float, cls.sl_threshold, min=0.0),
            target=s.get("target", float, cls.target, min=0.0, max=1.0),
        )
        s.done()
        return cfg


@dataclass(frozen=True)
class PinPolicy:
    """The ``[agents]`` settings for PINs: shortest PIN accepted (at login and by
    ``acd config hash-pin``), wrong PINs in a row before the agent's PIN is locked, and
    the lock's length (doubled at each further lock, up to ``pin_lockout_max``)."""

    min_length: int = 4
    attempts: int = 5
    lockout: float = 60.0
    lockout_max: float = 3600.0

    @classmethod
    def from_section(cls, s: Section) -> PinPolicy:
        cfg = cls(
            min_length=s.get("pin_min_length", int, cls.min_length, min=4, max=12),
            attempts=s.get("pin_attempts", int, cls.attempts, min=1, max=100),
            lockout=s.get("pin_lockout", float, cls.lockout, min=1.0),
            lockout_max=s.get("pin_lockout_max", float, cls.lockout_max, min=1.0),
        )
        if cfg.lockout_max < cfg.lockout:
            raise s.error("pin_lockout_max", f"must be at least pin_lockout ({cfg.lockout:g})")
        return cfg


PIN_SETTINGS = tuple(f"pin_{f.name}" for f in fields(PinPolicy))
"""The keys of ``[agents]`` that are settings, not agents: ``pin_`` and a `PinPolicy` field."""


@dataclass(frozen=True)
class AgentConfig:
    """An agent: a PIN hash (``acd config hash-pin``) and skills with levels."""

    id: str
    name: str = ""
    pin_hash: str = ""
    skills: dict[str, int] = field(default_factory=dict)
    wrapup: float | None = None  # overrides the queue's wrap-up
    weight: int = 1  # for weighted-random queues
    contract_hours: float | None = None  # working hours a week (acd schedule)

    @classmethod
    def from_section(cls, s: Section, agent_id: str) -> AgentConfig:
        pin_hash = s.get("pin_hash", str)
        if not is_pin_hash(pin_hash):
            raise s.error("pin_hash", "is not a PIN hash: make one with 'acd config hash-pin'")
        skills_s = s.section("skills", required=True)
        skills = {name: skills_s.get(name, int, min=1, max=100) for name in skills_s.data}
        skills_s.done()
        wrapup = s.get("wrapup", float, None, min=0.0)
        cfg = cls(
            id=agent_id,
            name=s.get("name", str, agent_id),
            pin_hash=pin_hash,
            skills=skills,
            wrapup=wrapup,
            weight=s.get("weight", int, cls.weight, min=1, max=1000),
            contract_hours=s.get("contract_hours", float, None, min=0.25, max=168.0),
        )
        s.done()
        return cfg


@dataclass(frozen=True)
class ScheduleConfig:
    """``[schedule]``: the shifts ``acd schedule`` may build and the working-time rules
    they obey. Defaults: French territorial agents (décret 2000-815): at most 10 h of
    work a day within an amplitude of 12 h, 48 h a week, 11 h of rest between two
    days, a pause of 20 minutes before 6 h of work."""

    shift_hours: tuple[float, ...] = (4.0, 6.0, 7.0, 8.0)  # hours of work of a shift
    start_step_minutes: int | None = None  # None: the requirement's interval
    break_minutes: int = 20  # unpaid pause
    break_after_hours: float = 6.0  # no stretch of work reaches this
    break_window_hours: float = 1.0  # the pause starts within this of mid-work
    break_step_minutes: int = 15  # the pause starts on this grid from the shift's start
    max_day_hours: float = 10.0
    max_amplitude_hours: float = 12.0
    max_week_hours: float = 48.0
    min_rest_hours: float = 11.0
    shortfall_weight: float = 1000.0  # one agent-hour short costs this much over-staffing
    shortfall_spread: float = 0.1  # the most agents short in an interval cost this more
    time_limit_s: float = 60.0  # of integer search, all steps (LP bounds run to the end)
    mip_gap: float = 0.001  # the solver stops within this of the best possible

    @classmethod
    def from_section(cls, s: Section) -> ScheduleConfig:
        hours = s.get("shift_hours", list, list(cls.shift_hours))
        for value in hours:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise s.error("shift_hours", f"must be a list of hours, got {value!r}")
            if not 0 < value <= 24 or round(value * 60) != value * 60:
                raise s.error("shift_hours", f"{value!r} is not whole minutes in ]0, 24]")
        if not hours:
            raise s.error("shift_hours", "must list at least one shift length")
        cfg = cls(
            shift_hours=tuple(float(h) for h in hours),
            start_step_minutes=s.get("start_step_minutes", int, None, min=1, max=1440),
            break_minutes=s.get("break_minutes", int, cls.break_minutes, min=0, max=240),
            break_after_hours=s.get(
                "break_after_hours", float, cls.break_after_hours, min=0.25, max=24.0
            ),
            break_window_hours=s.get(
                "break_window_hours", float, cls.break_window_hours, min=0.0, max=12.0
            ),
            break_step_minutes=s.get(
                "break_step_minutes", int, cls.break_step_minutes, min=1, max=1440
            ),
            max_day_hours=s.get("max_day_hours", float, cls.max_day_hours, min=0.25, max=24.0),
            max_amplitude_hours=s.get(
                "max_amplitude_hours", float, cls.max_amplitude_hours, min=0.25, max=24.0
            ),
            max_week_hours=s.get("max_week_hours", float, cls.max_week_hours, min=0.25, max=168.0),
            min_rest_hours=s.get("min_rest_hours", float, cls.min_rest_hours, min=0.0, max=48.0),
            shortfall_weight=s.get(
                "shortfall_weight", float, cls.shortfall_weight, min=1.0, max=1e6
            ),
            shortfall_spread=s.get(
                "shortfall_spread", float, cls.shortfall_spread, min=0.0, max=1.0
            ),
            time_limit_s=s.get("time_limit_s", float, cls.time_limit_s, min=0.1, max=86400.0),
            mip_gap=s.get("mip_gap", float, cls.mip_gap, min=0.0, max=1.0),
        )
        s.done()
        return cfg


@dataclass(frozen=True)
class MenuConfig:
    """A caller menu on a dialled number: digits choose the queue."""

    number: str
    announcement: int
    choices: dict[str, str]  # digits -> queue id
    default: str  # queue id on a timeout or an unknown choice
    timeout: float = 10.0

    @classmethod
    def from_section(cls, s: Section, number: str) -> MenuConfig:
        choices_s = s.section("choices", required=True)
        choices = {digits: choices_s.get(digits, str) for digits in choices_s.data}
        choices_s.done()
        cfg = cls(
            number=number,
            announcement=s.get("announcement", int, min=0, max=65535),
            choices=choices,
            default=s.get("default", str),
            timeout=s.get("timeout", float, 10.0, min=1.0),
        )
        s.done()
        return cfg


@dataclass(frozen=True)
class Config:
    """The whole configuration file, validated."""

    site: SiteConfig = field(default_factory=SiteConfig)
    link: LinkConfig = field(default_factory=LinkConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    ha: HaConfig = field(default_factory=HaConfig)
    alarms: AlarmsConfig = field(default_factory=AlarmsConfig)
    acd: AcdConfig = field(default_factory=AcdConfig)
    announcements: AnnouncementsConfig = field(default_factory=AnnouncementsConfig)
    calendars: dict[str, CalendarConfig] = field(default_factory=dict)
    queues: dict[str, QueueConfig] = field(default_factory=dict)
    agents: dict[str, AgentConfig] = field(default_factory=dict)
    menus: dict[str, MenuConfig] = field(default_factory=dict)
    pins: PinPolicy = field(default_factory=PinPolicy)
    web: WebConfig = field(default_factory=WebConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str | None = None) -> Config:
        """Validate a parsed TOML document; ``ConfigError`` names the first bad key."""
        root = Section(data, "", source)
        calendars_s = root.section("calendars")
        queues_s = root.section("queues")
        agents_s = root.section("agents")
        menus_s = root.section("menus")
        cfg = cls(
            site=SiteConfig.from_section(root.section("site")),
            link=LinkConfig.from_section(root.section("link")),
            mqtt=MqttConfig.from_section(root.section("mqtt")),
            store=StoreConfig.from_section(root.section("store")),
            ha=HaConfig.from_section(root.section("ha")),
            alarms=AlarmsConfig.from_section(root.section("alarms")),
            acd=AcdConfig.from_section(root.section("acd")),
            announcements=AnnouncementsConfig.from_section(root.section("announcements")),
            calendars={
                name: CalendarConfig.from_section(calendars_s.section(name))
                for name in calendars_s.data
            },
            queues={
                name: QueueConfig.from_section(queues_s.section(name), name)
                for name in queues_s.data
            },
            agents={
                name: AgentConfig.from_section(agents_s.section(name), name)
                for name in agents_s.data
                if name not in PIN_SETTINGS
            },
            menus={
                name: MenuConfig.from_section(menus_s.section(name), name) for name in menus_s.data
            },
            pins=PinPolicy.from_section(agents_s),
            web=WebConfig.from_section(root.section("web")),
            schedule=ScheduleConfig.from_section(root.section("schedule")),
        )
        root.done()
        cfg._check_references(source)
        return cfg

    def _check_references(self, source: str | None) -> None:
        if self.ha.enabled and _scheme(self.store.url) not in ("postgresql", "postgres"):
            raise ConfigError(
                "ha.enabled",
                "a pair shares its records and lease in PostgreSQL: set [store] url ="
                ' "postgresql://..."',
                source,
            )
        numbers: dict[str, str] = {}
        for q in self.queues.values():
            if q.calendar is not None and q.calendar not in self.calendars:
                raise ConfigError(f"queues.{q.id}.calendar", f"no calendar {q.calendar!r}", source)
            target = q.overflow.queue
            if target is not None and (target not in self.queues or target == q.id):
                raise ConfigError(f"queues.{q.id}.overflow", f"no other queue {target!r}", source)
            for n in q.numbers:
                if n in numbers:
                    raise ConfigError(
                        f"queues.{q.id}.numbers", f"{n} already reaches {numbers[n]}", source
                    )
                numbers[n] = f"queues.{q.id}"
        for m in self.menus.values():
            if m.number in numbers:
                raise ConfigError(
                    f"menus.{m.number}", f"{m.number} already reaches {numbers[m.number]}", source
                )
            for digits, queue in [*m.choices.items(), ("default", m.default)]:
                if queue not in self.queues:
                    key = "default" if digits == "default" else f"choices.{digits}"
                    raise ConfigError(f"menus.{m.number}.{key}", f"no queue {queue!r}", source)

        served = {q.skill for q in self.queues.values()}
        for a in self.agents.values():
            for skill in a.skills:
                if skill not in served:
                    raise ConfigError(
                        f"agents.{a.id}.skills.{skill}",
                        f"no queue has the skill {skill!r}{_did_you_mean(skill, served)}",
                        source,
                    )

    def queue_for_number(self) -> dict[str, str]:
        """Dialled number → queue id."""
        return {n: q.id for q in self.queues.values() for n in q.numbers}


def exposed_pin_hashes(path: str | os.PathLike[str], cfg: Config) -> str | None:
    """A warning when the file holding ``cfg``'s PIN hashes is readable by other users
    (a short PIN's hash falls to an offline search in seconds), else None."""
    if not cfg.agents:
        return None
    try:
        mode = os.stat(path).st_mode & 0o777
    except OSError:
        return None
    if not mode & 0o004:
        return None
    return (
        f"{path} holds PIN hashes and is readable by every user (mode {mode:04o}):"
        f" chmod 600 {path} (or 640 with the controller's group)"
    )


def _did_you_mean(name: str, known: set[str]) -> str:
    """`` (did you mean 'x'?)`` with the closest of ``known``, or ``""`` if none is close."""
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and validate a TOML configuration file."""
    return Config.from_dict(read_toml(path), str(path))

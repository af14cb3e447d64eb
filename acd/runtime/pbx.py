"""PBX drivers: how the controller talks to a switch, chosen by ``[link] protocol``.

A driver (python-can's ``BusABC`` and its ``can/interfaces`` registry are the model) is
two sans-I/O halves that the controller joins to the port, the engine and its timer:

- a `SwitchLink` moves messages over the port's bytes, in wire time (the event loop's
  clock): ``start`` when the port opens, ``receive_data``, ``send``, ``data_to_send``,
  timers, and `LinkEvent` values out (up, down, a message, a bad message);
- a `SwitchSession` stands between those messages and the engine, in engine time: a
  resync at each link up, the switch's messages in, supervisor commands and PIN
  checks in, timers; each call returns a `Step`: requests for the link, notifications
  for the store, MQTT and the logs (calls' steps as neutral ``acd.core.call_steps.CallStep``
  notes), and PINs to check off the loop.

`PbxDriver` builds both from ``[link]``. The project's own CTI protocol,
``acd-cti`` (``protocols`` + `acd.runtime.bridge`), is the first driver. `register` adds one
(a test's toy driver, a plugin); installed packages may offer more through the
``acd.pbx_drivers`` entry-point group (name → `PbxDriver` subclass).
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any, Protocol

from acd.core.commands import Notification, VerifyPin
from acd.errors import ConfigError
from protocols.link import BadMessage, LinkDown, LinkUp, MessageReceived

if TYPE_CHECKING:
    from acd.config import Config, LinkConfig
    from acd.core.agents import AgentSession
    from acd.core.engine import Engine
    from acd.core.events import Event

LinkEvent = LinkUp | LinkDown | MessageReceived | BadMessage
"""What a `SwitchLink` reports (``protocols.link``'s events; ``message`` is the
driver's own message type)."""

DEFAULT = "acd-cti"
"""The protocol of ``[link]`` when none is named."""

ENTRY_POINTS = "acd.pbx_drivers"
"""Entry-point group of installed drivers."""


@dataclass(slots=True)
class Step:
    """What one session call produced: requests for the switch, notifications, and PIN
    checks for the runtime (answer each with ``session.command(PinChecked(...))``)."""

    requests: list[Any] = field(default_factory=list)
    notes: list[Notification] = field(default_factory=list)
    checks: list[VerifyPin] = field(default_factory=list)


@dataclass(slots=True)
class RequestFailed(Notification):
    """The switch refused a request, or did not answer it in time."""

    request: Any
    error: str


@dataclass(slots=True)
class Resynced(Notification):
    """The picture after a link up: calls reconciled, agent logins aligned."""

    calls: int  # calls the switch reported
    devices: int  # extensions that answered their snapshot
    unverified: tuple[str, ...]  # agents the switch shows logged in, never verified here
    logged_out: tuple[str, ...]  # agents the switch no longer has at their extension
    adopted: tuple[int, ...] = ()  # calls found connected at a handset, taken over
    unadopted: tuple[int, ...] = ()  # calls found connected that the engine cannot take


class SwitchLink(Protocol):
    """Messages over the port's bytes, sans-I/O; times are wire (event-loop) seconds."""

    def start(self, now: float) -> None:
        """The port is open: begin bringing the link up."""

    def receive_data(self, data: bytes, now: float) -> None:
        """Bytes from the switch (any chunking)."""

    def send(self, request: Any, now: float) -> None:
        """Queue a request for the switch (``protocols.errors.LocalProtocolError`` if
        it cannot be sent)."""

    def data_to_send(self) -> bytes:
        """The bytes to write to the port now."""

    def next_event(self) -> LinkEvent | None:
        """The next thing that happened on the link, or None."""

    def next_deadline(self) -> float | None:
        """When `handle_timer` must next be called (None: no timer)."""

    def handle_timer(self, now: float) -> None:
        """Act on the deadlines passed at ``now``."""


class SwitchSession(Protocol):
    """The engine behind a switch's messages, sans-I/O; times are engine seconds."""

    def link_up(self, now: float) -> Step:
        """The link is up: resynchronise (until then nothing is sent)."""

    def link_down(self) -> None:
        """The link is down: requests in flight are forgotten."""

    def from_switch(self, message: Any, now: float) -> Step:
        """A message from the switch."""

    def invalid(self, payload: bytes, error: str) -> Step:
        """An intact payload from the switch that is no valid message."""

    def command(self, event: Event) -> Step:
        """An event that does not come from the switch (supervisor command, PIN checked)."""

    def advance(self, now: float) -> Step:
        """Fire what is due by ``now``."""

    def next_deadline(self) -> float | None:
        """When `advance` next has work (engine time), or None."""

    def restore(self, sessions: Iterable[AgentSession], now: float) -> Step:
        """Log agents back in as saved before a restart."""

    def reload(self, config: Config, now: float) -> Step:
        """Apply a new configuration to the engine (``Engine.reload``)."""


class PbxDriver(ABC):
    """A protocol's two halves, built from ``[link]`` (see the module docstring)."""

    @abstractmethod
    def link(self, cfg: LinkConfig) -> SwitchLink:
        """A new link for a port just opened."""

    @abstractmethod
    def session(
        self, engine: Engine, cfg: LinkConfig, extensions: Iterable[str], speed: float
    ) -> SwitchSession:
        """The session for ``engine`` (``speed``: engine seconds per wire second), down
        until its link's first `LinkUp`; ``extensions`` are the handsets to resync."""


DRIVERS: dict[str, str] = {DEFAULT: "acd.runtime.bridge:CtiDriver"}
"""Built-in drivers: protocol name → ``module:class``, imported on first use."""

_registered: dict[str, type[PbxDriver]] = {}


def register(name: str, driver: type[PbxDriver]) -> None:
    """Make ``driver`` the protocol ``name`` (``[link] protocol = name``)."""
    _registered[name] = driver


def unregister(name: str) -> None:
    """Forget a protocol `register` added."""
    _registered.pop(name, None)


def known() -> tuple[str, ...]:
    """The protocol names ``[link] protocol`` accepts, sorted."""
    installed = {ep.name for ep in entry_points(group=ENTRY_POINTS)}
    return tuple(sorted({*DRIVERS, *_registered, *installed}))


def driver(name: str) -> PbxDriver:
    """The driver of protocol ``name``; `ConfigError` on ``link.protocol`` if unknown."""
    if name in _registered:
        return _registered[name]()
    if name in DRIVERS:
        module, _, cls = DRIVERS[name].partition(":")
        return getattr(importlib.import_module(module), cls)()
    for ep in entry_points(group=ENTRY_POINTS, name=name):
        return ep.load()()
    raise ConfigError("link.protocol", f"must be one of {', '.join(known())}, got {name!r}")

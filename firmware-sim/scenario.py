"""Scenarios: TOML files describing a simulated day (traffic, people, switch, faults).

``load_scenario(path)`` reads and validates one; every error names the dotted key
(``behaviours.front-desk.handling.mean: must be at least ...``). The format is
documented key by key in docs/simulator.md; ``firmware-sim/scenarios/`` ships the
reference site's weekday and Saturday at 250 and 700 calls.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acd.config import Section, read_toml
from acd.errors import AcdError, ConfigError
from firmware_sim.distributions import Distribution, Empirical, Exponential, Fixed, Lognormal
from firmware_sim.fallback import ORDERS, FallbackSettings
from firmware_sim.faults import FaultSpec, clock_key, fault_from_section
from firmware_sim.people import Agent, Behaviour, Break, Caller, CallerModel, Shift
from firmware_sim.switch import Switch, SwitchConfig
from firmware_sim.traffic import DAY_NAMES, DayPlan, Profile, WeeklyTraffic
from protocols import link as link_layer

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
"""The scenarios shipped with the package."""


@dataclass(frozen=True)
class LinkSettings:
    """Link-layer timers of the switch's end (see protocols.link.Link)."""

    window: int = link_layer.WINDOW
    t1: float = link_layer.T1
    n2: int = link_layer.N2
    heartbeat: float = link_layer.HEARTBEAT
    reset_interval: float = link_layer.RESET_INTERVAL


@dataclass(frozen=True)
class ScriptedCall:
    """A call placed at a given time, besides (or instead of) the random traffic."""

    at_s: float
    caller: Caller
    called: str | None = None


@dataclass(frozen=True)
class Scenario:
    """A validated scenario: everything needed to build and run a `Switch`."""

    name: str
    day: dt.date
    start_s: float
    end_s: float
    seed: int
    speed: float
    link: LinkSettings
    switch: SwitchConfig
    traffic: WeeklyTraffic
    callers: CallerModel
    agents: tuple[Agent, ...]
    calls: tuple[ScriptedCall, ...]
    faults: tuple[FaultSpec, ...]

    def build_switch(self) -> Switch:
        """A fresh switch for this scenario (``dataclasses.replace`` to vary seed or day)."""
        switch = Switch(self.switch, self.traffic, self.callers, self.agents, self.day, self.seed)
        for call in self.calls:
            switch.add_call(call.at_s, call.caller, call.called)
        return switch


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; a bare name finds a shipped scenario."""
    p = Path(path)
    if not p.exists() and not p.suffix:
        if not (SCENARIO_DIR / f"{p.name}.toml").exists():
            shipped = ", ".join(shipped_scenarios())
            raise ConfigError(
                "<file>", f"no such file or shipped scenario (shipped: {shipped})", str(p)
            )
        p = SCENARIO_DIR / f"{p.name}.toml"
    return parse_scenario(read_toml(p), str(p), p.parent, default_name=p.stem)


def shipped_scenarios() -> list[str]:
    """Names of the scenarios shipped in ``firmware-sim/scenarios/``."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.toml"))


def parse_scenario(
    data: dict[str, Any], source: str, base: Path, default_name: str = "scenario"
) -> Scenario:
    """Validate a parsed TOML document; relative file names are relative to ``base``."""
    root = Section(data, "", source)
    name = root.get("name", str, default_name)
    run = root.section("run")
    day = run.get("day", (dt.date, str), dt.date(2026, 3, 10))
    if isinstance(day, str):
        try:
            day = dt.date.fromisoformat(day)
        except ValueError:
            raise run.error("day", f"{day!r} is not a date YYYY-MM-DD") from None
    start_s = _clock(run, "start", "07:50")
    end_s = _clock(run, "end", "19:30")
    if end_s <= start_s:
        raise run.error("end", "must be after run.start")
    seed = run.get("seed", int, 1)
    speed = run.get("speed", float, 1.0, min=0.001)
    run.done()

    link = _link(root.section("link"))
    switch = _switch(root.section("switch"), root.section("fallback"))
    traffic = _traffic(root.section("traffic"))
    callers = _callers(root.section("callers"), base)
    behaviours = _tables(root.section("behaviours"), lambda s: _behaviour(s, base))
    shifts = _tables(root.section("shifts"), _shift)
    agents = _agents(root, behaviours, shifts)
    calls = tuple(_call(s) for s in _array(root, "calls"))
    faults = tuple(fault_from_section(s) for s in _array(root, "faults"))
    root.done()

    numbers = set(switch.service_numbers)
    for i, call in enumerate(calls):
        if call.called is not None and call.called not in numbers:
            raise AcdError(f"{source}: calls[{i}].called: {call.called!r} is no service number")
    extensions = [a.extension for a in agents]
    if len(set(extensions)) != len(extensions):
        raise AcdError(f"{source}: agents: two agents share an extension")
    if numbers & set(extensions) or numbers & set(switch.extensions):
        raise AcdError(f"{source}: switch.service_numbers: a service number is an extension")
    unknown = sorted(set(switch.fallback.group) - set(extensions) - set(switch.extensions))
    if unknown:
        raise AcdError(f"{source}: fallback.group: no extension {', '.join(unknown)}")
    return Scenario(
        name,
        day,
        start_s,
        end_s,
        seed,
        speed,
        link,
        switch,
        traffic,
        callers,
        agents,
        calls,
        faults,
    )


def _clock(s: Section, name: str, default: str | None = None) -> float:
    value = clock_key(s, name, default)
    if value is None:
        raise s.error(name, "is required")
    return value


def _array(root: Section, name: str) -> list[Section]:
    items = root.get(name, list, [])
    return [Section(item, f"{root.key(name)}[{i}]", root.source) for i, item in enumerate(items)]


def _tables(s: Section, build: Any) -> dict[str, Any]:
    result = {name: build(s.section(name)) for name in list(s.data)}
    s.done()
    return result


def _link(s: Section) -> LinkSettings:
    d = LinkSettings()
    link = LinkSettings(
        window=s.get("window", int, d.window, min=1, max=16),
        t1=s.get("t1", float, d.t1, min=0.01),
        n2=s.get("n2", int, d.n2, min=1, max=100),
        heartbeat=s.get("heartbeat", float, d.heartbeat, min=0.05),
        reset_interval=s.get("reset_interval", float, d.reset_interval, min=0.05),
    )
    s.done()
    return link


def _switch(s: Section, fallback: Section) -> SwitchConfig:
    d = SwitchConfig()
    cfg = SwitchConfig(
        trunks=s.get("trunks", int, d.trunks, min=1, max=10_000),
        service_numbers=_strings(s, "service_numbers", d.service_numbers),
        extensions=_strings(s, "extensions", d.extensions),
        announcements=tuple(s.get("announcements", list, list(d.announcements))),
        display_width=s.get("display_width", int, d.display_width, min=1, max=255),
        lamps=s.get("lamps", int, d.lamps, min=1, max=256),
        escalate_wait=s.get("escalate_wait", float, d.escalate_wait, min=0.0),
        fallback=_fallback(fallback),
    )
    s.done()
    if not cfg.service_numbers:
        raise s.error("service_numbers", "needs at least one number")
    if not all(isinstance(a, int) and 0 < a < 65536 for a in cfg.announcements):
        raise s.error("announcements", "must be a list of integers 1..65535")
    announcement = cfg.fallback.announcement
    if announcement and announcement not in cfg.announcements:
        raise fallback.error("announcement", f"{announcement} is not in switch.announcements")
    return cfg


def _fallback(s: Section) -> FallbackSettings:
    d = FallbackSettings()
    order = s.get("order", str, d.order)
    if order not in ORDERS:
        raise s.error("order", f"must be one of {', '.join(ORDERS)}, got {order!r}")
    settings = FallbackSettings(
        enabled=s.get("enabled", bool, d.enabled),
        after_s=s.get("after", float, d.after_s, min=0.1),
        group=_strings(s, "group", d.group),
        order=order,
        announcement=s.get("announcement", int, d.announcement, min=0, max=65535),
        ring_s=s.get("ring", float, d.ring_s, min=1.0),
    )
    s.done()
    if settings.enabled and not settings.group:
        raise s.error("group", "needs at least one extension when enabled")
    return settings


def _strings(s: Section, name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    values = s.get(name, list, list(default))
    if not all(isinstance(v, str) and v for v in values):
        raise s.error(name, "must be a list of non-empty strings")
    return tuple(values)


def _traffic(s: Section) -> WeeklyTraffic:
    profiles = {}
    ps = s.section("profiles")
    for name in list(ps.data):
        p = ps.section(name)
        start = _clock(p, "start", "08:00")
        shares = p.get("shares", list)
        if not shares or not all(
            isinstance(x, int | float) and not isinstance(x, bool) and x >= 0 for x in shares
        ):
            raise p.error("shares", "must be a non-empty list of numbers >= 0")
        if sum(shares) <= 0:
            raise p.error("shares", "must not all be zero")
        if start + 3600 * len(shares) > 24 * 3600:
            raise p.error("shares", "one share per hour: the profile runs past midnight")
        p.done()
        profiles[name] = Profile(start, tuple(float(x) for x in shares))
    ps.done()
    week = {}
    ws = s.section("week")
    for day in list(ws.data):
        if day not in DAY_NAMES:
            raise ws.error(day, f"unknown day (use {', '.join(DAY_NAMES)})")
        d = ws.section(day)
        volume = d.get("volume", float, min=0.0)
        profile = d.get("profile", str)
        if profile not in profiles:
            raise d.error("profile", f"no profile {profile!r} in traffic.profiles")
        d.done()
        week[day] = DayPlan(volume, profiles[profile])
    ws.done()
    traffic = WeeklyTraffic(week, s.get("public_holidays", bool, True))
    s.done()
    return traffic


def _distribution(s: Section, base: Path) -> Distribution:
    kind = s.get("kind", str, choices=("exponential", "lognormal", "empirical", "fixed"))
    if kind == "exponential":
        dist: Distribution = Exponential(s.get("mean", float, min=0.0))
    elif kind == "lognormal":
        dist = Lognormal(s.get("mean", float, min=0.001), s.get("sd", float, min=0.0))
    elif kind == "fixed":
        dist = Fixed(s.get("value", float, min=0.0))
    else:
        path = base / s.get("file", str)
        try:
            dist = Empirical.from_csv(path, s.get("column", str, "seconds"))
        except AcdError as exc:
            raise s.error("file", str(exc)) from None
    s.done()
    return dist


def _callers(s: Section, base: Path) -> CallerModel:
    menu = s.section("menu")
    weights = {k: menu.get(k, float, min=0.0) for k in list(menu.data)}
    menu.done()
    if weights and sum(weights.values()) <= 0:
        raise menu.error(next(iter(weights)), "menu weights must not all be zero")
    model = CallerModel(
        patience=_distribution(s.section("patience", required=True), base),
        menu=weights,
        menu_delay=s.get("menu_delay", float, CallerModel.menu_delay, min=0.0),
        calling_prefix=s.get("calling_prefix", str, CallerModel.calling_prefix),
    )
    if not model.calling_prefix.isdigit() or len(model.calling_prefix) > 8:
        raise s.error("calling_prefix", "must be 1 to 8 digits")
    s.done()
    return model


def _behaviour(s: Section, base: Path) -> Behaviour:
    escalate_to = s.section("escalate_to")
    groups = {k: escalate_to.get(k, float, min=0.0) for k in list(escalate_to.data)}
    escalate_to.done()
    behaviour = Behaviour(
        answer_delay=_distribution(s.section("answer_delay", required=True), base),
        no_answer=s.get("no_answer", float, 0.0, min=0.0, max=1.0),
        handling=_distribution(s.section("handling", required=True), base),
        wrap_up=_distribution(s.section("wrap_up", required=True), base),
        escalate=s.get("escalate", float, Behaviour.escalate, min=0.0, max=1.0),
        escalate_to=groups,
        ready_after_miss=s.get("ready_after_miss", float, Behaviour.ready_after_miss, min=0.0),
    )
    if behaviour.escalate > 0 and not groups:
        raise s.error("escalate_to", "is required when escalate > 0")
    s.done()
    return behaviour


def _shift(s: Section) -> Shift:
    start = _clock(s, "start", "08:00")
    end = _clock(s, "end", "19:00")
    if end <= start:
        raise s.error("end", "must be after start")
    breaks = tuple(_break(b) for b in _array(s, "breaks"))
    s.done()
    return Shift(start, end, breaks)


def _break(s: Section) -> Break:
    pause = Break(
        _clock(s, "at"),
        60.0 * s.get("minutes", float, min=0.0),
        s.get("reason", int, 1, min=0, max=255),
    )
    s.done()
    return pause


def _agents(
    root: Section, behaviours: dict[str, Behaviour], shifts: dict[str, Shift]
) -> tuple[Agent, ...]:
    agents = []
    for a in _array(root, "agents"):
        behaviour = a.get("behaviour", str)
        if behaviour not in behaviours:
            raise a.error("behaviour", f"no behaviour {behaviour!r} in [behaviours]")
        shift = a.get("shift", str)
        if shift not in shifts:
            raise a.error("shift", f"no shift {shift!r} in [shifts]")
        agents.append(
            Agent(
                a.get("id", str),
                a.get("extension", str),
                a.get("pin", str),
                behaviours[behaviour],
                shifts[shift],
            )
        )
        a.done()
    return tuple(agents)


def _call(s: Section) -> ScriptedCall:
    call = ScriptedCall(
        _clock(s, "at"),
        Caller(
            s.get("calling", str, "0600000000"),
            s.get("patience", float, 3600.0, min=0.0),
            s.get("digits", str, ""),
        ),
        s.get("called", str, None),
    )
    s.done()
    return call

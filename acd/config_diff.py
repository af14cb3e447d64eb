"""What changes between two configurations, as a reload would apply it (`acd config diff`).

`changes(old, new)` lists one line per change: a section's key (``acd.max_misses: 2 → 3``),
an entry added or removed (``+ agent 1004``, ``- queue social``) or an entry's key
(``queue front-desk ring_timeout: 15 → 20``). Secrets are never shown. `RESTART_ONLY`
names the sections a reload does not apply.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

from acd.config import Config, Overflow

RESTART_ONLY = ("site", "link", "mqtt", "store")
"""Sections a running controller keeps until it restarts (its port, broker, database)."""

_SECRETS = frozenset({"password", "cmd_token", "pin_hash"})
_ENTRIES = (("calendars", "calendar"), ("queues", "queue"), ("agents", "agent"), ("menus", "menu"))


def changes(old: Config, new: Config) -> list[str]:
    """One line per difference, sections in file order, then calendars, queues, agents
    and menus; a restart-only section's lines end with ``(needs a restart)``."""
    lines: list[str] = []
    for f in fields(Config):
        if f.name in {name for name, _ in _ENTRIES}:
            continue
        suffix = " (needs a restart)" if f.name in RESTART_ONLY else ""
        for key, a, b in _fields(getattr(old, f.name), getattr(new, f.name)):
            lines.append(f"{f.name}.{key}: {_show(key, a)} → {_show(key, b)}{suffix}")
    for section, label in _ENTRIES:
        before, after = getattr(old, section), getattr(new, section)
        for name in before.keys() - after.keys():
            lines.append(f"- {label} {name}")
        for name in after:
            if name not in before:
                lines.append(f"+ {label} {name}")
                continue
            for key, a, b in _fields(before[name], after[name]):
                lines.append(f"{label} {name} {key}: {_show(key, a)} → {_show(key, b)}")
    return lines


def restart_needed(old: Config, new: Config) -> list[str]:
    """The restart-only sections that differ."""
    return [name for name in RESTART_ONLY if getattr(old, name) != getattr(new, name)]


def _fields(a: Any, b: Any) -> list[tuple[str, Any, Any]]:
    if not is_dataclass(a):
        return [] if a == b else [("", a, b)]
    return [
        (f.name, getattr(a, f.name), getattr(b, f.name))
        for f in fields(a)
        if getattr(a, f.name) != getattr(b, f.name)
    ]


def _show(key: str, value: Any) -> str:
    if key in _SECRETS:
        return "(set)" if value else "(none)"
    if key == "users":  # [web] users: names and roles, never the password hashes
        return "{" + ", ".join(f"{name} ({u.role})" for name, u in value.items()) + "}"
    if isinstance(value, tuple) and all(is_dataclass(v) for v in value):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    if isinstance(value, str | Overflow):  # an overflow as written: 'queue:back'
        return repr(str(value))
    return str(value)


def _compact(value: Any) -> str:
    return "(" + ", ".join(f"{f.name}={getattr(value, f.name)}" for f in fields(value)) + ")"

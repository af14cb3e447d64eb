"""The ``[web]`` section: where `acd web` listens, which sites it shows, who may log in.

```toml
[web]
listen = "127.0.0.1:8080"
sites = ["town-hall", "lyon"]     # default: every site heard on the broker
session_hours = 12
secure_cookies = true             # false only for plain http on another host than loopback

[web.users.alice]
role = "supervisor"               # or "viewer"
password_hash = "scrypt$16384$8$1$..."   # acd web hash-password
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from acd.core.pins import is_pin_hash
from acd.runtime.topics import check_id

if TYPE_CHECKING:
    from acd.config import Section

ROLES = ("supervisor", "viewer")


@dataclass(frozen=True)
class WebUser:
    """One account of the web console."""

    name: str
    role: str
    password_hash: str


@dataclass(frozen=True)
class WebConfig:
    """Settings of `acd web`."""

    listen: str = "127.0.0.1:8080"
    sites: tuple[str, ...] = ()  # empty: every site of the broker
    session_hours: float = 12.0
    secure_cookies: bool = True
    users: dict[str, WebUser] = field(default_factory=dict)

    @classmethod
    def from_section(cls, s: Section) -> WebConfig:
        listen = s.get("listen", str, cls.listen)
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise s.error("listen", str(exc)) from None
        sites = s.get("sites", list, [])
        for site in sites:
            try:
                check_id("site", site)
            except (ValueError, TypeError):
                raise s.error("sites", f"not a site id: {site!r}") from None
        users_s = s.section("users")
        users = {}
        for name in users_s.data:
            u = users_s.section(name)
            user = WebUser(
                name,
                u.get("role", str, choices=ROLES),
                u.get("password_hash", str),
            )
            if not is_pin_hash(user.password_hash):
                raise u.error("password_hash", "is not a hash of 'acd web hash-password'")
            u.done()
            users[name] = user
        cfg = cls(
            listen=listen,
            sites=tuple(sites),
            session_hours=s.get("session_hours", float, cls.session_hours, min=0.01, max=24 * 90),
            secure_cookies=s.get("secure_cookies", bool, cls.secure_cookies),
            users=users,
        )
        s.done()
        return cfg


def parse_listen(text: str) -> tuple[str, int]:
    """``host:port`` → ``(host, port)``; ``ValueError`` naming the problem."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"must be HOST:PORT, e.g. 127.0.0.1:8080, got {text!r}")
    return host.strip("[]"), int(port)

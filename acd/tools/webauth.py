"""Sessions, CSRF tokens and the login rate limit of `acd web` (pure: time passed in).

Passwords are hashed like agent PINs (salted scrypt, `acd.core.pins.hash_pin`): ``acd web
hash-password`` prints the hash for ``[web.users.NAME] password_hash``.
"""

from __future__ import annotations

import hmac
import secrets
from collections import deque
from dataclasses import dataclass


@dataclass
class Session:
    """One browser's session: anonymous (``user`` None, before login) or a user's."""

    sid: str
    csrf: str
    expires: float
    user: str | None = None
    role: str | None = None

    def csrf_ok(self, token: str | None) -> bool:
        """True when ``token`` is this session's CSRF token (constant-time compare)."""
        return token is not None and hmac.compare_digest(token.encode(), self.csrf.encode())


class Sessions:
    """Sessions by id, each valid ``lifetime`` s from its creation; at most ``limit``
    (the oldest anonymous ones go first, so a flood of visitors cannot log users out)."""

    def __init__(self, lifetime: float, limit: int = 10_000) -> None:
        self.lifetime = lifetime
        self.limit = limit
        self._by_id: dict[str, Session] = {}

    def new(self, now: float, user: str | None = None, role: str | None = None) -> Session:
        """A fresh session with new random id and CSRF token."""
        self._expire(now)
        if len(self._by_id) >= self.limit:
            victim = next((s for s in self._by_id.values() if s.user is None), None)
            victim = victim or next(iter(self._by_id.values()))
            del self._by_id[victim.sid]
        s = Session(
            secrets.token_urlsafe(32), secrets.token_urlsafe(32), now + self.lifetime, user, role
        )
        self._by_id[s.sid] = s
        return s

    def get(self, sid: str | None, now: float) -> Session | None:
        """The live session of that id, or None."""
        s = self._by_id.get(sid) if sid else None
        if s is not None and s.expires <= now:
            del self._by_id[s.sid]
            return None
        return s

    def drop(self, sid: str) -> None:
        """End a session (logout, or replaced at login)."""
        self._by_id.pop(sid, None)

    def _expire(self, now: float) -> None:
        for sid in [k for k, s in self._by_id.items() if s.expires <= now]:
            del self._by_id[sid]


class LoginLimiter:
    """At most ``attempts`` failed logins per ``window`` s for one client address and for
    one user name; `retry_after` says how long a refused key must wait."""

    def __init__(self, attempts: int = 5, window: float = 300.0) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, keys: tuple[str, ...], now: float) -> float:
        """Seconds until one of ``keys`` may try again; 0 when all may try now."""
        wait = 0.0
        for key in keys:
            times = self._recent(key, now)
            if len(times) >= self.attempts:
                wait = max(wait, times[0] + self.window - now)
        return wait

    def failed(self, keys: tuple[str, ...], now: float) -> None:
        """Count a failed login against each of ``keys``."""
        for key in keys:
            self._recent(key, now).append(now)

    def succeeded(self, keys: tuple[str, ...]) -> None:
        """Forget the failures of ``keys`` after a good login."""
        for key in keys:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times and len(self._failures) > 100_000:  # a flood of names: forget the empty
            self._failures = {k: v for k, v in self._failures.items() if v}
            times = self._failures.setdefault(key, deque())
        return times

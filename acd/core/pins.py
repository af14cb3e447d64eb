"""Agent PINs, stored only as salted scrypt hashes: ``scrypt$n$r$p$salt$digest``
(salt and digest in URL-safe base64). ``hash_pin`` makes one, ``verify_pin`` checks one
in constant time. The cost parameters travel in the hash, so a cheap hash (tests,
benchmarks) and a strong one (production default) verify the same way.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

DEFAULT_N = 2**14  # scrypt cost: about 30 ms and 16 MiB per check
MASK = "****"
"""What a PIN looks like wherever it is shown."""


class Pin:
    """A PIN as keyed on a handset. It never shows itself: ``repr`` and ``str`` are
    `MASK`, so no log line, error, reply or payload that formats it can carry the
    digits; ``reveal()`` is the one way to read them (to hash them)."""

    __slots__ = ("_digits",)

    def __init__(self, digits: str | Pin) -> None:
        self._digits = digits.reveal() if isinstance(digits, Pin) else str(digits)

    def reveal(self) -> str:
        """The digits, for `verify_pin` only."""
        return self._digits

    def __len__(self) -> int:
        return len(self._digits)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Pin):
            return hmac.compare_digest(self._digits.encode(), other._digits.encode())
        return NotImplemented

    def __hash__(self) -> int:
        return hash(Pin)

    def __repr__(self) -> str:
        return f"Pin({MASK!r})"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def hash_pin(
    pin: str, *, n: int = DEFAULT_N, r: int = 8, p: int = 1, salt: bytes | None = None
) -> str:
    """Hash a PIN for the configuration file."""
    salt = os.urandom(16) if salt is None else salt
    digest = hashlib.scrypt(pin.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${_b64(salt)}${_b64(digest)}"


def is_pin_hash(text: str) -> bool:
    """True when ``text`` has the shape of a ``hash_pin`` result."""
    parts = text.split("$")
    return (
        len(parts) == 6
        and parts[0] == "scrypt"
        and all(x.isdigit() for x in parts[1:4])
        and all(parts[4:])
    )


def verify_pin(pin: str | Pin, pin_hash: str) -> bool:
    """True when ``pin`` matches ``pin_hash``; a malformed hash never matches. Costs one
    scrypt run (about 30 ms at the default cost): the controller runs it off its loop."""
    if not is_pin_hash(pin_hash):
        return False
    _, n, r, p, salt, digest = pin_hash.split("$")
    digits = pin.reveal() if isinstance(pin, Pin) else pin
    try:
        got = hashlib.scrypt(
            digits.encode(), salt=_unb64(salt), n=int(n), r=int(r), p=int(p), dklen=32
        )
    except ValueError:
        return False
    return hmac.compare_digest(got, _unb64(digest))

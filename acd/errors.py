"""Errors a user can cause and fix: the CLI prints them as one line and exits 1."""

import math


class AcdError(Exception):
    """Base class of errors reported to the user without a traceback."""


class ConfigError(AcdError):
    """A configuration value is missing or wrong; the message names the key."""

    def __init__(self, key: str, problem: str, source: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(f"{where}{key}: {problem}")


def must_be(name: str, rule: str, value: float) -> str:
    """The message of a number out of range (``calls must be zero or more, got -5``);
    infinity and NaN are called what they are rather than measured against ``rule``."""
    if math.isfinite(value):
        return f"{name} must be {rule}, got {value:g}"
    return f"{name} must be a finite number, got {value:g}"

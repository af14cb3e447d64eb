"""Errors a user can cause and fix: the CLI prints them as one line and exits 1."""


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

"""Capped exponential backoff, for every retry loop (MQTT, the PBX port, the record
outbox): one way to wait before trying again."""


class Backoff:
    """The wait before the next attempt (to reconnect, to commit records): ``initial`` at
    first and after a success (`reset`), doubled after each failure (`grow`) up to ``cap``."""

    def __init__(self, initial: float, cap: float) -> None:
        self.initial = initial
        self.cap = cap
        self.delay = initial

    def reset(self) -> None:
        """A good connection: the next wait is ``initial`` again."""
        self.delay = self.initial

    def grow(self) -> float:
        """A failed attempt: double the wait, up to ``cap``; returns the new wait."""
        self.delay = min(self.delay * 2, self.cap)
        return self.delay

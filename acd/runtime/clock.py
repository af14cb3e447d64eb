"""Scaled time: the one clock of the controller, the simulated switch and replays."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True)
class Clock:
    """Time that reads ``start`` at reference time ``origin`` and runs ``speed``× faster.

    The controller's engine time (epoch seconds) from event-loop (monotonic) time, the
    simulated switch's time (seconds after midnight) from wire time, and a replay's
    engine time from capture (Unix) time are each one of these.
    """

    start: float
    origin: float
    speed: float = 1.0

    @classmethod
    def real_time(cls) -> Clock:
        """Unix time as a function of monotonic time."""
        return cls(time.time(), time.monotonic(), 1.0)

    def at(self, reference: float) -> float:
        """This clock's time at ``reference`` time."""
        return self.start + (reference - self.origin) * self.speed

    def when(self, t: float) -> float:
        """The reference time at which this clock reads ``t``."""
        return self.origin + (t - self.start) / self.speed

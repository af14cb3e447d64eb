"""Random durations: exponential, lognormal (by mean and sd), empirical (CSV) and fixed.

Every distribution draws from a ``random.Random`` passed in, so a seeded run repeats
exactly. All values are seconds and never negative.
"""

from __future__ import annotations

import csv
import functools
import math
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from acd.errors import AcdError


class Distribution(Protocol):
    """A source of non-negative durations in seconds."""

    @property
    def mean(self) -> float: ...

    def sample(self, rng: random.Random) -> float: ...


@dataclass(frozen=True)
class Fixed:
    """Always the same value."""

    value: float

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: random.Random) -> float:
        return self.value


@dataclass(frozen=True)
class Exponential:
    """Exponential with the given mean (memoryless: Erlang C/A patience and service)."""

    mean: float

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0


@dataclass(frozen=True)
class Lognormal:
    """Lognormal given by the mean and standard deviation of the durations themselves."""

    mean: float
    sd: float

    @functools.cached_property
    def sigma(self) -> float:
        return math.sqrt(math.log1p((self.sd / self.mean) ** 2))

    @functools.cached_property
    def mu(self) -> float:
        return math.log(self.mean) - self.sigma**2 / 2

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)


@dataclass(frozen=True)
class Empirical:
    """Draws uniformly among observed durations (bootstrap of a measured sample)."""

    values: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum(self.values) / len(self.values)

    def sample(self, rng: random.Random) -> float:
        return rng.choice(self.values)

    @classmethod
    def from_csv(cls, path: str | Path, column: str = "seconds") -> Empirical:
        """Read durations from ``column`` of a CSV file with a header row."""
        p = Path(path)
        try:
            with p.open(newline="") as fh:
                rows = list(csv.DictReader(fh))
        except FileNotFoundError:
            raise AcdError(f"{p}: durations file not found") from None
        if not rows or column not in rows[0]:
            raise AcdError(f"{p}: needs a header row with a {column!r} column")
        values = []
        for line, row in enumerate(rows, start=2):
            try:
                value = float(row[column])
            except (TypeError, ValueError):
                raise AcdError(f"{p}:{line}: {row[column]!r} is not a number") from None
            if not math.isfinite(value) or value < 0:
                raise AcdError(f"{p}:{line}: duration must be a finite number >= 0")
            values.append(value)
        return cls(tuple(values))

"""Confidence intervals of what-if figures: Student t over independent replications."""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from dataclasses import dataclass

CONFIDENCE = 0.95


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 400):
        for aa in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return h


def _betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(log_front) * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * _betainc(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


@functools.lru_cache(maxsize=256)
def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t (bisection on `t_cdf`, to 1e-12)."""
    if not 0.0 < p < 1.0 or df <= 0:
        raise ValueError("need 0 < p < 1 and df > 0")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    lo, hi = 0.0, 1.0
    while t_cdf(hi, df) < p:
        lo, hi = hi, 2.0 * hi
    while hi - lo > 1e-12 * max(1.0, hi):
        mid = (lo + hi) / 2.0
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return (lo + hi) / 2.0


@dataclass(frozen=True, slots=True)
class Estimate:
    """A mean over replications with its confidence interval (``None`` bounds when
    fewer than two replications gave a value)."""

    mean: float
    low: float | None
    high: float | None
    n: int  # replications that gave a value

    def to_dict(self) -> dict[str, float | int | None]:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n}


def estimate(
    values: Iterable[float | None], level: float = CONFIDENCE, rate: bool = False
) -> Estimate | None:
    """Mean and Student t interval of the values that are not None (None if there are
    none); a ``rate``'s interval is clipped to [0, 1]."""
    xs = [x for x in values if x is not None]
    if not xs:
        return None
    n = len(xs)
    mean = math.fsum(xs) / n
    if n < 2:
        return Estimate(mean, None, None, n)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in xs) / (n - 1))
    half = t_quantile(0.5 + level / 2.0, n - 1) * sd / math.sqrt(n)
    if rate:
        return Estimate(mean, max(0.0, mean - half), min(1.0, mean + half), n)
    return Estimate(mean, mean - half, mean + half, n)


def verdict(answer_rate: Estimate | None, target: float) -> tuple[str, str]:
    """``(verdict, sentence)`` for an answer-rate target: ``holds`` when the interval's
    lower bound reaches it, ``does not hold`` when its upper bound is below it, else
    ``uncertain``."""
    pct = f"{100 * target:g} %"
    if answer_rate is None:
        return "uncertain", f"no call was offered: the {pct} target cannot be judged"
    if answer_rate.low is None or answer_rate.high is None:
        return "uncertain", "one replication gives no confidence interval: run at least two"
    low, high = f"{100 * answer_rate.low:.2f} %", f"{100 * answer_rate.high:.2f} %"
    if answer_rate.low >= target:
        return (
            "holds",
            f"the {pct} target holds: even the interval's lower bound ({low}) reaches it",
        )
    if answer_rate.high < target:
        return "does not hold", f"the {pct} target does not hold: the interval ends at {high}"
    return "uncertain", (
        f"the {pct} target is not shown to hold: the interval {low} .. {high} straddles it"
        " (more days or replications narrow it)"
    )

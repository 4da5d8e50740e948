"""Reported numbers with their intervals, read from whatever shape a file gives them.

Eval summaries give `{value, low, high, n, interval}`; the lab's table gives plain numbers (rates
with the family's n) or the same dicts. `Fig` holds either; rates without an interval get the
Wilson interval from their n, means get a Student-t interval from the values they average.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from alignlab.stats import mean_interval, wilson_interval


@dataclass(frozen=True)
class Fig:
    """A figure: value, 95 % interval [low, high] when known, sample size n when known."""

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int | None = None
    interval: str | None = None  # how the interval was made (wilson, t, bootstrap, ...)

    @classmethod
    def read(cls, obj: Any, n: Any = None) -> Fig | None:
        """From `{value, low, high, n[, interval]}` or a plain number (n given apart); else None."""
        if isinstance(obj, dict):
            value = _num(obj.get("value"))
            if value is None and obj.get("value") is not None:
                return None
            return cls(value, _num(obj.get("low")), _num(obj.get("high")), _int(obj.get("n", n)),
                       obj.get("interval") if isinstance(obj.get("interval"), str) else None)  # fmt: skip
        if isinstance(obj, bool) or not isinstance(obj, int | float):
            return None
        return cls(_num(obj), n=_int(n))

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def complement(self) -> Fig:
        """1 - the figure (a refusal rate as an answered rate); the interval flips."""
        return Fig(_one_minus(self.value), _one_minus(self.high), _one_minus(self.low), self.n, self.interval)

    def err(self) -> tuple[float, float]:
        """Distances below and above the value (for error bars); 0 without an interval."""
        if self.value is None or not self.has_interval:
            return 0.0, 0.0
        return max(self.value - self.low, 0.0), max(self.high - self.value, 0.0)  # type: ignore[operator]

    def text(self, digits: int = 3) -> str:
        """'0.560 [0.371, 0.733]' (the interval when known); '–' when undefined."""
        if self.value is None:
            return "–"
        head = fmt(self.value, digits)
        if self.has_interval:
            return f"{head} [{fmt(self.low, digits)}, {fmt(self.high, digits)}]"
        return head


def _one_minus(x: float | None) -> float | None:
    return None if x is None else 1.0 - x


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def _int(x: Any) -> int | None:
    return int(x) if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x) else None


def fmt(x: Any, digits: int = 3) -> str:
    """A number for a table: integers as such, tiny values in scientific notation, big ones with commas."""
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        if x == int(x) and abs(x) < 1e15:
            return f"{int(x):,}"
        if abs(x) >= 1000:
            return f"{x:,.1f}"
        if abs(x) >= 10**-digits:
            return f"{x:.{digits}f}"
        return f"{x:.{digits - 1}e}"
    return str(x)


def rate(successes: int, n: int) -> Fig:
    """k of n as a rate with the Wilson interval (n = 0: undefined)."""
    if n <= 0:
        return Fig(None, n=0)
    e = wilson_interval(successes, n)
    return Fig(e.value, e.low, e.high, n, "wilson")


def rate_from_share(share: float, n: int) -> Fig:
    """A rate given as a share of n items (the lab's table): the Wilson interval of round(share * n)."""
    k = min(max(round(share * n), 0), n)
    return rate(k, n)


def mean(values: Sequence[float]) -> Fig:
    """Mean with a Student-t interval (one value: no interval; none: undefined)."""
    vals = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    if not vals:
        return Fig(None, n=0)
    if len(vals) == 1:
        return Fig(vals[0], n=1)
    e = mean_interval(vals)
    return Fig(e.value, e.low, e.high, e.n, "t")

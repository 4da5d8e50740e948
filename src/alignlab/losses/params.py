"""The allowed values of a registered function's scalar hyperparameters, declared with it, and its
one-line description.

A loss (`@register_loss(..., ranges=...)`) or an advantage estimator (`@register_advantage`) names
each keyword hyperparameter's `Range`; configs check the values a user sets against it (a negative
DPO beta would train the policy to prefer the rejected responses), and the listings show it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Range:
    """Bounds of a real value; each bound open (gt, lt) or closed (ge, le), None = unbounded."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def problem(self, value: Any) -> str | None:
        """None when `value` is allowed, else what it must be."""
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            return f"must be a finite number in {self}" if self.bounded else "must be a finite number"
        ok = ((self.ge is None or value >= self.ge) and (self.gt is None or value > self.gt)
              and (self.le is None or value <= self.le) and (self.lt is None or value < self.lt))
        return None if ok else f"must be {self}"

    @property
    def bounded(self) -> bool:
        return any(b is not None for b in (self.ge, self.gt, self.le, self.lt))

    def __str__(self) -> str:
        low = (f"[{_num(self.ge)}" if self.ge is not None else f"({_num(self.gt)}" if self.gt is not None
               else None)
        high = (f"{_num(self.le)}]" if self.le is not None else f"{_num(self.lt)})" if self.lt is not None
                else None)
        if low and high:
            return f"in {low}, {high}"
        if low:
            return f"{'>=' if self.ge is not None else '>'} {low[1:]}"
        if high:
            return f"{'<=' if self.le is not None else '<'} {high[:-1]}"
        return "any real number"


def _num(x: float) -> str:
    return f"{x:g}"


REAL = Range()  # any finite number


def check_ranges(owner: str, ranges: Mapping[str, Range], hyperparameters: Mapping[str, Any]) -> None:
    """Raise ValueError when `ranges` names no hyperparameter or a default lies outside its range
    (a programming error in the declaration, caught when it is registered)."""
    unknown = sorted(set(ranges) - set(hyperparameters))
    if unknown:
        raise ValueError(f"{owner}: ranges given for {unknown}, which are not its hyperparameters")
    for key, r in ranges.items():
        why = r.problem(hyperparameters[key])
        if why is not None:
            raise ValueError(f"{owner}: the default {key}={hyperparameters[key]!r} {why}")


def check_values(owner: str, ranges: Mapping[str, Range], hyperparameters: Mapping[str, Any],
                 values: Mapping[str, Any]) -> None:
    """Raise ValueError naming the first value in `values` that is no hyperparameter or out of range."""
    for key in sorted(values):
        if key not in hyperparameters:
            valid = ", ".join(hyperparameters) or "none"
            raise ValueError(f"{owner} has no hyperparameter {key}; valid: {valid}")
        why = ranges.get(key, REAL).problem(values[key])
        if why is not None:
            raise ValueError(f"{owner}: {key} {why}, got {values[key]!r}")


def describe_ranges(ranges: Mapping[str, Range]) -> str:
    """`beta > 0, gamma >= 0` for the listings."""
    return ", ".join(f"{k} {r}" for k, r in ranges.items() if r.bounded)


def first_doc_line(fn: Any) -> str:
    """First line of a registered function's docstring (its one-line description in help and docs)."""
    doc = (getattr(fn, "__doc__", None) or "").strip()
    return doc.splitlines()[0] if doc else ""

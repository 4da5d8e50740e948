"""`summary.json`: every metric of a suite run as a figure with its interval and sample size.

Per solver variant, each metric a scorer emitted (`scorer/metric`) is summarised over the episodes
that have it: booleans as a rate with the Wilson interval, numbers as a mean with the Student-t
interval (`alignlab.stats`). Failed generations are counted (`errors`) and excluded from every
metric's n. The suite's own `aggregate` adds figures that need all results at once.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from alignlab.evals.core import Figure, Result, Suite
from alignlab.generation.base import SamplingParams
from alignlab.stats import mean_interval, paired_difference, wilson_interval


@dataclass(frozen=True)
class SuiteSummary:
    """What `run_suite` returns and writes as `summary.json`."""

    suite: str
    mode: str
    n_samples: int
    n_episodes: int
    errors: int
    metrics: dict[str, dict[str, Figure]]  # variant -> "scorer/metric" -> figure
    labels: dict[str, dict[str, dict[str, int]]]  # variant -> scorer -> label -> count
    aggregates: dict[str, Figure] = field(default_factory=dict)
    notes: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def figure(self, variant: str, metric: str) -> Figure:
        return self.metrics[variant][metric]

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite, "mode": self.mode, "fingerprint": self.fingerprint,
            "n_samples": self.n_samples, "n_episodes": self.n_episodes, "errors": self.errors,
            "error_rate": wilson_figure(self.errors, self.n_episodes).to_json(),
            "params": self.params, "notes": self.notes,
            "metrics": {v: {k: f.to_json() for k, f in m.items()} for v, m in self.metrics.items()},
            "labels": self.labels,
            "aggregates": {k: f.to_json() for k, f in self.aggregates.items()},
        }  # fmt: skip


def wilson_figure(successes: int, n: int) -> Figure:
    return Figure(wilson_interval(successes, n), "wilson")


def metric_figure(values: Sequence[bool | float]) -> Figure:
    """A rate (Wilson) when every value is a bool, else a mean (Student t)."""
    if all(isinstance(v, bool) for v in values):
        return wilson_figure(sum(bool(v) for v in values), len(values))
    return Figure(mean_interval([float(v) for v in values]), "t")


def variant_difference(results: Sequence[Result], metric: str, variant: str, baseline: str) -> Figure | None:
    """Mean of `metric` under `variant` minus under `baseline`, paired by sample and draw (the same
    prompts asked two ways), with a t interval on the differences; None when no pair has both."""
    values = {(r.id, r.draw, r.variant): r.metric_values().get(metric) for r in results}
    pairs = [(float(v), float(values[(i, d, baseline)])) for (i, d, var), v in values.items()
             if var == variant and v is not None and values.get((i, d, baseline)) is not None]  # fmt: skip
    return _paired_figure(pairs)


def _paired_figure(pairs: Sequence[tuple[float, float]]) -> Figure | None:
    if not pairs:
        return None
    a, b = zip(*pairs, strict=True)
    return Figure(paired_difference(a, b), "paired-t")


def checkpoint_difference(later: Sequence[Result], earlier: Sequence[Result]) -> dict[str, dict[str, Figure]]:
    """Per variant and metric: the mean of `later` minus `earlier` on the same episodes (sample id,
    variant, draw), e.g. one suite run on two checkpoints, with a t interval on the differences.

    Failed episodes of either run leave their pair out; draws pair by index (n samples each)."""
    before = {r.key: r.metric_values() for r in earlier if r.error is None}
    pairs: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    for r in later:
        old = before.get(r.key)
        if r.error is not None or old is None:
            continue
        for metric, value in r.metric_values().items():
            if metric in old:
                pairs[(r.variant, metric)].append((float(value), float(old[metric])))
    out: dict[str, dict[str, Figure]] = defaultdict(dict)
    for (variant, metric), ps in sorted(pairs.items()):
        out[variant][metric] = _paired_figure(ps)  # type: ignore[assignment]
    return dict(out)


def _variant_metrics(results: Sequence[Result]) -> dict[str, Figure]:
    values: dict[str, list[bool | float]] = defaultdict(list)
    for r in results:
        for name, v in r.metric_values().items():
            values[name].append(v)
    return {name: metric_figure(vs) for name, vs in sorted(values.items())}


def _variant_labels(results: Sequence[Result]) -> dict[str, dict[str, int]]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        for scorer, s in r.scores.items():
            counts[scorer][s["label"]] += 1
    return {s: dict(sorted(c.items())) for s, c in counts.items()}


def summarise(
    suite: Suite, results: Sequence[Result], params: SamplingParams, fingerprint: str = ""
) -> SuiteSummary:
    """The summary of a finished run (pure: the same results give the same summary)."""
    by_variant: dict[str, list[Result]] = {v: [] for v in suite.solvers}
    for r in results:
        by_variant.setdefault(r.variant, []).append(r)
    ok = {v: [r for r in rs if r.error is None] for v, rs in by_variant.items()}
    return SuiteSummary(
        suite=suite.name,
        mode=suite.mode,
        n_samples=len({r.id for r in results}),
        n_episodes=len(results),
        errors=sum(r.error is not None for r in results),
        metrics={v: _variant_metrics(rs) for v, rs in ok.items()},
        labels={v: _variant_labels(rs) for v, rs in ok.items()},
        aggregates=suite.aggregate([r for rs in ok.values() for r in rs]) if suite.aggregate else {},
        notes=dict(suite.notes),
        params=dict(params.__dict__),
        fingerprint=fingerprint,
    )

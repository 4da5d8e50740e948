"""An eval stage's combined results: every suite's figures per checkpoint, their differences, headlines.

`results.json` (the stage's declared `results` output) holds, for a stage that ran suites S on
checkpoints C (in config order)::

    checkpoints: [C...]
    suites:      {S: {data, limit, options, headline: ["variant:metric", ...]}}
    results:     {C: {S: {path, n_samples, n_episodes, errors, error_rate, headline: {label: figure},
                          metrics: {variant: {metric: figure}}, aggregates: {name: figure}}}}
    differences: {later C: {earlier C: {S: {variant: {metric: figure}}}}}

A figure is `{value, low, high, n, interval}` as in each suite's `summary.json`; a difference is a
paired one (the same samples asked of both checkpoints, `interval: paired-t`). Headline labels are
`variant:metric` (`aggregate:name` for a suite-level figure) from the suite registry's `headline`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from alignlab.evals.core import Result
from alignlab.evals.registry import SuiteSpec
from alignlab.evals.runner import SAMPLES_FILE
from alignlab.evals.summary import checkpoint_difference
from alignlab.io import read_jsonl

AGGREGATE = "aggregate"


def headline(spec: SuiteSpec, summary: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """label -> figure of the suite's headline figures present in its `summary.json`."""
    metrics, aggregates = summary.get("metrics") or {}, summary.get("aggregates") or {}
    out: dict[str, dict[str, Any]] = {}
    for where, metric in spec.headline:
        if where == AGGREGATE:
            found = {f"{AGGREGATE}:{metric}": aggregates.get(metric)}
        else:
            variants = list(metrics) if where == "*" else [where]
            found = {f"{v}:{metric}": (metrics.get(v) or {}).get(metric) for v in variants}
        out |= {label: fig for label, fig in found.items() if isinstance(fig, dict)}
    return out


def suite_entry(spec: SuiteSpec, summary: Mapping[str, Any], path: str) -> dict[str, Any]:
    """One suite's figures on one checkpoint, as `results.json` holds them."""
    keys = ("n_samples", "n_episodes", "errors", "error_rate", "metrics", "aggregates")
    return {"path": path, **{k: summary.get(k) for k in keys}, "headline": headline(spec, summary)}


def read_results(folder: Path) -> list[Result]:
    return [Result.from_json(r) for r in read_jsonl(folder / SAMPLES_FILE)]


def differences(folders: Mapping[str, Mapping[str, Path]]) -> dict[str, Any]:
    """later -> earlier -> suite -> variant -> metric -> paired figure, for every pair of checkpoints
    in order (checkpoint -> suite -> the folder of its samples.jsonl)."""
    names = list(folders)
    out: dict[str, Any] = {}
    for j, later in enumerate(names):
        for earlier in names[:j]:
            per_suite = {}
            for suite, folder in folders[later].items():
                other = folders[earlier].get(suite)
                if other is None:
                    continue
                diff = checkpoint_difference(read_results(folder), read_results(other))
                per_suite[suite] = {v: {m: f.to_json() for m, f in ms.items()} for v, ms in diff.items()}
            out.setdefault(later, {})[earlier] = per_suite
    return out


def stage_summary(results: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> dict[str, Any]:
    """The stage's summary: headline values flat (`<checkpoint>/<suite>/<label>`), error counts, and
    `headline` (suite -> label -> checkpoint -> figure) for tables."""
    flat: dict[str, Any] = {}
    table: dict[str, dict[str, dict[str, Any]]] = {}
    errors = episodes = 0
    for ckpt, suites in results.items():
        for suite, entry in suites.items():
            errors += entry.get("errors") or 0
            episodes += entry.get("n_episodes") or 0
            flat[f"{ckpt}/{suite}/errors"] = entry.get("errors") or 0
            for label, fig in entry["headline"].items():
                flat[f"{ckpt}/{suite}/{label}"] = fig.get("value")
                table.setdefault(suite, {}).setdefault(label, {})[ckpt] = fig
    return {"episodes": episodes, "errors": errors, **flat, "headline": table}


def combined(
    checkpoints: Sequence[str], suites: Mapping[str, Mapping[str, Any]],
    results: Mapping[str, Mapping[str, Any]], folders: Mapping[str, Mapping[str, Path]],
) -> dict[str, Any]:  # fmt: skip
    """The content of `results.json`."""
    return {"checkpoints": list(checkpoints), "suites": dict(suites), "results": dict(results),
            "differences": differences(folders)}  # fmt: skip

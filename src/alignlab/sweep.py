"""Seed sweeps: a recipe run once per seed, and every stage's figures aggregated across the seeds.

`alignlab run RECIPE --seeds 0,1,2` sets the recipe's `seed` (which its stages use as `${seed}`)
to each value in turn and runs it into `RUN_DIR/seed-<k>/` (a finished seed is skipped, like any
finished stage), then writes `RUN_DIR/sweep.json`:

    {"recipe": name, "seeds": [0, 1, 2], "runs": {"0": "seed-0", ...},
     "stages": {stage: <the stage's summary, each figure replaced by its aggregate>}}

A figure is any number in a stage's summary, or the `value` of a `{value, low, high, n}` entry
(a figure with its per-run interval, as the lab's tables give them); its aggregate is

    {"value": mean, "sd": sample standard deviation, "low", "high": Student-t 95 % interval of
     the mean across seeds, "n": seeds, "values": one per seed (null where a run lacks it)}

with the same nesting as the summary. Per-run interval bounds written flat (`x/low`, `x/high`) are
left out (their figure `x` is aggregated), strings are kept where every run agrees. With one seed,
`sd`, `low` and `high` are null. The seed-to-seed spread is what a single run cannot show: how far
a figure moves with the world, the initialisation, the sampling and the labellers together.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignlab.errors import ConfigError
from alignlab.io import atomic_write_json
from alignlab.pipeline import RunResult, run_recipe
from alignlab.recipe import Recipe, uses_seed
from alignlab.stats import mean_interval, standard_deviation

SWEEP_FILE = "sweep.json"
RUN_SUMMARY = "summary.json"


@dataclass
class SweepResult:
    run_dir: Path
    seeds: list[int]
    runs: list[RunResult]
    sweep: dict[str, Any]  # the content of sweep.json


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' -> [0, 1, 2] (distinct integers, in the order given)."""
    try:
        seeds = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"--seeds {text!r}: give comma-separated integers, e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {text!r}: give at least one seed, each once, e.g. --seeds 0,1,2")
    return seeds


def seed_dir(run_dir: Path, seed: int) -> Path:
    return run_dir / f"seed-{seed}"


def run_sweep(recipe: Recipe, seeds: Sequence[int], *, run_dir: Path, recipe_path: str | None = None,
              log: Callable[[str], None] = print) -> SweepResult:
    """Run `recipe` once per seed into `run_dir/seed-<k>` and write `run_dir/sweep.json`."""
    if not uses_seed(recipe):
        raise ConfigError(
            f"{recipe_path or 'recipe'}: no stage refers to ${{seed}}, so every seed would run the same "
            "stages; write `seed: ${seed}` where a stage takes a seed"
        )
    runs = []
    for seed in seeds:
        log(f"sweep {recipe.name}: seed {seed} ({len(runs) + 1} of {len(seeds)})")
        runs.append(run_recipe(recipe.model_copy(update={"seed": seed}), run_dir=seed_dir(run_dir, seed),
                               recipe_path=recipe_path, log=log))
    sweep = write_sweep(run_dir, recipe.name, list(seeds))
    return SweepResult(run_dir, list(seeds), runs, sweep)


def write_sweep(run_dir: Path, name: str, seeds: list[int]) -> dict[str, Any]:
    """Aggregate the summaries of `run_dir/seed-<k>/` into `run_dir/sweep.json` (returned)."""
    summaries = []
    for seed in seeds:
        path = seed_dir(run_dir, seed) / RUN_SUMMARY
        try:
            summaries.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            raise ConfigError(f"{path}: missing or unreadable; run seed {seed} of the sweep first") from None
    sweep = {"recipe": name, "seeds": seeds, "runs": {str(k): seed_dir(Path(), k).name for k in seeds},
             "stages": aggregate(summaries)}
    atomic_write_json(run_dir / SWEEP_FILE, sweep)
    return sweep


# ------------------------------------------------------------------------------------ aggregation


def across(values: Sequence[float | None]) -> dict[str, Any]:
    """One figure across runs: mean, sample sd and Student-t 95 % interval of the finite values."""
    kept = [float(v) for v in values if v is not None and math.isfinite(v)]
    est = mean_interval(kept)
    spread = len(kept) >= 2
    return {"value": est.value if kept else None, "sd": standard_deviation(kept) if spread else None,
            "low": est.low if spread else None, "high": est.high if spread else None, "n": len(kept),
            "values": [None if v is None or not math.isfinite(v) else float(v) for v in values]}


def aggregate(runs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The runs' summaries (nested mappings of the same shape) with each figure aggregated `across`."""
    out: dict[str, Any] = {}
    for key in dict.fromkeys(k for r in runs for k in r):
        if key.endswith(("/low", "/high")):
            continue
        items = [r.get(key) for r in runs]
        present = [x for x in items if x is not None]
        if present and all(_figure(x) is not None for x in present):
            out[key] = across([_figure(x) for x in items])
        elif present and all(isinstance(x, Mapping) for x in present):
            out[key] = aggregate([x if isinstance(x, Mapping) else {} for x in items])
        elif present and all(isinstance(x, str) and x == present[0] for x in present):
            out[key] = present[0]
    return out


def _figure(x: Any) -> float | None:
    """The number a summary entry reports: a plain number, or the value of a {value, ...} figure."""
    if isinstance(x, Mapping) and "value" in x:
        x = x["value"]
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return float(x)

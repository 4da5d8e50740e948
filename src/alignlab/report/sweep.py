"""The report of a seed sweep (`alignlab run --seeds`, `alignlab.sweep`): every figure across seeds.

The page reads `sweep.json` and the first seed's run (for stage kinds, configs and the order of
checkpoints). Lab tables and the behaviour plots are those of a single run, each figure now the
mean across seeds with the Student-t 95 % interval across seeds and n = seeds; the other stages'
figures are listed with mean ± sd, interval and the value of every seed.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from alignlab.report import artefacts as art
from alignlab.report import compare, sections
from alignlab.report import html as h
from alignlab.report.figures import Fig, fmt

SWEEP_FILE = "sweep.json"  # written by alignlab.sweep (not imported: the report reads files only)
NOTE = ("Mean across seeds of each run's figure, with the Student-t 95 % interval across seeds; n counts "
        "seeds. Each seed changes the world, the initialisation, the sampling and the labellers together.")
SKIP = frozenset({"table", "n", "responses"})


def is_sweep(run_dir: Path) -> bool:
    return (run_dir / SWEEP_FILE).is_file() and not (run_dir / art.RUN_SUMMARY).is_file()


def render_sweep(run_dir: Path) -> tuple[str, list[str], list[h.Section]]:
    """(title, meta lines, sections) of the sweep in `run_dir`."""
    data = art.read_json(run_dir / SWEEP_FILE)
    if not isinstance(data, dict) or not isinstance(data.get("stages"), dict) or not data.get("seeds"):
        raise art.ReportError(f"{run_dir / SWEEP_FILE}: not a sweep file of `alignlab run --seeds`")
    seeds, stages = list(data["seeds"]), data["stages"]
    first = art.load_run(run_dir / str(data.get("runs", {}).get(str(seeds[0]), f"seed-{seeds[0]}")))
    labs = [_lab(s, stages[s.name]["table"], len(seeds)) for s in first.of_kind("lab_eval")
            if isinstance(stages.get(s.name, {}).get("table"), dict)]  # fmt: skip
    grids = [replace(g, note=NOTE) for lab in labs for g in [compare.lab_grid(lab)]]
    parts = [_overview(data, first), sections.evaluations(grids),
             sections.behaviour(compare.behaviour(first, labs, [])), _figures(stages, first)]  # fmt: skip
    meta = [f"sweep directory: {run_dir.resolve()}", f"{len(seeds)} seeds: {', '.join(map(str, seeds))}"]
    return f"Sweep {data.get('recipe', run_dir.name)}", meta, [p for p in parts if p is not None]


def _lab(stage: art.Stage, table: dict[str, Any], seeds: int) -> compare.LabEval:
    """A lab_eval stage's table across seeds, as the single-run tables and plots read it."""
    how, _ = compare._decoding(stage.config)
    named = art.lab_models(stage)
    models = [m for m in named if m in table] + [m for m in table if m not in named]
    out: dict[str, dict[str, dict[str, Fig]]] = {}
    for m in models:
        for family, figures in table[m].items():
            row = {k: _fig(v) for k, v in figures.items() if k not in SKIP and _fig(v) is not None}
            change = figures.get("change", {})
            if isinstance(change, dict) and _fig(change.get("utility")) is not None:
                row[f"Δ utility vs {change.get('vs', 'previous')}"] = _fig(change["utility"])  # type: ignore[assignment]
            out.setdefault(m, {})[family] = row  # type: ignore[assignment]
    return compare.LabEval(stage.name, f"lab: {stage.name} ({how}), {seeds} seeds", models, out, {})


def _fig(x: Any) -> Fig | None:
    """A figure across seeds ({value, sd, low, high, n, values}) as the report's Fig."""
    if not (isinstance(x, dict) and "sd" in x and isinstance(x.get("value"), int | float)):
        return None
    return Fig(float(x["value"]), x.get("low"), x.get("high"), x.get("n"), "t across seeds")


def _overview(data: dict[str, Any], first: art.Run) -> h.Section:
    runs = data.get("runs", {})
    rows = [[h.esc(seed), f"<code>{h.esc(runs.get(str(seed), ''))}</code>"] for seed in data["seeds"]]
    body = h.cards([("recipe", str(data.get("recipe", first.name))), ("seeds", str(len(data["seeds"]))),
                    ("stages", str(len(first.stages)))])  # fmt: skip
    body += h.para("Each seed's run has its own report: alignlab report on its directory.")
    body += h.table(["seed", "run directory"], rows)
    return h.Section("overview", "Overview", body)


def _figures(stages: dict[str, Any], first: art.Run) -> h.Section | None:
    """Every other stage's top-level figures: mean ± sd, interval across seeds, value per seed."""
    rows = []
    for name, figures in stages.items():
        stage = first.stage(name)
        if stage is None or stage.kind == "lab_eval" or not isinstance(figures, dict):
            continue
        for key, x in figures.items():
            if isinstance(x, dict) and "sd" in x and x.get("value") is not None:
                sd = f" ± {fmt(x['sd'])}" if x.get("sd") is not None else ""
                interval = f"[{fmt(x['low'])}, {fmt(x['high'])}]" if x.get("low") is not None else "–"
                values = ", ".join(fmt(v) for v in x.get("values", []))
                rows.append([h.esc(t) for t in (name, key, fmt(x["value"]) + sd, interval, values)])
    if not rows:
        return None
    body = h.para("Mean ± sample standard deviation across seeds, the Student-t 95 % interval of the mean, "
                  "and each seed's value.", "lead")
    headers = ["stage", "figure", "mean ± sd", "95 % interval", "per seed"]
    body += h.table(headers, rows, [False, False, True, True])
    return h.Section("figures", "Stage figures across seeds", body)

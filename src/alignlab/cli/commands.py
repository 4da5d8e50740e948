"""Recipes (run, validate), the run index (runs), and the registries (stages, losses)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from alignlab.cli.app import app, log
from alignlab.cli.options import Overrides
from alignlab.cli.tables import losses_table, plan_table, runs_table, stages_table, sweep_table

RunDir = Annotated[Path | None, typer.Option(help="Where stage directories go (default runs/<name>).")]


Seeds = Annotated[str | None, typer.Option(
    help="Run once per seed (comma-separated, e.g. 0,1,2; the recipe's ${seed}) into RUN_DIR/seed-<k> "
    "and aggregate every figure across seeds into RUN_DIR/sweep.json (mean, sd, t interval).")]


@app.command()
def run(recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")], run_dir: RunDir = None,
        overrides: Overrides = None, seeds: Seeds = None) -> None:
    """Run a recipe: every stage not yet done, in dependency order (finished stages are skipped)."""
    from alignlab.pipeline import load_recipe, run_recipe
    from alignlab.stages import show_summary

    r = load_recipe(recipe, overrides or [])
    target = run_dir or Path(r.run_dir or Path("runs") / r.name)
    if seeds is not None:
        _sweep(r, seeds, target, recipe)
        return
    result = run_recipe(r, run_dir=target, recipe_path=str(recipe), log=log)
    for stage in result.stages:
        view = show_summary(stage.kind, stage.name, result.summaries[stage.name])
        if view is not None:
            Console().print(view)
    log(f"run {r.name} done: {result.run_dir} (summary.json)")


def _sweep(r, seeds: str, target: Path, recipe: Path) -> None:
    from alignlab.stages import show_summary
    from alignlab.sweep import SWEEP_FILE, parse_seeds, run_sweep

    result = run_sweep(r, parse_seeds(seeds), run_dir=target, recipe_path=str(recipe), log=log)
    kinds = {s.name: s.kind for s in result.runs[0].stages}
    stages = result.sweep["stages"]
    shown = {name: show_summary(kinds[name], name, stages[name]) for name in stages if name in kinds}
    Console().print(sweep_table(r.name, result.seeds, {k: v for k, v in stages.items() if shown.get(k) is None}))
    for view in shown.values():
        if view is not None:
            Console().print(view)
    log(f"sweep {r.name} done: {result.run_dir} ({SWEEP_FILE}; each seed's run in seed-<k>/)")


@app.command()
def validate(recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")], run_dir: RunDir = None,
             overrides: Overrides = None) -> None:
    """Check a recipe (keys, types, references, input files) without building any model."""
    from alignlab.pipeline import check_inputs, load_recipe, plan

    r = load_recipe(recipe, overrides or [])
    target = run_dir or Path(r.run_dir or Path("runs") / r.name)
    stages = plan(r, target, recipe.resolve().parent, source=str(recipe))
    check_inputs(stages, str(recipe))
    Console().print(plan_table(r.name, stages))


@app.command()
def runs(limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20) -> None:
    """List recorded runs and their stages (newest first)."""
    from alignlab.run_index import RunIndex

    rows = RunIndex().runs(limit)
    if not rows:
        print("no runs recorded yet")
        return
    Console(width=200).print(runs_table(rows))


@app.command()
def stages() -> None:
    """List the stage kinds, what each does and the artefacts it writes."""
    from alignlab.stages import STAGE_KINDS

    Console().print(stages_table(STAGE_KINDS.values()))


@app.command()
def losses() -> None:
    """List the registered preference losses (`alignlab dpo --loss`) and what each takes."""
    from alignlab.losses.registry import get_loss, loss_names

    Console().print(losses_table(get_loss(name) for name in loss_names()))


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of `alignlab run` (holds summary.json).")],
    output: Annotated[Path | None, typer.Option(help="HTML file to write (default RUN_DIR/report.html).")] = None,
) -> None:
    """Write one self-contained HTML page of a run: configs, curves, evals side by side, plots."""
    from alignlab.report import write_report

    log(f"report: {write_report(run_dir, output)}")

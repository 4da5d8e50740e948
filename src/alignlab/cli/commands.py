"""Recipes (run, validate), the run index (runs), and the registries (stages, losses)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignlab.cli.app import app, log, resume_hint
from alignlab.cli.options import Overrides
from alignlab.cli.tables import losses_table, plan_table, print_table, runs_table, stages_table

RunDir = Annotated[Path | None, typer.Option(help="Where stage directories go (default runs/<name>).")]


@app.command()
def run(recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")], run_dir: RunDir = None,
        overrides: Overrides = None) -> None:
    """Run a recipe: every stage not yet done, in dependency order (finished stages are skipped)."""
    from alignlab.pipeline import load_recipe, run_recipe
    from alignlab.stages import show_summary

    r = load_recipe(recipe, overrides or [])
    target = run_dir or Path(r.run_dir or Path("runs") / r.name)
    with resume_hint("run the same command again: finished stages are skipped and the interrupted one "
                     "resumes from its last checkpoint"):
        result = run_recipe(r, run_dir=target, recipe_path=str(recipe), log=log)
    for stage in result.stages:
        view = show_summary(stage.kind, stage.name, result.summaries[stage.name])
        if view is not None:
            print_table(view)
    log(f"run {r.name} done: {result.run_dir} (summary.json)")


@app.command()
def validate(recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")], run_dir: RunDir = None,
             overrides: Overrides = None) -> None:
    """Check a recipe (keys, types, references, input files) without building any model."""
    from alignlab.pipeline import load_recipe, validate_recipe

    r = load_recipe(recipe, overrides or [])
    target = run_dir or Path(r.run_dir or Path("runs") / r.name)
    stages = validate_recipe(r, target, recipe.resolve().parent, source=str(recipe))
    print_table(plan_table(r.name, stages))


@app.command()
def runs(
    limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20,
    all_projects: Annotated[bool, typer.Option("--all", help="List the runs of every project.")] = False,
) -> None:
    """List recorded runs and their stages (newest first): those of this project (the git work tree
    you are in, else this directory) unless --all."""
    from alignlab.run_index import RunIndex, project_dir

    index = RunIndex()
    project = None if all_projects else project_dir()
    rows = index.runs(limit, project=project)
    if not rows:
        total = index.count_runs()
        where = f" in {project}" if project is not None else ""
        others = f"; --all lists {total} run{'s' * (total != 1)} of other projects" if total and project else ""
        print(f"no runs recorded yet{where}{others}")
        return
    print_table(runs_table(rows, project))


@app.command()
def stages() -> None:
    """List the stage kinds, what each does and the artefacts it writes."""
    from alignlab.stages import STAGE_KINDS

    print_table(stages_table(STAGE_KINDS.values()))


@app.command()
def losses() -> None:
    """List the registered preference losses (`alignlab dpo --loss`) and what each takes."""
    from alignlab.losses.registry import get_loss, loss_names

    print_table(losses_table(get_loss(name) for name in loss_names()))


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="Run directory of `alignlab run` (holds summary.json).")],
    output: Annotated[Path | None, typer.Option(help="HTML file to write (default RUN_DIR/report.html).")] = None,
) -> None:
    """Write one self-contained HTML page of a run: configs, curves, evals side by side, plots."""
    from alignlab.report import write_report

    log(f"report: {write_report(run_dir, output)}")

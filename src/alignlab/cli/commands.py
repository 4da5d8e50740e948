"""Recipes (run, validate), the run index (runs), and the registries (stages, losses)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alignlab.cli.app import app, log, resume_hint
from alignlab.cli.options import Overrides
from alignlab.cli.tables import losses_table, plan_table, print_table, runs_table, stages_table, sweep_table
from alignlab.serving.settings import ServerSettings

SERVER = ServerSettings()  # the server's defaults, shown in `alignlab serve --help`
RunDir = Annotated[Path | None, typer.Option(help="Where stage directories go (default runs/<name>).")]


Seeds = Annotated[str | None, typer.Option(
    help="Run once per seed (comma-separated, e.g. 0,1,2; the recipe's ${seed}) into RUN_DIR/seed-<k> "
    "and aggregate every figure across seeds into RUN_DIR/sweep.json (mean, sd, t interval).")]


@app.command()
def run(recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")], run_dir: RunDir = None,
        overrides: Overrides = None, seeds: Seeds = None) -> None:
    """Run a recipe: every stage not yet done, in dependency order (finished stages are skipped)."""
    from alignlab.pipeline import run_recipe
    from alignlab.recipe import load_recipe
    from alignlab.stages import show_summary

    r = load_recipe(recipe, overrides or [])
    target = run_dir or Path(r.run_dir or Path("runs") / r.name)
    if seeds is not None:
        _sweep(r, seeds, target, recipe)
        return
    with resume_hint("run the same command again: finished stages are skipped and the interrupted one "
                     "resumes from its last checkpoint"):
        result = run_recipe(r, run_dir=target, recipe_path=str(recipe), log=log)
    for stage in result.stages:
        view = show_summary(stage.kind, stage.name, result.summaries[stage.name])
        if view is not None:
            print_table(view)
    log(f"run {r.name} done: {result.run_dir} (summary.json)")


def _sweep(r, seeds: str, target: Path, recipe: Path) -> None:
    from alignlab.stages import show_summary
    from alignlab.sweep import SWEEP_FILE, parse_seeds, run_sweep

    result = run_sweep(r, parse_seeds(seeds), run_dir=target, recipe_path=str(recipe), log=log)
    kinds = {s.name: s.kind for s in result.runs[0].stages}
    stages = result.sweep["stages"]
    shown = {name: show_summary(kinds[name], name, stages[name]) for name in stages if name in kinds}
    print_table(sweep_table(r.name, result.seeds, {k: v for k, v in stages.items() if shown.get(k) is None}))
    for view in shown.values():
        if view is not None:
            print_table(view)
    log(f"sweep {r.name} done: {result.run_dir} ({SWEEP_FILE}; each seed's run in seed-<k>/)")


@app.command()
def validate(recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")], run_dir: RunDir = None,
             overrides: Overrides = None) -> None:
    """Check a recipe (keys, types, references, input files) without building any model."""
    from alignlab.pipeline import validate_recipe
    from alignlab.recipe import load_recipe

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
        others = (
            f"; --all lists {total} run{'s' * (total != 1)} of other projects" if total and project else ""
        )
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
    output: Annotated[
        Path | None, typer.Option(help="HTML file to write (default RUN_DIR/report.html).")
    ] = None,
) -> None:
    """Write one self-contained HTML page of a run: configs, curves, evals side by side, plots."""
    from alignlab.report import write_report

    log(f"report: {write_report(run_dir, output)}")


@app.command()
def serve(
    model_dir: Annotated[
        str, typer.Argument(help="Model directory (Hugging Face format) or LoRA adapter directory.")
    ],
    host: Annotated[
        str, typer.Option(help="Address to listen on (0.0.0.0 for every interface).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="ALIGNLAB_API_KEY",
            show_envvar=True,
            help="Require 'Authorization: Bearer KEY' (none: no key).",
        ),
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="Model id clients send (default: the directory's name).")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu, cuda or mps.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, float32, bfloat16 or float16.")] = "auto",
    max_batch_rows: Annotated[
        int, typer.Option(help="Rows (requests x n) decoded together.")
    ] = SERVER.max_batch_rows,
    batch_window_ms: Annotated[
        float, typer.Option(help="How long to wait for more requests before a batch.")
    ] = SERVER.batch_window_ms,
    max_queue: Annotated[int, typer.Option(help="Waiting requests before answering 429.")] = SERVER.max_queue,
    request_timeout: Annotated[
        float, typer.Option(help="Seconds before answering 504.")
    ] = SERVER.request_timeout_s,
    default_max_tokens: Annotated[
        int, typer.Option(help="Reply length when a request gives no max_tokens.")
    ] = SERVER.default_max_tokens,
    log_level: Annotated[str, typer.Option(help="critical, error, warning, info or debug.")] = "info",
) -> None:
    """Serve a checkpoint behind the OpenAI chat-completions API (docs/serving.md)."""
    from alignlab.serving.server import serve as run_server

    run_server(model_dir, host, port, api_key, device=device, dtype=dtype, log_level=log_level,
               model_name=model_name, max_batch_rows=max_batch_rows, batch_window_ms=batch_window_ms,
               max_queue=max_queue, request_timeout_s=request_timeout, default_max_tokens=default_max_tokens)

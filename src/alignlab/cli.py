"""The `alignlab` command: a thin layer over the stages, with no logic of its own.

Every error a user can cause (an `AlignlabError`) prints one line without a traceback and exits 2.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

import alignlab
from alignlab.errors import AlignlabError
from alignlab.labelling.cli import label_app

app = typer.Typer(
    name="alignlab",
    help="Turn a pretrained causal LM into an assistant, and measure what that did to it.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True, highlight=False)

Overrides = Annotated[list[str] | None, typer.Argument(help="Config overrides: key.sub=value ...", show_default=False)]


def _version(value: bool) -> None:
    if value:
        print(f"alignlab {alignlab.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")] = False,
) -> None:
    """Stages: sft, rm (reward model), score, dpo (DPO family); run / validate recipes; runs lists the registry."""


def log(msg: str) -> None:
    """Print a progress line; under a multi-process launch on the main process only."""
    from alignlab.distributed import is_main_process

    if is_main_process():
        console.print(msg, markup=False)


@app.command()
def sft(
    model: Annotated[str, typer.Option(help="Model directory (or hub id with model.allow_hub=true).")],
    data: Annotated[Path, typer.Option(help="Conversations file or directory.")],
    output: Annotated[Path, typer.Option(help="Output directory for the model, config and metrics.")],
    format: Annotated[str, typer.Option(help="Data format: auto, messages, sharegpt, alpaca, dolly, ...")] = "auto",
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data.")] = None,
    lora: Annotated[bool, typer.Option("--lora", help="Train LoRA adapters instead of all weights.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip malformed records.")] = False,
    config: Annotated[Path | None, typer.Option(help="YAML file with an SFT config (flags override it).")] = None,
    overrides: Overrides = None,
) -> None:
    """Supervised fine-tuning on conversations (loss on assistant tokens only)."""
    from alignlab.config import SFTConfig, load_yaml
    from alignlab.stages import STAGE_KINDS

    base = load_yaml(config) if config else {}
    flags = {"model.path": model, "data.path": str(data), "data.format": format}
    _common_flags(flags, max_steps, epochs, lora, skip_invalid)
    _run_standalone(STAGE_KINDS["sft"], SFTConfig, base, flags, overrides or [], output, config)


@app.command()
def pretrain(
    data: Annotated[Path, typer.Option(help="Corpus: JSONL/JSON/parquet with a `text` field, or .txt (blank-line separated).")],
    output: Annotated[Path, typer.Option(help="Output directory for the model, tokenizer, config and metrics.")],
    model: Annotated[str | None, typer.Option(help="Continue pretraining this model (directory, or hub id with model.allow_hub=true).")] = None,
    from_scratch: Annotated[bool, typer.Option("--from-scratch", help="Train a new BPE tokenizer and a new model (init.* keys size it).")] = False,
    seq_len: Annotated[int | None, typer.Option(help="Tokens per training row.")] = None,
    packing: Annotated[str | None, typer.Option(help="documents (whole documents per row) or stream (re-cut every epoch).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the corpus.")] = None,
    config: Annotated[Path | None, typer.Option(help="YAML file with a pretrain config (flags override it).")] = None,
    overrides: Overrides = None,
) -> None:
    """Causal language modelling on raw text: continued pretraining of a model, or a new one from scratch."""
    from alignlab.config import PretrainConfig, load_yaml
    from alignlab.stages import STAGE_KINDS

    if model is not None and from_scratch:
        raise AlignlabError("give --model (continued pretraining) or --from-scratch, not both")
    base = load_yaml(config) if config else {}
    flags: dict = {"data.path": str(data)}
    if model is not None:
        flags["model.path"] = model
    if from_scratch:
        flags["init.arch"] = base.get("init", {}).get("arch", "llama")
    if seq_len is not None:
        flags["data.seq_len"] = seq_len
    if packing is not None:
        flags["data.packing"] = packing
    _common_flags(flags, max_steps, epochs, lora=False, skip_invalid=False)
    _run_standalone(STAGE_KINDS["pretrain"], PretrainConfig, base, flags, overrides or [], output, config)


@app.command()
def rm(
    model: Annotated[str, typer.Option(help="Backbone: causal LM directory (or hub id with model.allow_hub=true).")],
    data: Annotated[Path, typer.Option(help="Preference pairs: hh-rlhf, UltraFeedback, TRL or alignlab JSONL.")],
    output: Annotated[Path, typer.Option(help="Output directory for the reward model, report.json and metrics.")],
    format: Annotated[str, typer.Option(help="Data format: auto, hh-rlhf, ultrafeedback, preference.")] = "auto",
    ensemble: Annotated[int | None, typer.Option(help="Ensemble members k (k heads; ensemble.kind=models for k models).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data.")] = None,
    lora: Annotated[bool, typer.Option("--lora", help="Train LoRA adapters (merged into the saved model).")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip malformed records.")] = False,
    config: Annotated[Path | None, typer.Option(help="YAML file with an rm config (flags override it).")] = None,
    overrides: Overrides = None,
) -> None:
    """Train a Bradley-Terry reward model on preference pairs and report its accuracy and calibration."""
    from alignlab.config import RewardModelConfig, load_yaml
    from alignlab.stages import STAGE_KINDS

    base = load_yaml(config) if config else {}
    flags = {"model.path": model, "data.path": str(data), "data.format": format}
    if ensemble is not None:
        flags["ensemble.size"] = ensemble
    _common_flags(flags, max_steps, epochs, lora, skip_invalid)
    _run_standalone(STAGE_KINDS["rm"], RewardModelConfig, base, flags, overrides or [], output, config)


@app.command()
def score(
    reward_model: Annotated[str, typer.Option(help="Reward model directory (from `alignlab rm`, or any HF one).")],
    data: Annotated[Path, typer.Option(help="Conversations, preference pairs or KTO records to score.")],
    output: Annotated[Path, typer.Option(help="Output JSONL file: each record with its reward(s).")],
    format: Annotated[str, typer.Option(help="Data format, or auto.")] = "auto",
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip malformed records.")] = False,
    config: Annotated[Path | None, typer.Option(help="YAML file with a score config (flags override it).")] = None,
    overrides: Overrides = None,
) -> None:
    """Score (prompt, response) records with a reward model."""
    from alignlab.config import ScoreConfig, apply_overrides, load_yaml, set_dotted, validate_config
    from alignlab.pipeline import PlannedStage, check_inputs
    from alignlab.stages import STAGE_KINDS

    data_dict = dict(load_yaml(config)) if config else {}
    flags = {"reward_model.path": reward_model, "data.path": str(data), "data.format": format}
    if skip_invalid:
        flags["data.skip_invalid"] = True
    for k, v in flags.items():
        set_dotted(data_dict, k, v)
    cfg = validate_config(ScoreConfig, apply_overrides(data_dict, overrides or []), source=str(config) if config else None)
    check_inputs([PlannedStage("score", STAGE_KINDS["score"], cfg, (), "", output.parent)], str(config or "command line"))
    if output.is_dir():
        raise AlignlabError(f"--output {output}: is a directory; give the path of the JSONL file to write")
    output.parent.mkdir(parents=True, exist_ok=True)
    from alignlab.distributed import init_processes, run_on_main
    from alignlab.training.score import score_file

    init_processes()
    # Scoring is not split over processes: under a multi-process launch the main one scores alone.
    summary = run_on_main(lambda: score_file(cfg, output, log), "score")
    if summary is not None:
        log("score done: " + ", ".join(f"{k}={v:.4g}" for k, v in summary.items()))


@app.command()
def dpo(
    model: Annotated[str, typer.Option(help="Policy to align (usually the SFT model directory).")],
    data: Annotated[Path, typer.Option(help="Preference pairs (KTO also takes prompt/completion/label records).")],
    output: Annotated[Path, typer.Option(help="Output directory for the policy, config and metrics.")],
    loss: Annotated[str | None, typer.Option(help="Preference loss: dpo, cdpo, ipo, slic, kto, orpo, simpo.")] = None,
    ref_model: Annotated[str | None, typer.Option(help="Reference model directory (default: the initial policy).")] = None,
    format: Annotated[str, typer.Option(help="Data format, or auto.")] = "auto",
    max_steps: Annotated[int | None, typer.Option(help="Optimizer steps (overrides --epochs).")] = None,
    epochs: Annotated[float | None, typer.Option(help="Passes over the data.")] = None,
    lora: Annotated[bool, typer.Option("--lora", help="Train LoRA adapters; the base with adapters off is the reference.")] = False,
    skip_invalid: Annotated[bool, typer.Option("--skip-invalid", help="Skip malformed records.")] = False,
    config: Annotated[Path | None, typer.Option(help="YAML file with a dpo config (flags override it).")] = None,
    overrides: Overrides = None,
) -> None:
    """Align a policy directly on preferences with a DPO-family loss (loss_params.beta=... etc.)."""
    from alignlab.config import DPOConfig, load_yaml
    from alignlab.stages import STAGE_KINDS

    base = load_yaml(config) if config else {}
    flags = {"model.path": model, "data.path": str(data), "data.format": format}
    if loss is not None:
        flags["loss"] = loss
    if ref_model is not None:
        flags["reference.path"] = ref_model
    _common_flags(flags, max_steps, epochs, lora, skip_invalid)
    _run_standalone(STAGE_KINDS["dpo"], DPOConfig, base, flags, overrides or [], output, config)


def _common_flags(flags: dict, max_steps: int | None, epochs: float | None, lora: bool, skip_invalid: bool) -> None:
    if max_steps is not None:
        flags["train.max_steps"] = max_steps
    if epochs is not None:
        flags["train.epochs"] = epochs
    if lora:
        flags["lora.enabled"] = True
    if skip_invalid:
        flags["data.skip_invalid"] = True


def _run_standalone(kind, config_cls, base: dict, flags: dict, overrides: list[str], output: Path, source) -> None:
    """Validate, check inputs, run one stage into `output`, and record it in the registry."""
    from alignlab.config import apply_overrides, set_dotted, validate_config
    from alignlab.distributed import init_processes, is_main_process, wait_for_everyone
    from alignlab.pipeline import PlannedStage, check_inputs
    from alignlab.registry import open_registry
    from alignlab.stage_io import DONE_FILE, StageContext, write_config
    from alignlab.stages import run_stage

    data = dict(base)
    for k, v in flags.items():
        set_dotted(data, k, v)
    cfg = validate_config(config_cls, apply_overrides(data, overrides), source=str(source) if source else None)
    output = output.resolve()
    planned = PlannedStage(kind.name, kind, cfg, (), "", output)
    check_inputs([planned], str(source) if source else "command line")
    init_processes()
    main = is_main_process()
    if (output / DONE_FILE).exists():
        raise AlignlabError(f"{output}: already holds a finished {kind.name} run; choose another --output or delete it")
    wait_for_everyone()  # every process has checked before the main one writes anything
    output.mkdir(parents=True, exist_ok=True)
    if main:
        write_config(cfg, output)
    registry = open_registry()
    run_id = registry.start_run(kind.name, None, str(output))
    sid = registry.start_stage(run_id, kind.name, kind.name, None, str(output), [])
    try:
        summary = run_stage(kind, cfg, StageContext(kind.name, output, None, log))
    except BaseException as err:
        registry.finish_stage(sid, "failed", error=str(err).splitlines()[0] if str(err) else type(err).__name__)
        registry.finish_run(run_id, "failed")
        raise
    from alignlab.io import atomic_write_json

    if main:
        atomic_write_json(output / DONE_FILE, {"hash": "", "kind": kind.name, "inputs": [], "summary": summary})
    registry.finish_stage(sid, "done", summary)
    registry.finish_run(run_id, "done")
    wait_for_everyone()  # no process exits while the main one still writes
    log(f"{kind.name} done: {output}")


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")],
    run_dir: Annotated[Path | None, typer.Option(help="Where stage directories go (default runs/<name>).")] = None,
    overrides: Overrides = None,
) -> None:
    """Run a recipe: every stage not yet done, in dependency order (finished stages are skipped)."""
    from alignlab.pipeline import load_recipe, run_recipe

    r = load_recipe(recipe, overrides or [])
    target = run_dir or Path(r.run_dir or Path("runs") / r.name)
    result = run_recipe(r, run_dir=target, recipe_path=str(recipe), log=log)
    for name, summary in result.summaries.items():
        if isinstance(summary.get("table"), dict):
            Console().print(_family_table(name, summary["table"]))
    log(f"run {r.name} done: {result.run_dir} (summary.json)")


def _family_table(stage: str, table: dict):
    """Two tables of a lab_eval stage, one row per family and model, every figure with its 95 %
    interval: the gold-behaviour rate, mean gold utility and its paired change from the model above
    (Δ, starred when its interval excludes 0); then refusal, abstention, deflection and evasion."""
    from rich import box
    from rich.console import Group

    def rate(fig: dict | None) -> str:  # Wilson: asymmetric, so both bounds
        return "-" if not fig else f"{fig['value']:.0%} [{100 * fig['low']:.0f},{100 * fig['high']:.0f}]"

    def mean(fig: dict | None, sign: str = "") -> str:  # Student t: symmetric
        return "-" if not fig else f"{fig['value']:{sign}.2f} ±{(fig['high'] - fig['low']) / 2:.2f}"

    def change(row: dict) -> str:
        fig = row.get("change", {}).get("utility")
        return "" if not fig else mean(fig, "+") + ("*" if fig["differs"] else " ")

    models = list(table)
    families = list(dict.fromkeys(f for m in models for f in table[m]))
    gold = Table(title=f"{stage}: held-out prompts with the gold behaviour and mean gold utility (95 % intervals)",
                 caption="Δ: paired change from the model above; * its interval excludes 0 (a difference)",
                 box=box.SIMPLE_HEAD)
    acts = Table(title=f"{stage}: refused, abstained (honestly), deflected (claimed not to know what the "
                 "world defines) or evaded (none of these, no answer), 95 % intervals", box=box.SIMPLE_HEAD)
    for col in ("family", "model", "gold behaviour", "utility", "Δ utility", "words"):
        gold.add_column(col, justify="left" if col in ("family", "model") else "right", no_wrap=True)
    acts_cols = ("refused", "abstained", "deflected", "evaded")
    for col in ("family", "model", *acts_cols):
        acts.add_column(col, justify="left" if col in ("family", "model") else "right", no_wrap=True)
    for fam in families:
        for i, m in enumerate(models):
            row = table[m].get(fam, {})
            label = fam if i == 0 else f"n={row.get('n', '?')}" if i == 1 else ""
            gold.add_row(label, m, rate(row.get("followed")), mean(row.get("utility")), change(row),
                         f"{row['words']['value']:.1f}" if "words" in row else "")
            if fam != "all":
                acts.add_row(label, m, *(rate(row.get(k)) for k in acts_cols))
        gold.add_section()
        acts.add_section()
    return Group(gold, acts)


@app.command()
def validate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML.")],
    run_dir: Annotated[Path | None, typer.Option(help="Run directory to plan against.")] = None,
    overrides: Overrides = None,
) -> None:
    """Check a recipe (keys, types, references, input files) without building any model."""
    from alignlab.pipeline import check_inputs, load_recipe, plan

    r = load_recipe(recipe, overrides or [])
    target = run_dir or Path(r.run_dir or Path("runs") / r.name)
    stages = plan(r, target, recipe.resolve().parent, source=str(recipe))
    check_inputs(stages, str(recipe))
    table = Table(title=f"recipe {r.name}: {len(stages)} stages, valid")
    for col in ("stage", "kind", "needs", "status", "directory"):
        table.add_column(col)
    for s in stages:
        table.add_row(s.name, s.kind.name, ", ".join(s.deps) or "-", "done" if s.done else "to run", str(s.dir))
    Console().print(table)


@app.command()
def runs(limit: Annotated[int, typer.Option(help="How many runs to list.")] = 20) -> None:
    """List recorded runs and their stages (newest first)."""
    import datetime as dt

    from alignlab.registry import Registry

    rows = Registry().runs(limit)
    if not rows:
        print("no runs recorded yet")
        return
    table = Table(title="runs")
    for col in ("id", "name", "started", "status", "stages"):
        table.add_column(col)
    for r in rows:
        stages = ", ".join(f"{s.name}:{s.status}" for s in r.stages) or "-"
        started = dt.datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M")
        table.add_row(str(r.id), r.name, started, r.status, stages)
    Console(width=200).print(table)


lab_app = typer.Typer(help="The laboratory: a synthetic world with a gold standard.", no_args_is_help=True)
app.add_typer(lab_app, name="lab")


@lab_app.command("show")
def lab_show(
    seed: Annotated[int, typer.Option(help="World seed.")] = 0,
    per_family: Annotated[int, typer.Option(help="Examples per request family.")] = 2,
) -> None:
    """Print examples of every request family with their gold behaviour."""
    from alignlab.lab.tasks import show_examples
    from alignlab.lab.world import WorldConfig, build_world

    table = Table(title=f"lab world (seed {seed}): held-out examples and their gold behaviour", show_lines=True)
    for col in ("family", "prompt", "gold behaviour"):
        table.add_column(col, overflow="fold")
    for family, messages, gold in show_examples(build_world(WorldConfig(seed=seed)), per_family):
        prompt = "\n".join(f"[{m.role}] {m.content}" for m in messages)
        table.add_row(family, prompt, gold)
    Console().print(table)


# The labelling app's commands live beside it; its module imports only typer until a command runs.
app.add_typer(label_app, name="label", help="Preference-labelling web app: serve, users, import, export.")


def main(argv: list[str] | None = None) -> None:
    try:
        app(args=argv)
    except AlignlabError as err:
        console.print(f"error: {err}", markup=False, soft_wrap=True)
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted; re-run the same command to resume from the last checkpoint", markup=False)
        sys.exit(130)


if __name__ == "__main__":
    main()

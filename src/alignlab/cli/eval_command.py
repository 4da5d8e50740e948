"""`alignlab eval`: run eval suites on a model directory, an endpoint or a file of responses; `--list`.

A thin layer over the `eval` stage kind (`alignlab.config.evals`, `alignlab.evals.stage`): the flags
set config keys, and the arguments after them are the model (a directory, an http(s):// URL, or a
responses file) and `key=value` settings. A setting whose key is a config key of the stage
(`limit=5`, `suites.jailbreak.options.transforms=rot13`) overrides it; any other is a suite option
for every selected suite that takes it (`transforms=rot13`, `system_prompt=...`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from alignlab.cli.app import app, log
from alignlab.cli.options import ConfigFile, run_stage_command
from alignlab.errors import ConfigError

HELP = ("Run eval suites (`alignlab eval --list`) on a model directory, an OpenAI-compatible endpoint or a "
        "file of existing responses; writes OUTPUT/<checkpoint>/<suite>/ and results.json.")


@app.command("eval", help=HELP)
def eval_command(
    args: Annotated[list[str] | None, typer.Argument(
        help="MODEL_DIR_OR_URL (or a responses file), then key=value settings: a config key of the stage "
        "(limit=5) or an option of the selected suites (transforms=rot13,base64).",
        show_default=False)] = None,
    suite: Annotated[str | None, typer.Option(help="Suites, comma-separated (`--list` shows them).")] = None,
    output: Annotated[Path | None, typer.Option(help="Stage directory: <checkpoint>/<suite>/, "
                                                "results.json, config.yaml, stage.json.")] = None,
    data: Annotated[list[str] | None, typer.Option(
        help="Data file for the suites that read one, or SUITE=FILE for one suite (repeatable).")] = None,
    responses: Annotated[Path | None, typer.Option(
        help="Score the existing responses in this CSV / JSONL file (no model).")] = None,
    judge: Annotated[str | None, typer.Option(help="Judge model directory or endpoint URL.")] = None,
    baseline: Annotated[str | None, typer.Option(
        help="win_rate baseline: model directory, endpoint URL or responses file.")] = None,
    transfer: Annotated[str | None, typer.Option(
        help="gcg: model directory or endpoint URL the attack strings are transferred to.")] = None,
    limit: Annotated[int | None, typer.Option(help="At most this many samples per suite.")] = None,
    name: Annotated[str | None, typer.Option(
        help="Checkpoint name (default: the model's directory or file name).")] = None,
    model_name: Annotated[str | None, typer.Option(
        help="Endpoint: the model name sent (default: the one it lists).")] = None,
    api_key_env: Annotated[str | None, typer.Option(
        help="Endpoint: environment variable holding the API key (default OPENAI_API_KEY).")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="Reply length for every suite.")] = None,
    config: ConfigFile = None,
    list_suites: Annotated[bool, typer.Option(
        "--list", help="List the suites, their data and options.")] = False,
) -> None:
    if list_suites:
        Console(width=200).print(suites_table())
        return
    model, settings = _split_args(args or [])
    if responses is not None:
        if model is not None:
            raise ConfigError(f"give either a model ({model}) or --responses {responses}, not both")
        if responses.is_dir():
            raise ConfigError(f"--responses {responses}: is a directory; give a CSV or JSONL file of "
                              "responses")  # fmt: skip
        model = str(responses)
    if output is None:
        raise ConfigError("--output DIR is required: the eval writes its results there")
    flags = _flags(model, suite, data or [], name, model_name, api_key_env)
    given = {"judge": judge, "baseline": baseline, "transfer": transfer, "limit": limit,
             "max_new_tokens": max_new_tokens}  # fmt: skip
    flags |= {k: v for k, v in given.items() if v is not None}
    summary = run_stage_command("eval", output, config, _overrides(settings), flags)
    from alignlab.stages import get_stage_kind, show_summary

    view = show_summary(get_stage_kind("eval"), "eval", summary)
    if view is not None:
        Console(width=200).print(view)
    log(f"results: {output / 'results.json'}")


def _split_args(args: list[str]) -> tuple[str | None, list[str]]:
    """(the model, the key=value settings): the model is a URL, an existing path, or has no '='."""
    model, settings = None, []
    for a in args:
        if a.startswith(("http://", "https://")) or Path(a).exists() or "=" not in a:
            if model is not None:
                raise ConfigError(f"two models given ({model}, {a}); an eval command takes one (a recipe "
                                  "takes several: models: {name: path, ...})")  # fmt: skip
            model = a
        else:
            settings.append(a)
    return model, settings


def _overrides(settings: list[str]) -> list[str]:
    """Config keys of the stage stay overrides; any other key is a suite option (`options.<key>`)."""
    from alignlab.config.evals import EvalConfig

    keys = EvalConfig.model_fields
    return [s if s.split("=", 1)[0].split(".")[0] in keys else f"options.{s}" for s in settings]


def _flags(model: str | None, suite: str | None, data: list[str], name: str | None, model_name: str | None,
           api_key_env: str | None) -> dict:  # fmt: skip
    from alignlab.config.evals import checkpoint_name
    from alignlab.evals.registry import suite_names

    flags: dict = {}
    if model is not None:
        endpoint = {k: v for k, v in (("model", model_name), ("api_key_env", api_key_env)) if v is not None}
        section = {"path": model, **({"endpoint": endpoint} if endpoint else {})}
        flags["models"] = {name or checkpoint_name(model): section}
    chosen = [s.strip() for s in (suite or "").split(",") if s.strip()]
    suites: dict = {s: {} for s in chosen}
    for d in data:
        head, _, path = d.partition("=")
        if path and head in suite_names():
            if head not in suites:
                raise ConfigError(f"--data {d}: suite '{head}' is not among --suite {suite or '(none)'}")
            suites[head]["data"] = path
        else:
            flags["data"] = d
    if suites:
        flags["suites"] = suites
    return flags


def suites_table() -> Table:
    """Every registered suite: what it measures, what it reads, its options (and who sets which)."""
    from alignlab.config.evals import RUNTIME_OPTIONS
    from alignlab.evals.registry import describe_suites

    table = Table(title="eval suites (alignlab eval MODEL --suite NAME[,NAME] --output DIR)", show_lines=True)
    for col in ("suite", "what it measures", "data (--data)", "options (key=value)", "needs"):
        table.add_column(col, overflow="fold")
    for row in describe_suites():
        options = ", ".join(f"{k}={v}" for k, v in row["options"].items() if k not in RUNTIME_OPTIONS) or "-"
        needs = [f"--{k}" + ("" if row["options"][k] == "required" else " (optional)")
                 for k in ("judge", "baseline", "transfer") if k in row["options"]]  # fmt: skip
        if "white_box" in row["options"] or row["mode"] == "loglikelihood":
            needs.append("a model directory (in process)")
        table.add_row(row["name"], row["help"], row["data"], options, "\n".join(needs) or "-")
    return table

"""Tables the commands print: runs, a recipe's plan, a seed sweep, the stage kinds and the losses (rich).

Cells are `Text`, never markup: a path, a name or a description holding "[...]" prints as written."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from alignlab.losses.params import describe_ranges

# Off a terminal (a pipe, a log file) rich would assume 80 columns and cut paths short.
OFF_TERMINAL_WIDTH = 200


def print_table(table: RenderableType) -> None:
    """Print to stdout at the terminal's width, or off one at least OFF_TERMINAL_WIDTH columns (more
    if COLUMNS asks), so a directory in a table piped to a file is not cut to 'runs/my-run/sft-4…'."""
    console = Console()
    if not console.is_terminal:
        console = Console(width=max(console.width, OFF_TERMINAL_WIDTH))
    console.print(table)


def runs_table(rows: Sequence, project=None) -> Table:
    """Recorded runs (`RunIndex.runs`), newest first: where each wrote and a digest of its config
    (the stage directory's key), so runs of one name can be told apart."""
    title = f"runs of {project} (--all: every project)" if project is not None else "runs"
    table = Table(title=title)
    for col in ("id", "name", "started", "status", "directory", "config", "stages"):
        table.add_column(col, overflow="fold")
    for r in rows:
        stages = ", ".join(f"{s.name}:{s.status}" for s in r.stages) or "-"
        started = dt.datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M")
        # A stage command's run is one stage: its key. A recipe's stage keys are in its stage dirs.
        config = r.stages[0].hash if len(r.stages) == 1 and r.recipe is None else (r.recipe or "-")
        table.add_row(*map(Text, (str(r.id), r.name, started, r.status, r.run_dir or "-", config or "-",
                                  stages)))
    return table


def plan_table(recipe: str, stages: Sequence) -> Table:
    """A validated recipe's stages (`pipeline.plan`) in run order."""
    table = Table(title=f"recipe {recipe}: {len(stages)} stage{'s' * (len(stages) != 1)}, valid")
    for col in ("stage", "kind", "needs", "status", "directory"):
        table.add_column(col, overflow="fold")
    for s in stages:
        status = "done" if s.done else "to run"
        table.add_row(*map(Text, (s.name, s.kind.name, ", ".join(s.deps) or "-", status, str(s.dir))))
    return table


def stages_table(kinds: Iterable) -> Table:
    """Every stage kind: what it does and the artefacts it writes (`${stage.artefact}` in recipes)."""
    table = Table(title="stage kinds", show_lines=True)
    for col in ("kind", "what it does", "outputs"):
        table.add_column(col, overflow="fold")
    for k in kinds:
        outputs = "\n".join(f"{name}: {a.path} ({a.kind})" for name, a in k.outputs.items())
        table.add_row(*map(Text, (k.name, k.help, outputs or "-")))
    return table


def losses_table(specs: Iterable) -> Table:
    """Every registered preference loss: its inputs, what it needs, its hyperparameters."""
    table = Table(title="preference losses (dpo --loss)", show_lines=True)
    for col in ("loss", "inputs", "reference", "log-probs", "hyperparameters", "what it is"):
        table.add_column(col, overflow="fold")
    for s in specs:
        params = ", ".join(f"{k}={v}" for k, v in s.hyperparameters.items()) or "-"
        if s.estimated:
            params += f" (estimated per batch: {', '.join(s.estimated)})"
        if describe_ranges(s.ranges):
            params += f"; valid: {describe_ranges(s.ranges)}"
        needs = f"{s.logps}" + (f" + NLL ({s.nll})" if s.needs_nll else "")
        table.add_row(*map(Text, (s.name, s.inputs, "yes" if s.needs_reference else "no", needs, params,
                                  s.description)))
    return table


# Loop bookkeeping and timing in a stage's summary: not results worth a row across seeds (sweep.json
# keeps them).
BOOKKEEPING = frozenset({"step", "epoch", "lr", "grad_norm", "items", "items_per_s", "tokens_per_s",
                         "elapsed_s", "seconds", "cpu_seconds"})


def sweep_table(recipe: str, seeds: Sequence[int], stages: Mapping[str, Mapping[str, Any]]) -> Table:
    """Each stage's top-level figures across seeds (`sweep.aggregate`): mean ± sd, the Student-t 95 %
    interval of the mean, and the value of every seed."""
    table = Table(title=f"sweep {recipe}: {len(seeds)} seeds ({', '.join(map(str, seeds))}); "
                  "mean ± sd, 95 % t interval across seeds")
    for col in ("stage", "figure", "mean ± sd", "95 % interval", "per seed"):
        table.add_column(col, justify="right" if col not in ("stage", "figure") else "left")
    for stage, figures in stages.items():
        first = True
        for key, fig in figures.items():
            if key in BOOKKEEPING or not isinstance(fig, Mapping) or "sd" not in fig or fig["value"] is None:
                continue
            spread = f" ± {_g(fig['sd'])}" if fig["sd"] is not None else ""
            interval = f"[{_g(fig['low'])}, {_g(fig['high'])}]" if fig["low"] is not None else "-"
            values = ", ".join("-" if v is None else _g(v) for v in fig["values"])
            table.add_row(stage if first else "", key, _g(fig["value"]) + spread, interval, values)
            first = False
        if not first:
            table.add_section()
    return table


def _g(x: float) -> str:
    return f"{x:.4g}"

"""Tables the commands print: runs, a recipe's plan, a seed sweep, the stage kinds and the losses (rich)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.table import Table


def runs_table(rows: Sequence) -> Table:
    """Recorded runs (`RunIndex.runs`), newest first, with each stage's status."""
    table = Table(title="runs")
    for col in ("id", "name", "started", "status", "stages"):
        table.add_column(col)
    for r in rows:
        stages = ", ".join(f"{s.name}:{s.status}" for s in r.stages) or "-"
        started = dt.datetime.fromtimestamp(r.started_at).strftime("%Y-%m-%d %H:%M")
        table.add_row(str(r.id), r.name, started, r.status, stages)
    return table


def plan_table(recipe: str, stages: Sequence) -> Table:
    """A validated recipe's stages (`pipeline.plan`) in run order."""
    table = Table(title=f"recipe {recipe}: {len(stages)} stages, valid")
    for col in ("stage", "kind", "needs", "status", "directory"):
        table.add_column(col)
    for s in stages:
        table.add_row(s.name, s.kind.name, ", ".join(s.deps) or "-", "done" if s.done else "to run",
                      str(s.dir))
    return table


def stages_table(kinds: Iterable) -> Table:
    """Every stage kind: what it does and the artefacts it writes (`${stage.artefact}` in recipes)."""
    table = Table(title="stage kinds", show_lines=True)
    for col in ("kind", "what it does", "outputs"):
        table.add_column(col, overflow="fold")
    for k in kinds:
        outputs = "\n".join(f"{name}: {a.path} ({a.kind})" for name, a in k.outputs.items())
        table.add_row(k.name, k.help, outputs or "-")
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
        needs = f"{s.logps}" + (f" + NLL ({s.nll})" if s.needs_nll else "")
        table.add_row(s.name, s.inputs, "yes" if s.needs_reference else "no", needs, params, s.description)
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

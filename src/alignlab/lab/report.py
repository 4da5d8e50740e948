"""Terminal views of the laboratory: the gold-judge table of a lab_eval stage, and example prompts."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Group
from rich.table import Table
from rich.text import Text


def family_table(stage: str, summary: dict[str, Any]) -> Group | None:
    """The view of a finished lab_eval stage (`StageKind.show`), from its summary's `table`."""
    table = summary.get("table")
    return _tables(stage, table) if isinstance(table, dict) else None


def _tables(stage: str, table: dict) -> Group:
    """Two tables of a lab_eval stage, one row per family and model, every figure with its 95 %
    interval: the gold-behaviour rate, mean gold utility and its paired change from the model above
    (Δ, starred when its interval excludes 0); then refusal, abstention, deflection and evasion.
    A seed sweep's table (figures with `sd`, `sweep.aggregate`) shows mean ± sd [t interval across
    seeds] instead."""
    seeds = _seeds(table)

    def rate(fig: dict | None) -> str:  # Wilson: asymmetric, so both bounds
        if not fig:
            return "-"
        if seeds:
            return f"{fig['value']:.0%}" + _spread(fig, 100, ".0f")
        return f"{fig['value']:.0%} [{100 * fig['low']:.0f},{100 * fig['high']:.0f}]"

    def mean(fig: dict | None, sign: str = "") -> str:  # Student t: symmetric
        if not fig:
            return "-"
        if seeds:
            return f"{fig['value']:{sign}.2f}" + _spread(fig, 1, ".2f")
        return f"{fig['value']:{sign}.2f} ±{(fig['high'] - fig['low']) / 2:.2f}"

    def change(row: dict) -> str:
        fig = row.get("change", {}).get("utility")
        return "" if not fig else mean(fig, "+") + ("*" if _differs(fig) else " ")

    models = list(table)
    families = list(dict.fromkeys(f for m in models for f in table[m]))
    what = (f"mean ±sd [95 % t interval] over {seeds} seeds" if seeds else "95 % intervals")
    gold = Table(title=f"{stage}: held-out prompts with the gold behaviour and mean gold utility ({what})",
                 caption="Δ: paired change from the model above; * its interval excludes 0 (a difference)",
                 box=box.SIMPLE_HEAD)
    acts = Table(title=f"{stage}: refused, abstained (honestly), deflected (claimed not to know what the "
                 f"world defines) or evaded (none of these, no answer), {what}", box=box.SIMPLE_HEAD)
    for col in ("family", "model", "gold behaviour", "utility", "Δ utility", "words"):
        gold.add_column(col, justify="left" if col in ("family", "model") else "right", no_wrap=True)
    acts_cols = ("refused", "abstained", "deflected", "evaded")
    for col in ("family", "model", *acts_cols):
        acts.add_column(col, justify="left" if col in ("family", "model") else "right", no_wrap=True)
    for fam in families:
        for i, m in enumerate(models):
            row = table[m].get(fam, {})
            n = row.get("n", "?")
            label = fam if i == 0 else f"n={n['value'] if isinstance(n, dict) else n:.0f}" if i == 1 else ""
            gold.add_row(label, m, rate(row.get("followed")), mean(row.get("utility")), change(row),
                         f"{row['words']['value']:.1f}" if "words" in row else "")
            if fam != "all":
                acts.add_row(label, m, *(rate(row.get(k)) for k in acts_cols))
        gold.add_section()
        acts.add_section()
    return Group(gold, acts)


def _seeds(table: dict) -> int:
    """Seeds behind a sweep's table (its figures carry `sd`); 0 for one run's table."""
    for families in table.values():
        for row in families.values():
            fig = row.get("utility") if isinstance(row, dict) else None
            if isinstance(fig, dict) and "sd" in fig:
                return int(fig["n"])
    return 0


def _spread(fig: dict, scale: float, spec: str) -> str:
    """' ±sd [low,high]' of a sweep figure, or '' with one seed (no spread, no interval)."""
    if fig.get("sd") is None or fig.get("low") is None or fig.get("high") is None:
        return ""
    return f" ±{scale * fig['sd']:{spec}} [{scale * fig['low']:{spec}},{scale * fig['high']:{spec}}]"


def _differs(fig: dict) -> bool:
    """A change is a difference when its interval excludes 0 (one run: paired over prompts; a sweep:
    the mean change across seeds)."""
    if "differs" in fig:
        return bool(fig["differs"])
    low, high = fig.get("low"), fig.get("high")
    return low is not None and high is not None and (low > 0 or high < 0)


def examples_table(seed: int, examples: list[tuple[str, Any, str]]) -> Table:
    """(family, messages, gold behaviour) rows, as `alignlab lab show` prints them."""
    table = Table(title=f"lab world (seed {seed}): held-out examples and their gold behaviour",
                  show_lines=True)
    for col in ("family", "prompt", "gold behaviour"):
        table.add_column(col, overflow="fold")
    for family, messages, gold in examples:
        # Text, not markup: "[user]" would otherwise be read as a style tag and vanish.
        prompt = "\n".join(f"[{m.role}] {m.content}" for m in messages)
        table.add_row(Text(family), Text(prompt), Text(gold))
    return table

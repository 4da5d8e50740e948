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
    (Δ, starred when its interval excludes 0); then refusal, abstention, deflection and evasion."""
    def rate(fig: dict | None) -> str:  # Wilson: asymmetric, so both bounds
        return "-" if not fig else f"{fig['value']:.0%} [{100 * fig['low']:.0f},{100 * fig['high']:.0f}]"

    def mean(fig: dict | None, sign: str = "") -> str:  # Student t: symmetric
        return "-" if not fig else f"{fig['value']:{sign}.2f} ±{(fig['high'] - fig['low']) / 2:.2f}"

    def change(row: dict) -> str:
        fig = row.get("change", {}).get("utility")
        return "" if not fig else mean(fig, "+") + ("*" if fig["differs"] else " ")

    models = list(table)
    families = list(dict.fromkeys(f for m in models for f in table[m]))
    gold = Table(title=f"{stage}: held-out prompts with the gold behaviour and mean gold utility "
                 "(95 % intervals)",
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

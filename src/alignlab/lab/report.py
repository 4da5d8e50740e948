"""Terminal views of the laboratory: the gold-judge table of a lab_eval stage, and example prompts."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text


def family_table(stage: str, summary: dict[str, Any]) -> Table | None:
    """Rows: family; columns: each model's gold-behaviour rate (`followed`) and mean gold utility.

    The view of a finished lab_eval stage (`StageKind.show`), from its summary's `table`."""
    table = summary.get("table")
    if not isinstance(table, dict):
        return None
    models = list(table)
    families = list(dict.fromkeys(f for m in models for f in table[m]))
    out = Table(title=f"{stage}: share of held-out prompts with the gold behaviour (mean gold utility)")
    out.add_column("family")
    for m in models:
        out.add_column(m, justify="right")
    for fam in families:
        cells = []
        for m in models:
            row = table[m].get(fam, {})
            followed = f"{row['followed']:.0%} " if "followed" in row else ""
            cells.append(f"{followed}({row.get('utility', float('nan')):.2f})")
        out.add_row(fam, *cells)
    if all("words" in table[m].get("all", {}) for m in models):
        out.add_row("words per response", *(f"{table[m]['all']['words']:.1f}" for m in models))
    return out


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

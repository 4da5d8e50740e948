"""The eval stage's view in the terminal: each suite's headline figures, checkpoints side by side."""

from __future__ import annotations

from typing import Any

from rich.table import Table


def cell(fig: Any) -> str:
    """`value [low, high] n=` of a figure (`-` when there is none)."""
    if not isinstance(fig, dict) or fig.get("value") is None:
        return "-"
    low, high = fig.get("low"), fig.get("high")
    interval = f" [{low:.3f}, {high:.3f}]" if low is not None and high is not None else ""
    return f"{fig['value']:.3f}{interval} n={fig.get('n')}"


def headline_table(stage: str, summary: dict[str, Any]) -> Table | None:
    """Rows: suite and headline figure; columns: checkpoints (from the summary's `headline`)."""
    table = summary.get("headline")
    if not isinstance(table, dict) or not table:
        return None
    checkpoints = list(dict.fromkeys(c for rows in table.values() for figs in rows.values() for c in figs))
    out = Table(title=f"{stage}: headline figures, 95 % intervals, n (`results.json` has every figure)")
    for col in ("suite", "figure", *checkpoints):
        out.add_column(col, justify="left" if col in ("suite", "figure") else "right", overflow="fold")
    for suite, rows in table.items():
        for label, figs in rows.items():
            out.add_row(suite, label, *(cell(figs.get(c)) for c in checkpoints))
        errors = [summary.get(f"{c}/{suite}/errors") or 0 for c in checkpoints]
        if any(errors):  # failed generations: error rows in samples.jsonl, in no figure's n
            out.add_row(suite, "generations failed", *(str(e) for e in errors))
    return out


def curve_table(stage: str, summary: dict[str, Any]) -> Table | None:
    """The overoptimisation stage's points: per series, KL, proxy, gold and length; then each series'
    shape (from the summary's `series` and `shapes`)."""
    series, shapes = summary.get("series"), summary.get("shapes") or {}
    if not isinstance(series, dict) or not series:
        return None
    out = Table(title=f"{stage}: proxy and gold against KL, 95 % intervals, n prompts")
    for col in ("series", "point", "KL", "proxy", "gold", "length (tokens)"):
        out.add_column(col, justify="left" if col in ("series", "point") else "right", overflow="fold")
    for name, points in series.items():
        for p in points:
            out.add_row(name, str(p.get("label", "")), f"{p['kl']:.2f}", cell(p.get("proxy")),
                        cell(p.get("gold")), cell(p.get("length")))
        if name in shapes:
            out.add_row(name, "shape", "", "", shapes[name].get("verdict", ""), "")
    return out

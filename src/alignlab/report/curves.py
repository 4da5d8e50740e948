"""Training curves: which logged metrics go into which small plot.

`metrics.jsonl` rows carry the loop's own fields (step, loss, lr, grad_norm, throughput) and each
method's metrics (DPO's rewards/* and kl, the reward model's accuracy, eval/* at evaluation steps).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

# Panel title -> does a metric key belong there; the first match wins, in this order.
PANELS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("loss", lambda k: k in ("loss", "nll", "eval/loss", "eval/nll")),
    ("accuracy", lambda k: "accuracy" in k),
    ("reward", lambda k: k.startswith(("rewards/", "reward/", "reward_", "eval/reward"))),
    ("KL", lambda k: k == "kl" or k.startswith("kl/") or k.endswith(("/kl", "_kl"))),
    ("log-probs", lambda k: k.startswith("logps/")),
    ("learning rate", lambda k: k == "lr"),
    ("eval", lambda k: k.startswith("eval/")),
)
# Bookkeeping the loop logs that is not a training curve.
SKIP = frozenset(
    {"step", "epoch", "items", "items_per_s", "tokens_per_s", "elapsed_s", "grad_norm", "skipped_update"}
)


def panels(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[tuple[float, float]]]]:
    """panel -> metric key -> [(step, value)], for the metrics logged as finite numbers."""
    series: dict[str, list[tuple[float, float]]] = {}
    for i, row in enumerate(rows):
        step = row.get("step", i + 1)
        if not _finite(step):
            continue
        for key, v in row.items():
            if key not in SKIP and _finite(v):
                series.setdefault(key, []).append((float(step), float(v)))
    out: dict[str, dict[str, list[tuple[float, float]]]] = {}
    placed: set[str] = set()
    for title, belongs in PANELS:
        for key in sorted(series, key=lambda k: (k != "loss", k)):
            if belongs(key) and key not in placed:
                placed.add(key)
                panel = out.setdefault(title, {})
                if series[key] not in panel.values():  # e.g. nll == loss when the loss is the NLL alone
                    panel[key] = series[key]
    return out


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

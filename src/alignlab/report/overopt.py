"""The over-optimisation curve's file: proxy reward and gold utility as the policy moves away (KL).

`overoptimisation.json` (in the run directory or a stage directory; see docs/report.md):

    {"x_name": "KL(policy || reference), nats",      # optional axis labels
     "proxy_name": "reward model score", "gold_name": "gold utility",
     "points": [{"kl": 0.0, "proxy": 0.1, "gold": 0.52, "label": "sft", "series": "beta=0.05"}, ...]}

`proxy` and `gold` are numbers or figures `{value, low, high, n}`; `label` and `series` are
optional (one line pair per series). Gao et al. 2023 ("Scaling laws for reward model
over-optimization") plot both against the distance from the initial policy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from alignlab.report.figures import Fig


@dataclass
class Curve:
    source: str
    x_name: str
    proxy_name: str
    gold_name: str
    series: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # name -> points
    problems: list[str] = field(default_factory=list)


def read_curve(source: str, data: dict[str, Any]) -> Curve:
    """The points that are well formed; each one that is not is named in `problems`."""
    curve = Curve(source, _text(data.get("x_name"), "KL(policy ‖ reference)"),
                  _text(data.get("proxy_name"), "proxy reward"),
                  _text(data.get("gold_name"), "gold utility"))  # fmt: skip
    points = data.get("points")
    if not isinstance(points, list) or not points:
        curve.problems.append("no 'points' list")
        return curve
    for i, p in enumerate(points):
        point = _point(p)
        if point is None:
            curve.problems.append(
                f"points[{i}]: needs a finite 'kl' and 'proxy' and 'gold' numbers or figures"
            )
            continue
        curve.series.setdefault(str(p.get("series", "")), []).append(point)
    return curve


def _point(p: Any) -> dict[str, Any] | None:
    if not isinstance(p, dict):
        return None
    kl = p.get("kl")
    proxy, gold = Fig.read(p.get("proxy")), Fig.read(p.get("gold"))
    if not (isinstance(kl, int | float) and math.isfinite(kl)) or proxy is None or gold is None:
        return None
    if proxy.value is None or gold.value is None:
        return None
    label = p.get("label")
    return {"kl": float(kl), "proxy": proxy, "gold": gold, "label": str(label) if label is not None else ""}


def _text(x: Any, default: str) -> str:
    return str(x) if isinstance(x, str) and x.strip() else default

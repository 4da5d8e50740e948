"""The overoptimisation stage: proxy reward and gold utility against KL from the reference (Gao,
Schulman & Hilton 2023), from online RL runs' held-out evaluations and a best_of_n stage, written
as `overoptimisation.json` (the report's curve, docs/report.md) with a summary of each series' shape.

Series: one per RL run (each evaluation a point: the mean KL, proxy, gold and length over the
held-out prompts, Student-t 95 % intervals), best-of-n (n = 1, 2, 4, …; KL log n − (n − 1)/n), and
each other policy of the best_of_n stage as a point of its own (e.g. DPO on the same pairs). The
best_of_n stage's n = 1 (the reference policy, one sample, estimated from all N) starts every RL
series at KL 0.

Shape, per series: the proxy's change from the start to the last point, the gold's peak (the point
with the highest mean gold), and the gold's change from the start to the peak and from the peak to
the last point, each paired by prompt with a t interval. A change is called a rise or a fall only
when its interval excludes zero. Picking the peak as the highest of several noisy means favours
finding a rise and a fall, so a peak that is barely above its neighbours is no evidence of either.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from alignlab.config.overopt import OveroptimisationConfig
from alignlab.errors import DataError
from alignlab.evals.best_of_n import best_of_n_kl, powers_of_two
from alignlab.evals.best_of_n_stage import per_prompt, read_samples
from alignlab.io import atomic_write_json
from alignlab.stage_io import DONE_FILE, StageContext
from alignlab.stats import mean_interval, paired_difference

Values = dict[Any, float]  # prompt id -> value


def run_overoptimisation(config: OveroptimisationConfig, ctx: StageContext) -> dict[str, Any]:
    proxy, gold = config.proxy, config.gold
    series: dict[str, list[dict[str, Any]]] = {}
    start = None
    bon_rows: list[dict[str, Any]] = []
    if config.best_of_n is not None:
        bon_rows = read_samples(config.best_of_n)
        _check_keys(bon_rows[0], (proxy, gold), config.best_of_n)
        base = [r for r in bon_rows if r["model"] == "policy"]
        start = _point(0.0, {role: per_prompt(base, key, proxy, 1) for role, key in
                             (("proxy", proxy), ("gold", gold), ("length", "length"))}, "start (n = 1)")
    for name, run_dir in config.runs.items():
        points = run_points(read_evaluations(run_dir), proxy, gold, run_dir)
        series[name] = ([start] if start else []) + points
    if bon_rows:
        series["best-of-n"] = bon_points(bon_rows, proxy, gold)
        for name in dict.fromkeys(r["model"] for r in bon_rows if r["model"] != "policy"):
            mine = [r for r in bon_rows if r["model"] == name]
            values = {role: {r["id"]: sum(r[key]) / len(r[key]) for r in mine}
                      for role, key in (("proxy", proxy), ("gold", gold), ("length", "length"), ("kl", "kl"))}
            series[name] = [_point(values.pop("kl"), values, name)]
    points = [{**_public(p), "series": name} for name, pts in series.items() for p in pts]
    atomic_write_json(ctx.path("curve"), {
        "x_name": "KL(policy || reference), nats", "proxy_name": f"proxy reward ({proxy})",
        "gold_name": f"gold utility ({gold})", "points": points,
    })
    shapes = {name: shape(pts) for name, pts in series.items() if len(pts) > 1}
    for name, s in shapes.items():
        ctx.log(f"{name}: {s['verdict']}; proxy {s['proxy_change']['value']:+.3f} "
                f"[{s['proxy_change']['low']:+.3f}, {s['proxy_change']['high']:+.3f}], gold peak "
                f"{s['gold_peak']['value']:.3f} at KL {s['gold_peak_kl']:.2f}, then "
                f"{s['gold_after_peak']['value']:+.3f} [{s['gold_after_peak']['low']:+.3f}, "
                f"{s['gold_after_peak']['high']:+.3f}] to KL {s['last_kl']:.2f}")
    table = {name: [_public(p) for p in pts] for name, pts in series.items()}
    return {"series": table, "shapes": shapes, **_flat(shapes)}


# ------------------------------------------------------------------------------------ reading


def read_evaluations(run_dir: str | Path) -> dict[int, list[dict[str, Any]]]:
    """Step -> the held-out rows of an online RL stage's evaluation at that step."""
    from alignlab.stages import get_stage_kind

    done = Path(run_dir) / DONE_FILE
    try:
        kind = json.loads(done.read_text())["kind"]
        path = Path(run_dir) / get_stage_kind(kind).outputs["eval_samples"].path
    except (OSError, ValueError, KeyError):
        raise DataError(f"{run_dir}: not a finished online RL stage (ppo, grpo, rloo) with held-out "
                        "evaluations; set its logging.eval_prompts") from None
    if not path.is_file():
        raise DataError(f"{path}: not found; the run evaluated no held-out prompts (set "
                        "logging.eval_prompts)")
    by_step: dict[int, list[dict[str, Any]]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            by_step.setdefault(int(row["step"]), []).append(row)
    if not by_step:
        raise DataError(f"{path}: holds no evaluation")
    return dict(sorted(by_step.items()))


def _check_keys(row: dict[str, Any], keys: Sequence[str], where: Any) -> None:
    missing = [k for k in keys if k not in row]
    if missing:
        have = sorted(k.removeprefix("reward/") for k in row if k.startswith("reward/")) or \
            sorted(k for k in row if isinstance(row[k], list) and k not in ("replies", "length", "kl"))
        names = ", ".join(k.removeprefix("reward/") for k in missing)
        raise DataError(f"{where}: has no reward named {names} (config keys proxy / gold); its rewards are "
                        f"{', '.join(have) or 'none'}")


# ------------------------------------------------------------------------------------ points


def run_points(evaluations: dict[int, list[dict[str, Any]]], proxy: str, gold: str, where: Any) -> list[dict]:
    """One point per evaluation of an RL run."""
    out = []
    for step, rows in evaluations.items():
        _check_keys(rows[0], (f"reward/{proxy}", f"reward/{gold}"), where)
        values = {role: _mean_by_id(rows, key) for role, key in
                  (("proxy", f"reward/{proxy}"), ("gold", f"reward/{gold}"), ("length", "length"))}
        out.append(_point(_mean_by_id(rows, "kl"), values, f"step {step}"))
    return out


def bon_points(rows: Sequence[dict[str, Any]], proxy: str, gold: str) -> list[dict]:
    """One point per n = 1, 2, 4, … N of the best_of_n stage's policy rows, at KL log n − (n − 1)/n."""
    base = [r for r in rows if r["model"] == "policy"]
    return [_point(best_of_n_kl(n), {role: per_prompt(base, key, proxy, n) for role, key in
                                     (("proxy", proxy), ("gold", gold), ("length", "length"))}, f"n = {n}")
            for n in powers_of_two(len(base[0]["replies"]))]


def _mean_by_id(rows: Sequence[dict[str, Any]], key: str) -> Values:
    """Prompt id -> the mean of `key` over its rows (one row per prompt at one sample per prompt)."""
    sums: dict[Any, list[float]] = {}
    for row in rows:
        sums.setdefault(row["id"], []).append(float(row[key]))
    return {i: sum(v) / len(v) for i, v in sums.items()}


def _point(kl: float | Values, values: dict[str, Values], label: str) -> dict[str, Any]:
    """A point: KL (a number, or per-prompt values averaged with an interval), the per-prompt
    `values` of proxy, gold and length (kept for paired changes) and their means with intervals."""
    kl_fig = mean_interval(list(kl.values())).as_dict() if isinstance(kl, dict) else None
    kl_value = kl_fig["value"] if kl_fig else float(kl)
    return {"kl": kl_value, "kl_interval": kl_fig, "label": label, "values": values,
            **{role: mean_interval(list(v.values())).as_dict() for role, v in values.items()}}


def _public(p: dict[str, Any]) -> dict[str, Any]:
    """A point as overoptimisation.json and the summary hold it (no per-prompt values)."""
    out = {"kl": p["kl"], "sqrt_kl": math.sqrt(max(p["kl"], 0.0)), "proxy": p["proxy"], "gold": p["gold"],
           "length": p["length"], "label": p["label"]}
    if p["kl_interval"] is not None:
        out["kl_interval"] = p["kl_interval"]
    return out


# ------------------------------------------------------------------------------------ shape


def change(a: dict[str, Any], b: dict[str, Any], key: str) -> dict[str, Any]:
    """Mean change of `key` ('proxy' or 'gold') from point a to point b, paired by prompt (a t
    interval over the prompts both hold); `differs` when the interval excludes zero."""
    va, vb = a["values"][key], b["values"][key]
    ids = [i for i in va if i in vb]
    if not ids:
        raise DataError(f"points {a['label']!r} and {b['label']!r} share no prompt: give the runs and the "
                        "best_of_n stage the same held-out prompts (logging.eval_limit = limit)")
    est = paired_difference([vb[i] for i in ids], [va[i] for i in ids])
    return {**est.as_dict(), "differs": est.excludes_zero}


def shape(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The series' proxy change, gold peak and gold changes around it (see the module docstring)."""
    pts = sorted(points, key=lambda p: p["kl"])
    first, last = pts[0], pts[-1]
    peak = max(pts, key=lambda p: p["gold"]["value"])
    proxy_change = change(first, last, "proxy")
    rise, fall = change(first, peak, "gold"), change(peak, last, "gold")
    rises = rise["differs"] and rise["value"] > 0
    falls = fall["differs"] and fall["value"] < 0
    proxy_up = proxy_change["differs"] and proxy_change["value"] > 0
    gold_words = {(True, True): "gold rises, peaks and falls", (True, False): "gold rises (no fall)",
                  (False, True): "gold falls (no rise)", (False, False): "gold shows no rise and no fall"}
    verdict = f"proxy {'rises' if proxy_up else 'does not rise'}; {gold_words[(rises, falls)]}"
    return {"verdict": verdict, "proxy_rises": proxy_up, "gold_rises": rises, "gold_falls": falls,
            "proxy_change": proxy_change, "gold_peak": peak["gold"], "gold_peak_kl": peak["kl"],
            "gold_peak_label": peak["label"], "gold_to_peak": rise, "gold_after_peak": fall,
            "gold_change": change(first, last, "gold"), "last_kl": last["kl"], "points": len(pts)}


def _flat(shapes: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Numbers for the run index: each series' changes as `<series>/<figure>`."""
    flat: dict[str, float] = {}
    for name, s in shapes.items():
        for key in ("proxy_change", "gold_to_peak", "gold_after_peak", "gold_change"):
            flat[f"{name}/{key}"] = s[key]["value"]
        flat[f"{name}/gold_peak_kl"] = s["gold_peak_kl"]
    return flat

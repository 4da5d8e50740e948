"""The overoptimisation stage on hand-written run and best-of-n files: points with intervals and
sample sizes, best-of-n at its KL formula, each series' shape judged by paired intervals, and the
errors for a run without held-out evaluations or a reward name that is not there."""

from __future__ import annotations

import json

import pytest

from alignlab.config.overopt import OveroptimisationConfig
from alignlab.errors import DataError
from alignlab.evals.best_of_n import best_of_n_kl
from alignlab.evals.overoptimisation import change, run_overoptimisation, shape
from alignlab.stages import stage_context


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def rl_run(root, name, steps):
    """An online RL stage directory whose eval_samples.jsonl holds `steps`: step -> per prompt
    (kl, rm, gold)."""
    out = root / name
    out.mkdir()
    (out / "stage.json").write_text(json.dumps({"kind": "ppo"}))
    _write_jsonl(out / "eval_samples.jsonl", [
        {"step": step, "id": i, "prompt": f"p{i}", "completion": "c", "reward": rm, "reward/rm": rm,
         "reward/gold": gold, "kl": kl, "length": 10 + step}
        for step, rows in steps.items() for i, (kl, rm, gold) in enumerate(rows)])
    return out


def bon_stage(root, prompts):
    """A best_of_n stage directory: per prompt, four replies' rm and gold scores."""
    out = root / "bon"
    out.mkdir()
    _write_jsonl(out / "samples.jsonl", [
        {"model": "policy", "id": i, "prompt": f"p{i}", "replies": ["a", "b", "c", "d"], "rm": rm,
         "gold": gold, "length": [5, 6, 7, 8]} for i, (rm, gold) in enumerate(prompts)])
    return out


def ctx_for(tmp_path):
    (tmp_path / "out").mkdir(exist_ok=True)
    return stage_context("overoptimisation", tmp_path / "out", log=lambda _: None)


# Four prompts. The run: proxy rises every evaluation; gold rises to step 10 and falls back by 30.
STEPS = {
    10: [(1.0, 0.5, 0.8), (1.2, 0.6, 0.9), (0.8, 0.4, 0.7), (1.0, 0.5, 0.8)],
    30: [(4.0, 0.9, 0.2), (4.2, 1.0, 0.3), (3.8, 0.8, 0.1), (4.0, 0.9, 0.2)],
}
# Per prompt: rm ranks the replies 1 < 2 < 3 < 4, gold is highest for the second best.
BON = [([0.1, 0.2, 0.3, 0.4], [0.0, 0.2, 0.6, 0.4]), ([0.0, 0.1, 0.2, 0.3], [0.1, 0.2, 0.5, 0.3]),
       ([0.2, 0.3, 0.4, 0.5], [0.0, 0.3, 0.7, 0.5]), ([0.1, 0.2, 0.3, 0.4], [0.1, 0.1, 0.6, 0.4])]


def test_the_curve_from_a_run_and_best_of_n(tmp_path):
    run = rl_run(tmp_path, "ppo", STEPS)
    bon = bon_stage(tmp_path, BON)
    config = OveroptimisationConfig(runs={"ppo": str(run)}, best_of_n=str(bon))
    summary = run_overoptimisation(config, ctx_for(tmp_path))
    curve = json.loads((tmp_path / "out" / "overoptimisation.json").read_text())
    by_series = {}
    for p in curve["points"]:
        by_series.setdefault(p["series"], []).append(p)
    assert list(by_series) == ["ppo", "best-of-n"]

    start, step10, step30 = by_series["ppo"]
    # The run starts at best-of-n's n = 1: KL 0, the mean over each prompt's four replies.
    assert start["label"] == "start (n = 1)" and start["kl"] == 0.0
    assert start["gold"]["value"] == pytest.approx((0.3 + 0.275 + 0.375 + 0.3) / 4)
    assert start["gold"]["n"] == 4
    assert step10["kl"] == pytest.approx(1.0) and step10["kl_interval"]["n"] == 4
    assert step30["proxy"]["value"] == pytest.approx(0.9) and step30["gold"]["value"] == pytest.approx(0.2)
    assert step30["sqrt_kl"] == pytest.approx(2.0) and step30["length"]["value"] == 40
    assert all(p["gold"]["low"] <= p["gold"]["value"] <= p["gold"]["high"] for p in by_series["ppo"])

    bon_points = by_series["best-of-n"]
    assert [p["label"] for p in bon_points] == ["n = 1", "n = 2", "n = 4"]
    assert [p["kl"] for p in bon_points] == pytest.approx([best_of_n_kl(n) for n in (1, 2, 4)])
    # n = 4 picks the top-rm reply: its gold is the last of each prompt's list.
    assert bon_points[-1]["gold"]["value"] == pytest.approx((0.4 + 0.3 + 0.5 + 0.4) / 4)
    assert bon_points[-1]["proxy"]["value"] == pytest.approx((0.4 + 0.3 + 0.5 + 0.4) / 4)

    ppo = summary["shapes"]["ppo"]
    assert ppo["verdict"] == "proxy rises; gold rises, peaks and falls"
    assert ppo["gold_peak_label"] == "step 10" and ppo["gold_peak_kl"] == pytest.approx(1.0)
    assert ppo["gold_after_peak"]["value"] == pytest.approx(-0.6) and ppo["gold_after_peak"]["n"] == 4
    assert summary["ppo/gold_after_peak"] == pytest.approx(-0.6)
    assert set(summary["series"]) == {"ppo", "best-of-n"}


def test_a_change_is_a_rise_or_fall_only_when_its_interval_excludes_zero():
    def point(label, kl, gold):
        per_prompt = dict(enumerate(gold))
        return {"label": label, "kl": kl, "values": {"proxy": per_prompt, "gold": per_prompt},
                "gold": {"value": sum(gold) / len(gold)}}

    flat = [point("a", 0.0, [0.5, 0.1, 0.9]), point("b", 1.0, [0.6, 0.0, 0.95]),
            point("c", 2.0, [0.4, 0.2, 0.85])]
    s = shape(flat)
    assert not s["gold_rises"] and not s["gold_falls"] and not s["proxy_rises"]
    assert s["verdict"] == "proxy does not rise; gold shows no rise and no fall"
    # Paired by prompt: +0.1 on every prompt is a rise even though the prompts differ widely.
    d = change(flat[0], point("d", 1.0, [0.6, 0.2, 1.0]), "gold")
    assert d["value"] == pytest.approx(0.1) and d["differs"] and d["n"] == 3
    with pytest.raises(DataError, match="share no prompt"):
        change(flat[0], {"label": "e", "values": {"gold": {"x": 1.0}}}, "gold")


def test_a_run_without_held_out_evaluations_or_the_named_rewards_is_one_clear_error(tmp_path):
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "stage.json").write_text(json.dumps({"kind": "grpo"}))
    with pytest.raises(DataError, match="the run evaluated no held-out prompts .set logging.eval_prompts."):
        run_overoptimisation(OveroptimisationConfig(runs={"r": str(bare)}), ctx_for(tmp_path))
    with pytest.raises(DataError, match="not a finished online RL stage"):
        run_overoptimisation(OveroptimisationConfig(runs={"r": str(tmp_path / "nothing")}), ctx_for(tmp_path))
    run = rl_run(tmp_path, "ppo", STEPS)
    with pytest.raises(DataError, match="no reward named judge .config keys proxy / gold.; its rewards are"):
        run_overoptimisation(OveroptimisationConfig(runs={"r": str(run)}, gold="judge"), ctx_for(tmp_path))
    with pytest.raises(ValueError, match="give online RL runs"):
        OveroptimisationConfig()


def test_the_terminal_table_lists_every_point_and_each_series_shape(tmp_path):
    from rich.console import Console

    from alignlab.evals.terminal import curve_table

    run = rl_run(tmp_path, "ppo", STEPS)
    config = OveroptimisationConfig(runs={"ppo": str(run)}, best_of_n=str(bon_stage(tmp_path, BON)))
    summary = run_overoptimisation(config, ctx_for(tmp_path))
    console = Console(width=200, record=True)
    console.print(curve_table("overoptimisation", summary))
    text = console.export_text()
    assert text.count("ppo ") >= 4 and text.count("best-of-n") == 4  # 3 points + the shape row each
    assert "step 30" in text and "0.200 [" in text and "n=4" in text
    assert "gold rises, peaks and falls" in text
    assert curve_table("overoptimisation", {"series": {}}) is None

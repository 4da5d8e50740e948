"""The pathology recipes (recipes/lab-*.yaml): each shares the default recipe's world, base and SFT
stages and takes its seed, and a micro version of each runs end to end and writes its figures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignlab.pipeline import plan, run_recipe
from alignlab.recipe import Recipe, load_recipe

REPO = Path(__file__).resolve().parents[2]
# The lab recipes built on the default one; lab-cai and lab-rlaif stand alone (their micro run:
# tests/integration/test_lab_feedback_pipeline.py).
RECIPES = sorted(p.name for p in (REPO / "recipes").glob("lab-*.yaml")
                 if "\nextends: lab.yaml" in p.read_text())
# Recipes whose micro run lives beside the stages they exercise.
MICRO_ELSEWHERE = {"lab-overoptimisation.yaml"}  # tests/integration/test_online_rl.py
SHARED = ("world", "base", "sft")
# Per stage kind, what makes a stage take seconds: a micro world and model, a few steps and tokens.
MICRO = {
    "lab_world": {"world": {"n_towns": 6, "n_rivers": 3, "n_founders": 3, "n_products": 3, "n_hazards": 3,
                            "n_fake_towns": 3, "n_personas": 3, "eval_fraction": 0.34},
                  "corpus": {"threads": 10, "homework_sheets": 3},
                  "tasks": {"n_demos": 48, "n_eval_per_family": 2}},
    "pretrain": {"init": {"vocab_size": 400, "hidden_size": 32, "num_layers": 2, "num_heads": 4,
                          "intermediate_size": 64, "max_positions": 128},
                 "train": {"batch_size": 8, "max_steps": 3, "progress": False}},
    "sft": {"train": {"batch_size": 8, "max_steps": 3, "epochs": 1, "progress": False}},
    "lab_pairs": {"prompts_per_family": 2, "samples_per_prompt": 3, "pairs_per_prompt": 1,
                  "max_new_tokens": 8},
    "dpo": {"train": {"batch_size": 4, "max_steps": 2, "progress": False}},
    "rm": {"train": {"batch_size": 4, "max_steps": 2, "progress": False}},
    "lab_eval": {"max_new_tokens": 8, "limit_per_family": 2},
}


def merged(base: dict, over: dict) -> dict:
    return {**base, **{k: merged(base.get(k, {}), v) if isinstance(v, dict) else v for k, v in over.items()}}


def micro(recipe: Recipe) -> Recipe:
    """The recipe's own stages and what they need, each with the micro settings of its kind."""
    default = set(load_recipe(REPO / "recipes" / "lab.yaml").stages)
    own = [name for name in recipe.stages if name not in default]
    needed, todo = set(), list(own)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            text = json.dumps(recipe.stages[name].config)
            todo += [d for d in recipe.stages if "${" + d + "}" in text or "${" + d + "." in text]
    stages = {name: {"kind": spec.kind, "config": merged(spec.config, _micro(spec.kind, spec.config))}
              for name, spec in recipe.stages.items() if name in needed}
    return Recipe.model_validate({"name": recipe.name, "stages": stages})


def _micro(kind: str, config: dict) -> dict:
    extra: dict = {}
    if kind == "lab_eval" and config.get("samples_per_prompt", 1) > 1:
        extra["samples_per_prompt"] = 2
    if kind == "lab_pairs" and config.get("split") == "eval":
        # Longer replies from the micro model differ in padding, so the gold ranks some of them.
        extra.update(max_new_tokens=48, prompts_per_family=4)
    return {**MICRO.get(kind, {}), **extra}


@pytest.mark.parametrize("name", RECIPES)
def test_pathology_recipe_shares_the_default_stages_and_takes_the_seed(name, tmp_path):
    default = load_recipe(REPO / "recipes" / "lab.yaml")
    recipe = load_recipe(REPO / "recipes" / name)
    assert recipe.run_dir == "runs/lab"  # by default, in the default recipe's run directory
    def planned(r: Recipe, seed: int) -> dict:
        return {s.name: s for s in plan(r.model_copy(update={"seed": seed}), tmp_path, REPO / "recipes")}

    for seed in (0, 1):
        ours, theirs = planned(recipe, seed), planned(default, seed)
        assert all(ours[s].dir == theirs[s].dir for s in SHARED), "world, base and sft are shared"
        if seed == 0:
            first = ours
    # One seed reaches every stage: each stage's directory changes with it (itself or through its inputs).
    assert all(first[s].dir != ours[s].dir for s in ours)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("pathologies")


EXPECTED = {  # recipe -> (eval stage, models) whose table the run must hold
    "lab-sycophancy.yaml": ("eval_sycophancy_sampled", ["sft", "agreeable", "checked", "careful"]),
    "lab-refusal.yaml": ("eval_refusal_cautious", ["sft", "beta_0.3", "beta_0.1", "beta_0.03"]),
    "lab-length.yaml": ("eval_length", ["sft", "dpo", "dpo_verbose", "simpo_verbose"]),
    "lab-diversity.yaml": ("eval_diversity", ["base", "sft", "beta_1", "beta_0.3", "beta_0.1", "beta_0.03"]),
}


@pytest.mark.parametrize("name", [r for r in RECIPES if r not in MICRO_ELSEWHERE])
def test_micro_pathology_recipe_runs_and_writes_its_figures(name, run_dir, monkeypatch):
    monkeypatch.setenv("ALIGNLAB_RUN_INDEX", str(run_dir / "runs.sqlite"))
    recipe = micro(load_recipe(REPO / "recipes" / name))
    result = run_recipe(recipe, run_dir=run_dir, log=lambda msg: None)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) == {s.name for s in result.stages}
    if name in EXPECTED:
        stage, models = EXPECTED[name]
        table = summary[stage]["table"]
        assert list(table) == models
        if name == "lab-sycophancy.yaml":
            assert set(table["sft"]) == {"sycophancy", "all"}
            assert "flipped" in table["agreeable"]["sycophancy"]
            assert summary["pairs_checked"]["dropped_by_gold_check"] >= 0
        if name == "lab-diversity.yaml":
            assert {"distinct_1", "distinct_2", "entropy_bits"} <= set(table["beta_0.03"]["all"])
    else:  # the reward-model ceiling: accuracy against held-out labels and against the gold, per noise level
        for noise in ("01", "035", "07", "15"):
            for against in ("labels", "gold"):
                assert 0 <= summary[f"rm_noise{noise}_vs_{against}"]["pair_accuracy"] <= 1
            assert "labeller_gold_agreement" in summary[f"test_noise{noise}"]

"""Seed sweeps: figures aggregated across seeds (hand-worked), the recipe's ${seed}, `extends`."""

import json
import math

import pytest

from alignlab.errors import ConfigError, PipelineError
from alignlab.pipeline import plan
from alignlab.recipe import Recipe, load_recipe, uses_seed
from alignlab.sweep import SWEEP_FILE, across, aggregate, parse_seeds, write_sweep

# t(0.975, 2) = 4.302653 (tables); values 0.5, 0.7, 0.9: mean 0.7, sd sqrt((0.04 + 0 + 0.04) / 2) = 0.2,
# half-width 4.302653 * 0.2 / sqrt(3) = 0.496828.
HALF = 4.302653 * 0.2 / math.sqrt(3)


def test_a_figure_across_seeds_is_mean_sd_and_student_t_interval():
    fig = across([0.5, 0.7, 0.9])
    assert fig["value"] == pytest.approx(0.7) and fig["sd"] == pytest.approx(0.2) and fig["n"] == 3
    assert fig["low"] == pytest.approx(0.7 - HALF, abs=1e-5)
    assert fig["high"] == pytest.approx(0.7 + HALF, abs=1e-5)
    assert fig["values"] == [0.5, 0.7, 0.9]
    # One seed has no spread; a missing or NaN value is left out of the statistics and shown as null.
    assert across([0.3]) == {"value": 0.3, "sd": None, "low": None, "high": None, "n": 1, "values": [0.3]}
    two = across([1.0, None, float("nan"), 3.0])
    assert two["n"] == 2 and two["value"] == 2.0 and two["values"] == [1.0, None, None, 3.0]
    assert two["sd"] == pytest.approx(math.sqrt(2))  # ((1-2)^2 + (3-2)^2) / 1


def run_summary(k: int, refused: float, change: float) -> dict:
    """One seed's summary.json: a world stage, and a lab_eval stage's flat figures and table."""
    fig = {"value": refused, "low": refused - 0.1, "high": refused + 0.1, "n": 160}
    delta = {"value": change, "low": change - 0.1, "high": change + 0.1, "n": 160, "differs": change < -0.1}
    table = {"sft": {"harmful": {"n": 160, "refused": fig}},
             "dpo": {"harmful": {"change": {"vs": "sft", "utility": delta}}}}
    return {"world": {"dir": f"/runs/world-{k}", "documents": 10.0 + 2 * k, "seconds": 1.0 + k},
            "eval": {"sft/harmful/refused": refused, "sft/harmful/refused/low": refused - 0.1,
                     "sft/harmful/refused/high": refused + 0.1, "table": table}}


def test_sweep_json_aggregates_written_summaries_keeping_their_shape(tmp_path):
    runs = {0: run_summary(0, 0.5, -0.1), 1: run_summary(1, 0.7, -0.3), 2: run_summary(2, 0.9, -0.2)}
    for seed, summary in runs.items():
        (tmp_path / f"seed-{seed}").mkdir()
        (tmp_path / f"seed-{seed}" / "summary.json").write_text(json.dumps(summary))
    sweep = write_sweep(tmp_path, "lab", [0, 1, 2])
    assert json.loads((tmp_path / SWEEP_FILE).read_text()) == sweep
    assert sweep["seeds"] == [0, 1, 2] and sweep["runs"] == {"0": "seed-0", "1": "seed-1", "2": "seed-2"}
    world, ev = sweep["stages"]["world"], sweep["stages"]["eval"]
    assert "dir" not in world  # differs per seed
    assert world["documents"]["value"] == 12.0 and world["documents"]["sd"] == pytest.approx(2.0)
    assert ev["sft/harmful/refused"]["value"] == pytest.approx(0.7)
    assert "sft/harmful/refused/low" not in ev  # a run's own interval bound is not a figure
    refused = ev["table"]["sft"]["harmful"]["refused"]  # the value of each run's figure, aggregated
    assert refused["value"] == pytest.approx(0.7) and refused["sd"] == pytest.approx(0.2)
    assert refused["low"] == pytest.approx(0.7 - HALF, abs=1e-5)
    n = ev["table"]["sft"]["harmful"]["n"]
    assert n["value"] == 160 and n["sd"] == 0
    change = ev["table"]["dpo"]["harmful"]["change"]
    assert change["vs"] == "sft" and change["utility"]["value"] == pytest.approx(-0.2)
    assert "differs" not in change["utility"]  # a bool is no figure


def test_aggregate_handles_a_figure_missing_from_one_run():
    out = aggregate([{"s": {"x": 1.0, "y": 2.0}}, {"s": {"x": 3.0}}])
    assert out["s"]["x"]["n"] == 2 and out["s"]["y"] == {"value": 2.0, "sd": None, "low": None, "high": None,
                                                           "n": 1, "values": [2.0, None]}


def test_missing_seed_summary_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="seed-4/summary.json: missing or unreadable; run seed 4"):
        write_sweep(tmp_path, "lab", [4])


@pytest.mark.parametrize("text", ["", "a,b", "1,1"])
def test_seeds_are_distinct_integers(text):
    with pytest.raises(ConfigError, match="--seeds"):
        parse_seeds(text)


def test_seed_reaches_every_stage_that_refers_to_it(tmp_path):
    r = Recipe.model_validate({"name": "t", "seed": 7, "stages": {
        "world": {"kind": "lab_world", "config": {"seed": "${seed}"}},
        "eval": {"kind": "lab_eval", "config": {"world": "${world}", "models": {"m": "${world}"},
                                                  "seed": "${seed}", "max_new_tokens": "${seed}"}}}})
    assert uses_seed(r)
    stages = {s.name: s for s in plan(r, tmp_path, tmp_path)}
    assert stages["world"].config.seed == 7 and stages["world"].config.tasks.seed == 7
    assert stages["eval"].config.seed == 7
    other = {s.name: s for s in plan(r.model_copy(update={"seed": 8}), tmp_path, tmp_path)}
    assert other["world"].hash != stages["world"].hash and other["eval"].hash != stages["eval"].hash
    assert not uses_seed(Recipe.model_validate({"name": "t", "stages": {"w": {"kind": "lab_world"}}}))


def test_seed_is_reserved_and_has_no_artefacts(tmp_path):
    bad = Recipe.model_validate({"name": "t", "stages": {"seed": {"kind": "lab_world"}}})
    with pytest.raises(PipelineError, match="may not be named seed"):
        plan(bad, tmp_path, tmp_path)
    bad = Recipe.model_validate({"name": "t", "stages": {"w": {"kind": "lab_world", "config": {
        "corpus": {"seed": "${seed.x}"}}}}})
    with pytest.raises(PipelineError, match=r"refers to \$\{seed.x\}; \$\{seed\} is the recipe's"):
        plan(bad, tmp_path, tmp_path)


def test_extends_merges_stages_and_drops_null_ones(tmp_path):
    (tmp_path / "base.yaml").write_text(
        "name: base\nstages:\n"
        "  world: {kind: lab_world, config: {seed: 3, tasks: {flaw_rate: 0.2, n_demos: 48}}}\n"
        "  eval: {kind: lab_eval, config: {world: '${world}', models: {m: '${world}'}}}\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "child.yaml").write_text(
        "name: child\nextends: ../base.yaml\nstages:\n"
        "  world: {config: {tasks: {n_demos: 64, flaw_rate: null}}}\n  eval: null\n"
        "  eval2: {kind: lab_eval, config: {world: '${world}', models: {m: '${world}'}, seed: 1}}\n")
    r = load_recipe(tmp_path / "sub" / "child.yaml", ["eval2.seed=2"])
    assert r.name == "child" and list(r.stages) == ["world", "eval2"]
    assert r.stages["world"].kind == "lab_world"
    assert r.stages["world"].config == {"seed": 3, "tasks": {"n_demos": 64}}  # flaw_rate: its default
    assert r.stages["eval2"].config["seed"] == 2
    # The stage both recipes have unchanged plans to the same directory, so a shared run dir shares it.
    base = {s.name: s for s in plan(load_recipe(tmp_path / "base.yaml", ["world.tasks.n_demos=64",
                                                                          "world.tasks.flaw_rate=0.0"]),
                                    tmp_path, tmp_path)}
    assert {s.name: s for s in plan(r, tmp_path, tmp_path)}["world"].dir == base["world"].dir


def test_extends_errors_name_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("name: a\nextends: b.yaml\nstages: {}\n")
    (tmp_path / "b.yaml").write_text("name: b\nextends: a.yaml\nstages: {}\n")
    with pytest.raises(PipelineError, match="a cycle"):
        load_recipe(tmp_path / "a.yaml")
    (tmp_path / "c.yaml").write_text("name: c\nextends: nowhere.yaml\nstages: {}\n")
    with pytest.raises(ConfigError, match=r"c.yaml: config key 'extends': recipe 'nowhere.yaml' not found"):
        load_recipe(tmp_path / "c.yaml")

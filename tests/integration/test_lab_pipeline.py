"""The lab recipe's stages chained on a micro world and a micro model (seconds, not minutes)."""

import json

import pytest

from alignlab.cli import main
from alignlab.data.readers import read_preferences

MICRO = """
name: micro-lab
stages:
  world:
    kind: lab_world
    config:
      seed: 3
      world: {n_towns: 6, n_rivers: 3, n_founders: 3, n_products: 3, n_hazards: 3, n_fake_towns: 3,
              n_personas: 3, eval_fraction: 0.34}
      corpus: {threads: 10, homework_sheets: 3}
      tasks: {n_demos: 48, n_eval_per_family: 2}
  base:
    kind: pretrain
    config:
      data: {path: "${world.corpus}", seq_len: 64, packing: stream}
      init: {vocab_size: 400, hidden_size: 32, num_layers: 2, num_heads: 4, max_positions: 128}
      train: {batch_size: 8, max_steps: 3, progress: false}
  sft:
    kind: sft
    config:
      model: {path: "${base}"}
      data: {path: "${world.sft}", max_length: 96}
      train: {batch_size: 8, max_steps: 3, progress: false}
  pairs:
    kind: lab_pairs
    config: {world: "${world}", policy: "${sft}", prompts_per_family: 2, samples_per_prompt: 2,
             max_new_tokens: 8}
  dpo:
    kind: dpo
    config:
      model: {path: "${sft}"}
      data: {path: "${pairs.pairs}", max_length: 96}
      train: {batch_size: 4, max_steps: 2, progress: false}
  eval:
    kind: lab_eval
    config: {world: "${world}", models: {base: "${base}", sft: "${sft}", dpo: "${dpo}"}, max_new_tokens: 8}
  eval_sampled:
    kind: lab_eval
    config: {world: "${world}", models: {sft: "${sft}"}, max_new_tokens: 8, temperature: 1.0,
             samples_per_prompt: 3}
  suites:
    kind: eval
    config: {models: {base: "${base}", sft: "${sft}", dpo: "${dpo}"}, suites: [hierarchy, diversity],
             limit: 3, options: {samples: 2}, max_new_tokens: 8}
  report:
    kind: report
    config: {after: ["${eval}", "${eval_sampled}", "${suites}"]}
"""


def test_micro_lab_recipe_runs_every_stage_and_writes_the_summary(tmp_path, capsys):
    recipe = tmp_path / "lab.yaml"
    recipe.write_text(MICRO)
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["run", str(recipe), "--run-dir", str(run_dir)])
    assert e.value.code in (0, None)
    out = capsys.readouterr().out
    # The per-family tables are printed, with intervals and the refusal / abstention / deflection rates.
    assert "answerable" in out and "jailbreak" in out and "deflected" in out and "Δ utility" in out
    summary = json.loads((run_dir / "summary.json").read_text())
    assert list(summary) == ["world", "base", "sft", "pairs", "dpo", "eval", "eval_sampled", "suites",
                             "report"]  # fmt: skip
    table = summary["eval"]["table"]
    assert set(table) == {"base", "sft", "dpo"}
    assert table["sft"]["answerable"]["n"] == 2
    for figure in ("utility", "followed", "refused", "abstained", "deflected", "words"):
        fig = table["sft"]["harmful"][figure]
        assert set(fig) == {"value", "low", "high", "n"} and fig["low"] <= fig["value"] <= fig["high"], figure
    assert "change" not in table["base"]["harmful"]
    change = table["dpo"]["all"]["change"]
    assert change["vs"] == "sft" and set(change["utility"]) == {"value", "low", "high", "n", "differs"}
    assert summary["eval"]["sft/harmful/utility"] == table["sft"]["harmful"]["utility"]["value"]
    assert summary["eval"]["sft/harmful/utility/low"] == table["sft"]["harmful"]["utility"]["low"]
    sampled = summary["eval_sampled"]["table"]["sft"]
    # Sampled: 3 responses per prompt, but the prompt is the unit of every interval.
    assert sampled["answerable"]["n"] == 2 and sampled["answerable"]["responses"] == 6
    assert (
        sampled["all"]["n"] == table["sft"]["all"]["n"]
        and sampled["all"]["responses"] == 3 * sampled["all"]["n"]
    )
    # The base model directory is an ordinary HF checkpoint with the lab's chat template.
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(summary["base"]["dir"])
    assert "<|im_start|>" in tok.chat_template
    pairs = read_preferences(f"{summary['pairs']['dir']}/pairs.jsonl")
    assert pairs.records and {p.annotator for p in pairs.records} <= {"careful", "verbose"}
    # The eval stage ran the suites on every policy; the run ends with its report, which shows them.
    suites = json.loads((run_dir / summary["suites"]["dir"] / "results.json").read_text())
    assert suites["checkpoints"] == ["base", "sft", "dpo"]
    assert set(suites["differences"]["dpo"]) == {"base", "sft"}
    assert summary["suites"]["sft/diversity/aggregate:distinct_2"] is not None
    html = (run_dir / summary["report"]["dir"] / "report.html").read_text()
    assert "suite: hierarchy" in html and "suite: diversity" in html and "lab: eval (greedy)" in html
    assert 'id="plot-length"' in html  # words per response, lab and suite, across checkpoints


def test_greedy_eval_refuses_several_samples_per_prompt(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "name: bad\nstages:\n  world:\n    kind: lab_world\n    config: {}\n"
        "  eval:\n    kind: lab_eval\n"
        "    config: {world: '${world}', models: {m: '${world}'}, samples_per_prompt: 2}\n"
    )
    with pytest.raises(SystemExit) as e:
        main(["run", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert e.value.code == 2
    assert "samples_per_prompt > 1 needs temperature > 0" in capsys.readouterr().err


def test_lab_world_rejects_unknown_world_keys(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(
        "name: bad\nstages:\n  world:\n    kind: lab_world\n    config: {world: {n_townz: 3}}\n"
    )
    with pytest.raises(SystemExit) as e:
        main(["run", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert e.value.code == 2
    # Caught when the recipe is validated, before any stage runs, with the whole key and the valid ones.
    err = capsys.readouterr().err
    assert (
        "config key 'stages.world.config.world.n_townz': unknown key; valid keys here: seed, n_towns" in err
    )
    assert not (tmp_path / "run").exists()


def micro_sweep_recipe() -> str:
    """World, base, SFT and a greedy eval of the micro lab, every seed the recipe's ${seed}."""
    stages = MICRO[MICRO.index("  world:"):MICRO.index("  pairs:")].replace("seed: 3", 'seed: "${seed}"')
    stages = stages.replace("progress: false}", 'progress: false, seed: "${seed}"}')
    stages = stages.replace("max_positions: 128}", 'max_positions: 128, seed: "${seed}"}')
    return ("name: micro-lab\nstages:\n" + stages + "  eval:\n    kind: lab_eval\n"
            '    config: {world: "${world}", models: {base: "${base}", sft: "${sft}"}, max_new_tokens: 8, '
            'seed: "${seed}"}\n')


def test_seed_sweep_runs_each_seed_and_aggregates_every_figure(tmp_path, capsys):
    recipe = tmp_path / "lab.yaml"
    recipe.write_text(micro_sweep_recipe())
    run_dir = tmp_path / "sweep"
    with pytest.raises(SystemExit) as e:
        main(["run", str(recipe), "--run-dir", str(run_dir), "--seeds", "0,1,2"])
    assert e.value.code in (0, None)
    out = capsys.readouterr().out
    assert "sweep micro-lab: 3 seeds (0, 1, 2)" in out and "mean ± sd" in out  # the generic table
    assert "over 3 seeds" in out and "answerable" in out  # the lab's table, across seeds
    sweep = json.loads((run_dir / "sweep.json").read_text())
    assert sweep["seeds"] == [0, 1, 2] and list(sweep["stages"]) == ["world", "base", "sft", "eval"]
    summaries = [json.loads((run_dir / f"seed-{k}" / "summary.json").read_text()) for k in (0, 1, 2)]
    # Each seed built its own world and model (one seed reaches every stage) ...
    assert (
        len({s["world"]["dir"] for s in summaries}) == 3 and len({s["base"]["loss"] for s in summaries}) == 3
    )
    # ... and each figure is aggregated from the three runs' values.
    loss = sweep["stages"]["base"]["loss"]
    assert loss["values"] == [s["base"]["loss"] for s in summaries] and loss["n"] == 3
    assert loss["low"] < loss["value"] < loss["high"] and loss["sd"] > 0
    utility = sweep["stages"]["eval"]["table"]["sft"]["all"]["utility"]
    assert utility["values"] == [s["eval"]["table"]["sft"]["all"]["utility"]["value"] for s in summaries]
    # A second sweep over the same seeds runs nothing again and gives the same aggregate.
    with pytest.raises(SystemExit):
        main(["run", str(recipe), "--run-dir", str(run_dir), "--seeds", "0,1,2"])
    err = capsys.readouterr().err
    assert "run stage" not in err and err.count("skip stage") == 12
    assert json.loads((run_dir / "sweep.json").read_text()) == sweep


def test_sweep_of_a_recipe_without_seed_is_refused(tmp_path, capsys):
    recipe = tmp_path / "lab.yaml"
    recipe.write_text("name: fixed\nstages:\n  world:\n    kind: lab_world\n    config: {seed: 3}\n")
    with pytest.raises(SystemExit) as e:
        main(["run", str(recipe), "--run-dir", str(tmp_path / "run"), "--seeds", "0,1"])
    assert e.value.code == 2
    assert "no stage refers to ${seed}" in capsys.readouterr().err


def test_pairs_from_chosen_families_and_gold_checked(tmp_path, capsys):
    """`families` and `split` choose the prompts; `gold_check` keeps only the choices the gold utility
    agrees with."""
    stages = MICRO[MICRO.index("  world:"):MICRO.index("  pairs:")]
    recipe = tmp_path / "pairs.yaml"
    recipe.write_text(
        "name: pairs\nstages:\n" + stages + "  pairs:\n    kind: lab_pairs\n"
        '    config: {world: "${world}", policy: "${sft}", prompts_per_family: 6, samples_per_prompt: 4,\n'
        "             max_new_tokens: 8, families: [sycophancy, harmful], gold_check: true, split: eval,\n"
        "             labellers: [{id: noisy, noise: 3.0}]}\n")
    with pytest.raises(SystemExit) as e:
        main(["run", str(recipe), "--run-dir", str(tmp_path / "run")])
    assert e.value.code in (0, None)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["pairs"]
    assert summary["prompts"] == 12
    pairs = read_preferences(f"{summary['dir']}/pairs.jsonl").records
    assert {p.metadata["family"] for p in pairs} <= {"sycophancy", "harmful"}
    assert all("-eval-" in p.metadata["sample_id"] for p in pairs)  # prompts about held-out entities
    assert all(
        p.tie or p.metadata["gold_utility_chosen"] >= p.metadata["gold_utility_rejected"] for p in pairs
    )
    assert summary["pairs"] == len(pairs) and summary["dropped_by_gold_check"] >= 0


def test_gold_check_keeps_ties_and_choices_the_gold_agrees_with():
    from alignlab.data.schema import PreferencePair, assistant, user
    from alignlab.lab.stages import gold_agrees

    def labelled(chosen: float, rejected: float, tie: bool = False) -> PreferencePair:
        return PreferencePair(prompt=[user("q")], chosen=[assistant("a")], rejected=[assistant("b")], tie=tie,
                              metadata={"gold_utility_chosen": chosen, "gold_utility_rejected": rejected})

    pairs = [labelled(1.0, 0.0), labelled(0.0, 1.0), labelled(0.5, 0.5), labelled(0.0, 1.0, tie=True)]
    assert gold_agrees(pairs) == [True, False, True, True]

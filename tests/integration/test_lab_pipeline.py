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
    assert sampled["all"]["n"] == table["sft"]["all"]["n"] and sampled["all"]["responses"] == 3 * sampled["all"]["n"]
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

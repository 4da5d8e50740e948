"""The lab's RLAIF and CAI stages chained on a micro world and a micro model (what recipes/lab-rlaif.yaml
and recipes/lab-cai.yaml run at full size): every artefact written, every figure with its n."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alignlab.cli import main
from alignlab.data.readers import read_conversations, read_preferences
from alignlab.io import read_jsonl

MICRO = """
name: micro-lab-feedback
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
      init: {vocab_size: 400, hidden_size: 32, num_layers: 2, num_heads: 4, max_positions: 256}
      train: {batch_size: 8, max_steps: 2, progress: false}
  sft:
    kind: sft
    config:
      model: {path: "${base}"}
      data: {path: "${world.sft}", max_length: 96}
      train: {batch_size: 8, max_steps: 2, progress: false}
  pairs:
    kind: lab_pairs
    # Samples long enough that some pass the length budget: the untrained policy's samples differ in
    # gold utility only by length, and the rlaif stage is checked against the gold-labelled pairs.
    config: {world: "${world}", policy: "${sft}", prompts_per_family: 3, samples_per_prompt: 4,
             max_new_tokens: 160}
  judge_data:
    kind: lab_judge_data
    config: {world: "${world}", prompts_per_family: 2, pairs_per_prompt: 1,
             gold_pairs: ["${pairs.gold_pairs}"], exclude: ["${pairs.pairs}"]}
  judge:
    kind: sft
    config:
      model: {path: "${sft}"}
      data: {path: "${judge_data.sft}", max_length: 320, only_last_turn: true}
      train: {batch_size: 8, max_steps: 2, progress: false}
  rlaif:
    kind: rlaif
    config: {pairs: "${pairs.pairs}", judge: "${judge}", constitution: lab, reference: "${pairs.gold_pairs}",
             tie_band: 0.0}
  dpo_ai:
    kind: dpo
    config:
      model: {path: "${sft}"}
      data: {path: "${rlaif.pairs}", max_length: 96}
      train: {batch_size: 4, max_steps: 1, progress: false}
  reviser_data:
    kind: lab_reviser_data
    config: {world: "${world}", prompts_per_family: 1, reviser_prompts_per_family: 2}
  reviser:
    kind: sft
    config:
      model: {path: "${sft}"}
      data: {path: "${reviser_data.sft}", max_length: 256, only_last_turn: true}
      train: {batch_size: 8, max_steps: 2, progress: false}
  cai:
    kind: cai
    config: {model: "${sft}", critic: "${reviser}", prompts: "${reviser_data.prompts}", constitution: lab,
             max_new_tokens: 8, temperature: 1.0}
  eval:
    kind: lab_eval
    config: {world: "${world}", models: {sft: "${sft}", dpo_ai: "${dpo_ai}"}, max_new_tokens: 8}
  compare:
    kind: lab_compare
    config: {world: "${world}", eval: "${eval}", baseline: sft, cai: {reviser: "${cai}"},
             labels: {ai: "${rlaif.pairs}", simulated: "${pairs.pairs}"}, gold: "${pairs.gold_pairs}"}
"""


def test_micro_lab_rlaif_and_cai_run_every_stage(tmp_path, capsys):
    recipe = tmp_path / "lab.yaml"
    recipe.write_text(MICRO)
    run_dir = tmp_path / "run"
    with pytest.raises(SystemExit) as e:
        main(["run", str(recipe), "--run-dir", str(run_dir)])
    assert e.value.code in (0, None), capsys.readouterr().err
    summary = json.loads((run_dir / "summary.json").read_text())
    # The judge learned from pairs that are not the ones it labels.
    judge_sft = read_conversations(f"{summary['judge_data']['dir']}/judge_sft.jsonl").records
    labelled = read_preferences(f"{summary['pairs']['dir']}/pairs.jsonl").records
    assert judge_sft and summary["judge_data"]["excluded"] >= 0
    assert {c.messages[-1].content for c in judge_sft} == {"Answer: A", "Answer: B"}
    rlaif = summary["rlaif"]
    assert rlaif["pairs"] == len(labelled) and rlaif["label_sources"] == {"scorer": 2 * rlaif["labelled"]}
    assert rlaif["ai_vs_reference/accuracy"]["n"] > 0 and "input_labels_vs_reference/accuracy" in rlaif
    agreement = json.loads(Path(summary["rlaif"]["dir"], "agreement.json").read_text())
    assert set(agreement) == {"ai_vs_reference", "ai_vs_input_labels", "input_labels_vs_reference",
                              "ai_minus_input_labels_accuracy"}
    # CAI: the held-apart prompts were answered, critiqued by the reviser and revised.
    prompts = read_jsonl(f"{summary['reviser_data']['dir']}/prompts.jsonl")
    assert summary["cai"]["prompts"] == len(prompts) == 9  # one per family
    figures = summary["compare"]
    assert set(figures["policies"]) == {"sft", "dpo_ai"} and figures["cai"]["reviser"]["prompts"] >= 1
    dpo = figures["policies"]["dpo_ai"]
    assert dpo["harmless"]["n"] == 4 and dpo["over_refusal"]["n"] == 4  # two prompts each of two families
    assert dpo["utility_vs_baseline"]["n"] == dpo["n"] == 18
    gold_n = summary["rlaif"]["ai_vs_reference/accuracy"]["n"]
    labels = figures["labels"]
    assert labels["ai"]["accuracy"]["n"] == gold_n == labels["simulated"]["accuracy"]["n"]

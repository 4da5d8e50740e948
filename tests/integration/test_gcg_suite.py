"""`alignlab eval MODEL --suite gcg --data advbench.csv --transfer OTHER`: attack strings searched on
the model itself, attack success with and without them, and their transfer to another model.

The micro model is the shared tiny Llama with its weights redrawn at std 0.5 (see test_gcg.py: at
the default init no attack can move a model this narrow), saved as a model directory. Its AdvBench
file asks the question test_gcg.py attacks, with the target "Paris.", which it does not say
unattacked.
"""

from __future__ import annotations

import csv
import json

import pytest
import torch

from alignlab.cli import main


@pytest.fixture(scope="module")
def micro_dir(tiny_model_dir, tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src, out = tiny_model_dir("llama"), tmp_path_factory.mktemp("micro_llama")
    model = AutoModelForCausalLM.from_pretrained(src)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


def test_gcg_suite_reports_attack_success_and_transfer(micro_dir, tiny_model_dir, tmp_path, capsys):
    data = tmp_path / "harmful_behaviors.csv"
    with open(data, "w", newline="") as f:
        csv.writer(f).writerows([("goal", "target"), ("What is the capital of France?", "Paris."),
                                 ("Please write a short poem.", "Paris.")])  # fmt: skip
    out = tmp_path / "out"
    try:
        main(["eval", str(micro_dir), "--name", "micro", "--suite", "gcg", "--data", str(data),
              "--transfer", str(tiny_model_dir("qwen2")), "--output", str(out), "max_new_tokens=8",
              "behaviours=1", "num_tokens=10", "steps=100", "top_k=64", "batch_size=128"])  # fmt: skip
    except SystemExit as e:
        assert e.code in (0, None), capsys.readouterr().err
    summary = json.loads((out / "micro" / "gcg" / "summary.json").read_text())
    assert summary["n_samples"] == 1 and summary["notes"]["gcg"]["steps"] == 100
    direct, attacked = summary["metrics"]["direct"], summary["metrics"]["gcg"]
    assert attacked["gcg/search_success"]["value"] == 1.0
    assert direct["gcg/target_emitted"]["value"] == 0.0 and attacked["gcg/target_emitted"]["value"] == 1.0
    assert summary["aggregates"]["gcg/gcg_target_emitted_lift"]["value"] == 1.0
    for variant in (direct, attacked):  # the other model was asked both ways
        assert variant["transfer/target_emitted"]["n"] == 1 and "transfer/attack_success" in variant
    lines = (out / "micro/gcg/samples.jsonl").read_text().splitlines()
    rows = {r["variant"]: r for r in map(json.loads, lines)}
    attack = rows["gcg"]["scores"]["gcg"]["extra"]["attack"]
    assert rows["gcg"]["input"][-1]["content"] == "What is the capital of France?" + attack
    assert rows["gcg"]["response"].startswith("Paris.")
    assert not rows["direct"]["response"].startswith("Paris.")
    headline = json.loads((out / "results.json").read_text())["results"]["micro"]["gcg"]["headline"]
    assert headline["gcg:gcg/search_success"]["value"] == 1.0 and "direct:transfer/attack_success" in headline

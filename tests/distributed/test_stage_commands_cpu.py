"""`alignlab sft` and `alignlab dpo` under torchrun with 2 CPU processes (gloo): one complete output,
recorded once, with the weights of one process trained on the same global batch."""

import json
import shutil
import sqlite3
import sys
from pathlib import Path

import pytest
import torch
from cli_runs import (
    COMMON,
    QUESTIONS,
    alignlab,
    assert_one_complete_model_dir,
    assert_recorded_once,
    assert_same_weights,
    conversations,
    pairs,
)
from safetensors.torch import load_file

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(
        shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
        reason="torchrun is not installed",
    ),
]


def test_sft_on_two_processes_matches_one_process_with_the_same_global_batch(tmp_path, tiny_model_dir):
    data = conversations(tmp_path / "train.jsonl")
    args = [
        "sft", "--model", str(tiny_model_dir("llama")), "--data", str(data), "--max-steps", "3",
        "optim.lr=1e-2", *COMMON,
    ]
    single, double = tmp_path / "single", tmp_path / "double"
    alignlab([*args, "--output", str(single), "train.batch_size=4"], tmp_path, processes=1, port=0)
    alignlab([*args, "--output", str(double), "train.batch_size=2"], tmp_path, processes=2, port=29531)
    assert_one_complete_model_dir(double, steps=3)
    assert_recorded_once(tmp_path / "registry-2.sqlite")
    assert_same_weights(single, double)
    # Training moved the weights, so agreeing with the one-process run means something.
    start = load_file(tiny_model_dir("llama") / "model.safetensors")
    trained = load_file(double / "model.safetensors")
    assert any(not torch.allclose(start[k], trained[k]) for k in trained)


def test_dpo_with_cached_reference_on_two_processes_matches_one_process(tmp_path, tiny_model_dir):
    from alignlab.stages import STAGE_KINDS
    from alignlab.training import refcache

    CACHE_FILE = STAGE_KINDS["dpo"].outputs["reference_logps"].path

    data = pairs(tmp_path / "pairs.jsonl", copies=2)
    args = ["dpo", "--model", str(tiny_model_dir("llama")), "--data", str(data), "--max-steps", "2",
            "data.eval_fraction=0.2", "reference.batch_size=3", *COMMON,
            # Adam's first steps move every weight by about lr, whatever its gradient's size, and the
            # processes batch the pre-pass differently (1e-6 apart): a small lr keeps that well inside
            # the tolerance, while a real mismatch still moves weights by about lr.
            "optim.lr=1e-3"]
    single, double = tmp_path / "single", tmp_path / "double"
    alignlab([*args, "--output", str(single), "train.batch_size=4"], tmp_path, processes=1, port=0)
    alignlab([*args, "--output", str(double), "train.batch_size=2"], tmp_path, processes=2, port=29533)
    assert_one_complete_model_dir(double, steps=2)
    assert_recorded_once(tmp_path / "registry-2.sqlite")
    # The pre-pass was split over the processes and gathered: the same cache as one process wrote.
    key_a, ref_a = refcache.read_cache(single / CACHE_FILE)
    key_b, ref_b = refcache.read_cache(double / CACHE_FILE)
    assert key_a == key_b and ref_a.keys() == ref_b.keys() and ref_a
    for k in ref_a:
        torch.testing.assert_close(ref_a[k], ref_b[k], rtol=1e-4, atol=1e-4, msg=f"reference {k} differs")
    assert_same_weights(single, double)


def test_recipe_on_two_processes_runs_training_on_both_and_other_stages_once(tmp_path, tiny_model_dir):
    pairs(tmp_path / "pairs.jsonl")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: rm2\nstages:\n"
        f"  rm:\n    kind: rm\n    config:\n      model: {{path: {tiny_model_dir('llama')}}}\n"
        "      data: {path: '${recipe_dir}/pairs.jsonl', eval_fraction: 0.25}\n"
        "      train: {max_steps: 2, batch_size: 2, progress: false, save_every: null}\n"
        "  score:\n    kind: score\n    config:\n      reward_model: {path: '${rm}'}\n"
        "      data: {path: '${recipe_dir}/pairs.jsonl'}\n"
    )
    run_dir = tmp_path / "run"
    alignlab(["run", str(recipe), "--run-dir", str(run_dir)], tmp_path, processes=2, port=29535)
    (rm_dir,) = run_dir.glob("rm-*")
    (score_dir,) = run_dir.glob("score-*")
    assert (rm_dir / "report.json").is_file() and (rm_dir / "reward_model.json").is_file()
    assert not [p.name for p in rm_dir.iterdir() if p.name.startswith(".")]
    assert len((rm_dir / "metrics.jsonl").read_text().splitlines()) == 2
    scored = [json.loads(line) for line in (score_dir / "scores.jsonl").read_text().splitlines()]
    assert len(scored) == len(QUESTIONS) and all("chosen_reward" in r for r in scored)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary) == {"rm", "score"} and summary["rm"]["steps"] == 2.0
    with sqlite3.connect(tmp_path / "registry-2.sqlite") as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("done",)]
        assert sorted(db.execute("SELECT name, status FROM stages").fetchall()) == [("rm", "done"),
                                                                                    ("score", "done")]

"""`alignlab sft` and `alignlab dpo` under torchrun with 2 CPU processes (gloo): one complete output,
recorded once, with the weights of one process trained on the same global batch."""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

pytestmark = [
    pytest.mark.distributed,
    pytest.mark.skipif(
        shutil.which("torchrun") is None and not Path(sys.executable).with_name("torchrun").exists(),
        reason="torchrun is not installed",
    ),
]

QUESTIONS = ["What colour is the sky?", "Name a fruit.", "Say hello.", "Count to three.",
             "Name a city.", "What is two plus two?", "Name an animal.", "Say goodbye."]
ANSWERS = ["The sky is blue.", "An apple is a fruit.", "Hello there!", "One, two, three.",
           "Paris is a city.", "Two plus two is four.", "A fox is an animal.", "Goodbye!"]
COMMON = ["train.progress=false", "train.save_every=null", "schedule.kind=constant", "train.seed=3"]
# A complete standalone stage directory holds these (plus tokenizer files), and no leftover temporaries.
EXPECTED = {"model.safetensors", "config.json", "tokenizer.json", "config.yaml", "stage.json",
            "metrics.jsonl"}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def alignlab(args: list[str], tmp_path: Path, *, processes: int, port: int) -> None:
    """Run the CLI on 1 process, or on `processes` under torchrun; a non-zero exit fails the test."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1",
           "ALIGNLAB_RUN_INDEX": str(tmp_path / f"registry-{processes}.sqlite")}
    if processes == 1:
        cmd = [sys.executable, "-m", "alignlab.cli", *args]
    else:
        torchrun = str(Path(sys.executable).with_name("torchrun"))
        cmd = [torchrun, "--nproc-per-node", str(processes), "--master-port", str(port), "-m", "alignlab.cli",
               *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def assert_one_complete_model_dir(out: Path, steps: int) -> None:
    from transformers import AutoModelForCausalLM

    names = {p.name for p in out.iterdir()}
    assert not EXPECTED - names, f"missing {EXPECTED - names}"
    assert not [n for n in names if n.startswith(".")], f"leftover temporaries: {names}"
    assert len((out / "metrics.jsonl").read_text().splitlines()) == steps  # logged once, not per process
    AutoModelForCausalLM.from_pretrained(out)


def assert_recorded_once(registry: Path) -> None:
    with sqlite3.connect(registry) as db:
        assert db.execute("SELECT status FROM runs").fetchall() == [("done",)]
        assert db.execute("SELECT status FROM stages").fetchall() == [("done",)]


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=1e-3, atol=1e-4, msg=f"{k} differs")


def test_sft_on_two_processes_matches_one_process_with_the_same_global_batch(tmp_path, tiny_model_dir):
    data = write_jsonl(tmp_path / "train.jsonl", [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in zip(QUESTIONS, ANSWERS, strict=True)
    ])
    args = ["sft", "--model", str(tiny_model_dir("llama")), "--data", str(data), "--max-steps", "3",
            "optim.lr=1e-2", *COMMON]
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

    user = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    assistant = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
    data = write_jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": user(q), "chosen": assistant(a), "rejected": assistant(ANSWERS[(i + 3) % len(ANSWERS)])}
        for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))
    ] * 2)
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
    user = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    assistant = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
    write_jsonl(tmp_path / "pairs.jsonl", [
        {"prompt": user(q), "chosen": assistant(a), "rejected": assistant(ANSWERS[(i + 3) % len(ANSWERS)])}
        for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))
    ])
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

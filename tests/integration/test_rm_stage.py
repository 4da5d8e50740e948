"""`alignlab rm` and `alignlab score` end to end on tiny local models, and as recipe stages."""

import json
import math

import pytest
import torch
import yaml
from cli_support import read_metrics, run_cli

from alignlab.cli import main
from alignlab.data.templating import encode_prompt_response
from alignlab.run_index import RunIndex
from records import pair, write_jsonl

GOOD = ["The capital of France is Paris.", "Paris is the capital.", "I am a helpful assistant.",
        "Hello! How can I help you?"]
BAD = ["The quick brown fox.", "The lazy dog jumps.", "brown fox, lazy dog", "Numbers: 0 1 2 3."]
PROMPTS = ["What is the capital of France?", "Say hello.", "Write a poem.", "Answer the question."]


@pytest.fixture
def separable(tmp_path):
    """Pairs whose chosen response is always 'helpful' text; held-out pairs use unseen combinations."""
    train, held = [], []
    for i, p in enumerate(PROMPTS):
        for j, g in enumerate(GOOD):
            rows = held if (i + j) % 4 == 0 else train
            rows.append(pair(p, g, BAD[(i + 2 * j) % 4], metadata={"category": "geo" if j < 2 else "chat"}))
    return write_jsonl(tmp_path / "train.jsonl", train), write_jsonl(tmp_path / "eval.jsonl", held)







COMMON = ["train.progress=false", "train.save_every=null", "schedule.kind=constant"]


def test_rm_separates_toy_pairs_and_reports(tmp_path, tiny_model_dir, separable):
    train, held = separable
    out = tmp_path / "rm"
    run_cli("rm", "--model", tiny_model_dir("llama"), "--data", train, "--output", out, "--max-steps", 30,
            f"data.eval_path={held}", "optim.lr=3e-3", "train.batch_size=4", *COMMON)
    rows = read_metrics(out)
    # Heads start near zero, so the first Bradley-Terry loss is about log 2.
    assert abs(rows[0]["loss"] - math.log(2)) < 0.05
    assert rows[-1]["loss"] < 0.15 and rows[-1]["eval/accuracy"] == 1.0
    report = json.loads((out / "report.json").read_text())
    assert report["split"] == "eval" and report["pairs"] == 4 and report["accuracy"] == 1.0
    assert report["per_category"] == {"chat": {"pairs": 2, "accuracy": 1.0}, "geo": {"pairs": 2,
                                                                                     "accuracy": 1.0}}
    assert sum(b["count"] for b in report["reliability"]) == 4 and 0.0 <= report["ece"] < 0.5
    assert report["mean_reward_chosen"] > report["mean_reward_rejected"]

    # Scores through `alignlab score` are the HF model's own logits on the same tokens.
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    scores = tmp_path / "scores"
    run_cli("score", "--reward-model", out, "--data", held, "--output", scores)
    scored = [json.loads(line) for line in (scores / "scores.jsonl").read_text().splitlines()]
    # Like every stage command: the resolved config, the done marker, and a run-index row with artefacts.
    assert yaml.safe_load((scores / "config.yaml").read_text())["reward_model"]["path"] == str(out)
    assert json.loads((scores / "stage.json").read_text())["summary"]["records"] == 4.0
    index = RunIndex()
    (run,) = [r for r in index.runs() if r.name == "score"]
    assert run.status == "done" and [(s.kind, s.status, s.dir) for s in run.stages] == [("score", "done",
                                                                                         str(scores))]
    assert index.artefacts(run.id)["score"] == {"dir": str(scores), "scores": str(scores / "scores.jsonl")}
    assert len(scored) == 4 and all(r["chosen_reward"] > r["rejected_reward"] for r in scored)
    tok = AutoTokenizer.from_pretrained(out)
    hf = AutoModelForSequenceClassification.from_pretrained(out).eval()
    first = scored[0]
    ids = encode_prompt_response(tok, first["prompt"], first["chosen"]).input_ids
    with torch.no_grad():
        expected = float(hf(input_ids=torch.tensor([ids])).logits[0, 0])
    assert first["chosen_reward"] == pytest.approx(expected, abs=1e-5)


def test_rm_ensemble_of_separate_models_grouped_by_length(tmp_path, tiny_model_dir, separable):
    train, _ = separable
    out = tmp_path / "ens"
    run_cli("rm", "--model", tiny_model_dir("qwen2"), "--data", train, "--output", out, "--max-steps", 3,
            "--ensemble", 2, "ensemble.kind=models", "ensemble.aggregate=min", "optim.lr=1e-3",
            "train.batch_size=4", "train.group_by_length=true", *COMMON)
    assert len(read_metrics(out)) == 3
    report = json.loads((out / "report.json").read_text())
    assert report["split"] == "eval" and report["members"] == 2 and len(report["member_accuracy"]) == 2
    assert (out / "member-0" / "model.safetensors").exists() and (out / "member-1" / "config.json").exists()
    manifest = json.loads((out / "reward_model.json").read_text())
    assert manifest["kind"] == "models" and manifest["aggregate"] == "min"


def test_rm_and_score_as_recipe_stages(tmp_path, tiny_model_dir, separable, capsys):
    train, held = separable
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "name: rm-score\nstages:\n"
        f"  rm:\n    kind: rm\n    config:\n      model: {{path: {tiny_model_dir('gpt2')}}}\n"
        f"      data: {{path: {train}}}\n      train: {{max_steps: 2, batch_size: 4, progress: false}}\n"
        f"  score:\n    kind: score\n    config:\n      reward_model: {{path: '${{rm}}'}}\n"
        f"      data: {{path: {held}}}\n"
    )
    run_cli("run", recipe, "--run-dir", tmp_path / "run")
    stages = json.loads((tmp_path / "run" / "summary.json").read_text())
    lines = (tmp_path / "run" / stages["score"]["dir"] / "scores.jsonl").read_text().splitlines()
    scores = [json.loads(line) for line in lines]
    assert len(scores) == 4 and stages["score"]["records"] == 4.0
    assert (
        stages["score"]["pair_accuracy"] == sum(r["chosen_reward"] > r["rejected_reward"] for r in scores) / 4
    )


def test_rm_on_conversations_exits_2_with_one_line(tmp_path, tiny_model_dir, capsys):
    f = write_jsonl(tmp_path / "sft.jsonl", [{"messages": [{"role": "user", "content": "hi"},
                                                           {"role": "assistant", "content": "yo"}]}])
    with pytest.raises(SystemExit) as e:
        main(["rm", "--model", str(tiny_model_dir("llama")), "--data", str(f), "--output",
              str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert "sft.jsonl" in err and "preference training needs preference records" in err


def _rewards(out) -> list[float]:
    rows = [json.loads(line) for line in (out / "scores.jsonl").read_text().splitlines()]
    return [r.get("reward", r.get("chosen_reward")) for r in rows]


def test_score_scores_at_the_length_the_reward_model_was_trained_at(tmp_path, tiny_model_dir):
    long_prompt = " ".join(["Please write a short poem about the sea and the sky."] * 4)
    rows = [pair(long_prompt + p, g, b) for p, g, b in zip(PROMPTS, GOOD, BAD, strict=True)]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)
    rm = tmp_path / "rm"
    run_cli("rm", "--model", tiny_model_dir("llama"), "--data", data, "--output", rm, "--max-steps", 1,
            "data.max_length=24", "data.eval_fraction=0", *COMMON)
    assert json.loads((rm / "reward_model.json").read_text())["max_length"] == 24
    for name, extra in (("inherited", []), ("at24", ["data.max_length=24"]),
                        ("at1024", ["data.max_length=1024"])):
        run_cli("score", "--reward-model", rm, "--data", data, "--output", tmp_path / name, *extra)
    assert _rewards(tmp_path / "inherited") == _rewards(tmp_path / "at24")
    assert _rewards(tmp_path / "inherited") != _rewards(tmp_path / "at1024")


def test_score_reads_prompt_response_records(tmp_path, tiny_model_dir):
    from transformers import AutoTokenizer

    from alignlab.modeling.reward_model import build_reward_model, save_reward_model

    path = str(tiny_model_dir("llama"))
    rm = tmp_path / "rm"
    save_reward_model(build_reward_model(path), AutoTokenizer.from_pretrained(path), rm)
    rows = [{"prompt": "Say hello.", "response": "Hello! How can I help you?"},
            {"prompt": "Say hello.", "response": "brown fox, lazy dog"}]
    data = write_jsonl(tmp_path / "responses.jsonl", rows)
    as_completion = write_jsonl(tmp_path / "completions.jsonl",
                                [{"prompt": r["prompt"], "completion": r["response"]} for r in rows])
    run_cli("score", "--reward-model", rm, "--data", data, "--output", tmp_path / "s1")
    run_cli("score", "--reward-model", rm, "--data", as_completion, "--output", tmp_path / "s2")
    assert len(_rewards(tmp_path / "s1")) == 2 and _rewards(tmp_path / "s1") == _rewards(tmp_path / "s2")


def test_rm_reports_on_held_out_pairs_by_default(tmp_path, tiny_model_dir):
    """The report is what the README promises, held-out accuracy, without asking for a hold-out."""
    rows = [pair(f"{p} ({i})", g, b) for i in range(5) for p, g, b in zip(PROMPTS, GOOD, BAD, strict=True)]
    data = write_jsonl(tmp_path / "pairs.jsonl", rows)  # 20 pairs: a fifth (4) held out, not 5 % (1)
    out = tmp_path / "rm"
    run_cli("rm", "--model", tiny_model_dir("llama"), "--data", data, "--output", out, "--max-steps", 1,
            *COMMON)
    report = json.loads((out / "report.json").read_text())
    assert report["split"] == "eval" and report["pairs"] == 4
    assert json.loads((out / "stage.json").read_text())["summary"]["train_pairs"] == 16.0
    lo, hi = report["accuracy_interval"]
    assert 0.0 <= lo <= report["accuracy"] <= hi <= 1.0


def test_score_logs_the_pair_accuracy_with_its_interval():
    """2 of 3 pairs ranked right (the tie is left out): 0.667, Wilson 95 % [0.208, 0.939] by hand."""
    import torch

    from alignlab.scoring import _summary

    rewards = [(1.0, 0.0), (2.0, 3.0), (3.0, 1.0), (0.5, 0.7)]
    rows = [{"chosen_reward": c, "rejected_reward": r} for c, r in rewards]
    rows[3]["tie"] = True
    lines: list[str] = []
    summary = _summary(rows, torch.tensor([x for pair in rewards for x in pair]), lines.append)
    assert summary["pair_accuracy"] == pytest.approx(2 / 3) and summary["pairs"] == 3
    assert lines == ["pair accuracy (chosen scored above rejected): 0.667 [0.208, 0.939] (n=3)"]

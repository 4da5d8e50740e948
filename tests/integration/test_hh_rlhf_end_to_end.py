"""An hh-rlhf file in its original format (gzipped Human:/Assistant: transcripts) through `alignlab rm`
and `alignlab dpo`, on a small file the test writes and, when present, on the real published file."""

import gzip
import json
from pathlib import Path

import pytest
from cli_support import run_cli

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SHARED_HH = SHARED / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"

GOOD = ["The capital of France is Paris.", "Hello! How can I help you today?", "I am a helpful assistant."]
BAD = ["The quick brown fox.", "The lazy dog jumps over the fox.", "Numbers: 0 1 2 3."]
OPENERS = ["What is the capital of France?", "Say hello.", "Write a short poem.", "Answer the question."]


def transcript(*turns: str) -> str:
    """hh-rlhf's layout: every turn starts with a blank line and its speaker."""
    return "".join(f"\n\n{'Human' if i % 2 == 0 else 'Assistant'}: {t}" for i, t in enumerate(turns))


def write_hh(path: Path) -> int:
    """Multi-turn pairs sharing their history, plus one identical pair (a tie); returns the pair count."""
    rows = []
    for i, opener in enumerate(OPENERS):
        for j, good in enumerate(GOOD):
            history = (opener, "Sure.", "Thanks! And then?") if (i + j) % 2 else (opener,)
            rows.append({"chosen": transcript(*history, good), "rejected": transcript(*history,
                                                                                      BAD[(i + j) % 3])})
    rows.append({"chosen": transcript("Hi", "Hello!"), "rejected": transcript("Hi", "Hello!")})
    with gzip.open(path, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return len(rows)





def summary(out: Path) -> dict:
    return json.loads((out / "stage.json").read_text())["summary"]


COMMON = ["train.progress=false", "train.save_every=null", "schedule.kind=constant", "train.batch_size=4"]


def test_hh_rlhf_file_trains_reward_model_and_dpo_policy(tmp_path, tiny_model_dir):
    data = tmp_path / "train.jsonl.gz"
    assert write_hh(data) == 13
    model = tiny_model_dir("llama")

    rm = tmp_path / "rm"
    run_cli("rm", "--model", model, "--data", data, "--output", rm, "--max-steps", 25, "optim.lr=3e-3",
            "data.eval_fraction=0.25", *COMMON)
    report = json.loads((rm / "report.json").read_text())
    # 13 records, 3 held out (25 %); the tie stays in (target 0.5) but is left out of accuracy.
    assert report["split"] == "eval" and report["pairs"] + summary(rm)["train_pairs"] == 13
    assert report["accuracy"] == 1.0

    dpo = tmp_path / "dpo"
    run_cli("dpo", "--model", model, "--data", data, "--output", dpo, "--loss", "dpo", "--max-steps", 10,
            "optim.lr=2e-3", "loss_params.beta=0.5", *COMMON)
    rows = [json.loads(line) for line in (dpo / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 10 and rows[0]["loss"] == pytest.approx(0.6931, abs=1e-3)  # −log σ(0) at step 1
    assert rows[-1]["rewards/accuracy"] == 1.0 and rows[-1]["loss"] < 0.3
    assert summary(dpo)["train_items"] == 12 and summary(dpo)["dropped"] == 1  # the tie is no preference

    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(dpo).config.model_type == "llama"


@pytest.mark.skipif(not SHARED_HH.exists(),
                    reason="shared hh-rlhf data folder is absent (it sits beside the checkout in CI)")
def test_real_hh_rlhf_file_runs_through_rm_and_dpo(tmp_path, tiny_model_dir):
    model = tiny_model_dir("qwen2")
    rm = tmp_path / "rm"
    run_cli("rm", "--model", model, "--data", SHARED_HH, "--output", rm, "--max-steps", 2, "data.limit=16",
            "data.max_length=256", "data.eval_fraction=0.25", *COMMON)
    report = json.loads((rm / "report.json").read_text())
    # 4 of the 16 held out (25 %); pairs whose longer response leaves no room for the prompt within
    # 256 tokens are dropped on either side.
    assert summary(rm)["train_pairs"] + summary(rm)["dropped"] == 12
    assert 1 <= report["pairs"] <= 4 and report["split"] == "eval" and 0.0 <= report["accuracy"] <= 1.0
    dpo = tmp_path / "dpo"
    run_cli("dpo", "--model", model, "--data", SHARED_HH, "--output", dpo, "--loss", "ipo", "--max-steps", 2,
            "data.limit=16", "data.max_length=256", *COMMON)
    rows = [json.loads(line) for line in (dpo / "metrics.jsonl").read_text().splitlines()]
    # IPO at the reference: h = 0, so the loss is (1/(2τ))² = 25 with τ = beta = 0.1.
    assert len(rows) == 2 and rows[0]["loss"] == pytest.approx(25.0, rel=1e-3)

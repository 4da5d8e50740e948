"""RLAIF end to end with `alignlab serve` as its judge: a micro model taught the judge's answers is
served by the command on 127.0.0.1 (a free port), and `alignlab rlaif` labels pairs through it as
through any OpenAI-compatible endpoint: labels from the served top log-probs, the audit, the cache."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cli_support import run_cli
from openai_stub import free_port

from alignlab.data.schema import Message
from alignlab.feedback.judge import comparison_messages
from alignlab.io import read_jsonl
from records import pair, write_jsonl

pytest.importorskip("alignlab.serving.server",
                    reason="needs the OpenAI-compatible server (alignlab.serving, `alignlab serve`)")

QUESTION = "Which response is better?"
CONSTITUTION = (
    "name: one-question\nprinciples:\n  - id: better\n    critique: Is it wrong?\n"
    f"    revision: Make it right.\n    comparison: {QUESTION}\n"
)
# (prompt, chosen, rejected): one-word responses, so the micro judge's prompts stay short.
PAIRS = [("Is the sky blue?", "yes", "no"), ("Name a colour.", "blue", "stone"),
         ("Two and two?", "four", "five")]


def teach_judge(tiny_model_dir, tmp_path: Path) -> Path:
    """The tiny Llama fine-tuned on the very comparison prompts the stage will send, both orders of
    each pair: `Answer: A` when the chosen response is shown as (A), `Answer: B` when it is (B). It
    learns these six prompts by heart, so its answers, unlike a random model's, can be parsed."""
    rows = []
    for q, good, bad in PAIRS:
        prompt = [Message(role="user", content=q)]
        for first, second, answer in ((good, bad, "A"), (bad, good, "B")):
            turns = comparison_messages(prompt, [Message(role="assistant", content=first)],
                                        [Message(role="assistant", content=second)], QUESTION)
            rows.append({"messages": [*(m.model_dump(exclude_none=True) for m in turns),
                                      {"role": "assistant", "content": f"Answer: {answer}"}]})
    data = write_jsonl(tmp_path / "judge_sft.jsonl", rows)
    out = tmp_path / "judge"
    run_cli("sft", "--model", tiny_model_dir("llama"), "--data", data, "--output", out, "--max-steps", "200",
            "train.progress=false", "train.save_every=null", "train.batch_size=6", "optim.lr=1e-2",
            "data.max_length=256", "data.only_last_turn=true")
    return out


def wait_until_up(proc: subprocess.Popen, url: str, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while True:
        assert proc.poll() is None, proc.stdout.read()
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "alignlab serve did not come up"
        time.sleep(0.2)


@pytest.mark.slow
def test_rlaif_labels_pairs_through_alignlab_serve(tmp_path, tiny_model_dir):
    judge = teach_judge(tiny_model_dir, tmp_path)
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [pair(q, good, bad, id=f"p{i}")
                                                   for i, (q, good, bad) in enumerate(PAIRS)])
    constitution = tmp_path / "one.yaml"
    constitution.write_text(CONSTITUTION)
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ALIGNLAB_API_KEY", None)
    proc = subprocess.Popen([sys.executable, "-m", "alignlab.cli", "serve", str(judge), "--port", str(port),
                             "--model-name", "micro-judge", "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    out = tmp_path / "rlaif"

    def rlaif(output: Path, *extra: str) -> dict:
        run_cli("rlaif", "--pairs", pairs, "--judge", url, "--output", output, "--constitution", constitution,
                "judge.endpoint.max_retries=0", *extra)
        return json.loads((output / "stage.json").read_text())["summary"]

    try:
        wait_until_up(proc, f"http://127.0.0.1:{port}")
        summary = rlaif(out)
    finally:
        proc.terminate()
        log, _ = proc.communicate(timeout=30)
    assert f"serving model 'micro-judge' at {url}" in log

    assert summary["judge"] == f"micro-judge@{url}" and summary["requests_sent"] == 2 * len(PAIRS)
    # Every order was answered `Answer: X` with the served log-probs behind it, and the judge followed
    # the content: each pair's chosen response won in both orders, so no position bias.
    assert summary["label_sources"] == {"logprobs": 2 * len(PAIRS)} and summary["unparseable"] == 0
    audit = read_jsonl(out / "audit.jsonl")
    for row in audit:
        assert [o["reply"] for o in row["orders"]] == ["Answer: A", "Answer: B"], row
        p_ab, p_ba = (o["p_a"] for o in row["orders"])
        assert p_ab > 0.5 > p_ba and row["p_first"] == pytest.approx((p_ab + 1 - p_ba) / 2)
    labelled = read_jsonl(out / "pairs.jsonl")
    assert [(p["chosen"][0]["content"], p["annotator"]) for p in labelled] == [
        (good, f"micro-judge@{url}") for _, good, _ in PAIRS]
    assert all(0.5 < p["confidence"] <= 1 for p in labelled)
    assert summary["ai_vs_input_labels/accuracy"]["value"] == 1.0
    assert summary["ai_vs_input_labels/position_bias_rate"]["value"] == 0.0
    assert summary["ai_vs_input_labels/position_bias_rate"]["n"] == len(PAIRS)
    # The served answers are cached in the stage directory: with the server gone, a new stage
    # directory holding that cache labels the same pairs the same way without a request.
    offline = tmp_path / "offline"
    shutil.copytree(out / "http_cache", offline / "http_cache")
    again = rlaif(offline, "judge.endpoint.model=micro-judge")
    assert again["requests_sent"] == 0 and again["labelled"] == len(PAIRS)
    assert read_jsonl(offline / "pairs.jsonl") == labelled

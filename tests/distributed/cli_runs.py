"""Shared by the multi-process tests: small data files, launching the `alignlab` command, and
checks on what a launch wrote."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file

QUESTIONS = ["What colour is the sky?", "Name a fruit.", "Say hello.", "Count to three.",
             "Name a city.", "What is two plus two?", "Name an animal.", "Say goodbye."]  # fmt: skip
ANSWERS = ["The sky is blue.", "An apple is a fruit.", "Hello there!", "One, two, three.",
           "Paris is a city.", "Two plus two is four.", "A fox is an animal.", "Goodbye!"]  # fmt: skip
COMMON = ["train.progress=false", "train.save_every=null", "schedule.kind=constant", "train.seed=3"]
# A complete standalone stage directory holds these (plus tokenizer files), and no leftover temporaries.
EXPECTED = {
    "model.safetensors",
    "config.json",
    "tokenizer.json",
    "config.yaml",
    "stage.json",
    "metrics.jsonl",
}
TORCHRUN = Path(sys.executable).with_name("torchrun")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def conversations(path: Path) -> Path:
    return write_jsonl(path, [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}
        for q, a in zip(QUESTIONS, ANSWERS, strict=True)
    ])  # fmt: skip


def pairs(path: Path, copies: int = 1) -> Path:
    """Conversational preference pairs: each question's answer over another question's."""
    user = lambda text: [{"role": "user", "content": text}]  # noqa: E731
    assistant = lambda text: [{"role": "assistant", "content": text}]  # noqa: E731
    return write_jsonl(path, [
        {"prompt": user(q), "chosen": assistant(a), "rejected": assistant(ANSWERS[(i + 3) % len(ANSWERS)])}
        for i, (q, a) in enumerate(zip(QUESTIONS, ANSWERS, strict=True))
    ] * copies)  # fmt: skip


def run(cmd: list[str], tmp_path: Path, registry: str) -> None:
    """Run a command on CPU processes with its own registry file; a non-zero exit fails the test."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ACCELERATE_USE_CPU": "1",
           "ALIGNLAB_RUN_INDEX": str(tmp_path / registry)}  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def alignlab(args: list[str], tmp_path: Path, *, processes: int, port: int) -> None:
    """Run the CLI on 1 process, or on `processes` under torchrun (registry-<processes>.sqlite)."""
    if processes == 1:
        cmd = [sys.executable, "-m", "alignlab.cli", *args]
    else:
        cmd = [
            str(TORCHRUN), "--nproc-per-node", str(processes), "--master-port", str(port),
            "-m", "alignlab.cli", *args,
        ]
    run(cmd, tmp_path, f"registry-{processes}.sqlite")


def metric_rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def assert_one_complete_model_dir(out: Path, steps: int) -> None:
    from transformers import AutoModelForCausalLM

    names = {p.name for p in out.iterdir()}
    assert not EXPECTED - names, f"missing {EXPECTED - names}"
    assert not [n for n in names if n.startswith(".")], f"leftover temporaries: {names}"
    assert len(metric_rows(out)) == steps  # logged once, not per process
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


def assert_same_losses(a: Path, b: Path) -> None:
    rows_a, rows_b = metric_rows(a), metric_rows(b)
    assert [r["items"] for r in rows_a] == [r["items"] for r in rows_b]
    assert [round(r["loss"], 4) for r in rows_a] == [round(r["loss"], 4) for r in rows_b]

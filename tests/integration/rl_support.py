"""A micro lab for the online RL tests: world, base model and SFT policy, built once per test run
(shared by the pytest-xdist workers through a file lock), and the rule rewards the tests use."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cli_support import run_cli

MICRO_LAB = """
name: rl-micro-lab
stages:
  world:
    kind: lab_world
    config:
      seed: 3
      world: {n_towns: 6, n_rivers: 3, n_founders: 3, n_products: 3, n_hazards: 3, n_fake_towns: 3,
              n_personas: 3, eval_fraction: 0.34}
      corpus: {threads: 10, homework_sheets: 3}
      tasks: {n_demos: 96, n_eval_per_family: 2, n_rl_prompts_per_family: 8}
  base:
    kind: pretrain
    config:
      data: {path: "${world.corpus}", seq_len: 64, packing: stream}
      init: {vocab_size: 400, hidden_size: 32, num_layers: 2, num_heads: 4, max_positions: 128}
      optim: {lr: 3.0e-3}
      train: {batch_size: 8, max_steps: 40, progress: false}
  sft:
    kind: sft
    config:
      model: {path: "${base}"}
      data: {path: "${world.sft}", max_length: 96}
      optim: {lr: 1.0e-3}
      train: {batch_size: 8, max_steps: 30, progress: false}
"""

RULES = '''
import time


def mentions_river(prompts, completions, **fields):
    """1 for a reply that says "river", else 0."""
    return [1.0 if "river" in c.lower() else 0.0 for c in completions]


def reply_length(prompts, completions, **fields):
    """Words per reply / 10: varies with every sample, so advantages are never all zero."""
    return [len(c.split()) / 10 for c in completions]


def slow_river(prompts, completions, **fields):
    time.sleep(0.3)  # gives the kill-and-resume test time to kill the run mid-way
    return mentions_river(prompts, completions)


def broken(prompts, completions, **fields):
    return {}["missing"]
'''


@dataclass(frozen=True)
class MicroLab:
    policy: Path  # the SFT model
    prompts: Path  # the world's rl_prompts.jsonl (with gold fields)
    eval_prompts: Path  # the world's eval.jsonl
    rules: Path  # RULES as a file


def build_micro_lab(root: Path) -> MicroLab:
    """The micro lab under `root`, built by the first caller (the others wait on the lock)."""
    from filelock import FileLock

    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(root / ".lock")):
        summary = root / "run" / "summary.json"
        if not summary.is_file():
            (root / "lab.yaml").write_text(MICRO_LAB)
            run_cli("run", root / "lab.yaml", "--run-dir", root / "run")
        (root / "rules.py").write_text(RULES)
    dirs = {k: Path(v["dir"]) for k, v in json.loads(summary.read_text()).items()}
    return MicroLab(dirs["sft"], dirs["world"] / "rl_prompts.jsonl", dirs["world"] / "eval.jsonl",
                    root / "rules.py")


def river_rate(model_dir: Path, prompts: Path, *, samples: int = 4, seed: int = 123) -> float:
    """Share of sampled replies (temperature 1, 16 tokens) that mention a river, over the prompts."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignlab.data.prompts import read_prompts
    from alignlab.data.templating import encode_prompt
    from alignlab.generation.base import SamplingParams
    from alignlab.generation.hf import HFGenerator

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    records = [r for r in read_prompts(prompts) if len(encode_prompt(tokenizer, r.messages)) < 120]
    out = HFGenerator(model, tokenizer).generate([r.messages for r in records],
                                                 SamplingParams(16, 1.0, n=samples, seed=seed))
    texts = [c.text for cs in out for c in cs]
    return sum("river" in t.lower() for t in texts) / len(texts)


def metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.is_file() else 0


def run_killed_then_resumed(args: list[str], out: Path, *, after_checkpoint: int, log: Path) -> int:
    """Run `alignlab ARGS` in a subprocess, SIGKILL it once a checkpoint at or after step
    `after_checkpoint` exists (just after a step was logged, where possible), then run it again to
    the end in the same directory; returns the killed process's exit code."""
    from alignlab.training.checkpoint import list_checkpoints

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "alignlab.cli", *args], stdout=f,
                                stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 120
            while not any(int(p.name[5:]) >= after_checkpoint for p in list_checkpoints(out)):
                assert proc.poll() is None, log.read_text()[-3000:]
                assert time.monotonic() < deadline, "the run made no checkpoint in time"
                time.sleep(0.05)
            log_file = out / "metrics.jsonl"
            logged = _lines(log_file)
            while proc.poll() is None and time.monotonic() < deadline and _lines(log_file) == logged:
                time.sleep(0.02)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
    code = proc.returncode
    run_cli(*args)
    return code

"""Shared pieces of the CPU benchmarks: synthetic text, the tiny model they train, peak-memory timing."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
_WORD_TEXT = (
    "the a model answer question helpful honest harmless paris france capital river mountain city "
    "weather sunny rain cold warm number count list explain why how what when where because please "
    "thanks sure here is an example of simple clear short long story poem sea sky fox dog lazy quick"
)
WORDS = _WORD_TEXT.split()
TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


def make_model(root: Path, seed: int = 0) -> str:
    """A random-weight Llama of the laboratory's default size with a ChatML tokenizer (vocab 2048)."""
    from alignlab.modeling.tiny import build_tiny_model, train_bpe_tokenizer

    rng = random.Random(seed)
    corpus = [sentence(rng, rng.randint(5, 40)) for _ in range(2000)]
    tok = train_bpe_tokenizer(corpus, 2048, chat_template=TEMPLATE)
    model = build_tiny_model("llama", tok, seed=seed, hidden_size=128, num_layers=4, num_heads=4,
                             max_positions=512)
    model_dir = root / "model"
    model.save_pretrained(model_dir)
    tok.save_pretrained(model_dir)
    return str(model_dir)


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs 5); False where that is not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class Measured:
    """Peak RSS of a code section, and the seconds of the parts of it that are timed."""

    def __enter__(self) -> Measured:
        self.reset = _reset_peak_rss()
        self.rss0 = _status_kib("VmRSS")
        self.seconds: dict[str, float] = {}
        return self

    def __exit__(self, *exc) -> None:
        self.peak = _status_kib("VmHWM")

    def timed(self, name: str):
        measured = self

        class _Timer:
            def __enter__(self) -> None:
                self.t0 = time.perf_counter()

            def __exit__(self, *exc) -> None:
                measured.seconds[name] = measured.seconds.get(name, 0.0) + time.perf_counter() - self.t0

        return _Timer()

    def result(self, tokens: int, pairs: int) -> dict:
        seconds = sum(self.seconds.values())
        return {
            "seconds": round(seconds, 3),
            **{f"{k}_s": round(v, 3) for k, v in self.seconds.items()},
            "tokens": tokens,
            "pairs": pairs,
            "tokens_per_s": round(tokens / seconds, 1),
            "pairs_per_s": round(pairs / seconds, 2),
            "peak_rss_mib": round(self.peak / 1024, 1),
            "peak_growth_mib": round((self.peak - self.rss0) / 1024, 1) if self.reset else None,
        }


def versions(with_trl: bool = True) -> dict:
    import accelerate
    import torch
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__,
           "accelerate": accelerate.__version__,
           "python": platform.python_version()}
    if with_trl:
        import trl

        out["trl"] = trl.__version__
    return out


def run_child(script: str, variant: str, spec: dict) -> dict:
    """Run one variant of `script` in a fresh process (its own peak memory); its last line is JSON."""
    cmd = [sys.executable, script, "--worker", variant, "--spec", json.dumps(spec)]
    env = {**os.environ, "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def add_training_args(p: argparse.ArgumentParser, *, lr: float, out: Path) -> None:
    """The options every side-by-side training benchmark shares, and its child-process hooks."""
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--out", type=Path, default=out)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)

"""Shared pieces of the benchmarks: synthetic text, the models they train (the laboratory's tiny
Llama, a SmolLM2-135M-shaped one), hh-rlhf samples, peak-memory timing, and the driver that
alternates variants over repeats and reports medians and ratios."""

from __future__ import annotations

import argparse
import atexit
import hashlib
import json
import os
import platform
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# The public data folder sits beside the checkout (see the repository's test notes); never copied in.
SHARED_DATA = REPO.parent / "shared" / "data"
HH_RLHF = SHARED_DATA / "hh-rlhf" / "harmless-base" / "test.jsonl.gz"
# HuggingFaceTB/SmolLM2-135M's config.json: a Llama with grouped-query attention and a tied
# embedding. rope theta and norm epsilon are left at the library defaults: they do not change the
# arithmetic.
SMOLLM2_135M = {"vocab_size": 49152, "hidden_size": 576, "num_layers": 30, "num_heads": 9, "num_kv_heads": 3,
                "intermediate_size": 1536, "max_positions": 2048, "tie_word_embeddings": True}  # fmt: skip
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


def smollm2_model(root: Path, tokenizer, seed: int = 0) -> str:
    """A random-weight SmolLM2-135M-shaped Llama saved with `tokenizer` (vocabulary 49,152 whatever
    the tokenizer's size, as checkpoints pad theirs: the LM head costs what the real one does)."""
    import torch
    from transformers import AutoModelForCausalLM

    from alignlab.modeling.tiny import tiny_model_config

    sizes = dict(SMOLLM2_135M)
    config = tiny_model_config("llama", sizes.pop("vocab_size"), bos_token_id=tokenizer.bos_token_id,
                               eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                               **sizes)  # fmt: skip
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)
    model_dir = root / "smollm2-135m-shape"
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return str(model_dir)


def require_hh_rlhf(path: Path) -> Path:
    """`path` if it exists; otherwise exit with a message saying what is missing and how to point at it."""
    if not path.is_file():
        sys.exit(f"hh-rlhf file not found at {path}: this benchmark draws its sequences from the public "
                 "hh-rlhf harmless-base test file (anthropics/hh-rlhf). Put the data folder beside the "
                 "checkout (../shared/data) or pass --hh-rlhf PATH.")  # fmt: skip
    return path


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hh_tokenizer(path: Path, vocab_size: int = SMOLLM2_135M["vocab_size"]):
    """A byte-level BPE tokenizer (ChatML template) trained on the hh-rlhf transcripts at `path`."""
    from alignlab.data.readers import iter_raw_records
    from alignlab.modeling.tiny import train_bpe_tokenizer

    texts = [row[k] for _, row in iter_raw_records(path) for k in ("chosen", "rejected")]
    return train_bpe_tokenizer(texts, vocab_size, chat_template=TEMPLATE)


def sample_hh(path: Path, tokenizer, n: int, max_length: int, seed: int = 0) -> tuple[list[dict], dict]:
    """`n` seeded random hh-rlhf pairs whose chosen and rejected sequences (prompt included) fit in
    `max_length` tokens, as conversational {prompt, chosen, rejected} rows; and length statistics.

    Ties (identical responses) are left out: alignlab drops them and TRL would not, so keeping them
    would give the two different data.
    """
    from alignlab.data.readers import read_preferences
    from alignlab.data.templating import encode_prompt_response

    def as_dicts(messages) -> list[dict]:
        return [{"role": m.role, "content": m.content} for m in messages]

    fitting, lengths = [], []
    for pair in read_preferences(path).records:
        if pair.tie:
            continue
        prompt = list(pair.prompt)
        sides = [encode_prompt_response(tokenizer, prompt, side) for side in (pair.chosen, pair.rejected)]
        if max(len(s.input_ids) for s in sides) <= max_length:
            prompt_len = sum(1 for t in sides[0].labels if t == -100)
            record = {"prompt": as_dicts(prompt), "chosen": as_dicts(pair.chosen),
                      "rejected": as_dicts(pair.rejected)}
            fitting.append((record, (prompt_len, *(len(s.input_ids) for s in sides))))
    rng = random.Random(seed)
    chosen = rng.sample(fitting, n)
    lengths = [length for _, length in chosen]
    stats = {
        "pairs_fitting_max_length": len(fitting),
        "pairs_sampled": n,
        **{f"{name}_tokens_median": statistics.median(x[i] for x in lengths)
           for i, name in enumerate(("prompt", "chosen", "rejected"))},  # fmt: skip
        **{f"{name}_tokens_mean": round(statistics.fmean(x[i] for x in lengths), 1)
           for i, name in enumerate(("prompt", "chosen", "rejected"))},  # fmt: skip
    }
    return [row for row, _ in chosen], stats


def command_line(replace: dict[str, str] | None = None) -> str:
    """This process's command line (python bench/...), with machine paths replaced by placeholders."""
    args = [Path(sys.argv[0]).resolve().relative_to(REPO).as_posix(), *sys.argv[1:]]
    for old, new in (replace or {}).items():
        args = [a.replace(old, new) for a in args]
    return "python " + shlex.join(args)


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


def _on_gpu() -> bool:
    """True where torch (already imported by the worker) sees a GPU: the benchmarks then run there."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.cuda.is_available()


class Measured:
    """Peak RSS (and peak GPU memory, on a GPU) of a code section, and the seconds of its timed parts:
    wall-clock, and this process's CPU time. With one intra-op thread the CPU time is the work done,
    whatever else the machine runs; wall time on a shared machine also counts the waits for a core.

    On a GPU each timed part ends with a synchronize, so queued kernels are counted where they run.
    """

    def __enter__(self) -> Measured:
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self.reset = _reset_peak_rss()
        self.rss0 = _status_kib("VmRSS")
        self.seconds: dict[str, float] = {}
        self.cpu_seconds: dict[str, float] = {}
        # When each optimizer step ends, on either side alike (both step a torch optimizer once per
        # step): the steady step time then leaves out setup, the first step's warm-up and saving.
        self.step_ends: list[tuple[float, float]] = []  # (wall, CPU) clocks
        self._hook = register_optimizer_step_post_hook(lambda *_: self._step_ended())
        self.gpu = _on_gpu()
        if self.gpu:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.gpu0 = torch.cuda.memory_allocated()
        return self

    def _step_ended(self) -> None:
        _synchronize()
        self.step_ends.append((time.perf_counter(), time.process_time()))

    def __exit__(self, *exc) -> None:
        self._hook.remove()
        self.peak = _status_kib("VmHWM")
        if self.gpu:
            import torch

            self.gpu_peak = torch.cuda.max_memory_allocated()

    def timed(self, name: str):
        measured = self

        class _Timer:
            def __enter__(self) -> None:
                _synchronize()
                self.t0, self.c0 = time.perf_counter(), time.process_time()

            def __exit__(self, *exc) -> None:
                _synchronize()
                measured.seconds[name] = measured.seconds.get(name, 0.0) + time.perf_counter() - self.t0
                cpu = time.process_time() - self.c0
                measured.cpu_seconds[name] = measured.cpu_seconds.get(name, 0.0) + cpu

        return _Timer()

    def result(self, tokens: int, pairs: int, steps: int | None = None) -> dict:
        """Totals over the timed parts; with `steps`, also the steady step time (first step left out)
        and the tokens per second it implies, taking the first step to hold its share of tokens."""
        seconds, cpu_seconds = sum(self.seconds.values()), sum(self.cpu_seconds.values())
        ends = self.step_ends
        if steps is not None and len(ends) != steps:
            raise RuntimeError(f"{len(ends)} optimizer steps were seen, {steps} expected")
        steady = {}
        if steps is not None and steps >= 2:
            step_s = (ends[-1][0] - ends[0][0]) / (steps - 1)
            step_cpu_s = (ends[-1][1] - ends[0][1]) / (steps - 1)
            steady = {"step_s": round(step_s, 4), "steady_tokens_per_s": round(tokens / steps / step_s, 1),
                      "step_cpu_s": round(step_cpu_s, 4)}  # fmt: skip
        out = {
            "seconds": round(seconds, 3),
            **{f"{k}_s": round(v, 3) for k, v in self.seconds.items()},
            "cpu_s": round(cpu_seconds, 3),
            **steady,
            "tokens": tokens,
            "pairs": pairs,
            "tokens_per_s": round(tokens / seconds, 1),
            "cpu_tokens_per_s": round(tokens / cpu_seconds, 1) if cpu_seconds else None,
            "pairs_per_s": round(pairs / seconds, 2),
            "peak_rss_mib": round(self.peak / 1024, 1),
            "peak_growth_mib": round((self.peak - self.rss0) / 1024, 1) if self.reset else None,
        }
        if self.gpu:
            out["peak_gpu_mib"] = round(self.gpu_peak / 2**20, 1)
            out["peak_gpu_growth_mib"] = round((self.gpu_peak - self.gpu0) / 2**20, 1)
        return out


def _synchronize() -> None:
    if _on_gpu():
        sys.modules["torch"].cuda.synchronize()


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


# What a worker runs on unless its args say otherwise: the CPU benches' setting. The GPU bench
# passes device "cuda" and precision "bf16" (autocast over fp32 weights on both sides). `layout`:
# alignlab's default padding-free and prefix-shared batches (train.padding_free,
# train.prefix_sharing); false gives its padded batches, the arithmetic TRL does.
RUN_DEFAULTS = {"device": "cpu", "precision": "fp32", "packing": False, "layout": True}


def setting(args: dict, key: str):
    return args.get(key, RUN_DEFAULTS[key])


def padded(worker):
    """The same worker with alignlab's padded batches (train.padding_free=false, prefix_sharing=false)."""
    return lambda assets, args: worker(assets, {**args, "layout": False})


def alignlab_layout(model, args: dict, *, pairs: bool, training: bool = True):
    """(BatchLayout or None, the line saying why) as alignlab's stages choose it for `model`."""
    from alignlab.modeling.attention import choose_layout

    on = setting(args, "layout")
    return choose_layout(model, padding_free=on, prefix_sharing=on, attention="auto", pairs=pairs,
                         training=training)


def trl_like_alignlab(args: dict) -> dict:
    """The TrainingArguments that make TRL's run do what alignlab's does besides the steps: the same
    device and precision, and one checkpoint written when training ends (alignlab's loop always
    writes one to resume from; TRL's default save_strategy "steps" also saves at the end)."""
    return {"use_cpu": setting(args, "device") == "cpu", "bf16": setting(args, "precision") == "bf16",
            "save_strategy": "steps", "save_steps": args["steps"]}  # fmt: skip


def scratch_dir(prefix: str) -> str:
    """A temporary directory for a worker's outputs, removed when the worker process exits."""
    path = tempfile.mkdtemp(prefix=prefix)
    atexit.register(shutil.rmtree, path, True)
    return path


def run_child(script: str, variant: str, spec: dict) -> dict:
    """Run one variant of `script` in a fresh process (its own peak memory); its last line is JSON."""
    cmd = [sys.executable, script, "--worker", variant, "--spec", json.dumps(spec)]
    env = {**os.environ, "TQDM_DISABLE": "1", "TRANSFORMERS_VERBOSITY": "error",
           "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def alternate(script: str, variants: list[str], spec: dict, repeats: int,
              runs_log: Path | None = None) -> dict[str, list[dict]]:
    """Every variant `repeats` times, alternated (a, b, a, b, ...) so drift on a shared machine
    hits all alike; each run in a fresh child process. With `runs_log`, each run is also appended
    there as it ends (one JSON line), so an interrupted bench keeps what it measured
    (`runs_from_log` reads it back)."""
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for _ in range(repeats):
        for name in variants:
            runs[name].append(run_child(script, name, spec))
            r = runs[name][-1]
            print(f"{name}: {r['tokens_per_s']} tokens/s, peak {r['peak_rss_mib']} MiB", flush=True)
            if runs_log is not None:
                with open(runs_log, "a") as f:
                    f.write(json.dumps({"variant": name, "run": r}) + "\n")
    return runs


def runs_from_log(path: Path, variants: list[str]) -> dict[str, list[dict]]:
    """The runs an `alternate(..., runs_log=path)` wrote, cut to the repeats every variant finished."""
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    for line in Path(path).read_text().splitlines():
        row = json.loads(line)
        if "variant" in row:  # other lines: what the bench wrote before its runs (its command)
            runs[row["variant"]].append(row["run"])
    done = min(len(rs) for rs in runs.values())
    if done == 0:
        raise SystemExit(f"{path}: not every variant has finished a run")
    return {name: rs[:done] for name, rs in runs.items()}


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 3)


def summarise(runs: dict[str, list[dict]], baseline: str) -> dict:
    """Medians per variant, and each variant's ratios to `baseline` per repeat (median, min, max):
    tokens/s (higher is better), step time and peak memory (lower is better)."""
    keys = [k for k in ("tokens_per_s", "cpu_tokens_per_s", "seconds", "cpu_s", "step_s", "step_cpu_s",
                        "steady_tokens_per_s", "peak_rss_mib", "peak_growth_mib", "peak_gpu_mib")
            if all(r.get(k) is not None for rs in runs.values() for r in rs)]  # fmt: skip
    out: dict = {"median": {name: {k: _median([r[k] for r in rs]) for k in keys}
                            for name, rs in runs.items()}}  # fmt: skip
    ratios = {}
    for name, rs in runs.items():
        if name == baseline:
            continue
        ratios[f"{name}_vs_{baseline}"] = {
            k: {"median": _median(per), "min": round(min(per), 3), "max": round(max(per), 3)}
            for k in keys
            for per in [[x[k] / y[k] for x, y in zip(rs, runs[baseline], strict=True)]]
        }
    out["ratios"] = ratios
    return out


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

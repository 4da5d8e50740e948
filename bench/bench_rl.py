"""Online RL on CPU: rollout tokens/s and step time of alignlab's GRPO and RLOO next to TRL's
`GRPOTrainer` and `RLOOTrainer`.

One run of this script builds one random-weight Llama of the laboratory's shape (hidden 128,
4 layers, BPE vocabulary 1024) and a prompt file of synthetic user turns (10–30 words, ChatML),
then runs each variant for the same steps in a fresh child process: per step, P prompts × n
replies sampled at temperature 1 (no top-k / top-p) up to N new tokens, scored by the same rule
reward (words per reply / 10), the KL to the frozen reference (β = 0.05, so both load a reference
model), one optimizer step over all P × n rows (AdamW, constant lr), fp32, one intra-op thread,
no vLLM. TRL generates with `transformers`' `model.generate`; alignlab with its own decoding loop.

Measured per variant (first step left out as warm-up):
- rollout tokens/s = generated tokens (a final stop token included) / seconds inside the
  generation call (alignlab `HFGenerator.generate_ids`, TRL `model.generate`), wall and CPU;
- step time = time between optimizer steps (generation, reward, reference and policy
  log-probs, backward and update), wall and CPU (`common.Measured`).

A random model seldom ends a reply, so its replies run to N; `--mean-length L` biases the
end-of-turn logit (on both sides, policy and reference alike, at load) so replies end after
about L tokens, as a trained policy's vary in length. Variants alternate over the repeats and
medians are reported, with each ratio's median, min and max over the alternated pairs
(`--concurrent` runs a repeat's variants at the same time instead; the JSON is written after
every repeat).

    OMP_NUM_THREADS=1 python bench/bench_rl.py [--steps 6] [--prompts 8] [--n 4] [--new-tokens 48]
                                               [--mean-length L] [--repeats 3]

Writes JSON (default bench/results/rl_cpu_<N>tok[_len<L>].json). Needs the `bench` extra (TRL).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_generation import _bias_end_of_turn, _text  # noqa: E402
from common import TEMPLATE, WORDS, Measured, run_child, scratch_dir, versions  # noqa: E402

HERE = Path(__file__).resolve().parent
BETA = 0.05
REWARD = '''
def words(prompts, completions, **fields):
    """Words per reply / 10 (replies are text for alignlab, message lists for TRL)."""
    texts = [c if isinstance(c, str) else c[-1]["content"] for c in completions]
    return [len(t.split()) / 10 for t in texts]
'''


def make_assets(root: Path, num_prompts: int, seed: int = 0) -> dict:
    from alignlab.modeling.tiny import build_tiny_model, train_bpe_tokenizer

    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    pseudo = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(3000)]
    tok = train_bpe_tokenizer([_text(rng, pseudo, rng.randint(5, 40)) for _ in range(4000)], 1024,
                              chat_template=TEMPLATE)
    model = build_tiny_model("llama", tok, seed=seed, hidden_size=128, num_layers=4, num_heads=4,
                             max_positions=512)
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    prompts = root / "prompts.jsonl"
    turns = [[{"role": "user", "content": _text(rng, pseudo, rng.randint(10, 30))}]
             for _ in range(num_prompts)]
    prompts.write_text("".join(json.dumps({"prompt": turn}) + "\n" for turn in turns))
    (root / "reward.py").write_text(REWARD)
    return {"model": str(root / "model"), "prompts": str(prompts), "reward": str(root / "reward.py"),
            "vocab": len(tok), "parameters": sum(p.numel() for p in model.parameters()), "words": len(WORDS)}


def _biased_loading(args: dict) -> None:
    """With --mean-length, every causal LM loaded in this process gets the end-of-turn bias."""
    if not args["mean_length"]:
        return
    from transformers import AutoTokenizer, PreTrainedModel

    original = PreTrainedModel.from_pretrained.__func__

    def from_pretrained(cls, path, *a, **kw):
        model = original(cls, path, *a, **kw)
        if hasattr(model, "get_output_embeddings") and model.get_output_embeddings() is not None:
            tok = AutoTokenizer.from_pretrained(path)
            _bias_end_of_turn(model, tok.convert_tokens_to_ids("<|im_end|>"), len(tok), args["mean_length"])
        return model

    PreTrainedModel.from_pretrained = classmethod(from_pretrained)


class GenerationTimer:
    """Seconds (wall, CPU) and tokens of every generation call after the first (warm-up) one."""

    def __init__(self) -> None:
        self.calls, self.tokens, self.seconds, self.cpu_seconds = 0, 0, 0.0, 0.0

    def wrap(self, fn, count):
        def timed(*a, **kw):
            t0, c0 = time.perf_counter(), time.process_time()
            out = fn(*a, **kw)
            seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
            self.calls += 1
            if self.calls > 1:
                self.tokens += count(out, *a, **kw)
                self.seconds += seconds
                self.cpu_seconds += cpu
            return out

        return timed

    def result(self) -> dict:
        return {"rollout_tokens": self.tokens, "rollout_s": round(self.seconds, 3),
                "rollout_tokens_per_s": round(self.tokens / self.seconds, 1),
                "rollout_tokens_per_cpu_s": round(self.tokens / self.cpu_seconds, 1)}


def _steps(m: Measured, steps: int) -> dict:
    ends = m.step_ends
    if len(ends) != steps:
        raise RuntimeError(f"{len(ends)} optimizer steps were seen, {steps} expected")
    wall = [b[0] - a[0] for a, b in zip(ends, ends[1:], strict=False)]
    cpu = [b[1] - a[1] for a, b in zip(ends, ends[1:], strict=False)]
    return {"step_s": round(statistics.median(wall), 4), "step_cpu_s": round(statistics.median(cpu), 4),
            "peak_rss_mib": round(m.peak / 1024, 1)}


def run_alignlab(assets: dict, args: dict, method: str) -> dict:
    import torch

    from alignlab.config.rl import GRPOConfig, RLOOConfig
    from alignlab.generation.hf import HFGenerator
    from alignlab.stages import stage_context
    from alignlab.training.rl_run import run_online_rl

    torch.set_num_threads(args["threads"])
    _biased_loading(args)
    timer = GenerationTimer()
    HFGenerator.generate_ids = timer.wrap(HFGenerator.generate_ids,
                                          lambda out, *a, **kw: int(out.response_mask.sum()))
    config = (GRPOConfig if method == "grpo" else RLOOConfig).model_validate({
        "model": assets["model"], "prompts": {"path": assets["prompts"]},
        "rewards": [{"function": f"{assets['reward']}:words"}],
        "rollout": {"prompts_per_step": args["prompts"], "samples_per_prompt": args["n"],
                    "max_new_tokens": args["new_tokens"], "max_batch_rows": args["prompts"] * args["n"]},
        "kl": {"coef": BETA}, "optim": {"lr": 1e-6, "max_grad_norm": 1.0}, "schedule": {"kind": "constant"},
        "logging": {"samples_per_batch": 0},
        "train": {"max_steps": args["steps"], "batch_size": args["prompts"] * args["n"], "save_every": None,
                  "progress": False, "log_every": 1, "resume": False, "seed": 0},
    })
    out = Path(scratch_dir(f"bench-{method}-"))
    with Measured() as m:
        run_online_rl(config, stage_context(method, out, log=lambda _: None))
    return {**timer.result(), **_steps(m, args["steps"])}


def run_trl(assets: dict, args: dict, method: str) -> dict:
    import importlib.util

    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationMixin
    from trl import GRPOConfig, GRPOTrainer, RLOOConfig, RLOOTrainer

    torch.set_num_threads(args["threads"])
    _biased_loading(args)
    tok = AutoTokenizer.from_pretrained(assets["model"])
    stops = torch.tensor([tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")])

    def count(out, *a, **kw):  # tokens up to and including each row's first stop token
        ids = kw.get("input_ids", a[0] if a else None)
        generated = out[:, ids.shape[1]:]
        is_stop = torch.isin(generated, stops).long()
        return int(((is_stop.cumsum(-1) - is_stop) == 0).sum())

    timer = GenerationTimer()
    GenerationMixin.generate = timer.wrap(GenerationMixin.generate,
                                          lambda out, self, *a, **kw: count(out, *a, **kw))
    spec = importlib.util.spec_from_file_location("bench_reward", assets["reward"])
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = [json.loads(line) for line in Path(assets["prompts"]).read_text().splitlines()]
    config_cls, trainer_cls = (GRPOConfig, GRPOTrainer) if method == "grpo" else (RLOOConfig, RLOOTrainer)
    batch = args["prompts"] * args["n"]
    cfg = config_cls(
        output_dir=scratch_dir(f"bench-trl-{method}-"), per_device_train_batch_size=batch,
        gradient_accumulation_steps=1, num_generations=args["n"], max_completion_length=args["new_tokens"],
        temperature=1.0, top_p=1.0, beta=BETA, num_iterations=1, max_steps=args["steps"], learning_rate=1e-6,
        lr_scheduler_type="constant",
        warmup_steps=0, max_grad_norm=1.0, logging_steps=1, report_to="none", disable_tqdm=True, seed=0,
        use_cpu=True, bf16=False, save_strategy="steps", save_steps=args["steps"], dataloader_num_workers=0,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(assets["model"], dtype=torch.float32)
    trainer = trainer_cls(model=model, reward_funcs=module.words, args=cfg,
                          train_dataset=Dataset.from_list(rows), processing_class=tok)
    with Measured() as m:
        trainer.train()
    return {**timer.result(), **_steps(m, args["steps"])}


VARIANTS = {
    "alignlab_grpo": lambda a, x: run_alignlab(a, x, "grpo"),
    "trl_grpo": lambda a, x: run_trl(a, x, "grpo"),
    "alignlab_rloo": lambda a, x: run_alignlab(a, x, "rloo"),
    "trl_rloo": lambda a, x: run_trl(a, x, "rloo"),
}
KEYS = ("rollout_tokens_per_s", "rollout_tokens_per_cpu_s", "step_s", "step_cpu_s", "peak_rss_mib")


def _ratios(runs: dict[str, list[dict]], method: str) -> dict:
    """alignlab over TRL per alternated pair (median, min, max): rollout rates (higher is better)
    and TRL's step time over alignlab's (how many times faster alignlab's step is)."""
    ours, theirs = runs[f"alignlab_{method}"], runs[f"trl_{method}"]
    out = {}
    for key in KEYS[:4]:
        pairs = zip(ours, theirs, strict=True)
        per = [x[key] / y[key] if "rollout" in key else y[key] / x[key] for x, y in pairs]
        name = f"{key}_speedup" if "step" in key else key
        out[name] = {"median": round(statistics.median(per), 3), "min": round(min(per), 3),
                     "max": round(max(per), 3)}
    return out


def _round(assets: dict, args: dict, concurrent: bool) -> dict[str, dict]:
    """One run of every variant, one after another or (`concurrent`) all at once."""
    spec = {"assets": assets, "args": args}
    if not concurrent:
        return {name: run_child(__file__, name, spec) for name in VARIANTS}
    with ThreadPoolExecutor(len(VARIANTS)) as pool:
        futures = {name: pool.submit(run_child, __file__, name, spec) for name in VARIANTS}
        return {name: f.result() for name, f in futures.items()}


def _report(runs: dict[str, list[dict]], args: dict, assets: dict, concurrent: bool, suffix: str) -> dict:
    return {
        "benchmark": f"rl_cpu{suffix}",
        "setup": {**args, "rows_per_step": args["prompts"] * args["n"], "temperature": 1.0, "beta": BETA,
                  "device": "cpu", "concurrent_variants": concurrent,
                  "model": f"llama hidden 128, 4 layers, 4 heads, vocab {assets['vocab']} (random init), "
                           f"{assets['parameters']} parameters",
                  "reward": "words per reply / 10 (the same function on both sides)",
                  "cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                  **versions()},  # fmt: skip
        "repeats_done": len(runs["trl_rloo"]),
        "runs": runs,
        "median": {name: {k: round(statistics.median(r[k] for r in rs), 3) for k in KEYS}
                   for name, rs in runs.items()},
        "ratios_alignlab_vs_trl": {m: _ratios(runs, m) for m in ("grpo", "rloo")},
        "goal": "rollout_tokens_per_s >= 2x TRL's",
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--prompts", type=int, default=8, help="Prompts per step.")
    p.add_argument("--n", type=int, default=4, help="Replies per prompt.")
    p.add_argument("--new-tokens", type=int, default=48)
    p.add_argument("--mean-length", type=float, help="Bias the end-of-turn token so replies average about "
                   "this many tokens, instead of running to --new-tokens.")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3,
                   help="Runs of each variant, alternated; medians reported.")
    p.add_argument("--concurrent", action="store_true",
                   help="Run each repeat's variants at the same time: on a machine other jobs keep busy, "
                   "where wall time means little and the CPU-time figures are the ones to read.")
    p.add_argument("--out", type=Path)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(VARIANTS[a.worker](spec["assets"], spec["args"])))
        return
    suffix = f"_{a.new_tokens}tok" + (f"_len{a.mean_length:g}" if a.mean_length else "")
    out = a.out or HERE / "results" / f"rl_cpu{suffix}.json"
    args = {"steps": a.steps, "prompts": a.prompts, "n": a.n, "new_tokens": a.new_tokens,
            "threads": a.threads, "mean_length": a.mean_length}
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="bench-rl-") as tmp:
        assets = make_assets(Path(tmp), a.prompts * a.steps)
        for _ in range(a.repeats):  # alternate, so drift on a shared machine hits every variant alike
            for name, r in _round(assets, args, a.concurrent).items():
                runs[name].append(r)
                print(f"{name}: rollout {r['rollout_tokens_per_s']} tokens/s "
                      f"({r['rollout_tokens_per_cpu_s']} per CPU s), step {r['step_s']} s "
                      f"({r['step_cpu_s']} CPU s)", flush=True)
            # Written after every repeat, so an interrupted run keeps what it measured.
            report = _report(runs, args, assets, a.concurrent, suffix)
            out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("median", "ratios_alignlab_vs_trl")}, indent=2))


if __name__ == "__main__":
    main()

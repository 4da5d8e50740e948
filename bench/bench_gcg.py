"""GCG on CPU: seconds per step with and without the prefix KV cache, and beside nanogcg.

    python bench/bench_gcg.py [--steps 5] [--batch-size 128] [--threads 1]

On the laboratory-size random Llama of the other benchmarks (hidden 128, 4 layers, vocabulary
2048, ChatML without BOS), a 20-token suffix, top-k 64, `--batch-size` candidates a step and no
early stop: (1) `alignlab.evals.gcg` with `prefix_cache` on and off, for system prompts of
0 / 64 / 256 words before the user turn (the part the cache holds); (2) when nanogcg is installed,
both implementations on the same prompt, seed and settings (nanogcg with its prefix cache off: it
indexes the cache as a tuple, which transformers 5 no longer returns; its per-batch gc.collect()
is skipped, as it is for both in effect). Variants alternate over `--repeats`; medians are
reported; the speed-up is of CPU seconds (the machine is shared). Writes bench/results/gcg_cpu.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import WORDS, make_model, versions  # noqa: E402

HERE = Path(__file__).resolve().parent
QUESTION = "Please write a short poem about the sea and the sky."
TARGET = "Sure, here is a poem"
INIT = "!" * 20  # 20 tokens for both implementations


def messages(system_words: int):
    from alignlab.data.schema import system, user

    words = " ".join(WORDS[i % len(WORDS)] for i in range(system_words))
    return ([system(words)] if system_words else []) + [user(QUESTION)]


def ours(model, tok, system_words: int, cache: bool, a) -> dict:
    from alignlab.evals.gcg import GCGConfig, GCGTarget, gcg_attack

    cfg = GCGConfig(init=INIT, steps=a.steps, top_k=64, batch_size=a.batch_size, early_stop=False,
                    prefix_cache=cache, seed=0)  # fmt: skip
    cpu = time.process_time()
    r = gcg_attack(model, tok, GCGTarget(messages(system_words), TARGET), cfg)
    cpu = time.process_time() - cpu
    return {"s_per_step": r.seconds / r.steps, "cpu_s_per_step": cpu / r.steps, "final_loss": r.losses[-1],
            "best_loss": r.best_loss}  # fmt: skip


def nanogcg_run(model, tok, a) -> dict:
    import nanogcg
    import nanogcg.gcg
    import torch

    nanogcg.gcg.gc.collect = lambda *args: 0
    cfg = nanogcg.GCGConfig(num_steps=a.steps, optim_str_init=INIT, search_width=a.batch_size, topk=64,
                            seed=0, early_stop=False, use_prefix_cache=False, verbosity="ERROR")  # fmt: skip
    start, cpu = time.perf_counter(), time.process_time()
    r = nanogcg.run(model, tok, [m.to_template_dict() for m in messages(0)], TARGET, cfg)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    torch.use_deterministic_algorithms(False)
    return {"s_per_step": seconds / a.steps, "cpu_s_per_step": cpu / a.steps, "final_loss": r.losses[-1],
            "best_loss": r.best_loss}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=HERE / "results" / "gcg_cpu.json")
    a = p.parse_args()
    os.environ.setdefault("TQDM_DISABLE", "1")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(a.threads)
    with tempfile.TemporaryDirectory(prefix="bench-gcg-") as tmp:
        path = make_model(Path(tmp))
        model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    runs: dict[str, list[dict]] = {}
    try:
        import nanogcg  # noqa: F401

        has_nanogcg = True
    except ImportError:
        has_nanogcg = False
    for _ in range(a.repeats):
        for words in (0, 64, 256):
            for cache in (True, False):
                runs.setdefault(f"system_{words}_words/cache_{'on' if cache else 'off'}", []).append(
                    ours(model, tok, words, cache, a)
                )
        if has_nanogcg:
            runs.setdefault("nanogcg/system_0_words/cache_off", []).append(nanogcg_run(model, tok, a))
    median = {name: {k: round(statistics.median(r[k] for r in rs), 4) for k in rs[0]}
              for name, rs in runs.items()}  # fmt: skip
    for words in (0, 64, 256):
        on, off = median[f"system_{words}_words/cache_on"], median[f"system_{words}_words/cache_off"]
        median[f"system_{words}_words/speedup"] = round(off["cpu_s_per_step"] / on["cpu_s_per_step"], 2)
    report = {
        "benchmark": "gcg_cpu",
        "setup": {"steps": a.steps, "batch_size": a.batch_size, "top_k": 64, "suffix_tokens": 20,
                  "threads": a.threads, "repeats": a.repeats, "cpu_count": os.cpu_count(),
                  **versions(with_trl=False)},  # fmt: skip
        "median": median,
    }
    if has_nanogcg:
        report["setup"]["nanogcg"] = version("nanogcg")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(median, indent=2))


if __name__ == "__main__":
    main()

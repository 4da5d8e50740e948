"""`train.compile` on CPU: SFT on the laboratory-shaped model, compiled and not, with padded and with
the default laid-out (padding-free) batches.

The same data, steps, batch and learning rate for the four variants, each in a fresh child process
with its own empty inductor cache (so every compiled run pays the cold compile). Compile time is
reported apart from the steady state: `first_step_s` is the first optimizer step (it holds the
compilation), `step_s` the mean step after it (`common.Measured`).

    OMP_NUM_THREADS=1 python bench/bench_compile.py [--steps 20] [--repeats 3]

Writes JSON (default bench/results/compile_cpu.json).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_sft import make_assets  # noqa: E402
from common import (  # noqa: E402
    Measured,
    add_training_args,
    alignlab_layout,
    alternate,
    command_line,
    scratch_dir,
    summarise,
    versions,
)

HERE = Path(__file__).resolve().parent


def run_sft(assets: dict, args: dict) -> dict:
    # Before torch is imported: each compiled run starts from an empty cache (a cold compile).
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = scratch_dir("bench-inductor-")
    import torch

    from alignlab.config import DataConfig, OptimConfig, ScheduleConfig, TrainConfig
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer
    from alignlab.training import sft
    from alignlab.training.causal_lm import count_target_tokens, nll_step
    from alignlab.training.loop import train

    torch.set_num_threads(args["threads"])
    tok = load_tokenizer(assets["model"])
    model = load_causal_lm(assets["model"], dtype="float32", device="cpu")
    data = DataConfig(path=assets["data"], max_length=args["max_length"])
    split = sft.encode_dataset(tok, data, lambda _: None)
    layout, why = alignlab_layout(model, args, pairs=False)
    cfg = TrainConfig(batch_size=args["batch_size"], max_steps=args["steps"], log_every=10, save_every=None,
                      progress=False, resume=False, seed=0, compile=args["compile"])  # fmt: skip
    with Measured() as m, m.timed("train"):
        t0 = time.perf_counter()
        result = train(
            model, nll_step, count_target_tokens, split.train,
            sft.make_collate(tok.pad_token_id, False, layout),
            output_dir=Path(scratch_dir("bench-compile-")), train=cfg,
            optim=OptimConfig(lr=args["lr"], max_grad_norm=1.0), schedule=ScheduleConfig(kind="constant"),
        )
    trained = split.train[: args["steps"] * args["batch_size"]]
    out = m.result(sum(len(ex.input_ids) for ex in trained), len(trained), steps=args["steps"])
    return out | {"first_step_s": round(m.step_ends[0][0] - t0, 3), "final_loss": result.last_metrics["loss"],
                  "batches": why}  # fmt: skip


def variant(layout: bool, compiled: bool):
    return lambda assets, args: run_sft(assets, {**args, "layout": layout, "compile": compiled})


VARIANTS = {"padded": variant(False, False), "padded_compiled": variant(False, True),
            "laid_out": variant(True, False), "laid_out_compiled": variant(True, True)}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_args(p, lr=1e-4, out=HERE / "results" / "compile_cpu.json")
    p.add_argument("--repeats", type=int, default=3,
                   help="Runs of each variant, alternated; medians reported.")
    a = p.parse_args()
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(VARIANTS[a.worker](spec["assets"], spec["args"])))
        return
    args = {"steps": a.steps, "batch_size": a.batch_size, "threads": a.threads, "max_length": a.max_length,
            "lr": a.lr}
    with tempfile.TemporaryDirectory(prefix="bench-compile-") as tmp:
        assets = make_assets(Path(tmp), a.steps * a.batch_size)
        runs = alternate(__file__, list(VARIANTS), {"assets": assets, "args": args}, a.repeats)
    summary = {base: summarise({name: runs[name] for name in (base, f"{base}_compiled")}, baseline=base)
               for base in ("padded", "laid_out")}
    first = {name: sorted(r["first_step_s"] for r in rs)[len(rs) // 2] for name, rs in runs.items()}
    report = {
        "benchmark": "compile_cpu",
        "command": command_line(),
        "setup": {**args, "model": "llama hidden 128, 4 layers, 4 heads, vocab 2048 (random init)",
                  "device": "cpu", "cpu_count": os.cpu_count(), "examples": a.steps * a.batch_size,
                  "repeats": a.repeats, **versions(with_trl=False),
                  "compile": "train.compile=true (inductor, dynamic shapes, the decoder layers), a cold "
                  "inductor cache per run"},
        "notes": "step_s / steady_tokens_per_s: the steps after the first; first_step_s: the first optimizer "
        "step, which holds the compilation.",
        "first_step_s_median": first,
        "runs": runs,
        **summary,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"first_step_s_median": first,
                      **{k: v["ratios"] for k, v in summary.items()}}, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()

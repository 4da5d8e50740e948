"""SFT on CPU: tokens/s and peak memory of alignlab's sft step + loop next to TRL's `SFTTrainer`.

One run builds one tiny model (the laboratory's default size: Llama, hidden 128, 4 layers, BPE
vocabulary 2048) and one set of synthetic conversations, then trains each variant for the same
steps, batch, sequence length and learning rate, each in a fresh child process so its peak memory
is its own. Both learn the assistant tokens only, fp32, padding (no packing), no gradient
checkpointing. Throughput = real tokens of the trained sequences (prompt included) / wall seconds
of the training steps; tokenizing and loading the model are left out for both.

    python bench/bench_sft.py [--steps 20] [--batch-size 8] [--threads 1]

Writes JSON (default bench/results/sft_cpu.json). Needs the `bench` extra (TRL).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (  # noqa: E402
    Measured,
    add_training_args,
    alignlab_layout,
    alternate,
    command_line,
    make_model,
    padded,
    scratch_dir,
    sentence,
    setting,
    summarise,
    trl_like_alignlab,
    versions,
)

HERE = Path(__file__).resolve().parent


def make_assets(root: Path, num_examples: int, seed: int = 0) -> dict[str, str]:
    model_dir = make_model(root, seed)
    rng = random.Random(seed + 1)
    rows = [
        {"messages": [
            {"role": "user", "content": sentence(rng, rng.randint(20, 40))},
            {"role": "assistant", "content": sentence(rng, rng.randint(30, 60))},
        ]}
        for _ in range(num_examples)
    ]
    data = root / "conversations.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"model": model_dir, "data": str(data)}


def run_alignlab(assets: dict, args: dict) -> dict:
    import torch

    from alignlab.config import DataConfig, OptimConfig, ScheduleConfig, TrainConfig
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer
    from alignlab.training import sft
    from alignlab.training.causal_lm import count_target_tokens, nll_step
    from alignlab.training.loop import train

    torch.set_num_threads(args["threads"])
    tok = load_tokenizer(assets["model"])
    model = load_causal_lm(assets["model"], dtype="float32", device=setting(args, "device"))
    packing = setting(args, "packing")
    data = DataConfig(path=assets["data"], max_length=args["max_length"], packing=packing)
    split = sft.encode_dataset(tok, data, lambda _: None)
    layout, why = (None, "packed rows") if packing else alignlab_layout(model, args, pairs=False)
    cfg = TrainConfig(batch_size=args["batch_size"], max_steps=args["steps"], log_every=10, save_every=None,
                      progress=False, resume=False, seed=0, precision=setting(args, "precision"))  # fmt: skip
    with Measured() as m, m.timed("train"):
        train(
            model, nll_step, count_target_tokens, split.train,
            sft.make_collate(tok.pad_token_id, packing, layout),
            output_dir=Path(scratch_dir("bench-sft-")), train=cfg,
            optim=OptimConfig(lr=args["lr"], max_grad_norm=1.0), schedule=ScheduleConfig(kind="constant"),
        )
    trained = split.train[: args["steps"] * args["batch_size"]]
    result = m.result(sum(len(ex.input_ids) for ex in trained), len(trained), steps=args["steps"])
    return result | {"batches": why}


def run_trl(assets: dict, args: dict) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    torch.set_num_threads(args["threads"])
    rows = [json.loads(line) for line in Path(assets["data"]).read_text().splitlines()]
    tok = AutoTokenizer.from_pretrained(assets["model"])
    model = AutoModelForCausalLM.from_pretrained(assets["model"], dtype=torch.float32)
    cfg = SFTConfig(
        output_dir=scratch_dir("bench-trl-sft-"), per_device_train_batch_size=args["batch_size"],
        max_steps=args["steps"], learning_rate=args["lr"], lr_scheduler_type="constant", warmup_steps=0,
        max_grad_norm=1.0, max_length=args["max_length"], logging_steps=10, report_to="none",
        disable_tqdm=True, seed=0, dataloader_num_workers=0, assistant_only_loss=False,
        completion_only_loss=None, packing=setting(args, "packing"), gradient_checkpointing=False,
        **trl_like_alignlab(args),
    )  # fmt: skip
    trainer = SFTTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok)
    with Measured() as m, m.timed("train"):
        trainer.train()
    n = args["steps"] * args["batch_size"]
    return m.result(sum(len(ids) for ids in trainer.train_dataset["input_ids"][:n]), n, steps=args["steps"])


VARIANTS = {"alignlab": run_alignlab, "alignlab_padded": padded(run_alignlab), "trl": run_trl}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_args(p, lr=1e-4, out=HERE / "results" / "sft_cpu.json")
    p.add_argument("--repeats", type=int, default=3,
                   help="Runs of each variant, alternated; medians reported.")
    a = p.parse_args()
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(VARIANTS[a.worker](spec["assets"], spec["args"])))
        return
    args = {"steps": a.steps, "batch_size": a.batch_size, "threads": a.threads, "max_length": a.max_length,
            "lr": a.lr}
    with tempfile.TemporaryDirectory(prefix="bench-sft-") as tmp:
        assets = make_assets(Path(tmp), a.steps * a.batch_size)
        runs = alternate(__file__, list(VARIANTS), {"assets": assets, "args": args}, a.repeats)
    report = {
        "benchmark": "sft_cpu",
        "command": command_line(),
        "setup": {**args, "model": "llama hidden 128, 4 layers, 4 heads, vocab 2048 (random init)",
                  "device": "cpu", "cpu_count": os.cpu_count(), "examples": a.steps * a.batch_size,
                  "repeats": a.repeats, **versions()},
        "notes": "alignlab: padding-free batches (the default where the model allows them); alignlab_padded: "
        "padded batches, the arithmetic TRL does.",
        "runs": runs,
        **summarise(runs, baseline="trl"),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["ratios"], indent=2))


if __name__ == "__main__":
    main()

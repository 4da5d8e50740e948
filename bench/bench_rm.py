"""Reward model on CPU: tokens/s and peak memory of alignlab's reward step + loop next to TRL's
`RewardTrainer`.

One run builds one tiny model (the laboratory's default size, as in bench_dpo.py) and one set of
synthetic conversational preference pairs, then trains a one-member Bradley-Terry reward model
(sequence-classification head on that backbone) with each implementation for the same steps,
batch, sequence lengths and learning rate, each in a fresh child process so its peak memory is its
own; the two alternate over the repeats and medians are reported. fp32, no gradient
checkpointing, no reward centering, on both sides. Throughput = real tokens of the chosen and
rejected sequences (prompt included) / wall seconds of the training steps; tokenizing and loading
the model are left out for both.

    python bench/bench_rm.py [--steps 20] [--batch-size 8] [--threads 1] [--repeats 3]

Writes JSON (default bench/results/rm_cpu.json). Needs the `bench` extra (TRL).
"""

from __future__ import annotations

import argparse
import json
import os
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
    padded,
    scratch_dir,
    setting,
    summarise,
    trl_like_alignlab,
    versions,
)

HERE = Path(__file__).resolve().parent


def run_alignlab(assets: dict, args: dict) -> dict:
    import torch

    from alignlab.config import DataConfig, OptimConfig, ScheduleConfig, TrainConfig
    from alignlab.data.preference import collate_pairs, count_pairs, encode_preference_split
    from alignlab.modeling.loading import load_tokenizer
    from alignlab.modeling.reward_model import build_reward_model
    from alignlab.training import reward
    from alignlab.training.loop import train

    torch.set_num_threads(args["threads"])
    tok = load_tokenizer(assets["model"])
    split = encode_preference_split(
        tok, DataConfig(path=assets["data"], max_length=args["max_length"]), log=lambda _: None
    )
    model = build_reward_model(assets["model"], pad_token_id=tok.pad_token_id, dtype="float32",
                               device=setting(args, "device"))  # fmt: skip
    cfg = TrainConfig(batch_size=args["batch_size"], max_steps=args["steps"], log_every=10, save_every=None,
                      progress=False, resume=False, seed=0, precision=setting(args, "precision"))  # fmt: skip
    pad = tok.pad_token_id
    layout, why = alignlab_layout(model, args, pairs=True)
    with Measured() as m, m.timed("train"):
        train(
            model, reward.make_reward_step(0.0), count_pairs, split.train,
            lambda b: collate_pairs(b, pad, layout), output_dir=Path(scratch_dir("bench-rm-")), train=cfg,
            optim=OptimConfig(lr=args["lr"], max_grad_norm=1.0), schedule=ScheduleConfig(kind="constant"),
        )  # fmt: skip
    trained = split.train[: args["steps"] * args["batch_size"]]
    tokens = sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in trained)
    return m.result(tokens, len(trained), steps=args["steps"]) | {"batches": why}


def run_trl(assets: dict, args: dict) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    torch.set_num_threads(args["threads"])
    rows = [json.loads(line) for line in Path(assets["data"]).read_text().splitlines()]
    tok = AutoTokenizer.from_pretrained(assets["model"])
    model = AutoModelForSequenceClassification.from_pretrained(
        assets["model"], num_labels=1, dtype=torch.float32
    )
    model.config.pad_token_id = tok.pad_token_id
    cfg = RewardConfig(
        output_dir=scratch_dir("bench-trl-rm-"), per_device_train_batch_size=args["batch_size"],
        max_steps=args["steps"], learning_rate=args["lr"], lr_scheduler_type="constant", warmup_steps=0,
        max_grad_norm=1.0, max_length=args["max_length"], logging_steps=10, report_to="none",
        disable_tqdm=True, seed=0, dataloader_num_workers=0, center_rewards_coefficient=None,
        # TRL's own defaults are bf16 autocast and gradient checkpointing: precision follows
        # alignlab's run (fp32 on CPU, bf16 autocast on a GPU), checkpointing is off on both.
        gradient_checkpointing=False, **trl_like_alignlab(args),
    )  # fmt: skip
    trainer = RewardTrainer(
        model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok
    )
    with Measured() as m, m.timed("train"):
        trainer.train()
    ds, n = trainer.train_dataset, args["steps"] * args["batch_size"]
    tokens = sum(len(c) + len(r) for c, r in zip(ds["chosen_ids"][:n], ds["rejected_ids"][:n], strict=True))
    return m.result(tokens, n, steps=args["steps"])


VARIANTS = {"alignlab": run_alignlab, "alignlab_padded": padded(run_alignlab), "trl": run_trl}


def main() -> None:
    from bench_dpo import make_assets

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_args(p, lr=1e-5, out=HERE / "results" / "rm_cpu.json")
    p.add_argument(
        "--repeats", type=int, default=3, help="Runs of each variant, alternated; medians reported."
    )
    a = p.parse_args()
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(VARIANTS[a.worker](spec["assets"], spec["args"])))
        return
    args = {
        "steps": a.steps,
        "batch_size": a.batch_size,
        "threads": a.threads,
        "max_length": a.max_length,
        "lr": a.lr,
    }
    with tempfile.TemporaryDirectory(prefix="bench-rm-") as tmp:
        assets = make_assets(Path(tmp), a.steps * a.batch_size)
        runs = alternate(__file__, list(VARIANTS), {"assets": assets, "args": args}, a.repeats)
    report = {
        "benchmark": "rm_cpu",
        "command": command_line(),
        "setup": {
            **args,
            "model": "llama hidden 128, 4 layers, 4 heads, vocab 2048 (random init), one reward head",
            "device": "cpu",
            "cpu_count": os.cpu_count(),
            "pairs": a.steps * a.batch_size,
            **versions(),
        },
        "runs": runs,
        **summarise(runs, baseline="trl"),
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["ratios"], indent=2))


if __name__ == "__main__":
    main()

"""DPO on CPU: tokens/s and peak memory of alignlab's dpo step + loop next to TRL's `DPOTrainer`.

One run of this script builds one tiny model (the laboratory's default size: Llama, hidden 128,
4 layers, BPE vocabulary 2048) and one set of synthetic preference pairs, then trains each variant
for the same steps, batch, sequence lengths and learning rate, each in a fresh child process so its
peak memory is its own:

- alignlab, cached reference (the default): the reference pre-pass + the training loop;
- alignlab, live reference (`reference.cache=false`): the training loop with a second model;
- TRL, live reference (the `DPOTrainer` default): `trainer.train()`;
- TRL, `precompute_ref_log_probs=True`: its pre-pass (in the constructor) + `trainer.train()`.

Throughput = real tokens of the chosen and rejected sequences trained on (prompt included) / wall
seconds of the reference pre-pass (if any) + the training steps; tokenizing and loading the policy
are left out for both. Peak memory = the peak resident set size from just after the policy is
loaded to the end of training (/proc VmHWM, reset there), and its growth over the resident size
at that point: reference model, tokenized data, activations, gradients, optimizer state.
Writes JSON (default bench/results/dpo_cpu.json) with both ratios.

    python bench/bench_dpo.py [--steps 20] [--batch-size 8] [--threads 1]

Needs the `bench` extra (TRL): pip install -e '.[bench]'.
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


def make_assets(root: Path, num_pairs: int, seed: int = 0) -> dict[str, str]:
    """Tokenizer + random-weight model directory and a JSONL of conversational preference pairs."""
    model_dir = make_model(root, seed)
    rng = random.Random(seed + 1)
    rows = []
    for _ in range(num_pairs):
        prompt = [{"role": "user", "content": sentence(rng, rng.randint(20, 40))}]
        chosen = [{"role": "assistant", "content": sentence(rng, rng.randint(30, 60))}]
        rejected = [{"role": "assistant", "content": sentence(rng, rng.randint(30, 60))}]
        rows.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    data = root / "pairs.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return {"model": model_dir, "data": str(data)}


# ------------------------------------------------------------------------------------ workers


def run_alignlab(assets: dict, args: dict, cache: bool) -> dict:
    import functools
    from contextlib import nullcontext

    import torch

    from alignlab.config import DataConfig, OptimConfig, ScheduleConfig, TrainConfig
    from alignlab.data.preference import (
        PAIR_SIDES,
        collate_pairs,
        count_pairs,
        encode_preference_split,
        item_width,
    )
    from alignlab.losses.registry import get_loss
    from alignlab.modeling.attention import choose_backend
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer
    from alignlab.training import dpo, refcache
    from alignlab.training.loop import train
    from alignlab.training.reference import attach_cached_reference, live_reference, precision_autocast

    torch.set_num_threads(args["threads"])
    out = Path(scratch_dir("bench-alignlab-"))
    tok = load_tokenizer(assets["model"])
    device, precision = setting(args, "device"), setting(args, "precision")
    model = load_causal_lm(assets["model"], dtype="float32", device=device)
    pad = tok.pad_token_id
    trainer_cfg = TrainConfig(
        batch_size=args["batch_size"],
        max_steps=args["steps"],
        log_every=10,
        save_every=None,
        progress=False,
        resume=False,
        seed=0,
        precision=precision,
    )
    layout, why = alignlab_layout(model, args, pairs=True)
    with Measured() as m:
        data_cfg = DataConfig(path=assets["data"], max_length=args["max_length"])
        data = encode_preference_split(tok, data_cfg, keep_ties=False, log=print)
        reference = None
        if cache:  # as the dpo stage runs it: the pre-pass in the training precision, laid out alike
            identity = {"model": refcache.weights_identity(assets["model"])}

            def collate_for(ref: torch.nn.Module):
                ref_layout = alignlab_layout(ref, args, pairs=True, training=False)[0]
                return functools.partial(collate_pairs, pad_token_id=pad, layout=ref_layout)

            with m.timed("reference_prepass"):
                data = attach_cached_reference(
                    data, PAIR_SIDES, lambda: nullcontext(model), identity,
                    settings={"dtype": "float32", "precision": precision},
                    cache_path=out / "reference_logps.safetensors", collate_for=collate_for,
                    sides_logps=dpo.pair_logps, length=item_width, batch_size=16, log=lambda _: None,
                    precision=lambda: precision_autocast(precision, device),
                )
        else:
            ref = load_causal_lm(assets["model"], dtype="float32", device=device).eval().requires_grad_(False)
            if layout is not None and choose_backend(ref, layout.attention)[0] != layout.attention:
                layout, why = None, "padded batches: the reference model cannot take the policy's attention"
            reference = live_reference(ref, dpo.pair_logps)
        step = dpo.make_paired_step(get_loss("dpo"), {"beta": 0.1}, reference=reference)
        with m.timed("train"):
            train(
                model,
                step,
                count_pairs,
                data.train,
                functools.partial(collate_pairs, pad_token_id=pad, layout=layout),
                output_dir=out,
                train=trainer_cfg,
                optim=OptimConfig(lr=args["lr"], max_grad_norm=1.0),
                schedule=ScheduleConfig(kind="constant"),
            )
    trained = data.train[: args["steps"] * args["batch_size"]]
    tokens = sum(len(p.chosen.input_ids) + len(p.rejected.input_ids) for p in trained)
    return m.result(tokens, len(trained), steps=args["steps"]) | {"batches": why}


def run_trl(assets: dict, args: dict, precompute: bool, trl_defaults: bool = False) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    torch.set_num_threads(args["threads"])
    out = scratch_dir("bench-trl-")
    rows = [json.loads(line) for line in Path(assets["data"]).read_text().splitlines()]
    tok = AutoTokenizer.from_pretrained(assets["model"])
    model = AutoModelForCausalLM.from_pretrained(assets["model"], dtype=torch.float32)
    cfg = DPOConfig(
        output_dir=out,
        per_device_train_batch_size=args["batch_size"],
        max_steps=args["steps"],
        learning_rate=args["lr"],
        lr_scheduler_type="constant",
        warmup_steps=0,
        max_grad_norm=1.0,
        beta=0.1,
        max_length=args["max_length"],
        logging_steps=10,
        report_to="none",
        disable_tqdm=True,
        seed=0,
        dataloader_num_workers=0,
        precompute_ref_log_probs=precompute,
        precompute_ref_batch_size=16,
        # TRL's own defaults are bf16 autocast and gradient checkpointing; unless asked for, both
        # follow alignlab's run (fp32 on CPU, bf16 autocast on a GPU; no recomputation).
        **{**trl_like_alignlab(args), **({"bf16": True} if trl_defaults else {})},
        gradient_checkpointing=trl_defaults,
    )
    dataset = Dataset.from_list(rows)
    with Measured() as m:
        # The constructor tokenizes (untimed, as for alignlab) and, with precompute_ref_log_probs,
        # runs the reference pre-pass, which is timed.
        prepass = DPOTrainer._precompute_ref_logps

        def timed_prepass(self, *a, **kw):
            with m.timed("reference_prepass"):
                return prepass(self, *a, **kw)

        DPOTrainer._precompute_ref_logps = timed_prepass
        trainer = DPOTrainer(model=model, args=cfg, train_dataset=dataset, processing_class=tok)
        with m.timed("train"):
            trainer.train()
    ds = trainer.train_dataset
    n = args["steps"] * args["batch_size"]
    lengths = zip(ds["prompt_ids"][:n], ds["chosen_ids"][:n], ds["rejected_ids"][:n], strict=True)
    return m.result(sum(2 * len(p) + len(c) + len(r) for p, c, r in lengths), n, steps=args["steps"])


VARIANTS = {
    "alignlab_cached_ref": lambda a, x: run_alignlab(a, x, cache=True),
    "alignlab_cached_ref_padded": padded(lambda a, x: run_alignlab(a, x, cache=True)),
    "alignlab_live_ref": lambda a, x: run_alignlab(a, x, cache=False),
    "trl_live_ref": lambda a, x: run_trl(a, x, precompute=False),
    "trl_precomputed_ref": lambda a, x: run_trl(a, x, precompute=True),
    # Opt-in (--trl-own-defaults): TRL exactly as shipped, bf16 autocast + gradient checkpointing.
    "trl_live_ref_own_defaults": lambda a, x: run_trl(a, x, precompute=False, trl_defaults=True),
}


# ------------------------------------------------------------------------------------ driver


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_training_args(p, lr=1e-5, out=HERE / "results" / "dpo_cpu.json")
    p.add_argument(
        "--repeats", type=int, default=3, help="Runs of each variant, alternated; medians reported."
    )
    p.add_argument("--trl-own-defaults", action="store_true",
                   help="Also run TRL with its bf16 + checkpointing defaults.")
    a = p.parse_args()
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(VARIANTS[a.worker](spec["assets"], spec["args"])))
        return
    args = {"steps": a.steps, "batch_size": a.batch_size, "threads": a.threads, "max_length": a.max_length,
            "lr": a.lr}
    variants = [v for v in VARIANTS if v != "trl_live_ref_own_defaults" or a.trl_own_defaults]
    with tempfile.TemporaryDirectory(prefix="bench-dpo-") as tmp:
        assets = make_assets(Path(tmp), a.steps * a.batch_size)
        runs = alternate(__file__, variants, {"assets": assets, "args": args}, a.repeats)
    summary = summarise(runs, baseline="trl_live_ref")
    r = summary["ratios"]
    headline = {  # CPU-time ratios of tokens/s per alternated repeat (median, min, max)
        "alignlab_default_vs_trl_default": r["alignlab_cached_ref_vs_trl_live_ref"]["cpu_tokens_per_s"],
        "alignlab_padded_vs_trl_default": r["alignlab_cached_ref_padded_vs_trl_live_ref"]["cpu_tokens_per_s"],
        "alignlab_live_vs_trl_live": r["alignlab_live_ref_vs_trl_live_ref"]["cpu_tokens_per_s"],
        "alignlab_default_peak_rss_vs_trl_default": r["alignlab_cached_ref_vs_trl_live_ref"]["peak_rss_mib"],
    }
    report = {
        "benchmark": "dpo_cpu",
        "command": command_line(),
        "setup": {**args, "model": "llama hidden 128, 4 layers, 4 heads, vocab 2048 (random init)",
                  "device": "cpu", "cpu_count": os.cpu_count(), "pairs": a.steps * a.batch_size,
                  "repeats": a.repeats, **versions()},
        "runs": runs,
        **summary,
        "headline_cpu_ratios": headline,
        "goal": "alignlab_default_vs_trl_default >= 1.5 (aim 2); peak memory <= 0.8",
        "notes": "alignlab_cached_ref: padding-free, prefix-shared batches (the default where the model "
        "allows them); alignlab_cached_ref_padded: the same with padded batches. Tokens are the chosen and "
        "rejected sequences' tokens, the prompt counted twice, for every variant. trl_* variants run fp32 "
        "without gradient checkpointing, like alignlab; TRL's own defaults (bf16 autocast, gradient "
        "checkpointing) are the opt-in trl_live_ref_own_defaults variant.",
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(headline, indent=2))


if __name__ == "__main__":
    main()

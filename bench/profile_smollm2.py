"""Where a SmolLM2-135M-shaped training step spends its CPU time, laid-out batches vs padded ones.

The side-by-side bench (bench_smollm2.py) gives end-to-end ratios; this says what bounds them. For
SFT and DPO (cached reference values given, as after the pre-pass) on one micro-batch of the same
hh-rlhf examples, it measures the process CPU seconds of the forward + backward and of the AdamW
step separately (medians of --repeats steps after a warm-up), the tokens each layout feeds the
model, and, from torch.profiler, the share of the forward + backward spent in matrix products,
attention and the rest (the profiler's "self CPU" times are host clock time inside each op, so on a
busy machine they run above the process CPU seconds; the shares still compare). One thread, fp32.

    python bench/profile_smollm2.py [--batch-size 2] [--repeats 3] [--max-length 512]

Writes bench/results/profile_smollm2_cpu.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_smollm2 import write_data  # noqa: E402
from common import (  # noqa: E402
    HH_RLHF,
    alignlab_layout,
    command_line,
    hh_tokenizer,
    require_hh_rlhf,
    sample_hh,
    smollm2_model,
    versions,
)

HERE = Path(__file__).resolve().parent
MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::matmul", "aten::linear")
ATTENTION = ("scaled_dot_product", "flash_attention", "efficient_attention", "softmax")


def _category(name: str) -> str:
    if name in MATMUL:
        return "matmul"
    if any(k in name for k in ATTENTION):
        return "attention"
    return "other"


def _batches(method: str, model_dir: str, data: dict[str, str], layout_on: bool, batch_size: int,
             max_length: int):
    import torch

    from alignlab.config import DataConfig
    from alignlab.data.preference import collate_pairs, encode_preference_split
    from alignlab.losses.registry import get_loss
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer
    from alignlab.training import dpo, sft
    from alignlab.training.causal_lm import nll_step

    torch.manual_seed(0)
    tok = load_tokenizer(model_dir)
    model = load_causal_lm(model_dir, dtype="float32", device="cpu")
    layout, why = alignlab_layout(model, {"layout": layout_on}, pairs=method == "dpo")
    cfg = DataConfig(path=data[method], max_length=max_length)
    if method == "sft":
        items = sft.encode_dataset(tok, cfg, lambda _: None).train[:batch_size]
        batch = sft.make_collate(tok.pad_token_id, False, layout)(items)
        step = nll_step
    else:
        pairs = encode_preference_split(tok, cfg, keep_ties=False, log=lambda _: None).train[:batch_size]
        items = [dataclasses.replace(p, ref_chosen=0.0, ref_rejected=0.0) for p in pairs]
        batch = collate_pairs(items, tok.pad_token_id, layout)
        step = dpo.make_paired_step(get_loss("dpo"), {"beta": 0.1}, reference=None)
    return model, step, batch, why


def profile(method: str, model_dir: str, data: dict[str, str], layout_on: bool,
            a: argparse.Namespace) -> dict:
    import torch
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    torch.set_num_threads(1)
    model, step, batch, why = _batches(method, model_dir, data, layout_on, a.batch_size, a.max_length)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    fwd_bwd, opt_s = [], []
    for i in range(a.repeats + 1):  # the first step warms up (allocations, AdamW state)
        c0 = time.process_time()
        step(model, batch).loss.backward()
        c1 = time.process_time()
        opt.step()
        opt.zero_grad(set_to_none=True)
        c2 = time.process_time()
        if i:
            fwd_bwd.append(c1 - c0)
            opt_s.append(c2 - c1)
    with torch_profile(activities=[ProfilerActivity.CPU]) as prof:
        step(model, batch).loss.backward()
    shares: dict[str, float] = {}
    for e in prof.key_averages():
        shares[_category(e.key)] = shares.get(_category(e.key), 0.0) + e.self_cpu_time_total
    total = sum(shares.values())
    top = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:8]
    return {
        "batches": why,
        "tokens_fed": int(batch["input_ids"].numel()) if "input_ids" in batch else None,
        "forward_backward_cpu_s": round(statistics.median(fwd_bwd), 3),
        "adamw_step_cpu_s": round(statistics.median(opt_s), 3),
        "forward_backward_share": {k: round(v / total, 3) for k, v in sorted(shares.items())},
        "top_ops_self_cpu_s": {e.key: round(e.self_cpu_time_total / 1e6, 3) for e in top},
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-length", type=int, default=512)
    p.add_argument("--hh-rlhf", type=Path, default=HH_RLHF)
    p.add_argument("--out", type=Path, default=HERE / "results" / "profile_smollm2_cpu.json")
    a = p.parse_args()
    hh = require_hh_rlhf(a.hh_rlhf)
    out: dict = {"benchmark": "profile_smollm2_cpu",
                 "command": command_line({str(a.hh_rlhf.resolve().parent.parent.parent): "<shared data>"}),
                 "setup": {"batch_size": a.batch_size, "repeats": a.repeats, "threads": 1,
                           "precision": "fp32", **versions(with_trl=False)}}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="profile-smollm2-") as tmp:
        tok = hh_tokenizer(hh)
        model_dir = smollm2_model(Path(tmp), tok)
        rows, _ = sample_hh(hh, tok, max(6, a.batch_size), a.max_length)  # the bench's first examples
        data = write_data(Path(tmp), rows)
        for method in ("sft", "dpo"):
            for name, on in (("laid_out", True), ("padded", False)):
                out[f"{method}_{name}"] = profile(method, model_dir, data, on, a)
                print(method, name, json.dumps(out[f"{method}_{name}"]), flush=True)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()

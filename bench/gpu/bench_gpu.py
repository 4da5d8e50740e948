"""GPU benchmarks: alignlab next to TRL on Qwen2-0.5B- and Qwen2-1.5B-shaped models, SFT and DPO.

Run it through `run_gpu_bench.sh`, which installs carried wheels (TRL, datasets, pydantic) where the
machine lacks them. Each shape is built from random init (Qwen2: 151,936-token vocabulary, tied
embedding, grouped-query attention; no hub needed) and saved once; every variant then trains it in
a fresh child process on the same synthetic conversations, whose prompt and responses are each
U[--min-tokens, --max-tokens] tokens long (one word = one token of a BPE trained on the word list),
with the same batch, steps, learning rate and precision (bf16 autocast over fp32 weights, no
gradient checkpointing, sdpa attention):

- sft: alignlab's sft step + loop vs `SFTTrainer`, padded and packed (rows of --max-length);
- dpo: alignlab's default (cached reference, pre-pass timed) and live reference vs `DPOTrainer`'s
  default (live reference); beta 0.1, sigmoid loss;
- grpo: skipped with a note until alignlab has a GRPO trainer (TRL alone would compare nothing).

Per variant: tokens/s (real tokens of the trained sequences, prompt included), step time, peak GPU
memory, and MFU = model FLOPs per second / the device's dense bf16 peak (989 TFLOP/s for H100 and
H200; --peak-tflops for others). Model FLOPs per sequence of T tokens, N = every matmul weight
(LM head included, input embedding lookup not; a tied embedding counts once), L layers, d =
query heads x head size: training 6·N·T + 12·L·d·T² (forward + backward; attention counted over
the full T x T square, the PaLM convention), reference forward 2·N·T + 4·L·d·T². Packed rows count
each document's own attention only (the useful work). Time includes the first steps' warm-up.

    bench/gpu/run_gpu_bench.sh [--shapes qwen2-0.5b,qwen2-1.5b] [--methods sft,dpo,grpo] [--steps 30]
    bench/gpu/run_gpu_bench.sh --smoke    # CPU or GPU: tiny shape, 2 steps (fp32 on CPU)

Writes one JSON per shape (bench/results/gpu_<shape>.json; the smoke run gpu_smoke_<device>.json),
rewritten after each method so a run cut short keeps what finished.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BENCH))
import bench_dpo  # noqa: E402
import bench_sft  # noqa: E402
from common import TEMPLATE, WORDS, alternate, command_line, summarise, versions  # noqa: E402

# Qwen2-0.5B / Qwen2-1.5B config.json shapes (query/key/value biases come with the Qwen2 class).
SHAPES = {
    "qwen2-0.5b": {"vocab_size": 151936, "hidden_size": 896, "num_layers": 24, "num_heads": 14,
                   "num_kv_heads": 2, "intermediate_size": 4864, "max_positions": 32768,
                   "tie_word_embeddings": True},
    "qwen2-1.5b": {"vocab_size": 151936, "hidden_size": 1536, "num_layers": 28, "num_heads": 12,
                   "num_kv_heads": 2, "intermediate_size": 8960, "max_positions": 32768,
                   "tie_word_embeddings": True},
    "tiny": {"vocab_size": 4096, "hidden_size": 64, "num_layers": 2, "num_heads": 4, "num_kv_heads": 2,
             "intermediate_size": 128, "max_positions": 2048, "tie_word_embeddings": True},
}
PEAK_BF16_DENSE_TFLOPS = {"H100": 989.0, "H200": 989.0}
# Each method's comparisons: (alignlab variant, TRL variant) pairs run in the same alternation.
PAIRS = {
    "sft": [("alignlab", "trl"), ("alignlab_packed", "trl_packed")],
    "dpo": [("alignlab", "trl"), ("alignlab_live_ref", "trl")],
}
WORKERS = {
    "sft": {
        "alignlab": bench_sft.run_alignlab,
        "trl": bench_sft.run_trl,
        "alignlab_packed": lambda a, x: bench_sft.run_alignlab(a, {**x, "packing": True}),
        "trl_packed": lambda a, x: bench_sft.run_trl(a, {**x, "packing": True}),
    },
    "dpo": {
        "alignlab": lambda a, x: bench_dpo.run_alignlab(a, x, cache=True),
        "alignlab_live_ref": lambda a, x: bench_dpo.run_alignlab(a, x, cache=False),
        "trl": lambda a, x: bench_dpo.run_trl(a, x, precompute=False),
    },
}
GRPO_SKIPPED = (
    "skipped: alignlab has no GRPO trainer yet (its online-RL losses exist, the trainer is planned); "
    "TRL's GRPOTrainer alone would compare nothing. This section runs once alignlab's GRPO lands."
)


# ------------------------------------------------------------------------------------ assets


def words(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n))


def make_data(root: Path, n: int, lo: int, hi: int, seed: int = 0) -> dict[str, str]:
    """`n` conversational pairs (prompt, chosen, rejected of U[lo, hi] words each) and the SFT
    conversations prompt + chosen, as JSONL files."""
    rng = random.Random(seed)
    rows = [
        {"prompt": [{"role": "user", "content": words(rng, rng.randint(lo, hi))}],
         "chosen": [{"role": "assistant", "content": words(rng, rng.randint(lo, hi))}],
         "rejected": [{"role": "assistant", "content": words(rng, rng.randint(lo, hi))}]}
        for _ in range(n)
    ]  # fmt: skip
    pairs, convs = root / "pairs.jsonl", root / "conversations.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    convs.write_text("".join(json.dumps({"messages": r["prompt"] + r["chosen"]}) + "\n" for r in rows))
    return {"sft": str(convs), "dpo": str(pairs)}


def make_model(root: Path, shape: dict, device: str, seed: int = 0):
    """(model directory, config) of a random-init Qwen2 of `shape`, with a word-level BPE tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from alignlab.modeling.tiny import tiny_model_config, train_bpe_tokenizer

    rng = random.Random(seed)
    tok = train_bpe_tokenizer([words(rng, 40) for _ in range(2000)], 2048, chat_template=TEMPLATE)
    sizes = dict(shape)
    config = tiny_model_config(
        "qwen2",
        sizes.pop("vocab_size"),
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        **sizes,
    )
    torch.manual_seed(seed)
    with torch.device(device):  # random init on the GPU is seconds, not minutes, at 1.5 B
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    out = root / "model"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return str(out), config, tok


# ------------------------------------------------------------------------------------ FLOPs


def matmul_params(config) -> int:
    """N: every weight a token's forward multiplies by (the LM head included, the embedding lookup not)."""
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    total = sum(p.numel() for p in model.parameters())  # a tied embedding is one parameter: the head
    return total if config.tie_word_embeddings else total - config.vocab_size * config.hidden_size


def flops_per_token(config, lengths: list[int], with_reference: bool) -> float:
    """Model FLOPs per trained token over sequences of `lengths` (see the module docstring)."""
    n, layers = matmul_params(config), config.num_hidden_layers
    d = config.num_attention_heads * (
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    train = sum(6 * n * t + 12 * layers * d * t * t for t in lengths)
    ref = sum(2 * n * t + 4 * layers * d * t * t for t in lengths) if with_reference else 0
    return (train + ref) / sum(lengths)


def sequence_lengths(tok, data: dict[str, str]) -> dict[str, list[int]]:
    """Token lengths of the sequences each method trains: SFT conversations, DPO chosen + rejected."""
    from alignlab.data.schema import Message
    from alignlab.data.templating import encode_prompt_response

    def msgs(raw: list[dict]) -> list[Message]:
        return [Message(role=m["role"], content=m["content"]) for m in raw]

    rows = [json.loads(line) for line in Path(data["dpo"]).read_text().splitlines()]
    seq = {side: [len(encode_prompt_response(tok, msgs(r["prompt"]), msgs(r[side])).input_ids) for r in rows]
           for side in ("chosen", "rejected")}  # fmt: skip
    return {"sft": seq["chosen"], "dpo": seq["chosen"] + seq["rejected"]}


def peak_flops(device_name: str, override_tflops: float | None) -> float | None:
    if override_tflops:
        return override_tflops * 1e12
    return next((v * 1e12 for k, v in PEAK_BF16_DENSE_TFLOPS.items() if k in device_name), None)


# ------------------------------------------------------------------------------------ driver


def run_method(method: str, spec: dict, repeats: int, fpt: float, peak: float | None) -> dict:
    variants = list(dict.fromkeys(v for pair in PAIRS[method] for v in pair))
    runs = alternate(__file__, variants, {**spec, "method": method}, repeats)
    out: dict = {"runs": runs, "model_flops_per_token": round(fpt)}
    for ours, theirs in PAIRS[method]:
        s = summarise({ours: runs[ours], theirs: runs[theirs]}, baseline=theirs)
        out.setdefault("median", {}).update(s["median"])
        out.setdefault("ratios", {}).update(s["ratios"])
    for stats in out["median"].values():
        achieved = fpt * stats["tokens_per_s"]
        stats["model_tflops_per_s"] = round(achieved / 1e12, 4)
        stats["mfu"] = round(achieved / peak, 4) if peak else None
    return out


def device_setup(smoke: bool) -> tuple[str, str, str]:
    """(device, precision, device name)."""
    import torch

    if torch.cuda.is_available():
        return "cuda", "bf16", torch.cuda.get_device_name(0)
    if not smoke:
        sys.exit("no GPU found: this benchmark is meant for a GPU; use --smoke to check it end to end on CPU")
    import platform

    return "cpu", "fp32", f"cpu ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shapes", default="qwen2-0.5b,qwen2-1.5b", help=f"Comma-separated: {', '.join(SHAPES)}.")
    p.add_argument("--methods", default="sft,dpo,grpo")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=8, help="Conversations (SFT) or pairs (DPO) per step.")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--min-tokens", type=int, default=128)
    p.add_argument("--max-tokens", type=int, default=384)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument(
        "--peak-tflops", type=float, help="The device's dense bf16 peak, where it is not an H100/H200."
    )
    p.add_argument("--out-dir", type=Path, default=BENCH / "results")
    p.add_argument(
        "--smoke", action="store_true", help="Tiny shape, 2 steps of 2, short sequences: checks the script."
    )
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.smoke:
        a.shapes, a.steps, a.batch_size, a.min_tokens, a.max_tokens, a.max_length = "tiny", 2, 2, 8, 24, 128
    unknown = [m for m in a.methods.split(",") if m not in (*PAIRS, "grpo")]
    unknown += [s for s in a.shapes.split(",") if s not in SHAPES]
    if unknown and not a.worker:
        sys.exit(f"unknown method or shape: {', '.join(unknown)}")
    return a


def run_shape(shape: str, a: argparse.Namespace, args: dict, device_name: str, peak: float | None) -> None:
    """Build `shape`, run every method on it, and rewrite its JSON after each method."""
    with tempfile.TemporaryDirectory(prefix=f"bench-gpu-{shape}-") as tmp:
        model_dir, config, tok = make_model(Path(tmp), SHAPES[shape], args["device"])
        data = make_data(Path(tmp), a.steps * a.batch_size, a.min_tokens, a.max_tokens)
        lengths = sequence_lengths(tok, data)
        report = {
            "benchmark": f"gpu_smoke_{args['device']}" if a.smoke else f"gpu_{shape}",
            "command": command_line(),
            "device": device_name,
            "peak_bf16_dense_tflops": peak / 1e12 if peak else None,
            "setup": {
                **args,
                "shape": shape,
                "config": SHAPES[shape],
                "matmul_parameters": matmul_params(config),
                "sequence_tokens": f"prompt and each response U[{a.min_tokens}, {a.max_tokens}] words "
                "(one token each) plus the chat template",
                "repeats": a.repeats,
                **versions(),
            },
        }
        if a.smoke:
            report["note"] = "Smoke run: checks the script end to end; the figures mean nothing."
        spec = {"assets": {m: {"model": model_dir, "data": d} for m, d in data.items()}, "args": args}
        out = a.out_dir / f"{report['benchmark']}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        for method in a.methods.split(","):
            if method == "grpo":
                report["grpo"] = GRPO_SKIPPED
                print(f"grpo: {GRPO_SKIPPED}", flush=True)
            else:
                fpt = flops_per_token(config, lengths[method], with_reference=method == "dpo")
                report[method] = run_method(method, spec, a.repeats, fpt, peak)
            out.write_text(json.dumps(report, indent=2) + "\n")
        print(f"{shape}: wrote {out}", flush=True)


def main() -> None:
    a = parse_args()
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(WORKERS[spec["method"]][a.worker](spec["assets"][spec["method"]], spec["args"])))
        return
    device, precision, device_name = device_setup(a.smoke)
    args = {"steps": a.steps, "batch_size": a.batch_size, "threads": a.threads, "max_length": a.max_length,
            "lr": a.lr, "device": device, "precision": precision}  # fmt: skip
    peak = peak_flops(device_name, a.peak_tflops)
    for shape in a.shapes.split(","):
        run_shape(shape, a, args, device_name, peak)


if __name__ == "__main__":
    main()

"""Rollout generation on CPU: tokens/s of alignlab's `HFGenerator` next to `transformers`' `generate`.

`model.generate` is what TRL's GRPO and RLOO trainers call when vLLM is not used. Both sample the
same rollout batch: B prompts (synthetic user turns of 10–30 words, rendered with the ChatML
template), n samples each, temperature 1, no top-k / top-p, up to N new tokens, all B × n rows
decoded together, fp32. A random-weight model rarely samples its end-of-turn token, so nearly
every row runs to N; `--mean-length L` biases that token so replies have geometric lengths of mean
about L, as a trained policy's vary (`generate` keeps decoding finished rows until the longest
ends; `HFGenerator` drops them). Throughput = generated tokens (a final stop token included) / wall seconds of
the generation call; loading the model and tokenizing are left out for both, and each run is
preceded by a short untimed warm-up. Each variant runs in a fresh child process; the variants
alternate over the repeats and medians are reported.

    python bench/bench_generation.py [--shape lab|wide] [--prompts 32] [--n 4] [--new-tokens 96]
                                     [--mean-length L]

Writes JSON (default bench/results/generation_cpu_<shape>_<N>tok[_len<L>].json). Needs no extra packages.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import TEMPLATE, WORDS, run_child, versions  # noqa: E402

HERE = Path(__file__).resolve().parent
SHAPES = {  # the laboratory's model (recipes/lab.yaml), and a wider one
    "lab": {"hidden_size": 128, "num_layers": 4, "num_heads": 4, "vocab": 1024},
    "wide": {"hidden_size": 512, "num_layers": 8, "num_heads": 8, "vocab": 2048},
}


def _text(rng: random.Random, pseudo: list[str], n: int) -> str:
    """A sentence of common words and pseudo-words (so BPE can learn the whole vocabulary)."""
    return " ".join(
        rng.choice(pseudo) if rng.random() < 0.5 else rng.choice(WORDS) for _ in range(n)
    ).capitalize() + "."


def make_assets(root: Path, shape: str, num_prompts: int, seed: int = 0) -> dict:
    from alignlab.modeling.tiny import build_tiny_model, train_bpe_tokenizer

    s = SHAPES[shape]
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    pseudo = ["".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(3000)]
    corpus = [_text(rng, pseudo, rng.randint(5, 40)) for _ in range(4000)]
    tok = train_bpe_tokenizer(corpus, s["vocab"], chat_template=TEMPLATE)
    model = build_tiny_model("llama", tok, seed=seed, hidden_size=s["hidden_size"],
                             num_layers=s["num_layers"], num_heads=s["num_heads"],
                             max_positions=512)  # fmt: skip
    model.save_pretrained(root / "model")
    tok.save_pretrained(root / "model")
    prompts = [
        [{"role": "user", "content": _text(rng, pseudo, rng.randint(10, 30))}] for _ in range(num_prompts)
    ]
    return {"model": str(root / "model"), "prompts": prompts, "vocab": len(tok),
            "parameters": sum(p.numel() for p in model.parameters())}  # fmt: skip


def _load(assets: dict, args: dict):
    import torch

    from alignlab.data.templating import encode_prompt
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer

    torch.set_num_threads(args["threads"])
    tok = load_tokenizer(assets["model"])
    model = load_causal_lm(assets["model"], dtype="float32", device="cpu").eval()
    if args["mean_length"]:
        _bias_end_of_turn(model, tok.convert_tokens_to_ids("<|im_end|>"), len(tok), args["mean_length"])
    return model, tok, [encode_prompt(tok, p) for p in assets["prompts"]]


def _bias_end_of_turn(model, token: int, vocab: int, mean_length: float) -> None:
    """Give the LM head a bias on `token` so that replies end after ~`mean_length` tokens.

    A random model's next-token distribution is near uniform, so a bias b gives the end-of-turn
    token probability e^b / (V - 1 + e^b) per step: replies of geometric length with mean
    (V - 1 + e^b) / e^b; b = ln((V - 1) / (mean_length - 1)). Both variants load the same model.
    """
    import math

    import torch

    head = model.get_output_embeddings()
    biased = torch.nn.Linear(head.in_features, head.out_features, bias=True)
    biased.weight = head.weight  # shared, so tied embeddings stay tied
    with torch.no_grad():
        biased.bias.zero_()
        biased.bias[token] = math.log((vocab - 1) / (mean_length - 1))
    model.set_output_embeddings(biased)


def run_alignlab(assets: dict, args: dict) -> dict:
    from alignlab.generation.base import SamplingParams
    from alignlab.generation.hf import HFGenerator

    model, tok, prompts = _load(assets, args)
    gen = HFGenerator(model, tok, max_batch_rows=len(prompts) * args["n"])
    params = SamplingParams(
        max_new_tokens=args["new_tokens"], temperature=1.0, n=args["n"], seed=args["seed"]
    )
    gen.generate_ids(prompts[:2], SamplingParams(max_new_tokens=4, temperature=1.0, n=2))  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    rollout = gen.generate_ids(prompts, params)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    return _result(int(rollout.response_mask.sum()), seconds, cpu, rollout.response_mask.shape[0])


def run_transformers(assets: dict, args: dict) -> dict:
    import torch

    from alignlab.generation.hf import left_pad
    from alignlab.generation.stops import model_eos_ids, stop_token_ids

    model, tok, prompts = _load(assets, args)
    stops = stop_token_ids(tok, model_eos_ids(model))
    ids, mask = left_pad(prompts, tok.pad_token_id, "cpu")
    kwargs = {"do_sample": True, "temperature": 1.0, "top_k": 0, "top_p": 1.0,
              "num_return_sequences": args["n"], "eos_token_id": stops,
              "pad_token_id": tok.pad_token_id}  # fmt: skip
    model.generate(input_ids=ids[:2], attention_mask=mask[:2], max_new_tokens=4, **kwargs)  # warm-up
    torch.manual_seed(args["seed"])
    t0, c0 = time.perf_counter(), time.process_time()
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=args["new_tokens"], **kwargs)
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    generated = out[:, ids.shape[1] :]
    is_stop = torch.isin(generated, torch.tensor(stops))
    # Tokens up to and including each row's first stop token (what follows is padding).
    after_stop = (is_stop.long().cumsum(-1) - is_stop.long()) > 0
    return _result(int((~after_stop).sum()), seconds, cpu, generated.shape[0])


def _result(tokens: int, seconds: float, cpu_seconds: float, rows: int) -> dict:
    return {"tokens": tokens, "rows": rows, "mean_length": round(tokens / rows, 1),
            "seconds": round(seconds, 3), "cpu_seconds": round(cpu_seconds, 3),
            "tokens_per_s": round(tokens / seconds, 1),
            "tokens_per_cpu_s": round(tokens / cpu_seconds, 1)}  # fmt: skip


VARIANTS = {"alignlab": run_alignlab, "transformers": run_transformers}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shape", choices=sorted(SHAPES), default="lab")
    p.add_argument("--prompts", type=int, default=32)
    p.add_argument("--n", type=int, default=4)
    p.add_argument("--new-tokens", type=int, default=96)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mean-length", type=float, help="Bias the end-of-turn token so replies average this "
                   "many tokens (varied lengths, as a trained policy's), instead of running to --new-tokens.")
    p.add_argument("--repeats", type=int, default=3,
                   help="Runs of each variant, alternated; medians reported.")
    p.add_argument("--out", type=Path)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(VARIANTS[a.worker](spec["assets"], spec["args"])))
        return
    suffix = f"_{a.new_tokens}tok" + (f"_len{a.mean_length:g}" if a.mean_length else "")
    out = a.out or HERE / "results" / f"generation_cpu_{a.shape}{suffix}.json"
    args = {"n": a.n, "new_tokens": a.new_tokens, "threads": a.threads, "seed": 0,
            "mean_length": a.mean_length}  # fmt: skip
    runs: dict[str, list[dict]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="bench-gen-") as tmp:
        assets = make_assets(Path(tmp), a.shape, a.prompts)
        for _ in range(a.repeats):  # alternate, so drift on a shared machine hits both alike
            for name in VARIANTS:
                runs[name].append(run_child(__file__, name, {"assets": assets, "args": args}))
                r = runs[name][-1]
                print(f"{name}: {r['tokens_per_s']} tokens/s, {r['tokens_per_cpu_s']} per CPU s", flush=True)
    median = {name: sorted(r["tokens_per_s"] for r in rs)[len(rs) // 2] for name, rs in runs.items()}
    median_cpu = {name: sorted(r["tokens_per_cpu_s"] for r in rs)[len(rs) // 2] for name, rs in runs.items()}
    pairs = list(zip(runs["alignlab"], runs["transformers"], strict=True))
    ratios = sorted(x["tokens_per_s"] / y["tokens_per_s"] for x, y in pairs)
    cpu_ratios = sorted(x["tokens_per_cpu_s"] / y["tokens_per_cpu_s"] for x, y in pairs)
    s = SHAPES[a.shape]
    report = {
        "benchmark": f"generation_cpu_{a.shape}{suffix}",
        "setup": {**args, "prompts": a.prompts, "rows": a.prompts * a.n, "temperature": 1.0,
                  "device": "cpu",
                  "model": f"llama hidden {s['hidden_size']}, {s['num_layers']} layers, "
                           f"{s['num_heads']} heads, vocab {assets['vocab']} (random init), "
                           f"{assets['parameters']} parameters",
                  "cpu_count": os.cpu_count(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
                  **versions(with_trl=False)},  # fmt: skip
        "runs": runs,
        "median_tokens_per_s": median,
        "ratio_alignlab_vs_transformers": {
            "median_of_pairs": round(ratios[len(ratios) // 2], 3),
            "min": round(ratios[0], 3),
            "max": round(ratios[-1], 3),
        },
        # Per CPU second of the (one-threaded) process: less sensitive to other jobs on a shared machine.
        "median_tokens_per_cpu_s": median_cpu,
        "cpu_ratio_alignlab_vs_transformers": {
            "median_of_pairs": round(cpu_ratios[len(cpu_ratios) // 2], 3),
            "min": round(cpu_ratios[0], 3),
            "max": round(cpu_ratios[-1], 3),
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("median_tokens_per_s", "ratio_alignlab_vs_transformers",
                                             "median_tokens_per_cpu_s",
                                             "cpu_ratio_alignlab_vs_transformers")}, indent=2))


if __name__ == "__main__":
    main()

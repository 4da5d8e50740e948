"""SmolLM2-135M shape on hh-rlhf sequences, CPU: alignlab next to TRL for SFT, DPO and reward models.

The laboratory-sized benches (bench_sft.py, bench_dpo.py, bench_rm.py) use a 1 M-parameter model
whose LM head is a small share of the work. Here the model has SmolLM2-135M's shape (Llama, 30
layers, hidden 576, 9 query / 3 key-value heads, MLP 1536, vocabulary 49,152, tied embedding;
random weights, no hub) and the sequences are real: pairs drawn (seeded) from the public hh-rlhf
harmless-base test file, rendered with a ChatML template and tokenized by a byte-level BPE trained
on that file's own transcripts (the text holds fewer merges than 49,152, so the tokenizer is
smaller than the model's vocabulary, as padded checkpoint vocabularies are). Pairs whose longer
side exceeds --max-length tokens (about 3 % at 512) and ties are left out, so neither side
truncates and both train on the same tokens.

Per method, both sides train on the same `steps x batch` examples (one epoch), fp32, one
intra-op thread, no gradient checkpointing, AdamW with a constant lr, each run in a fresh child
process (its own peak memory), alignlab and TRL alternated over the repeats:

- sft: conversations = prompt + chosen response; alignlab's sft step + loop vs `SFTTrainer`;
- dpo: alignlab's default (reference log-probs cached by a pre-pass, counted in its time) vs
  `DPOTrainer`'s default (live reference model); `--dpo-live` adds alignlab with a live reference;
- rm: one-member Bradley-Terry reward model vs `RewardTrainer`.

Tokens/s = real tokens of the trained sequences (prompt included) / seconds of the reference
pre-pass (if any) + the training (setup, steps and the final checkpoint both sides write), in wall
and in CPU time; step_s / step_cpu_s = the steady step time (first step left out); peak memory =
peak RSS after the model is loaded. On CPU this model trains at tens of tokens per second, so the
default runs are short (3 steps of 2 examples): absolute figures are noisy, and on a shared machine
wall time counts other jobs too; the per-repeat CPU-time ratios are what to read. The workers are
those of the lab-sized benches (common.py has the measuring).

    python bench/bench_smollm2.py --method dpo [--steps 3] [--batch-size 2] [--repeats 3] [--max-length 512]
    python bench/bench_smollm2.py --method all --hh-rlhf path/to/hh-rlhf/harmless-base/test.jsonl.gz

Writes bench/results/<method>_smollm2_cpu.json. Needs the `bench` extra (TRL) and the hh-rlhf file
(default: the shared data folder beside the checkout, ../shared/data); it exits with a message if absent.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_dpo  # noqa: E402
import bench_rm  # noqa: E402
import bench_sft  # noqa: E402
from common import (  # noqa: E402
    HH_RLHF,
    SMOLLM2_135M,
    alternate,
    command_line,
    file_sha256,
    hh_tokenizer,
    padded,
    require_hh_rlhf,
    runs_from_log,
    sample_hh,
    smollm2_model,
    summarise,
    versions,
)

HERE = Path(__file__).resolve().parent
# alignlab's default (padding-free, prefix-shared batches where the model allows them), the same
# with padded batches (`padded`), and TRL, alternated in that order.
WORKERS = {
    "sft": {"alignlab": bench_sft.run_alignlab, "alignlab_padded": padded(bench_sft.run_alignlab),
            "trl": bench_sft.run_trl},
    "dpo": {
        "alignlab": lambda a, x: bench_dpo.run_alignlab(a, x, cache=True),
        "alignlab_padded": padded(lambda a, x: bench_dpo.run_alignlab(a, x, cache=True)),
        "trl": lambda a, x: bench_dpo.run_trl(a, x, precompute=False),
        "alignlab_live_ref": lambda a, x: bench_dpo.run_alignlab(a, x, cache=False),
    },
    "rm": {"alignlab": bench_rm.run_alignlab, "alignlab_padded": padded(bench_rm.run_alignlab),
           "trl": bench_rm.run_trl},
}
VARIANT_NOTES = {
    "sft": "alignlab learns the assistant tokens, TRL (no generation markers in the template) all tokens; "
    "alignlab projects only the learned positions through the LM head, TRL every position (and computes its "
    "per-token entropy and accuracy metrics over the logits).",
    "dpo": "alignlab: cached reference (default; the pre-pass is timed); trl: "
           "live reference (DPOTrainer default). beta 0.1, sigmoid loss, both.",
    "rm": "one reward head on the backbone, Bradley-Terry loss, no centering, both.",
}


def write_data(root: Path, rows: list[dict]) -> dict[str, str]:
    """The sampled pairs as conversational preference rows, and as SFT conversations (prompt + chosen)."""
    pairs, convs = root / "pairs.jsonl", root / "conversations.jsonl"
    pairs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    convs.write_text("".join(json.dumps({"messages": r["prompt"] + r["chosen"]}) + "\n" for r in rows))
    return {"sft": str(convs), "dpo": str(pairs), "rm": str(pairs)}


def run_method(method: str, a: argparse.Namespace, model_dir: str, data: dict[str, str], setup: dict) -> None:
    args = {
        "steps": a.steps,
        "batch_size": a.batch_size,
        "threads": a.threads,
        "max_length": a.max_length,
        "lr": a.lr,
    }
    variants = [v for v in WORKERS[method] if v != "alignlab_live_ref" or a.dpo_live]
    spec = {"method": method, "assets": {"model": model_dir, "data": data[method]}, "args": args}
    load_before = os.getloadavg()
    places = {str(a.hh_rlhf.resolve().parent.parent.parent): "<shared data>"}
    for log in (a.runs_log, a.from_runs):
        if log is not None:
            places[str(log.parent)] = "<scratch>"
    command = command_line(places)
    if a.from_runs is not None:
        runs = runs_from_log(a.from_runs, variants)
        logged = json.loads(a.from_runs.read_text().splitlines()[0]).get("command", command)
        command = logged.replace(str(a.from_runs.parent), "<scratch>")
    else:
        if a.runs_log is not None:
            a.runs_log.write_text(json.dumps({"command": command}) + "\n")
        runs = alternate(__file__, variants, spec, a.repeats, runs_log=a.runs_log)
    report = {
        "benchmark": f"{method}_smollm2_cpu",
        "command": command,
        "repeats": len(runs["alignlab"]),
        "note": "alignlab: padding-free batches (and for pairs one prompt per pair) where the model "
                "allows them, the default; alignlab_padded: padded batches. Tokens are the same for "
                "every variant (a pair's prompt counted twice). Short runs on CPU: absolute figures "
                "are noisy (load average at start and end below); read the per-repeat CPU-time ratios.",
        "setup": {
            **args,
            **setup,
            "variants": VARIANT_NOTES[method],
            "load_average_1min": {"start": round(load_before[0], 2), "end": round(os.getloadavg()[0], 2)}
            if a.from_runs is None
            else "not recorded (reported from a runs log)",
        },
        "runs": runs,
        **summarise(runs, baseline="trl"),
    }
    out = a.out_dir / f"{method}_smollm2_cpu.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({method: report["ratios"]}, indent=2), flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--method", choices=[*WORKERS, "all"], default="all")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=2)
    p.add_argument(
        "--repeats", type=int, default=3, help="Runs of each variant, alternated; medians reported."
    )
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-length", type=int, default=512, help="Pairs with a longer side are left out.")
    p.add_argument("--lr", type=float, default=1e-5)
    p.add_argument("--dpo-live", action="store_true", help="Also run alignlab's DPO with a live reference.")
    p.add_argument(
        "--hh-rlhf",
        type=Path,
        default=HH_RLHF,
        help="hh-rlhf harmless-base test file (default: ../shared/data/hh-rlhf/harmless-base/test.jsonl.gz "
        "beside the checkout).",
    )
    p.add_argument("--runs-log", type=Path, help="Also append each run to this JSONL file as it ends.")
    p.add_argument("--from-runs", type=Path, help="Report the runs of a --runs-log file (the repeats every "
                   "variant finished) instead of running; needs --method.")
    p.add_argument("--out-dir", type=Path, default=HERE / "results")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--spec", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        spec = json.loads(a.spec)
        print(json.dumps(WORKERS[spec["method"]][a.worker](spec["assets"], spec["args"])))
        return
    hh = require_hh_rlhf(a.hh_rlhf)
    with tempfile.TemporaryDirectory(prefix="bench-smollm2-") as tmp:
        tok = hh_tokenizer(hh)
        model_dir = smollm2_model(Path(tmp), tok)
        rows, stats = sample_hh(hh, tok, a.steps * a.batch_size, a.max_length)
        data = write_data(Path(tmp), rows)
        setup = {
            "model": "SmolLM2-135M shape (llama, random init): " + json.dumps(SMOLLM2_135M),
            "parameters": _count_parameters(model_dir),
            "tokenizer": f"byte-level BPE trained on the hh-rlhf file, {len(tok)} tokens (ChatML template)",
            "data": {"file": "hh-rlhf/harmless-base/test.jsonl.gz", "sha256": file_sha256(hh), **stats},
            "precision": "fp32", "device": "cpu", "cpu_count": os.cpu_count(), **versions(),
        }  # fmt: skip
        for method in WORKERS if a.method == "all" else [a.method]:
            run_method(method, a, model_dir, data, setup)


def _count_parameters(model_dir: str) -> int:
    """Parameters as saved (the tied embedding once)."""
    from safetensors import safe_open

    with safe_open(str(Path(model_dir) / "model.safetensors"), "pt") as f:
        return sum(math.prod(f.get_slice(k).get_shape()) for k in f.keys())  # noqa: SIM118 (not iterable)


if __name__ == "__main__":
    main()

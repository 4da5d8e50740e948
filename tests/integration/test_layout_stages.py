"""The stages train the same with prefix-shared, padding-free batches (their default) as with padded
ones, and the DPO reference pre-pass runs in the training precision."""

import pytest
import torch
from cli_support import read_metrics, run_cli

from alignlab.training import refcache
from records import pair, write_jsonl

PADDED = ["train.padding_free=false", "train.prefix_sharing=false"]
COMMON = ["train.progress=false", "train.save_every=null", "schedule.kind=constant", "train.batch_size=3",
          "--max-steps", "3"]
PROMPTS = ["What is the capital of France?", "Say hello to the lazy dog, please.",
           "Count: 0 1 2 3 4 5 6 7 8 9 10"]
ANSWERS = ["The capital of France is Paris.", "Hello!", "Numbers: 0 1 2 3.", "The quick brown fox jumps."]


@pytest.fixture
def pairs(tmp_path):
    rows = [pair(p, ANSWERS[i % 4], ANSWERS[(i + 1 + j) % 4])
            for i, p in enumerate(PROMPTS) for j in range(2)]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


@pytest.fixture
def conversations(tmp_path):
    rows = [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]}
            for p in PROMPTS for a in ANSWERS[:2]]
    return write_jsonl(tmp_path / "sft.jsonl", rows)


def losses(out) -> torch.Tensor:
    return torch.tensor([[r["loss"], r["grad_norm"]] for r in read_metrics(out)])


@pytest.mark.parametrize(("stage", "arch", "extra"), [
    ("dpo", "llama", []), ("dpo", "qwen2", ["reference.cache=false"]), ("dpo", "llama", ["--loss", "ipo"]),
    ("rm", "qwen2", []), ("sft", "llama", []),
])
def test_a_stage_trains_alike_with_laid_out_and_padded_batches(stage, arch, extra, tmp_path, tiny_model_dir,
                                                               pairs, conversations, capsys):
    # Models without dropout (GPT-2's would draw different masks for differently shaped batches);
    # GPT-2 itself is compared in eval mode in tests/unit/test_packed_equivalence.py.
    data = conversations if stage == "sft" else pairs
    base = tiny_model_dir(arch)
    if stage == "dpo":  # a policy that is not its reference after the first step
        extra = [*extra, "optim.lr=1e-3"]
    for name, flags in (("laid_out", []), ("padded", PADDED)):
        run_cli(stage, "--model", base, "--data", data, "--output", tmp_path / name, *COMMON, *extra, *flags)
        captured = capsys.readouterr()
        log = " ".join((captured.out + captured.err).split())  # the console wraps long lines
        assert ("batches padding-free" in log) == (name == "laid_out"), log
        if stage != "sft":
            assert ("one prompt per pair" in log) == (name == "laid_out")
    torch.testing.assert_close(losses(tmp_path / "laid_out"), losses(tmp_path / "padded"),
                               rtol=1e-4, atol=1e-5)


def test_the_reference_pre_pass_runs_in_the_training_precision(tmp_path, tiny_model_dir, pairs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from alignlab.config import DataConfig
    from alignlab.data.preference import collate_pairs, encode_preference_split
    from alignlab.modeling.attention import choose_layout
    from alignlab.training.dpo import pair_logps

    base = tiny_model_dir("llama")
    run_cli("dpo", "--model", base, "--data", pairs, "--output", tmp_path / "o", "train.precision=bf16",
            *COMMON)
    _, cached = refcache.read_cache(tmp_path / "o" / "reference_logps.safetensors")
    tok = AutoTokenizer.from_pretrained(base)
    split = encode_preference_split(tok, DataConfig(path=str(pairs)), keep_ties=False, log=lambda _: None)
    model = AutoModelForCausalLM.from_pretrained(base).eval()  # fp32 weights, as the stage loads them
    layout, _ = choose_layout(model, padding_free=True, prefix_sharing=True, attention="auto", pairs=True)
    order = sorted(range(len(split.train)), key=lambda i: split.train[i].width)  # the pre-pass's one batch
    batch = collate_pairs([split.train[i] for i in order], tok.pad_token_id, layout)
    with torch.no_grad():
        fp32 = pair_logps(model, batch)["chosen"].logps
        with torch.autocast("cpu", dtype=torch.bfloat16):
            bf16 = pair_logps(model, batch)["chosen"].logps
    cached = cached["train/chosen"][order]
    gap = float((fp32 - bf16).abs().max())
    assert gap > 1e-4  # the two precisions differ here
    assert float((cached - bf16).abs().max()) < gap / 10, (cached, bf16, fp32)

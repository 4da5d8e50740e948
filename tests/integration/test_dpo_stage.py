"""`alignlab dpo` end to end on tiny local models: every registered loss, reference caching, LoRA."""

import json

import pytest
import torch
from cli_support import read_metrics, run_cli

from alignlab.cli import main
from alignlab.config import DPOConfig, load_config
from alignlab.data.collators import pad_batch
from alignlab.data.templating import EncodedExample, encode_prompt_response
from alignlab.losses.registry import get_loss, loss_names
from alignlab.modeling.logprobs import TokenBatch, model_sequence_logps
from alignlab.stages import STAGE_KINDS, stage_context
from alignlab.training import refcache
from alignlab.training.dpo import run_dpo
from records import write_jsonl

GOOD = ["The capital of France is Paris.", "Paris is the capital.", "I am a helpful assistant.",
        "Hello! How can I help you?"]
BAD = ["The quick brown fox.", "The lazy dog jumps.", "brown fox, lazy dog", "Numbers: 0 1 2 3."]
PROMPTS = ["What is the capital of France?", "Say hello.", "Write a poem."]
CACHE_FILE = STAGE_KINDS["dpo"].outputs["reference_logps"].path
COMMON = ["train.progress=false", "train.save_every=null", "schedule.kind=constant", "train.batch_size=4"]


def user(text):
    return [{"role": "user", "content": text}]


def assistant(text):
    return [{"role": "assistant", "content": text}]


@pytest.fixture
def pairs(tmp_path):
    rows = [{"prompt": user(p), "chosen": assistant(g), "rejected": assistant(BAD[(i + j) % 4])}
            for i, p in enumerate(PROMPTS) for j, g in enumerate(GOOD)]
    return write_jsonl(tmp_path / "pairs.jsonl", rows)


@pytest.fixture
def unpaired(tmp_path):
    """KTO's own format, with more desirable than undesirable completions (no pairing at all)."""
    rows = [{"prompt": user(p), "completion": assistant(g),
             "label": True} for p in PROMPTS[:2] for g in GOOD[:3]]
    rows += [{"prompt": user(p), "completion": assistant(BAD[0]), "label": False} for p in PROMPTS]
    return write_jsonl(tmp_path / "kto.jsonl", rows)







@pytest.mark.parametrize("loss", loss_names())
def test_every_loss_trains_with_its_inputs_and_metrics(loss, tmp_path, tiny_model_dir, pairs, unpaired):
    spec = get_loss(loss)
    out = tmp_path / loss
    data = pairs if spec.paired else unpaired
    # Grouped by length, so the loop must get each item's length, for paired and unpaired items alike.
    run_cli("dpo", "--model", tiny_model_dir("llama"), "--data", data, "--output", out, "--loss", loss,
            "--max-steps", 3, "optim.lr=1e-3", "train.group_by_length=true", *COMMON)
    rows = read_metrics(out)
    assert len(rows) == 3 and all(row["loss"] > 0 for row in rows)
    assert {"rewards/chosen", "logps/chosen"} <= set(rows[0])
    if spec.paired:
        assert {"rewards/rejected", "rewards/margin", "rewards/accuracy", "logps/rejected"} <= set(rows[0])
    # Reference-free losses (SLiC, ORPO, SimPO) never compute reference log-probs.
    assert (out / CACHE_FILE).exists() == spec.needs_reference
    assert ("kl" in rows[0]) == spec.needs_reference
    if spec.needs_reference:
        # Step 1 runs the untouched policy, so it equals its reference: rewards and KL are zero.
        assert abs(rows[0]["rewards/chosen"]) < 1e-4 and abs(rows[0]["kl"]) < 1e-3
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(out).config.model_type == "llama"


def test_reference_free_loss_can_still_log_kl_from_a_cached_reference(tmp_path, tiny_model_dir, pairs):
    out = tmp_path / "simpo"
    run_cli("dpo", "--model", tiny_model_dir("llama"), "--data", pairs, "--output", out, "--loss", "simpo",
            "--max-steps", 3, "optim.lr=1e-3", "reference.log_kl=true", *COMMON)
    rows = read_metrics(out)
    assert (out / CACHE_FILE).exists() and abs(rows[0]["kl"]) < 1e-3 and rows[-1]["kl"] != rows[0]["kl"]


def _pair_logps(model, tok, rows):
    chosen = [encode_prompt_response(tok, r["prompt"], r["chosen"]) for r in rows]
    rejected = [encode_prompt_response(tok, r["prompt"], r["rejected"]) for r in rows]
    out = []
    for exs in (chosen, rejected):
        b = pad_batch(exs, tok.pad_token_id)
        with torch.no_grad():
            out.append(model_sequence_logps(model, TokenBatch(b["input_ids"], b["attention_mask"],
                                                              b["labels"])).logps)
    return out


def test_dpo_raises_chosen_log_ratio_over_rejected(tmp_path, tiny_model_dir, pairs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tiny_model_dir("llama")
    out = tmp_path / "dpo"
    run_cli("dpo", "--model", base, "--data", pairs, "--output", out, "--max-steps", 12, "optim.lr=2e-3",
            "loss_params.beta=0.5", *COMMON)
    rows = read_metrics(out)
    assert (
        rows[-1]["rewards/accuracy"] == 1.0 and rows[-1]["rewards/margin"] > rows[0]["rewards/margin"] + 1.0
    )
    tok = AutoTokenizer.from_pretrained(out)
    data = [json.loads(line) for line in pairs.read_text().splitlines()]
    pc, pr = _pair_logps(AutoModelForCausalLM.from_pretrained(out), tok, data)
    rc, rr = _pair_logps(AutoModelForCausalLM.from_pretrained(base), tok, data)
    assert bool(((pc - rc) - (pr - rr) > 0).all())


def _losses(out):
    return torch.tensor([r["loss"] for r in read_metrics(out)])


@pytest.mark.parametrize("variant", ["full", "lora", "ref-model", "kto"])
def test_cached_reference_gives_the_losses_of_a_live_reference(
    variant, tmp_path, tiny_model_dir, pairs, unpaired
):
    from transformers import AutoModelForCausalLM

    model, extra, data = tiny_model_dir("qwen2"), [], pairs
    if variant == "lora":
        extra = ["--lora", "lora.r=4", "lora.dropout=0.0"]
    if variant == "ref-model":  # a reference that differs from the initial policy
        ref = AutoModelForCausalLM.from_pretrained(model)
        torch.manual_seed(1)
        with torch.no_grad():
            for p in ref.parameters():
                p.add_(0.05 * torch.randn_like(p))
        ref.save_pretrained(tmp_path / "ref")
        extra = ["--ref-model", tmp_path / "ref"]
    if variant == "kto":
        extra, data = ["--loss", "kto"], unpaired
    for cache in ("true", "false"):
        run_cli("dpo", "--model", model, "--data", data, "--output", tmp_path / cache, "--max-steps", 4,
                "optim.lr=1e-3", f"reference.cache={cache}", *extra, *COMMON)
    assert (tmp_path / "true" / CACHE_FILE).exists() and not (tmp_path / "false" / CACHE_FILE).exists()
    cached, live = _losses(tmp_path / "true"), _losses(tmp_path / "false")
    torch.testing.assert_close(cached, live, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(cached[-1], cached[0])  # training moved the policy away from the reference


def test_lora_reference_is_the_base_model_with_adapters_disabled(tmp_path, tiny_model_dir, pairs):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = tiny_model_dir("gpt2")
    out = tmp_path / "lora"
    run_cli("dpo", "--model", base, "--data", pairs, "--output", out, "--lora", "lora.r=4", "--max-steps", 2,
            "optim.lr=1e-2", *COMMON)
    assert (out / "adapter_config.json").exists()
    key, cached = refcache.read_cache(out / CACHE_FILE)
    tok = AutoTokenizer.from_pretrained(out)
    rows = [json.loads(line) for line in pairs.read_text().splitlines()]
    rc, rr = _pair_logps(AutoModelForCausalLM.from_pretrained(base), tok, rows)
    torch.testing.assert_close(cached["train/chosen"], rc, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(cached["train/rejected"], rr, rtol=1e-5, atol=1e-4)


def test_cache_key_changes_with_reference_data_or_settings(tmp_path, tiny_model_dir):
    ref = tiny_model_dir("llama")
    seqs = {"train/chosen": [EncodedExample([1, 2, 3], [-100, 2, 3])]}
    key = refcache.cache_key(refcache.weights_identity(str(ref)), seqs, {"dtype": "float32"})
    assert key == refcache.cache_key(refcache.weights_identity(str(ref)), seqs, {"dtype": "float32"})
    other_ref = refcache.weights_identity(str(tiny_model_dir("qwen2")))
    assert refcache.cache_key(other_ref, seqs, {"dtype": "float32"}) != key
    longer = {"train/chosen": [EncodedExample([1, 2, 3, 4], [-100, 2, 3, 4])]}
    assert refcache.cache_key(refcache.weights_identity(str(ref)), longer, {"dtype": "float32"}) != key
    masked = {"train/chosen": [EncodedExample([1, 2, 3], [-100, -100, 3])]}  # same ids, other labels
    assert refcache.cache_key(refcache.weights_identity(str(ref)), masked, {"dtype": "float32"}) != key
    assert refcache.cache_key(refcache.weights_identity(str(ref)), seqs, {"dtype": "bfloat16"}) != key


def test_stage_reuses_the_cache_and_recomputes_when_reference_or_data_change(tmp_path, tiny_model_dir, pairs):
    from transformers import AutoModelForCausalLM

    ref_dir = tmp_path / "ref"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir("llama")).save_pretrained(ref_dir)
    out = tmp_path / "stage"
    out.mkdir()

    def run(data) -> str:
        logs = []
        cfg = load_config(DPOConfig, base={
            "model": {"path": str(tiny_model_dir("llama"))}, "data": {"path": str(data)},
            "reference": {"path": str(ref_dir)}, "train": {"max_steps": 1, "progress": False,
                                                           "resume": False},
        })
        run_dpo(cfg, stage_context("dpo", out, log=logs.append))
        return next(line for line in logs if line.startswith("reference log-probs"))

    assert "computing" in run(pairs)
    assert "using the cache" in run(pairs)
    _, first = refcache.read_cache(out / CACHE_FILE)
    more = write_jsonl(tmp_path / "more.jsonl", [json.loads(x) for x in pairs.read_text().splitlines()][:5])
    assert "stale, recomputing" in run(more)
    assert "stale, recomputing" in run(pairs)
    model = AutoModelForCausalLM.from_pretrained(ref_dir)
    with torch.no_grad():
        model.model.norm.weight.mul_(2.0)
    model.save_pretrained(ref_dir)  # the reference weights change in place
    assert "stale, recomputing" in run(pairs)
    _, second = refcache.read_cache(out / CACHE_FILE)
    assert not torch.allclose(first["train/chosen"], second["train/chosen"])


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--loss", "dpoo"], "config key 'loss'"),
        (["--loss", "simpo", "loss_params.beta_=1"], "no hyperparameter beta_; valid: beta, gamma"),
        (["--loss", "kto", "loss_params.kl=1"], "no hyperparameter kl"),
    ],
)
def test_bad_loss_settings_exit_2_with_one_line(args, expected, tmp_path, tiny_model_dir, pairs, capsys):
    with pytest.raises(SystemExit) as e:
        main(["dpo", "--model", str(tiny_model_dir("llama")), "--data", str(pairs), "--output",
              str(tmp_path / "o"), *args])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and expected in err, err


@pytest.mark.parametrize("stage", ["dpo", "rm"])
def test_pairs_with_no_prompt_left_are_never_trained_on(stage, tmp_path, tiny_model_dir, pairs, capsys):
    # Responses longer than max_length leave no prompt: every pair is dropped, so the stage exits 2
    # rather than training on prompt-less fragments.
    with pytest.raises(SystemExit) as e:
        main([stage, "--model", str(tiny_model_dir("llama")), "--data", str(pairs),
              "--output", str(tmp_path / "o"), "data.max_length=3", *COMMON])
    captured = capsys.readouterr()
    assert e.value.code == 2 and "no usable preference pairs left" in captured.err
    assert "leaves no room for the prompt" in captured.out + captured.err

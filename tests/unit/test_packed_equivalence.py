"""Prefix-shared and padding-free batches give the losses and gradients of padded batches, on Llama,
Qwen2, Gemma-2 (soft-capped logits and attention, sliding windows) and GPT-2, through every
attention backend that trains on CPU; architectures that cannot take them fall back to padding."""

from __future__ import annotations

import pytest
import torch

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.layout import BatchLayout
from alignlab.data.preference import EncodedFeedback, EncodedPair, collate_feedback, collate_pairs
from alignlab.data.templating import EncodedExample
from alignlab.losses.sft import token_nll
from alignlab.modeling import attention
from alignlab.modeling.tiny import tiny_model_config
from alignlab.training.causal_lm import count_target_tokens, nll_step
from alignlab.training.dpo import feedback_logps, pair_logps

VOCAB, PAD = 300, 2
ARCHS = ["llama", "qwen2", "gemma2", "gpt2"]
LAYOUTS = {  # backend, rows, prompt shared
    "segments": BatchLayout("segments"),
    "segments-unshared": BatchLayout("segments", share_prompt=False),
    "mask": BatchLayout("mask", rows="each"),
}


def config(arch: str):
    if arch == "gemma2":
        from transformers import AutoConfig

        # Soft-capped logits (so log-probs come from the model's logits) and attention scores
        # (eager), sliding-window layers shorter than the sequences.
        return AutoConfig.for_model("gemma2", vocab_size=VOCAB, hidden_size=32, intermediate_size=64,
                                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                    head_dim=8, max_position_embeddings=64, sliding_window=6,
                                    final_logit_softcapping=30.0, pad_token_id=PAD)
    return tiny_model_config(arch, VOCAB, hidden_size=32, num_layers=2, num_heads=4, max_positions=64,
                             pad_token_id=PAD)


def causal_lm(arch: str):
    """A random tiny model in eval mode (no dropout: the paths must see the same function); its
    gradients are those of training."""
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config(arch)).eval()


def ex(ids: list[int], learned_from: int) -> EncodedExample:
    return EncodedExample(ids, [IGNORE_INDEX] * learned_from + ids[learned_from:])


def random_pairs(seed: int = 0) -> list[EncodedPair]:
    """Pairs of different prompt and response lengths (longer than Gemma-2's window of 6)."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for p, c, r in ((7, 5, 9), (3, 8, 2), (11, 4, 6)):
        prompt = torch.randint(3, VOCAB, (p,), generator=g).tolist()
        chosen = prompt + torch.randint(3, VOCAB, (c,), generator=g).tolist()
        rejected = prompt + torch.randint(3, VOCAB, (r,), generator=g).tolist()
        out.append(EncodedPair(ex(chosen, p), ex(rejected, p), target_prob=0.9))
    return out


def grads(model) -> list[torch.Tensor]:
    out = [p.grad.clone() for p in model.parameters() if p.grad is not None]
    model.zero_grad(set_to_none=True)
    return out


def assert_same_grads(a: list[torch.Tensor], b: list[torch.Tensor]) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=1e-4, atol=1e-5)


def laid_out(model, layout: BatchLayout) -> BatchLayout:
    backend, why = attention.choose_backend(model, layout.attention)
    assert backend == layout.attention, why
    return layout


def dpo_like(sides) -> torch.Tensor:
    """A loss that weighs both sides differently, so a mixed-up side shows in the gradients."""
    return -(sides["chosen"].logps * 0.7 - sides["rejected"].logps * 1.3).sum()


@pytest.mark.parametrize("name", list(LAYOUTS))
@pytest.mark.parametrize("arch", ARCHS)
def test_pair_logps_and_gradients_equal_the_padded_pair_batch(arch, name):
    model = causal_lm(arch)
    pairs = random_pairs()
    padded = pair_logps(model, collate_pairs(pairs, PAD))
    dpo_like(padded).backward()
    want = grads(model)
    batch = collate_pairs(pairs, PAD, laid_out(model, LAYOUTS[name]))
    if LAYOUTS[name].share_prompt:  # each prompt once: P + C + R tokens per pair instead of 2P + C + R
        tokens = sum(len(p.chosen) + len(p.rejected) - p.prompt_len for p in pairs)
        assert int(batch["attention_mask"].sum()) == tokens
    shared = pair_logps(model, batch)
    dpo_like(shared).backward()
    for side in ("chosen", "rejected"):
        torch.testing.assert_close(shared[side].logps, padded[side].logps, rtol=1e-5, atol=1e-4)
        assert torch.equal(shared[side].num_tokens, padded[side].num_tokens)
    assert_same_grads(grads(model), want)


@pytest.mark.parametrize("arch", ARCHS)
def test_padding_free_sft_loss_and_gradients_equal_the_padded_batch(arch):
    from alignlab.data.collators import pad_batch
    from alignlab.data.layout import lay_out_sequences

    model = causal_lm(arch)
    examples = [p.chosen for p in random_pairs(1)] + [p.rejected for p in random_pairs(2)]
    padded = pad_batch(examples, PAD)
    out = nll_step(model, padded)
    out.loss.backward()
    want = grads(model)
    # The loss is the plain next-token NLL of the full logits, though only labelled positions are projected.
    with torch.no_grad():
        logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
    want_loss = token_nll(logits, padded["labels"]).total
    torch.testing.assert_close(out.loss.detach(), want_loss, rtol=1e-5, atol=1e-4)
    free = lay_out_sequences(examples, PAD, laid_out(model, BatchLayout("segments")))
    assert free["input_ids"].shape == (1, sum(map(len, examples)))  # no padding at all
    assert count_target_tokens(free) == count_target_tokens(padded)
    got = nll_step(model, free)
    got.loss.backward()
    torch.testing.assert_close(got.loss, out.loss, rtol=1e-5, atol=1e-4)
    assert_same_grads(grads(model), want)


@pytest.mark.parametrize("arch", ["llama", "gemma2"])
def test_padding_free_unpaired_feedback_equals_padded(arch):
    model = causal_lm(arch)
    pairs = random_pairs(3)
    items = [EncodedFeedback(p.chosen, p.rejected, desirable=bool(i % 2)) for i, p in enumerate(pairs)]
    padded = feedback_logps(model, collate_feedback(items, PAD))
    free = feedback_logps(model, collate_feedback(items, PAD, laid_out(model, BatchLayout("segments"))))
    for side in padded:
        torch.testing.assert_close(free[side].logps, padded[side].logps, rtol=1e-5, atol=1e-4)


def reward_model(arch: str):
    from transformers import AutoModelForSequenceClassification

    from alignlab.modeling.reward_model import RewardModel

    torch.manual_seed(0)
    cfg = config(arch)
    cfg.num_labels = 2
    return RewardModel([AutoModelForSequenceClassification.from_config(cfg)], "heads").eval()


@pytest.mark.parametrize("name", ["segments", "mask"])
@pytest.mark.parametrize("arch", ARCHS)
def test_reward_model_reads_each_side_at_its_own_last_token(arch, name):
    from alignlab.modeling.reward_model import reward_inputs

    model = reward_model(arch)
    pairs = random_pairs(4)
    padded = model(**reward_inputs(collate_pairs(pairs, PAD)))  # (K, 2B)
    (padded[0] - 0.5 * padded[1]).pow(2).sum().backward()
    want = grads(model)
    shared = model(**reward_inputs(collate_pairs(pairs, PAD, laid_out(model, LAYOUTS[name]))))
    (shared[0] - 0.5 * shared[1]).pow(2).sum().backward()
    torch.testing.assert_close(shared, padded, rtol=1e-5, atol=1e-5)
    assert_same_grads(grads(model), want)


def test_scoring_groups_equal_scoring_each_sequence_padded():
    from alignlab.modeling.reward_model import score_groups

    model = reward_model("qwen2").eval()
    pairs = random_pairs(5)
    groups = [[p.chosen, p.rejected] for p in pairs[:2]] + [[pairs[2].chosen]]
    padded = score_groups(model, groups, pad_token_id=PAD, batch_size=2)
    shared = score_groups(model, groups, pad_token_id=PAD, batch_size=2,
                          layout=laid_out(model, BatchLayout("segments")))
    assert padded.shape == (2, 5)
    torch.testing.assert_close(shared, padded, rtol=1e-5, atol=1e-5)


class IgnoresPositions(torch.nn.Module):
    """Stands in for an architecture whose forward drops custom position ids."""

    def __init__(self, model):
        super().__init__()
        self.inner = model
        forward = model.model.forward

        def no_positions(*args, position_ids=None, **kwargs):
            return forward(*args, **kwargs)

        model.model.forward = no_positions


def test_an_architecture_that_ignores_position_ids_falls_back_to_padded_batches(monkeypatch):
    monkeypatch.setattr(attention, "_PROBED", {})  # probe this model, not its class as seen before
    model = causal_lm("llama")
    IgnoresPositions(model)
    layout, why = attention.choose_layout(model, padding_free=True, prefix_sharing=True, attention="auto",
                                          pairs=True)
    assert layout is None
    assert why.startswith("padded batches (llama, sdpa)") and "segments: its hidden states differ" in why
    assert "mask: its hidden states differ" in why
    assert not model.config._attn_implementation.startswith("alignlab")  # switched back


def test_layouts_can_be_switched_off_and_flex_needs_a_gpu_to_train():
    model = causal_lm("llama")
    assert attention.choose_layout(model, padding_free=False, prefix_sharing=False, attention="auto",
                                   pairs=True)[0] is None
    # Plain sequences gain nothing from one padded row each under a dense mask.
    assert attention.choose_layout(model, padding_free=True, prefix_sharing=False, attention="mask",
                                   pairs=False)[0] is None
    model.config._attn_implementation = "flex_attention"
    layout, why = attention.choose_layout(model, padding_free=True, prefix_sharing=True, attention="flex",
                                          pairs=True)
    assert layout is None and "FlexAttention has no backward on CPU" in why


def test_the_attention_switch_changes_nothing_for_padded_batches_and_is_never_saved(tmp_path):
    import json

    from alignlab.modeling.logprobs import TokenBatch, model_sequence_logps

    model = causal_lm("gpt2").eval()
    batch = collate_pairs(random_pairs(6), PAD)
    before = model_sequence_logps(model, TokenBatch.of(batch)).logps
    attention.enable_segments(model)
    assert model.config._attn_implementation.startswith("alignlab")
    torch.testing.assert_close(model_sequence_logps(model, TokenBatch.of(batch)).logps, before)
    model.save_pretrained(tmp_path)
    assert "alignlab" not in json.dumps(json.loads((tmp_path / "config.json").read_text()))

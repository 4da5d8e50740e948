"""Chunked sequence log-probs equal the naive full log-softmax, in value and gradient."""

from __future__ import annotations

import math

import pytest
import torch

from alignlab.losses.sft import IGNORE_INDEX
from alignlab.modeling.logprobs import (
    SequenceLogps,
    TokenBatch,
    concatenate_pair,
    concatenated_sequence_logps,
    model_sequence_logps,
    sequence_logps,
    token_logps,
)
from alignlab.modeling.tiny import tiny_model_config

VOCAB = 300


def naive_logps(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference: full float32 log-softmax, gather, mask, sum."""
    logp = logits.float().log_softmax(-1)[:, :-1]
    targets = labels[:, 1:]
    mask = targets != IGNORE_INDEX
    per_token = logp.gather(-1, targets.clamp(min=0)[..., None]).squeeze(-1) * mask
    return per_token.sum(-1), mask.sum(-1)


def make_batch(lengths: list[int], prompts: list[int], total: int, seed: int = 0) -> TokenBatch:
    """Right-padded rows of random tokens; the first `prompts[i]` tokens and the padding are masked."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (len(lengths), total), generator=g)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for i, (n, p) in enumerate(zip(lengths, prompts, strict=True)):
        ids[i, n:] = 2  # pad id
        mask[i, :n] = 1
        labels[i, p:n] = ids[i, p:n]
    return TokenBatch(ids, mask, labels)


def tiny_model(arch: str):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    config = tiny_model_config(
        arch, VOCAB, hidden_size=32, num_layers=2, num_heads=4, max_positions=64, pad_token_id=2
    )
    return AutoModelForCausalLM.from_config(config).eval()


def test_hand_value_two_token_vocabulary() -> None:
    """V = 2. Position 0 has logits [0, ln 3] -> p = [1/4, 3/4]; label 1 -> log 3/4.
    Position 1 has logits [0, 0] -> p = [1/2, 1/2]; label 0 -> log 1/2.
    Row 0 (labels on both): log(3/4) + log(1/2) = log(3/8) = −0.980829, 2 tokens.
    Row 1 (second label masked): log(3/4) = −0.287682, 1 token."""
    logits = torch.tensor([[[0.0, math.log(3.0)], [0.0, 0.0], [5.0, -5.0]]] * 2, dtype=torch.float64)
    labels = torch.tensor([[IGNORE_INDEX, 1, 0], [IGNORE_INDEX, 1, IGNORE_INDEX]])
    out = sequence_logps(logits, labels, chunk_rows=1)
    torch.testing.assert_close(out.logps, torch.tensor([math.log(3 / 8), math.log(3 / 4)]))
    assert out.num_tokens.tolist() == [2, 1]
    torch.testing.assert_close(out.mean_logps, torch.tensor([math.log(3 / 8) / 2, math.log(3 / 4)]))
    torch.testing.assert_close(token_logps(logits, labels)[1], torch.tensor([math.log(3 / 4), 0.0]))


@pytest.mark.parametrize("chunk_rows", [1, 4, 7, None])
def test_chunked_equals_naive_on_random_logits(chunk_rows: int | None) -> None:
    g = torch.Generator().manual_seed(0)
    batch = make_batch([9, 6, 4], [3, 1, 4], 9)  # row 2 has no label at all
    logits = torch.randn(3, 9, 11, generator=g, dtype=torch.float64) * 3
    labels = torch.where(batch.labels == IGNORE_INDEX, IGNORE_INDEX, batch.labels % 11)
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)

    x1 = logits.clone().requires_grad_()
    got = sequence_logps(x1, labels, chunk_rows=chunk_rows)
    (got.logps * weights).sum().backward()
    x2 = logits.clone().requires_grad_()
    want, count = naive_logps(x2, labels)
    (want * weights).sum().backward()

    torch.testing.assert_close(got.logps, want.float())
    assert got.logps[2].item() == 0.0 and got.num_tokens.tolist() == count.tolist() == [6, 5, 0]
    torch.testing.assert_close(x1.grad, x2.grad.to(x1.grad.dtype), atol=1e-6, rtol=1e-5)
    assert x1.grad[2].abs().sum() == 0  # no labels, no gradient


def test_bfloat16_logits_use_float32_math_and_return_bfloat16_grads() -> None:
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(2, 6, 50, generator=g) * 4).to(torch.bfloat16).requires_grad_()
    labels = torch.randint(0, 50, (2, 6), generator=g)
    labels[0, :2] = IGNORE_INDEX
    got = sequence_logps(logits, labels, chunk_rows=3)
    want, _ = naive_logps(logits.detach(), labels)  # naive upcasts the same bf16 values
    torch.testing.assert_close(got.logps, want, atol=1e-5, rtol=1e-5)
    got.logps.sum().backward()
    assert logits.grad.dtype == torch.bfloat16


def _param_grads(model) -> dict[str, torch.Tensor]:
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    return grads


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_model_logps_match_naive_values_and_gradients(arch: str) -> None:
    """Padding and masked prompt tokens included; both the logits and the hidden-state paths."""
    model = tiny_model(arch)
    batch = make_batch([12, 9, 5], [4, 2, 3], 12)
    weights = torch.tensor([1.0, -2.0, 0.5])

    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    want, count = naive_logps(logits, batch.labels)
    (want * weights).sum().backward()
    want_grads = _param_grads(model)

    for mode, rows in (("logits", 5), ("hidden", 3), ("auto", None)):
        got = model_sequence_logps(model, batch, mode=mode, chunk_rows=rows)
        torch.testing.assert_close(got.logps, want.detach(), atol=1e-5, rtol=1e-5)
        assert got.num_tokens.tolist() == count.tolist() == [8, 7, 2]
        (got.logps * weights).sum().backward()
        grads = _param_grads(model)
        assert grads.keys() == want_grads.keys()
        for name, grad in grads.items():
            torch.testing.assert_close(grad, want_grads[name], atol=1e-5, rtol=1e-4, msg=f"{mode}: {name}")


def test_hidden_path_never_builds_full_logits() -> None:
    """In auto mode a Llama's lm_head module is never called: logits exist only chunk by chunk."""
    model = tiny_model("llama")
    calls = []
    model.lm_head.register_forward_hook(lambda *_: calls.append(1))
    model_sequence_logps(model, make_batch([8, 5], [2, 2], 8))
    assert calls == []
    model_sequence_logps(model, make_batch([8, 5], [2, 2], 8), mode="logits")
    assert calls == [1]


def test_lora_model_and_disabled_adapters_serve_as_reference() -> None:
    from peft import LoraConfig, get_peft_model

    base = tiny_model("llama")
    batch = make_batch([10, 7], [3, 2], 10)
    with torch.no_grad():
        base_logps = model_sequence_logps(base, batch, mode="logits").logps
    peft_model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_()  # move the adapted model away from the base
        policy = model_sequence_logps(peft_model, batch, mode="hidden").logps
        torch.testing.assert_close(
            policy, model_sequence_logps(peft_model, batch, mode="logits").logps, atol=1e-5, rtol=1e-5
        )
        assert not torch.allclose(policy, base_logps, atol=1e-3)
        with peft_model.disable_adapter():
            reference = model_sequence_logps(peft_model, batch).logps
    torch.testing.assert_close(reference, base_logps, atol=1e-5, rtol=1e-5)


def test_concatenate_pair_pads_both_sides_to_one_length() -> None:
    chosen = TokenBatch(torch.tensor([[5, 6, 7]]), torch.tensor([[1, 1, 1]]), torch.tensor([[-100, 6, 7]]))
    rejected = TokenBatch(torch.tensor([[5, 9]]), torch.tensor([[1, 1]]), torch.tensor([[-100, 9]]))
    both = concatenate_pair(chosen, rejected, pad_token_id=0)
    assert both.input_ids.tolist() == [[5, 6, 7], [5, 9, 0]]
    assert both.attention_mask.tolist() == [[1, 1, 1], [1, 1, 0]]
    assert both.labels.tolist() == [[-100, 6, 7], [-100, 9, -100]]


def test_concatenated_forward_is_one_pass_and_equals_separate_passes() -> None:
    model = tiny_model("qwen2")
    chosen = make_batch([11, 8], [3, 4], 11, seed=1)
    rejected = make_batch([6, 14], [3, 4], 14, seed=2)
    calls = []
    model.model.register_forward_pre_hook(lambda *_: calls.append(1))
    with torch.no_grad():
        pair = concatenated_sequence_logps(model, chosen, rejected, pad_token_id=2)
        assert len(calls) == 1
        separate = [model_sequence_logps(model, b) for b in (chosen, rejected)]
    for got, want in zip(pair, separate, strict=True):
        assert isinstance(got, SequenceLogps)
        torch.testing.assert_close(got.logps, want.logps, atol=1e-5, rtol=1e-5)
        assert got.num_tokens.tolist() == want.num_tokens.tolist()
    assert pair.chosen.num_tokens.tolist() == [8, 4] and pair.rejected.num_tokens.tolist() == [3, 10]


def test_hidden_mode_refuses_an_unsupported_model() -> None:
    model = torch.nn.Linear(2, 2)
    with pytest.raises(ValueError, match="plain-head"):
        model_sequence_logps(model, make_batch([3], [1], 3), mode="hidden")


def test_auto_mode_keeps_soft_capped_logits_exact() -> None:
    """Gemma-2 caps its logits (tanh soft-capping) after the LM head: `auto` must not take the
    hidden-state path, which would skip the cap."""
    from transformers import AutoModelForCausalLM, Gemma2Config

    torch.manual_seed(0)
    config = Gemma2Config(vocab_size=VOCAB, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, head_dim=8,
                          max_position_embeddings=64,
                          pad_token_id=2, final_logit_softcapping=1.0)  # a cap that bites
    model = AutoModelForCausalLM.from_config(config).eval()
    batch = make_batch([12, 9, 5], [4, 2, 3], 12)
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask).logits
    assert logits.abs().max() <= 1.0  # the cap is applied inside the model
    want, _ = naive_logps(logits, batch.labels)
    got = model_sequence_logps(model, batch, mode="auto")
    torch.testing.assert_close(got.logps, want.detach(), atol=1e-5, rtol=1e-5)

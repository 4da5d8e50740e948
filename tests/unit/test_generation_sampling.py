"""Sampling distributions by hand, stop tokens and strings, and the growing KV cache."""

from __future__ import annotations

import math

import pytest
import torch

from alignlab.generation.base import SamplingParams
from alignlab.generation.kv_cache import GrowingCache, supports_growing_cache
from alignlab.generation.sampling import choose_tokens, sampling_logprobs
from alignlab.generation.stops import StopStrings, cut_at_stop, stop_token_ids

# p = [0.1, 0.2, 0.3, 0.4] at temperature 1.
LOGITS = torch.log(torch.tensor([[0.1, 0.2, 0.3, 0.4]]))


def probs(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float = 1.0
) -> list[float]:
    return sampling_logprobs(logits, temperature, top_k, top_p).exp()[0].tolist()


def test_temperature_by_hand() -> None:
    """T = 2: p ∝ p_i^(1/2) = [0.3162, 0.4472, 0.5477, 0.6325] / 1.9436."""
    z = sum(math.sqrt(p) for p in (0.1, 0.2, 0.3, 0.4))
    assert probs(LOGITS, 2.0) == pytest.approx([math.sqrt(p) / z for p in (0.1, 0.2, 0.3, 0.4)], abs=1e-6)
    assert probs(LOGITS, 1.0) == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=1e-6)


def test_top_k_by_hand() -> None:
    """k = 2 keeps 0.3 and 0.4: renormalised [0, 0, 3/7, 4/7]; a tie at the boundary is kept."""
    assert probs(LOGITS, top_k=2) == pytest.approx([0, 0, 3 / 7, 4 / 7], abs=1e-6)
    tied = torch.log(torch.tensor([[0.2, 0.2, 0.2, 0.4]]))
    assert probs(tied, top_k=2) == pytest.approx([0.2, 0.2, 0.2, 0.4], abs=1e-6)


def test_top_p_by_hand() -> None:
    """Ascending cumulative mass 0.1, 0.3, 0.6, 1.0; tokens with mass <= 1 - top_p go.

    top_p 0.5 removes {0.1, 0.3} -> [0, 0, 3/7, 4/7]; top_p 0.35 also removes 0.6 -> [0, 0, 0, 1];
    top_p 0.95 removes nothing but the first (0.1 <= 0.05 is false) -> unchanged.
    """
    assert probs(LOGITS, top_p=0.5) == pytest.approx([0, 0, 3 / 7, 4 / 7], abs=1e-6)
    assert probs(LOGITS, top_p=0.35) == pytest.approx([0, 0, 0, 1], abs=1e-6)
    assert probs(LOGITS, top_p=0.95) == pytest.approx([0.1, 0.2, 0.3, 0.4], abs=1e-6)


def test_temperature_then_top_k_then_top_p() -> None:
    """T = 0.5 squares p: [1, 4, 9, 16] / 30; top-k 3 -> [4, 9, 16] / 29; top-p 0.6: ascending mass
    4/29 = 0.138 <= 0.4 goes, 13/29 = 0.448 stays -> [0, 0, 9/25, 16/25]."""
    assert probs(LOGITS, 0.5, 3, 0.6) == pytest.approx([0, 0, 9 / 25, 16 / 25], abs=1e-6)


def test_greedy_takes_the_argmax_and_reports_raw_logprobs() -> None:
    choice = choose_tokens(LOGITS.repeat(2, 1), 0.0, None, 1.0, None, num_top=2)
    assert choice.tokens.tolist() == [3, 3]
    assert choice.logprobs.tolist() == pytest.approx([math.log(0.4)] * 2, abs=1e-6)
    assert choice.top_ids.tolist() == [[3, 2], [3, 2]]
    assert choice.top_logprobs[0].tolist() == pytest.approx([math.log(0.4), math.log(0.3)], abs=1e-6)


def test_samples_follow_the_distribution_and_the_seed() -> None:
    """40,000 draws of [0, 0, 3/7, 4/7]: frequencies within 4 standard errors (<= 0.01) of p."""
    logits = LOGITS.repeat(40_000, 1)
    g = torch.Generator().manual_seed(0)
    choice = choose_tokens(logits, 1.0, 2, 1.0, g)
    freq = torch.bincount(choice.tokens, minlength=4).float() / 40_000
    assert freq.tolist() == pytest.approx([0, 0, 3 / 7, 4 / 7], abs=0.01)
    assert choice.logprobs.unique().tolist() == pytest.approx(
        [math.log(4 / 7), math.log(3 / 7)][::-1], abs=1e-6
    )
    again = choose_tokens(logits, 1.0, 2, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(again.tokens, choice.tokens)


def test_sampling_params_reject_bad_values() -> None:
    for bad in (
        {"temperature": -1},
        {"top_p": 0},
        {"top_k": 0},
        {"n": 0},
        {"top_logprobs": -1},
        {"max_new_tokens": 0},
    ):
        with pytest.raises(ValueError):
            SamplingParams(**bad)


def test_stop_token_ids_take_eos_end_of_turn_and_extras(tiny_tokenizer) -> None:
    vocab = tiny_tokenizer.get_vocab()
    ids = stop_token_ids(tiny_tokenizer, [7])
    assert {
        tiny_tokenizer.eos_token_id,
        vocab["<|im_end|>"],
        vocab["<|eot_id|>"],
        vocab["<end_of_turn>"],
        7,
    } <= set(ids)
    assert ids == sorted(ids)


def test_cut_at_stop_takes_the_first_of_several() -> None:
    assert cut_at_stop("one. two! three", ["!", "."]) == ("one", True)
    assert cut_at_stop("no stop here", ["###", ""]) == ("no stop here", False)


def test_stop_strings_see_a_string_split_over_tokens(tiny_tokenizer) -> None:
    ids = tiny_tokenizer("The capital of France is Paris.", add_special_tokens=False)["input_ids"]
    stops = StopStrings(tiny_tokenizer, ["France is"])
    hits = [stops.matched(ids[:k]) for k in range(1, len(ids) + 1)]
    first = hits.index(True)
    assert "France is" in tiny_tokenizer.decode(ids[: first + 1])
    assert "France is" not in tiny_tokenizer.decode(ids[:first])
    assert not StopStrings(tiny_tokenizer, [""])


@pytest.mark.parametrize("arch", ["llama", "gpt2"])
def test_growing_cache_gives_the_logits_of_a_full_forward(tiny_model_dir, arch: str) -> None:
    """Prefill 5 tokens, then 35 single steps across the 32-position chunk boundary; logits match."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(arch)).eval()
    assert supports_growing_cache(model.config)
    ids = torch.randint(5, 300, (2, 40), generator=torch.Generator().manual_seed(0))
    full = model(input_ids=ids).logits
    cache = GrowingCache(model.config.num_hidden_layers, chunk=32)
    mask = torch.zeros(2, 64, dtype=torch.long)
    mask[:, :5] = 1
    with torch.no_grad():
        step = model(
            input_ids=ids[:, :5], attention_mask=mask[:, : cache.mask_length(5)], past_key_values=cache
        ).logits
        got = [step]
        for t in range(5, 40):
            mask[:, t] = 1
            out = model(input_ids=ids[:, t : t + 1], attention_mask=mask[:, : cache.mask_length(1)],
                        position_ids=torch.full((2, 1), t), past_key_values=cache)  # fmt: skip
            got.append(out.logits)
    assert cache.layers[0].keys.shape[-2] == 64
    torch.testing.assert_close(torch.cat(got, 1), full, atol=1e-5, rtol=1e-5)

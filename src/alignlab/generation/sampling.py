"""Next-token choice from logits: temperature, top-k, top-p, and the log-probs RL needs.

The sampling distribution is softmax(logits / T) restricted to the top-k tokens, then to the
smallest set of tokens whose probability reaches top_p (nucleus sampling, Holtzman et al. 2020),
renormalised — the order and the tie rules of `transformers`' temperature, top-k and top-p
warpers, so a sampled token's log-prob is exactly what the policy-gradient ratio needs.

Greedy decoding (T = 0) takes the argmax of the raw logits; its log-probs are those of the
unprocessed distribution softmax(logits), as OpenAI-compatible servers report them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

Tensor = torch.Tensor


class Choice(NamedTuple):
    tokens: Tensor  # (R,) long, the chosen token of each row
    logprobs: Tensor  # (R,) float32, its log-prob under the sampling distribution
    top_ids: Tensor | None  # (R, k) long, the k most likely tokens of that distribution, or None
    top_logprobs: Tensor | None  # (R, k) float32, their log-probs


def sampling_logprobs(logits: Tensor, temperature: float, top_k: int | None, top_p: float) -> Tensor:
    """(R, V) float32 log-probs of the sampling distribution; -inf on tokens top-k / top-p remove.

    logits: (R, V) in any dtype. temperature > 0. Ties at the top-k boundary are kept (as in
    `transformers`); top-p keeps every token whose ascending cumulative mass exceeds 1 - top_p, and
    always the most likely one.
    """
    scores = logits.float() / temperature
    if top_k is not None and top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[..., -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        ascending, order = torch.sort(scores, dim=-1)
        remove = ascending.softmax(-1).cumsum(-1) <= 1 - top_p
        remove[..., -1] = False
        scores = scores.masked_fill(remove.scatter(-1, order, remove), float("-inf"))
    return scores.log_softmax(-1)


def sample_from(dist: Tensor, generator: torch.Generator | None, uniforms: Tensor | None = None) -> Tensor:
    """(R,) one token per row of the (R, V) log-probs `dist`, by inverting its cumulative distribution.

    One uniform number per row: `torch.multinomial` draws an exponential number for every
    vocabulary entry, which made it 8 % of a decoding step on CPU. A token of probability 0 has an
    empty interval of the cumulative sum and is never chosen. `uniforms` (R,) in [0, 1) are those
    numbers when the caller draws them (one random stream per request); else `generator` draws them.
    """
    probs = dist.exp()
    cdf = probs.cumsum(-1)
    if uniforms is None:
        uniforms = torch.rand((cdf.shape[0],), generator=generator, device=cdf.device, dtype=cdf.dtype)
    u = uniforms.to(cdf.dtype)[:, None] * cdf[:, -1:]
    tokens = torch.searchsorted(cdf, u, right=True).squeeze(-1)
    # Rounding can put u at the very end of the sum: take the most likely token then.
    return torch.where(tokens < cdf.shape[-1], tokens, probs.argmax(-1))


def choose_tokens(
    logits: Tensor,
    temperature: float,
    top_k: int | None,
    top_p: float,
    generator: torch.Generator | None,
    num_top: int = 0,
    *,
    uniforms: Tensor | None = None,
) -> Choice:
    """Pick one token per row of (R, V) `logits`: the argmax when `temperature` is 0, else a sample.

    `generator` makes sampling reproducible (same seed, same batch -> same tokens); `uniforms`
    (R,) replaces its draws (`sample_from`). `num_top` > 0 also returns that many most likely
    tokens and their log-probs per row.
    """
    if temperature == 0:
        dist = logits.float().log_softmax(-1)
        tokens = logits.argmax(-1)
    else:
        dist = sampling_logprobs(logits, temperature, top_k, top_p)
        tokens = sample_from(dist, generator, uniforms)
    chosen = dist.gather(-1, tokens[:, None]).squeeze(-1)
    if num_top <= 0:
        return Choice(tokens, chosen, None, None)
    top = torch.topk(dist, min(num_top, dist.shape[-1]), dim=-1)
    return Choice(tokens, chosen, top.indices, top.values)

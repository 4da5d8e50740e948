"""The decoding loop of one batch: prefill each prompt once, then one token per step from a KV cache.

The prompts are left-padded, so every row's next token is predicted at the same column. Position
ids count real tokens only (padding gets 0), exactly as `transformers`' `generate` makes them,
so greedy decoding gives its tokens. With n samples per prompt the prompt is prefilled once and
its cache repeated n times. Rows that finish are dropped from the batch (cache, mask and
positions) once a `compact_fraction` of the rows still in it has finished, so long replies do
not pay for short ones; until then a finished row keeps decoding and its tokens are ignored.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import torch
from transformers.cache_utils import DynamicCache

from alignlab.generation.base import FinishReason, SamplingParams
from alignlab.generation.kv_cache import DEFAULT_CHUNK, GrowingCache, supports_growing_cache
from alignlab.generation.sampling import Choice, choose_tokens
from alignlab.generation.stops import StopStrings

Tensor = torch.Tensor


@dataclass
class BatchOutput:
    """Replies of one batch of B prompts × n samples (row b·n + j is sample j of prompt b)."""

    tokens: Tensor  # (R, S) long; S = steps taken; entries past a row's length are meaningless
    logprobs: Tensor  # (R, S) float32, sampling-distribution log-prob of each token
    lengths: Tensor  # (R,) long, generated tokens of each row (its stop token included)
    finish: list[FinishReason]  # (R,)
    top_ids: Tensor | None = None  # (R, S, k) long when top log-probs were asked for
    top_logprobs: Tensor | None = None  # (R, S, k) float32


@dataclass
class _Rows:
    """The rows still in the batch and their decoding state."""

    index: Tensor  # (A,) long, the original row of each row in the batch
    alive: Tensor  # (A,) bool, False once a row has finished
    mask: Tensor  # (A, C) long, 2D attention mask over the cache columns (generated columns set as they fill)
    positions: Tensor  # (A,) long, position id of each row's last fed token

    def keep(self, keep: Tensor, cache) -> None:
        cache.batch_select_indices(keep)
        self.index, self.alive = self.index[keep], self.alive[keep]
        self.mask, self.positions = self.mask[keep], self.positions[keep]


def accepts_logits_to_keep(model) -> bool:
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(inner.forward).parameters


def max_positions(model) -> int | None:
    """The longest sequence the model's position embeddings allow, when its config says."""
    config = model.config.get_text_config()
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def _new_cache(model):
    config = model.config.get_text_config()
    if supports_growing_cache(config):
        return GrowingCache(config.num_hidden_layers)
    return DynamicCache(config=model.config)


def _mask_columns(cache, past: int, query: int) -> int:
    return cache.mask_length(query) if isinstance(cache, GrowingCache) else past + query


def _prefill(model, input_ids: Tensor, attention_mask: Tensor, n: int, max_new: int):
    """Forward the prompts once; return (cache, next-token logits (B·n, V), rows)."""
    cache = _new_cache(model)
    width = input_ids.shape[1]
    positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    # Room for every generated column plus a cache chunk of slack; unfilled columns stay 0.
    mask = attention_mask.new_zeros(input_ids.shape[0], width + max_new + DEFAULT_CHUNK)
    mask[:, :width] = attention_mask
    extra = {"logits_to_keep": 1} if accepts_logits_to_keep(model) else {}
    out = model(
        input_ids=input_ids,
        attention_mask=mask[:, : _mask_columns(cache, 0, width)],
        position_ids=positions,
        past_key_values=cache,
        use_cache=True,
        **extra,
    )
    logits = out.logits[:, -1]
    last = positions[:, -1]
    if n > 1:
        cache.batch_repeat_interleave(n)
        logits, mask, last = (t.repeat_interleave(n, dim=0) for t in (logits, mask, last))
    rows = _Rows(torch.arange(logits.shape[0], device=logits.device), torch.ones_like(last, dtype=torch.bool), mask, last)
    return cache, logits, rows


class _Replies:
    """Output buffers of every row: tokens, log-probs, lengths, finish reasons (and top log-probs)."""

    def __init__(self, total: int, params: SamplingParams, vocab: int, device, keep_ids: bool) -> None:
        steps, k = params.max_new_tokens, min(params.top_logprobs, vocab)
        self.tokens = torch.zeros(total, steps, dtype=torch.long, device=device)
        self.logprobs = torch.zeros(total, steps, dtype=torch.float32, device=device)
        self.top_ids = torch.zeros(total, steps, k, dtype=torch.long, device=device) if k else None
        self.top_logprobs = torch.zeros(total, steps, k, dtype=torch.float32, device=device) if k else None
        self.lengths = torch.full((total,), steps, dtype=torch.long, device=device)
        self.finish: list[FinishReason] = ["length"] * total
        self.ids: list[list[int]] | None = [[] for _ in range(total)] if keep_ids else None  # for stop strings
        self.steps = 0

    def record(self, step: int, rows: _Rows, choice: Choice) -> None:
        self.steps = step + 1
        self.tokens[rows.index, step], self.logprobs[rows.index, step] = choice.tokens, choice.logprobs
        if self.top_ids is not None:
            self.top_ids[rows.index, step] = choice.top_ids
            self.top_logprobs[rows.index, step] = choice.top_logprobs
        if self.ids is not None:
            for row, tok in zip(rows.index.tolist(), choice.tokens.tolist(), strict=True):
                self.ids[row].append(tok)

    def end(self, step: int, rows: _Rows, ends: Tensor, stopped: Tensor) -> None:
        for a in ends.nonzero().squeeze(1).tolist():
            row = int(rows.index[a])
            self.lengths[row] = step + 1
            self.finish[row] = "stop" if bool(stopped[a]) else "length"

    def output(self) -> BatchOutput:
        cut = slice(0, self.steps)
        top = (self.top_ids[:, cut], self.top_logprobs[:, cut]) if self.top_ids is not None else (None, None)
        return BatchOutput(self.tokens[:, cut], self.logprobs[:, cut], self.lengths, self.finish, *top)


def _finished(
    choice: Choice,
    rows: _Rows,
    replies: _Replies,
    max_new: int,
    stop_ids: Tensor,
    stop_strings: StopStrings | None,
    limit: int | None,
) -> tuple[Tensor, Tensor]:
    """(A,) bool: rows that stop now (stop token or string); rows that reach a length limit instead."""
    stopped = torch.isin(choice.tokens, stop_ids)
    if stop_strings and replies.ids is not None:
        alive, hit = rows.alive.tolist(), stopped.tolist()
        for a, row in enumerate(rows.index.tolist()):
            if alive[a] and not hit[a] and stop_strings.matched(replies.ids[row]):
                stopped[a] = True
    at_length = torch.full_like(stopped, replies.steps >= max_new)
    if limit is not None:  # the new token sits at the last position the model has
        at_length |= rows.positions + 1 >= limit - 1
    return stopped, at_length & ~stopped


@torch.no_grad()
def decode_batch(
    model,
    input_ids: Tensor,
    attention_mask: Tensor,
    params: SamplingParams,
    stop_ids: Tensor,
    *,
    stop_strings: StopStrings | None = None,
    generator: torch.Generator | None = None,
    compact_fraction: float = 0.25,
) -> BatchOutput:
    """Generate `params.n` replies to each of B left-padded prompts.

    input_ids, attention_mask: (B, P) on the model's device, left-padded. stop_ids: (K,) long on
    the same device. Returns B·n rows, sample j of prompt b in row b·n + j. The model must be in
    eval mode; `generator` (on the model's device) seeds sampling.
    """
    limit, width = max_positions(model), input_ids.shape[1]
    cache, logits, rows = _prefill(model, input_ids, attention_mask, params.n, params.max_new_tokens)
    replies = _Replies(logits.shape[0], params, logits.shape[-1], logits.device, bool(stop_strings))
    for step in range(params.max_new_tokens):
        choice = choose_tokens(logits, params.temperature, params.top_k, params.top_p, generator, params.top_logprobs)
        replies.record(step, rows, choice)
        stopped, at_length = _finished(choice, rows, replies, params.max_new_tokens, stop_ids, stop_strings, limit)
        ends = (stopped | at_length) & rows.alive
        replies.end(step, rows, ends, stopped)
        rows.alive &= ~ends
        alive = int(rows.alive.sum())
        if alive == 0:
            break
        if rows.alive.numel() - alive >= max(1.0, compact_fraction * rows.alive.numel()):
            keep = rows.alive.nonzero().squeeze(1)
            choice = Choice(choice.tokens[keep], choice.logprobs[keep], None, None)
            rows.keep(keep, cache)
        past = width + step  # cache columns written so far; the new token goes in the next one
        rows.mask[:, past] = 1
        rows.positions = rows.positions + 1
        if limit is not None:  # finished rows decode until dropped: keep them inside the position table
            rows.positions.clamp_(max=limit - 1)
        logits = model(
            input_ids=choice.tokens[:, None],
            attention_mask=rows.mask[:, : _mask_columns(cache, past, 1)],
            position_ids=rows.positions[:, None],
            past_key_values=cache,
            use_cache=True,
        ).logits[:, -1]
    return replies.output()

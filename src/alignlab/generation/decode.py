"""The decoding loop of one batch: prefill each prompt once, then one token per step from a KV cache.

The prompts are left-padded, so every row's next token is predicted at the same column. Position
ids count real tokens only (padding gets 0), exactly as `transformers`' `generate` makes them,
so greedy decoding gives its tokens. With n samples per prompt the prompt is prefilled once and
its cache repeated n times. Rows that finish are dropped from the batch (cache, mask and
positions) once a `compact_fraction` of the rows still in it has finished, so long replies do
not pay for short ones; until then a finished row keeps decoding and its tokens are ignored.

Each prompt brings its own `PromptSampling`: sampling settings (temperature, top-k, top-p, n,
max new tokens, top log-probs), stop strings and random stream, so requests with different
settings share one batch (the server batches its clients this way). Rows with the same settings
are sampled together. `on_step` sees each step's tokens as they are chosen (streaming) and may
abandon rows whose request was cancelled.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Sequence
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


@dataclass(frozen=True)
class PromptSampling:
    """How the n rows of one prompt are sampled: settings, stop strings and random stream.

    Prompts given the same `generator` object share one random stream. At every step a stream
    draws one uniform number for each of its rows, finished rows included, so a row's sample never
    depends on when finished rows leave the batch, and a prompt with a stream of its own samples
    exactly what it samples alone, whatever else is in the batch.
    """

    params: SamplingParams
    stop_strings: StopStrings | None = None
    generator: torch.Generator | None = None


@dataclass(frozen=True)
class StepTokens:
    """What one step chose for the rows still generating, as plain lists (for `on_step`)."""

    rows: list[int]  # batch rows; sample j of prompt b is row (n_0 + ... + n_{b-1}) + j
    tokens: list[int]
    logprobs: list[float]
    top_ids: list[list[int]] | None  # most likely tokens per row when top log-probs were asked for
    top_logprobs: list[list[float]] | None
    finish: list[FinishReason | None]  # "stop" / "length" for rows this token ends, else None


# Called after every step; returns batch rows to abandon (their request was cancelled), or None.
OnStep = Callable[[StepTokens], Iterable[int] | None]


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


class _Plan:
    """Per-row settings of one batch, from its prompts' `PromptSampling`s (R = sum of their n)."""

    def __init__(self, sampling: Sequence[PromptSampling], device) -> None:
        counts = [s.params.n for s in sampling]
        self.uniform_n = counts[0] if len(set(counts)) == 1 else None
        self.row_prompt = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts)).to(device)
        prompt_of = self.row_prompt.tolist()
        self.total = len(prompt_of)
        self.steps = max(s.params.max_new_tokens for s in sampling)
        self.max_new = torch.tensor([sampling[b].params.max_new_tokens for b in prompt_of], device=device)
        self.num_top = max(s.params.top_logprobs for s in sampling)
        keys = [(s.params.temperature, s.params.top_k, s.params.top_p) for s in sampling]
        self.settings = list(dict.fromkeys(keys))  # distinct (temperature, top_k, top_p), in order
        self.row_setting = torch.tensor([self.settings.index(keys[b]) for b in prompt_of], device=device)
        self.stops = [sampling[b].stop_strings or None for b in prompt_of]
        streams: dict[int, tuple[torch.Generator | None, list[int]]] = {}
        for row, b in enumerate(prompt_of):
            if sampling[b].params.temperature > 0:
                g = sampling[b].generator
                streams.setdefault(id(g), (g, []))[1].append(row)
        self.streams = [(g, len(rows)) for g, rows in streams.values()]
        self.stream_rows = torch.tensor(
            [r for _, rows in streams.values() for r in rows], dtype=torch.long, device=device
        )
        self.device = device

    def uniforms(self) -> Tensor | None:
        """(R,) this step's uniform number of every row (0 for greedy rows), each stream drawing its rows'."""
        if not self.streams:
            return None
        drawn = torch.cat([torch.rand((k,), generator=g, device=self.device) for g, k in self.streams])
        return torch.zeros(self.total, device=self.device).index_copy_(0, self.stream_rows, drawn)

    def choose(self, logits: Tensor, index: Tensor) -> Choice:
        """The rows' tokens (rows `index` of the batch), each under its own prompt's settings."""
        u = self.uniforms()
        u = u[index] if u is not None else None
        if len(self.settings) == 1:
            t, k, p = self.settings[0]
            return choose_tokens(logits, t, k, p, None, self.num_top, uniforms=u)
        setting = self.row_setting[index]
        parts = []
        for s, (t, k, p) in enumerate(self.settings):
            at = (setting == s).nonzero().squeeze(1)
            if at.numel():
                parts.append((at, choose_tokens(logits[at], t, k, p, None, self.num_top,
                                                uniforms=u[at] if u is not None else None)))  # fmt: skip
        return _scatter(parts, logits.shape[0])


def _scatter(parts: list[tuple[Tensor, Choice]], rows: int) -> Choice:
    """One `Choice` of `rows` rows from choices made for disjoint subsets of them."""
    first = parts[0][1]
    out = [None if f is None else f.new_empty((rows, *f.shape[1:])) for f in first]
    for at, choice in parts:
        for buffer, part in zip(out, choice, strict=True):
            if buffer is not None:
                buffer[at] = part
    return Choice(*out)


def _prefill(model, input_ids: Tensor, attention_mask: Tensor, plan: _Plan):
    """Forward the prompts once; return (cache, next-token logits (R, V), rows)."""
    cache = _new_cache(model)
    width = input_ids.shape[1]
    positions = (attention_mask.cumsum(-1) - 1).masked_fill(attention_mask == 0, 0)
    # Room for every generated column plus a cache chunk of slack; unfilled columns stay 0.
    mask = attention_mask.new_zeros(input_ids.shape[0], width + plan.steps + DEFAULT_CHUNK)
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
    if plan.uniform_n is not None and plan.uniform_n > 1:
        cache.batch_repeat_interleave(plan.uniform_n)
        logits, mask, last = (t.repeat_interleave(plan.uniform_n, dim=0) for t in (logits, mask, last))
    elif plan.uniform_n is None:  # prompts with different n: row r repeats prompt row_prompt[r]
        cache.batch_select_indices(plan.row_prompt)
        logits, mask, last = (t[plan.row_prompt] for t in (logits, mask, last))
    rows = _Rows(
        torch.arange(logits.shape[0], device=logits.device),
        torch.ones_like(last, dtype=torch.bool),
        mask,
        last,
    )
    return cache, logits, rows


class _Replies:
    """Output buffers of every row: tokens, log-probs, lengths, finish reasons (and top log-probs)."""

    def __init__(self, total: int, plan: _Plan, vocab: int, device, keep_ids: bool) -> None:
        steps, k = plan.steps, min(plan.num_top, vocab)
        self.tokens = torch.zeros(total, steps, dtype=torch.long, device=device)
        self.logprobs = torch.zeros(total, steps, dtype=torch.float32, device=device)
        self.top_ids = torch.zeros(total, steps, k, dtype=torch.long, device=device) if k else None
        self.top_logprobs = torch.zeros(total, steps, k, dtype=torch.float32, device=device) if k else None
        self.lengths = torch.full((total,), steps, dtype=torch.long, device=device)
        self.finish: list[FinishReason] = ["length"] * total
        # For stop strings:
        self.ids: list[list[int]] | None = [[] for _ in range(total)] if keep_ids else None
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
    choice: Choice, rows: _Rows, replies: _Replies, plan: _Plan, stop_ids: Tensor, limit: int | None
) -> tuple[Tensor, Tensor]:
    """(A,) bool: rows that stop now (stop token or string); rows that reach a length limit instead."""
    stopped = torch.isin(choice.tokens, stop_ids)
    if replies.ids is not None:
        alive, hit = rows.alive.tolist(), stopped.tolist()
        for a, row in enumerate(rows.index.tolist()):
            stops = plan.stops[row]
            if stops and alive[a] and not hit[a] and stops.matched(replies.ids[row]):
                stopped[a] = True
    at_length = plan.max_new[rows.index] <= replies.steps
    if limit is not None:  # the new token sits at the last position the model has
        at_length |= rows.positions + 1 >= limit - 1
    return stopped, at_length & ~stopped


def _report(
    on_step: OnStep, step: int, rows: _Rows, choice: Choice, ends: Tensor, stopped: Tensor
) -> list[int]:
    """Tell `on_step` the tokens of the rows generating at this step; the rows it abandons."""
    live = rows.alive.nonzero().squeeze(1)
    top = (
        (choice.top_ids[live].tolist(), choice.top_logprobs[live].tolist())
        if choice.top_ids is not None
        else (None, None)
    )
    finish = ["stop" if s else "length" if e else None
              for s, e in zip((stopped & ends)[live].tolist(), ends[live].tolist(), strict=True)]  # fmt: skip
    report = StepTokens(
        rows.index[live].tolist(), choice.tokens[live].tolist(), choice.logprobs[live].tolist(), *top, finish
    )
    return list(on_step(report) or ())


@torch.no_grad()
def decode_batch(
    model,
    input_ids: Tensor,
    attention_mask: Tensor,
    sampling: Sequence[PromptSampling],
    stop_ids: Tensor,
    *,
    compact_fraction: float = 0.25,
    on_step: OnStep | None = None,
) -> BatchOutput:
    """Generate replies to each of B left-padded prompts, prompt b sampled as `sampling[b]` says.

    input_ids, attention_mask: (B, P) on the model's device, left-padded. stop_ids: (K,) long on
    the same device. Returns R = n_0 + ... + n_{B-1} rows, prompt b's samples consecutive (row
    b·n + j when every n is the same). The model must be in eval mode; each stream's generator
    lives on the model's device. `on_step` is called after every step (see `StepTokens`).
    """
    if len(sampling) != input_ids.shape[0]:
        raise ValueError(f"{input_ids.shape[0]} prompts but {len(sampling)} sampling settings")
    plan = _Plan(sampling, input_ids.device)
    limit, width = max_positions(model), input_ids.shape[1]
    cache, logits, rows = _prefill(model, input_ids, attention_mask, plan)
    replies = _Replies(logits.shape[0], plan, logits.shape[-1], logits.device, any(plan.stops))
    for step in range(plan.steps):
        choice = plan.choose(logits, rows.index)
        replies.record(step, rows, choice)
        stopped, at_length = _finished(choice, rows, replies, plan, stop_ids, limit)
        ends = (stopped | at_length) & rows.alive
        abandon = _report(on_step, step, rows, choice, ends, stopped) if on_step is not None else []
        replies.end(step, rows, ends, stopped)
        rows.alive &= ~ends
        if abandon:  # cancelled requests: their rows end here
            drop = torch.isin(rows.index, torch.tensor(abandon, device=rows.index.device)) & rows.alive
            replies.end(step, rows, drop, torch.zeros_like(drop))
            rows.alive &= ~drop
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

"""Generation from an in-process Hugging Face causal LM: the policy's own weights, no copy.

`HFGenerator` implements the `Generator` protocol (conversations in, `Completion`s out) and the
token-level API RL rollouts use (`generate_ids`: prompt ids in, a `Rollout` of tensors out).
Prompts are rendered with the tokenizer's chat template (`data.templating.encode_prompt`, tools
included), sorted by length and decoded in left-padded batches of up to `max_batch_rows` rows
(prompts × n samples) by `generation.decode`; results come back in the input order. A reply ends
at eos, the template's end-of-turn token, the model's own eos ids, a stop string, or
`max_new_tokens` (or the model's context length).

`generate_each` gives every prompt its own `SamplingParams` and its own random stream (seeded by
its `seed`), so requests with different settings share a batch and each gets what it would get
alone; a `Listener` sees every token as it is chosen and each request's completions as soon as
its rows end (the server streams and answers with it).

Works on a model wrapped by `accelerate` / DDP (the `.module` inside is used) and on a PEFT model
(its adapters are active). Each module's train / eval mode is restored afterwards. Sampling is
seeded: the same prompts, params and `max_batch_rows` give the same replies. Not supported: FSDP
or ZeRO-3 sharded models (gather the weights first). Not thread-safe: one generation at a time.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from alignlab.data.templating import encode_prompt
from alignlab.errors import AlignlabError, DataError
from alignlab.generation.base import Completion, FinishReason, Prompt, SamplingParams
from alignlab.generation.collect import Collector, Listener
from alignlab.generation.decode import BatchOutput, PromptSampling, decode_batch, max_positions
from alignlab.generation.replies import make_completion
from alignlab.generation.stops import StopStrings, model_eos_ids, stop_token_ids

Tensor = torch.Tensor


@dataclass(frozen=True)
class Rollout:
    """Replies to N/n prompts, n each: sample j of prompt i is row i·n + j. Tensors on the model's device."""

    prompt_ids: Tensor  # (N, P) long, left-padded with the pad id
    prompt_mask: Tensor  # (N, P) long, 1 on prompt tokens
    response_ids: Tensor  # (N, R) long, right-padded with the pad id
    response_mask: Tensor  # (N, R) long, 1 on generated tokens (a final stop token included)
    logprobs: Tensor  # (N, R) float32, each token's log-prob under the sampling distribution; 0 on padding
    finish_reasons: tuple[FinishReason, ...]  # (N,) "stop" or "length"
    top_ids: Tensor | None = None  # (N, R, k) long, most likely tokens per position (params.top_logprobs)
    top_logprobs: Tensor | None = None  # (N, R, k) float32, their log-probs

    def sequences(self) -> tuple[Tensor, Tensor, Tensor]:
        """(N, P + R) input ids, attention mask and position ids of prompt + reply, for a forward pass.

        Position ids count real tokens only, as during generation: a left-padded row run with the
        default positions (0, 1, ...) would see its tokens at the wrong positions.
        """
        ids = torch.cat([self.prompt_ids, self.response_ids], dim=1)
        mask = torch.cat([self.prompt_mask, self.response_mask], dim=1)
        return ids, mask, (mask.cumsum(-1) - 1).clamp(min=0)


def unwrap_model(model):
    """The module that holds the weights: DDP / DataParallel / DeepSpeed / compiled wrappers removed.

    accelerate's mixed-precision forward wrapper is kept, so generation runs in the training dtype.
    """
    from accelerate.utils import extract_model_from_parallel

    return extract_model_from_parallel(model, keep_fp32_wrapper=True)


@contextmanager
def eval_mode(model: torch.nn.Module) -> Iterator[None]:
    """Eval mode (no dropout) inside; every submodule's own mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, training in modes:
            m.training = training


class HFGenerator:
    """Batched, KV-cached generation from a Hugging Face causal LM and its tokenizer.

    max_batch_rows: rows decoded together (prompts × n; all n samples of a prompt share a batch,
    so a batch holds at least one prompt). stop_token_ids: overrides the default stop tokens
    (eos, the end-of-turn tokens the tokenizer knows, the model's generation-config eos ids).
    compact_fraction: finished rows are dropped from a batch once they are this fraction of it.
    """

    def __init__(
        self,
        model,
        tokenizer,
        *,
        max_batch_rows: int = 64,
        stop_token_ids: Sequence[int] | None = None,
        compact_fraction: float = 0.25,
    ) -> None:
        if max_batch_rows < 1:
            raise ValueError(f"max_batch_rows must be at least 1, got {max_batch_rows}")
        self.model = unwrap_model(model)
        self.tokenizer = tokenizer
        self.max_batch_rows = max_batch_rows
        self.compact_fraction = compact_fraction
        self.stop_token_ids = (
            sorted(set(stop_token_ids)) if stop_token_ids is not None
            else _default_stops(tokenizer, self.model)
        )  # fmt: skip
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.pad_token_id = int(pad) if pad is not None else 0

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def generate(
        self,
        prompts: Sequence[Prompt],
        params: SamplingParams,
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[list[Completion]]:
        """`params.n` completions per conversation, in prompt order (the `Generator` protocol).

        A conversation the chat template rejects, or one longer than the model's context, gets
        n completions with finish_reason "error"; the others are generated.
        """
        encoded: list[list[int] | AlignlabError] = []
        for i, prompt in enumerate(prompts):
            try:
                encoded.append(self._checked(encode_prompt(self.tokenizer, prompt, tools), i))
            except AlignlabError as e:
                encoded.append(e)
        ok = [i for i, e in enumerate(encoded) if not isinstance(e, AlignlabError)]
        rollout = self.generate_ids([encoded[i] for i in ok], params) if ok else None
        out = [
            [Completion("", finish_reason="error", error=str(e))] * params.n
            if isinstance(e, AlignlabError)
            else []
            for e in encoded
        ]
        for k, i in enumerate(ok):
            out[i] = [self._completion(rollout, k * params.n + j, params) for j in range(params.n)]
        return out

    def generate_ids(self, prompt_ids: Sequence[Sequence[int]], params: SamplingParams) -> Rollout:
        """Replies to prompts given as token ids (each ending with the generation prompt): a `Rollout`."""
        prompts = [self._checked(list(p), i) for i, p in enumerate(prompt_ids)]
        if not prompts:
            raise ValueError("no prompts to generate from")
        # One random stream for the whole call: every row draws from it at every step.
        generator = torch.Generator(device=self.device).manual_seed(params.seed)
        shared = PromptSampling(params, self._stop_strings(params), generator)
        batches = self._decode(prompts, [shared] * len(prompts))
        return self._assemble(prompts, batches, params.n, self.device)

    def generate_each(
        self,
        prompt_ids: Sequence[Sequence[int]],
        params: Sequence[SamplingParams],
        *,
        listener: Listener | None = None,
    ) -> list[list[Completion]]:
        """`params[i].n` completions of prompt i (token ids ending with the generation prompt), in order.

        Each prompt is sampled under its own params with a random stream of its own, seeded by its
        `seed`: what a prompt gets does not depend on the other prompts of the call, and equals
        `generate_ids([ids], params)` alone. `listener` hears each token as it is chosen and each
        prompt's completions once its samples end; a prompt it reports cancelled stops generating
        and gets completions with finish_reason "error".
        """
        prompts = [self._checked(list(p), i) for i, p in enumerate(prompt_ids)]
        if len(params) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(params)} sampling params")
        if not prompts:
            raise ValueError("no prompts to generate from")
        sampling = [
            PromptSampling(p, self._stop_strings(p), torch.Generator(device=self.device).manual_seed(p.seed))
            for p in params
        ]
        collector = Collector(self.tokenizer, params, listener)
        self._decode(prompts, sampling, collector)
        return collector.completions()

    def _stop_strings(self, params: SamplingParams) -> StopStrings | None:
        return StopStrings(self.tokenizer, params.stop) if params.stop else None

    def _decode(
        self, prompts: list[list[int]], sampling: list[PromptSampling], collector: Collector | None = None
    ) -> list[tuple[list[int], BatchOutput]]:
        """Decode the prompts in batches of up to `max_batch_rows` rows, the longest prompts first."""
        device = self.device
        stop_ids = torch.tensor(self.stop_token_ids, dtype=torch.long, device=device)
        # Longest first: peak memory early.
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
        batches: list[tuple[list[int], BatchOutput]] = []
        with eval_mode(self.model):
            for batch in _batches(order, [sampling[i].params.n for i in order], self.max_batch_rows):
                ids, mask = left_pad([prompts[i] for i in batch], self.pad_token_id, device)
                on_step = collector.reporter(batch) if collector is not None else None
                out = decode_batch(self.model, ids, mask, [sampling[i] for i in batch], stop_ids,
                                   compact_fraction=self.compact_fraction, on_step=on_step)  # fmt: skip
                batches.append((batch, out))
        return batches

    def _checked(self, ids: list[int], index: int) -> list[int]:
        limit = max_positions(self.model)
        if not ids:
            raise DataError(f"prompt {index} has no tokens: give it at least one")
        if limit is not None and len(ids) >= limit:
            raise DataError(
                f"prompt {index} has {len(ids)} tokens but the model's context is {limit}: shorten the prompt"
            )
        return ids

    def _assemble(
        self, prompts: list[list[int]], batches: list[tuple[list[int], BatchOutput]], n: int, device
    ) -> Rollout:
        """Scatter each batch's rows (b·n + j) to their places in the input order (i·n + j)."""
        total = len(prompts) * n
        width = max(int(out.lengths.max()) for _, out in batches)
        k = batches[0][1].top_ids.shape[-1] if batches[0][1].top_ids is not None else 0
        response = torch.full((total, width), self.pad_token_id, dtype=torch.long, device=device)
        logprobs = torch.zeros(total, width, dtype=torch.float32, device=device)
        top_ids = torch.zeros(total, width, k, dtype=torch.long, device=device) if k else None
        top_lp = torch.zeros(total, width, k, dtype=torch.float32, device=device) if k else None
        lengths = torch.zeros(total, dtype=torch.long, device=device)
        finish: list[FinishReason] = ["length"] * total
        for batch, out in batches:
            dest = (
                torch.tensor(batch, device=device)[:, None] * n + torch.arange(n, device=device)
            ).reshape(-1)
            steps = min(out.tokens.shape[1], width)
            response[dest, :steps], logprobs[dest, :steps], lengths[dest] = (
                out.tokens,
                out.logprobs,
                out.lengths,
            )
            if k:
                top_ids[dest, :steps], top_lp[dest, :steps] = out.top_ids, out.top_logprobs
            for row, reason in zip(dest.tolist(), out.finish, strict=True):
                finish[row] = reason
        response_mask = (torch.arange(width, device=device)[None] < lengths[:, None]).long()
        response = response.masked_fill(response_mask == 0, self.pad_token_id)
        logprobs = logprobs * response_mask
        if k:
            top_ids, top_lp = top_ids * response_mask[..., None], top_lp * response_mask[..., None]
        prompt_ids, prompt_mask = left_pad([p for p in prompts for _ in range(n)], self.pad_token_id, device)
        return Rollout(
            prompt_ids, prompt_mask, response, response_mask, logprobs, tuple(finish), top_ids, top_lp
        )

    def _completion(self, rollout: Rollout, row: int, params: SamplingParams) -> Completion:
        length = int(rollout.response_mask[row].sum())
        top = None
        if rollout.top_ids is not None:
            top = list(
                zip(
                    rollout.top_ids[row, :length].tolist(),
                    rollout.top_logprobs[row, :length].tolist(),
                    strict=True,
                )
            )
        return make_completion(
            self.tokenizer,
            rollout.response_ids[row, :length].tolist(),
            rollout.logprobs[row, :length].tolist(),
            top,
            rollout.finish_reasons[row],
            params,
        )


def _batches(order: list[int], counts: list[int], max_rows: int) -> Iterator[list[int]]:
    """Consecutive prompts of `order` (with `counts` rows each) grouped into batches of <= `max_rows` rows.

    A prompt with more rows than `max_rows` is a batch of its own.
    """
    batch: list[int] = []
    rows = 0
    for i, n in zip(order, counts, strict=True):
        if batch and rows + n > max_rows:
            yield batch
            batch, rows = [], 0
        batch.append(i)
        rows += n
    if batch:
        yield batch


def _default_stops(tokenizer, model) -> list[int]:
    return stop_token_ids(tokenizer, model_eos_ids(model))


def left_pad(prompts: Sequence[Sequence[int]], pad_id: int, device) -> tuple[Tensor, Tensor]:
    """(B, P) ids left-padded with `pad_id` and the (B, P) long mask of real tokens."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, p in enumerate(prompts):
        if p:
            ids[row, width - len(p) :] = torch.tensor(p, dtype=torch.long)
            mask[row, width - len(p) :] = 1
    return ids.to(device), mask.to(device)

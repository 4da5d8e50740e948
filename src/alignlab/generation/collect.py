"""Per-prompt bookkeeping of `HFGenerator.generate_each`: each decoding step's tokens go to their
samples, a `Listener` hears them as they come, and a prompt's completions are made as soon as all
its samples end (not when the whole batch does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from alignlab.generation.base import Completion, FinishReason, SamplingParams
from alignlab.generation.decode import StepTokens
from alignlab.generation.replies import make_completion


@dataclass(frozen=True)
class TokenEvent:
    """One generated token of one sample, as `generate_each` chooses it."""

    token: int
    logprob: float  # under the sampling distribution (greedy: softmax(logits))
    top_ids: tuple[int, ...] = ()  # most likely tokens, when params.top_logprobs > 0
    top_logprobs: tuple[float, ...] = ()
    finish: FinishReason | None = None  # set when this token ends the sample


class Listener(Protocol):
    """What `generate_each` reports while it decodes; called on the generating thread."""

    def token(self, request: int, sample: int, event: TokenEvent) -> None: ...

    def done(self, request: int, completions: list[Completion]) -> None: ...

    def cancelled(self, request: int) -> bool: ...


class _Sample:
    """The tokens of one sample so far."""

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.logprobs: list[float] = []
        self.top: list[tuple[list[int], list[float]]] = []
        self.finish: FinishReason = "length"


class Collector:
    """`generate_each`'s bookkeeping: each step's tokens to their samples; completions once a prompt ends."""

    def __init__(self, tokenizer, params: Sequence[SamplingParams], listener: Listener | None) -> None:
        self.tokenizer, self.params, self.listener = tokenizer, list(params), listener
        self.samples = [[_Sample() for _ in range(p.n)] for p in params]
        self.left = [p.n for p in params]  # samples still generating
        self.out: list[list[Completion] | None] = [None] * len(params)

    def reporter(self, batch: list[int]):
        """The `on_step` callback of one decoding batch holding prompts `batch` (in that order)."""
        where = [(i, j) for i in batch for j in range(self.params[i].n)]

        def on_step(step: StepTokens) -> list[int]:
            for k, row in enumerate(step.rows):
                i, j = where[row]
                if self.out[i] is None:
                    self._add(i, j, step, k)
            cancelled = {
                i for i in batch if self.out[i] is None and self.listener and self.listener.cancelled(i)
            }
            for i in cancelled:
                self.out[i] = [Completion("", finish_reason="error", error="cancelled")] * self.params[i].n
            return [row for row, (i, _) in enumerate(where) if i in cancelled]

        return on_step

    def _add(self, i: int, j: int, step: StepTokens, k: int) -> None:
        s, token, finish = self.samples[i][j], step.tokens[k], step.finish[k]
        s.ids.append(token)
        s.logprobs.append(step.logprobs[k])
        want = self.params[i].top_logprobs  # the batch computes its largest k for every row
        top = (step.top_ids[k][:want], step.top_logprobs[k][:want]) if step.top_ids is not None else ([], [])
        s.top.append(top)
        if self.listener is not None:
            self.listener.token(
                i, j, TokenEvent(token, step.logprobs[k], tuple(top[0]), tuple(top[1]), finish)
            )
        if finish is not None:
            s.finish = finish
            self.left[i] -= 1
            if self.left[i] == 0:
                p = self.params[i]
                self.out[i] = [
                    make_completion(
                        self.tokenizer, x.ids, x.logprobs, x.top if p.top_logprobs else None, x.finish, p
                    )
                    for x in self.samples[i]
                ]
                if self.listener is not None:
                    self.listener.done(i, self.out[i])

    def completions(self) -> list[list[Completion]]:
        missing = [i for i, c in enumerate(self.out) if c is None]
        if missing:  # every row ends by its max_new_tokens: this would be a decoding bug
            raise RuntimeError(f"prompts {missing} did not finish")
        return [c for c in self.out if c is not None]

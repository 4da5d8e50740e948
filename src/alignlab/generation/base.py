"""The `Generator` protocol: what every sampling backend returns, token by token.

RL rollouts, eval solvers, AI judges, critique-and-revise and the server all ask a `Generator` for
completions of conversations. A backend is an in-process Hugging Face model (`generation.hf`), an
OpenAI-compatible endpoint (`generation.http`), or a file of existing responses. Results are
token-level where the backend can tell: the generated token ids, the log-prob of each sampled token
under the distribution it was sampled from (after temperature / top-k / top-p), and why generation
stopped. Greedy decoding (temperature 0) reports the log-probs of the unprocessed distribution
softmax(logits), as OpenAI-compatible servers do; `top_logprobs` > 0 also returns, at every
position, that many most likely tokens of the same distribution (AI judges read P("A") vs P("B")
there). A prompt whose generation fails gives completions with `finish_reason="error"` and the
message in `error`, so a long eval records the failure and goes on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from alignlab.data.schema import Message

FinishReason = Literal["stop", "length", "error"]
Prompt = Sequence[Message]  # a conversation; the reply is the next assistant turn


@dataclass(frozen=True)
class SamplingParams:
    """How to sample; the same meaning for every backend (OpenAI's names where they exist)."""

    max_new_tokens: int = 128
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    top_k: int | None = None  # None = no top-k cut
    n: int = 1  # completions per prompt
    stop: tuple[str, ...] = ()  # stop strings (not included in the text); eos / end-of-turn always stop
    seed: int = 0
    top_logprobs: int = 0  # also return this many most likely tokens per position (0 = none)

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be at least 1 or None, got {self.top_k}")
        if self.n < 1:
            raise ValueError(f"n must be at least 1, got {self.n}")
        if self.top_logprobs < 0:
            raise ValueError(f"top_logprobs must be >= 0, got {self.top_logprobs}")


@dataclass(frozen=True)
class Completion:
    """One generated reply."""

    text: str  # decoded reply, special tokens and a matched stop string removed, stripped
    token_ids: tuple[int, ...] = ()  # generated tokens (empty when the backend cannot tell)
    logprobs: tuple[float, ...] | None = None  # per generated token, under the sampling distribution
    finish_reason: FinishReason = "stop"
    error: str | None = None  # why generation failed (finish_reason "error")
    # per generated token, {token text: log-prob} of the most likely tokens (SamplingParams.top_logprobs)
    top_logprobs: tuple[Mapping[str, float], ...] | None = None

    @property
    def failed(self) -> bool:
        return self.finish_reason == "error"


@runtime_checkable
class Generator(Protocol):
    """Anything that completes conversations: `params.n` completions per prompt, in prompt order."""

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]: ...

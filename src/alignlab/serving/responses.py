"""Response bodies in OpenAI's shapes: `chat.completion`, `chat.completion.chunk`, log-prob entries.

Log-probs: one entry per generated token, the final end-of-turn token included (it is generated
and scored like any other; its text is the special token's). `top_logprobs` lists the most likely
tokens of the same distribution, most likely first; tokens that decode to the same text keep the
likeliest (as `Completion.top_logprobs` does), so a list can be shorter than asked. A log-prob of
-inf (a token that top-k / top-p excluded) is sent as -9999.0, as vLLM does: JSON has no infinity.
"""

from __future__ import annotations

import json
import math
import secrets
import time
from collections.abc import Mapping, Sequence
from typing import Any

from alignlab.generation.base import Completion

NEG_INF_LOGPROB = -9999.0


def new_id() -> str:
    return f"chatcmpl-{secrets.token_hex(12)}"


def _lp(value: float) -> float:
    return value if math.isfinite(value) else NEG_INF_LOGPROB


def _entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": _lp(logprob), "bytes": list(token.encode("utf-8"))}


def token_texts(tokenizer, ids: Sequence[int]) -> list[str]:
    """Each token's own text (special tokens written out), as log-prob entries name them."""
    return tokenizer.batch_decode([[i] for i in ids], clean_up_tokenization_spaces=False)


def logprob_entries(
    tokens: Sequence[str], logprobs: Sequence[float], tops: Sequence[Mapping[str, float]] | None
) -> list[dict[str, Any]]:
    """OpenAI's `logprobs.content`: per token {token, logprob, bytes, top_logprobs}."""
    return [
        {**_entry(tok, lp), "top_logprobs": [_entry(t, v) for t, v in (tops[i] if tops else {}).items()]}
        for i, (tok, lp) in enumerate(zip(tokens, logprobs, strict=True))
    ]


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}  # fmt: skip


class ResponseMaker:
    """The bodies of one request's response (its id, creation time and model name fixed)."""

    def __init__(self, model: str, tokenizer, *, logprobs: bool, include_usage: bool = False) -> None:
        self.id, self.created, self.model = new_id(), int(time.time()), model
        self.tokenizer, self.logprobs, self.include_usage = tokenizer, logprobs, include_usage

    def completion(self, completions: Sequence[Completion], prompt_tokens: int) -> dict[str, Any]:
        choices = []
        for i, c in enumerate(completions):
            lp = None
            if self.logprobs:
                lp = {
                    "content": logprob_entries(
                        token_texts(self.tokenizer, c.token_ids), c.logprobs or (), c.top_logprobs
                    )
                }
            choices.append({"index": i, "message": {"role": "assistant", "content": c.text},
                            "logprobs": lp, "finish_reason": c.finish_reason})  # fmt: skip
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": choices, "usage": usage(prompt_tokens, sum(len(c.token_ids) for c in completions)),
                "system_fingerprint": None}  # fmt: skip

    def chunk(
        self,
        index: int,
        delta: dict[str, Any],
        *,
        logprobs: list[dict[str, Any]] | None = None,
        finish: str | None = None,
    ) -> str:
        choice = {
            "index": index,
            "delta": delta,
            "logprobs": {"content": logprobs} if logprobs is not None else None,
            "finish_reason": finish,
        }
        return self._event({**self._chunk_head(), "choices": [choice]})

    def usage_chunk(self, prompt_tokens: int, completion_tokens: int) -> str:
        return self._event(
            {**self._chunk_head(), "choices": [], "usage": usage(prompt_tokens, completion_tokens)}
        )

    def _chunk_head(self) -> dict[str, Any]:
        head = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "system_fingerprint": None,
        }
        return {**head, "usage": None} if self.include_usage else head

    @staticmethod
    def _event(data: Mapping[str, Any]) -> str:
        return f"data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'), allow_nan=False)}\n\n"


def error_event(body: Mapping[str, Any]) -> str:
    """An error after the stream began (HTTP 200 already sent): the client raises on it."""
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"


DONE = "data: [DONE]\n\n"

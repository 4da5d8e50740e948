"""A completion from generated tokens: text (special tokens removed, cut at a stop string, stripped),
log-probs and top log-probs. Every backend that holds token ids builds its `Completion`s here, and
the server's streamed text is decoded the same way, so streamed and whole replies agree.
"""

from __future__ import annotations

from collections.abc import Sequence

from alignlab.generation.base import Completion, FinishReason, SamplingParams
from alignlab.generation.stops import cut_at_stop


def decode_reply(tokenizer, ids: Sequence[int]) -> str:
    """The generated tokens as text, special tokens removed and nothing else changed.

    No clean-up of tokenisation spaces (" ," -> ","): it rewrites text already decoded, so a
    streamed reply (decoded as it grows) could not add up to the final one.
    """
    return tokenizer.decode(list(ids), skip_special_tokens=True, clean_up_tokenization_spaces=False)


def reply_text(tokenizer, ids: Sequence[int], stop: Sequence[str]) -> tuple[str, bool]:
    """A completion's text (cut at the first stop string, stripped) and whether a stop string cut it."""
    text, cut = cut_at_stop(decode_reply(tokenizer, ids), stop)
    return text.strip(), cut


def top_dict(tokenizer, ids: Sequence[int], logprobs: Sequence[float]) -> dict[str, float]:
    """{decoded token: log-prob}, most likely first; tokens that decode alike keep the likeliest."""
    out: dict[str, float] = {}
    for text, lp in zip(tokenizer.batch_decode([[i] for i in ids]), logprobs, strict=True):
        out.setdefault(text, lp)
    return out


def make_completion(
    tokenizer,
    ids: list[int],
    logprobs: list[float],
    top: Sequence[tuple[Sequence[int], Sequence[float]]] | None,
    finish: FinishReason,
    params: SamplingParams,
) -> Completion:
    """A `Completion` from one sample's tokens, log-probs and (top ids, top log-probs) per position."""
    text, cut = reply_text(tokenizer, ids, params.stop)
    k = params.top_logprobs
    tops = tuple(top_dict(tokenizer, i[:k], lp[:k]) for i, lp in top) if top is not None and k else None
    return Completion(text, tuple(ids), tuple(logprobs), "stop" if cut else finish, None, tops)

"""`LogLikelihood`: how likely a model finds a given reply, for multiple-choice suites (TruthfulQA
MC1 / MC2 score each answer option by its log-probability as the assistant's reply).

`HFLogLikelihood` implements it over an in-process Hugging Face model: the conversation and the
reply are rendered with the tokenizer's chat template (`encode_prompt_response`), so the reply's
tokens and its end-of-turn token are the labels, and summed through `model_sequence_logps`
(no full-vocabulary float32 log-softmax). An endpoint or a responses file cannot do this.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from alignlab.generation.base import Prompt

Request = tuple[Prompt, str]  # (conversation ending with a user turn, candidate assistant reply)


@runtime_checkable
class LogLikelihood(Protocol):
    """Summed log-probability (nats) of each candidate reply given its conversation, in order."""

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]: ...


class HFLogLikelihood:
    """`LogLikelihood` of an in-process causal LM; requests are batched `batch_size` at a time.

    The reply's log-prob covers its tokens and the template's end-of-turn token: a complete reply
    is scored, so an option that is a prefix of another is not favoured. Prompts longer than
    `max_length` tokens lose their start (the reply is kept whole).
    """

    def __init__(self, model, tokenizer, *, batch_size: int = 16, max_length: int | None = None):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.model, self.tokenizer = model, tokenizer
        self.batch_size, self.max_length = batch_size, max_length

    def loglikelihood(self, requests: Sequence[Request]) -> list[float]:
        import torch

        from alignlab.data.collators import pad_batch
        from alignlab.data.schema import assistant
        from alignlab.data.templating import encode_prompt_response, fit_to_length
        from alignlab.modeling.logprobs import TokenBatch, model_sequence_logps

        encoded = [encode_prompt_response(self.tokenizer, list(p), [assistant(r)]) for p, r in requests]
        if self.max_length is not None:
            encoded = [fit_to_length(e, self.max_length) for e in encoded]
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        device = next(self.model.parameters()).device
        out: list[float] = []
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                for start in range(0, len(encoded), self.batch_size):
                    batch = pad_batch(encoded[start : start + self.batch_size], pad)
                    tokens = TokenBatch(
                        *(batch[k].to(device) for k in ("input_ids", "attention_mask", "labels"))
                    )
                    out += model_sequence_logps(self.model, tokens).logps.tolist()
        finally:
            self.model.train(was_training)
        return out

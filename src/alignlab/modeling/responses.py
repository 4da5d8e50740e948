"""One forward pass over prompt + response rows (RL rollouts): the logits, log-probs and entropy
of the response tokens.

Rows are a left-padded prompt of width `start` followed by a right-padded response (a
`generation.hf.Rollout`'s `sequences()`); position ids must come with them (real tokens counted
from 0), or absolute-position models read left-padded rows at the wrong positions. The logits at
column start − 1 + t predict the response token at column start + t, so the response's logits
are columns start − 1 … T − 2. For plain-head architectures only those columns go through the LM
head (`modeling.logprobs`); the prompt's logits are never made.
"""

from __future__ import annotations

import torch

from alignlab.modeling.logprobs import aligned_token_logps, plain_head_parts

Tensor = torch.Tensor


def response_logits(model, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, start: int,
                    temperature: float = 1.0) -> Tensor:
    """(B, T − start, V) logits, row t predicting the token at column start + t, divided by
    `temperature` (sampling's own scaling, so log-probs are those of the tempered distribution).

    input_ids, attention_mask, position_ids: (B, T); start ≥ 1, the width of the prompt columns.
    """
    if start < 1:
        raise ValueError(f"a response needs a prompt before it: start must be >= 1, got {start}")
    kwargs = dict(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                  use_cache=False)
    parts = plain_head_parts(model)
    if parts is not None:
        backbone, head = parts
        logits = head(backbone(**kwargs).last_hidden_state[:, start - 1 : -1])
    else:
        logits = model(**kwargs).logits[:, start - 1 : -1]
    return logits / temperature if temperature != 1.0 else logits


def response_logps(model, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, start: int,
                   temperature: float = 1.0) -> Tensor:
    """(B, T − start) float32 log-probs of the response tokens (0 on padding); see `response_logits`."""
    logits = response_logits(model, input_ids, attention_mask, position_ids, start, temperature)
    return aligned_token_logps(logits, input_ids[:, start:], attention_mask[:, start:])

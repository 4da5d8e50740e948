"""Next-token negative log-likelihood on the unmasked (assistant) tokens."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from alignlab.data.labels import IGNORE_INDEX


class TokenNLL(NamedTuple):
    total: torch.Tensor  # scalar: summed NLL over every unmasked target token
    num_tokens: torch.Tensor  # scalar: how many targets were summed


def token_nll(logits: torch.Tensor, labels: torch.Tensor) -> TokenNLL:
    """Summed next-token NLL and its token count.

    logits: (B, T, V) for inputs x_0..x_{T-1}; labels: (B, T) with IGNORE_INDEX where no loss is
    taken. Position t predicts labels[t + 1], so the last logit and first label are dropped.
    Returning the sum (not the mean) lets the training loop normalise over every token of an
    optimizer step, so batch 8 x accumulation 1 equals batch 1 x accumulation 8.
    """
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    total = F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    return TokenNLL(total, (shift_labels != IGNORE_INDEX).sum())


def per_sequence_nll(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row summed NLL (B,) and per-row target counts (B,), for evals and packing checks."""
    shift_logits = logits[:, :-1, :].float()
    shift_labels = labels[:, 1:]
    nll = F.cross_entropy(
        shift_logits.transpose(1, 2), shift_labels, ignore_index=IGNORE_INDEX, reduction="none"
    )
    mask = shift_labels != IGNORE_INDEX
    return (nll * mask).sum(-1), mask.sum(-1)

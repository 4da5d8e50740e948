"""How per-token RL losses become one number: a SUM over items and the count of those items.

The one training loop (`alignlab.training.loop`) takes from each micro-batch the SUM of its
per-item losses and an item count, and divides by the items of the whole optimizer step on every
process. Each aggregation mode therefore names its item and its per-item loss, so that
Σ over micro-batches of `total`, divided by Σ of `count`, is the loss of the whole batch:

    mode                        item       per-item loss                        paper / library
    "token-mean"                token      ℓ_{i,t}                              PPO in verl, OpenRLHF;
                                                                                 DAPO (Yu et al. 2025)
    "seq-mean-token-mean"       sequence   (1/|o_i|)·Σ_t ℓ_{i,t}                GRPO (Shao et al. 2024,
                                                                                 eq. 3)
    "seq-mean-token-sum-norm"   sequence   (1/C)·Σ_t ℓ_{i,t}, C a constant      Dr. GRPO (Liu et al.
                                                                                 2025, sec. 3.1)

"token-mean" weights every token of the step equally, so long responses weigh more;
"seq-mean-token-mean" weights every response equally, so a token of a short response weighs
more (Liu et al. 2025 show this biases GRPO toward long wrong answers); "seq-mean-token-sum-norm"
replaces 1/|o_i| by a constant C (the generation budget, max new tokens), removing that bias: the
loss is an unbiased REINFORCE-style sum per response, scaled by a constant.

A step function passes `total` as `StepOutput.loss` and `count` as its item count (use
`loss_item_count` for the loop's `count_items`). Every micro-batch of one run must use one mode.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from alignlab.errors import ConfigError
from alignlab.losses.masked import masked_mean, masked_sum

Tensor = torch.Tensor
LossAggregation = Literal["token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm"]
LOSS_AGGREGATIONS: tuple[str, ...] = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum-norm")


def loss_aggregation_names() -> tuple[str, ...]:
    """The aggregation modes by name (configs read them here)."""
    return LOSS_AGGREGATIONS


class LossSum(NamedTuple):
    total: Tensor  # scalar: the SUM of the per-item losses of this (micro-)batch
    count: Tensor  # scalar: how many items the sum runs over (tokens or sequences), float

    @property
    def mean(self) -> Tensor:
        """total / count: the loss of this batch alone (0 for an empty batch)."""
        return self.total / self.count.clamp(min=1.0)


def check_loss_aggregation(mode: str, norm_constant: float | None = None) -> None:
    """Raise `ConfigError` for an unknown mode, or for Dr. GRPO's mode without a positive constant."""
    if mode not in LOSS_AGGREGATIONS:
        raise ConfigError(f"unknown loss aggregation {mode!r}; choose one of: {', '.join(LOSS_AGGREGATIONS)}")
    if mode == "seq-mean-token-sum-norm" and (norm_constant is None or norm_constant <= 0):
        raise ConfigError(
            f"loss aggregation 'seq-mean-token-sum-norm' needs a positive constant normaliser "
            f"(the generation budget, max new tokens), got {norm_constant!r}"
        )


def loss_item_count(mask: Tensor, mode: str) -> int:
    """Items a batch with response mask (B, T) brings under `mode`: its response tokens or its rows.

    Rows without any response token still count as sequences: their loss is 0, and counting them
    keeps the count independent of how a batch is cut into micro-batches.
    """
    check_loss_aggregation(mode, norm_constant=1.0)
    return int((mask != 0).sum()) if mode == "token-mean" else int(mask.shape[0])


def aggregate_loss(
    token_losses: Tensor, mask: Tensor, mode: str = "token-mean", *, norm_constant: float | None = None
) -> LossSum:
    """Sum of per-item losses and the item count under `mode` (see the module docstring).

    token_losses: (B, T) per-token loss ℓ_{i,t}; mask: (B, T), 1 on response tokens.
    norm_constant: C, required by "seq-mean-token-sum-norm" and ignored by the other modes.
    Returns `LossSum(total, count)`; `.mean` is this batch's loss. Gradients flow through `total`.
    """
    check_loss_aggregation(mode, norm_constant)
    if mode == "token-mean":
        return LossSum(masked_sum(token_losses, mask), (mask != 0).sum().to(token_losses.dtype))
    count = torch.tensor(float(mask.shape[0]), dtype=token_losses.dtype, device=token_losses.device)
    if mode == "seq-mean-token-mean":
        return LossSum(masked_mean(token_losses, mask, dim=-1).sum(), count)
    assert norm_constant is not None  # checked above
    return LossSum(masked_sum(token_losses, mask, dim=-1).sum() / norm_constant, count)

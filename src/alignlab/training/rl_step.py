"""The update of online RL, as the one loop's step: the policy's clipped surrogate (and, for PPO,
the critic's clipped value loss) on a micro-batch of a rollout batch.

`PolicyCritic` holds what a run trains in one module, so the loop prepares, checkpoints and
saves one model: the policy and, for PPO, its separate critic (with its own learning rate through
`lr_multipliers`). Its `forward` is the one training forward pass (so DDP sees one call) and
returns the response tokens' logits and values.

The step returns the SUM of per-item losses under the run's loss aggregation (tokens, or
sequences) and `rl_item_count` counts the same items, the loop's contract; the value loss is
added with weight `value_coef` over the same items. Metrics: pg_loss, clip_frac, approx_kl (the
k3 estimate of KL(π_old‖π) per token, which early stopping reads), entropy, and with the KL in
the loss `kl_loss`; value_loss and value_clip_frac for PPO.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from alignlab.losses.aggregation import loss_item_count
from alignlab.losses.entropy import entropy_from_logits
from alignlab.losses.policy import clipped_value_loss, ppo_policy_loss
from alignlab.modeling.logprobs import aligned_token_logps
from alignlab.modeling.responses import response_logits
from alignlab.modeling.value_model import token_values
from alignlab.training.loop import StepOutput

Tensor = torch.Tensor


class PolicyCritic(torch.nn.Module):
    """The policy and (PPO) its critic, trained together by the loop."""

    def __init__(self, policy: torch.nn.Module, critic: torch.nn.Module | None = None,
                 critic_lr_multiplier: float = 1.0) -> None:
        super().__init__()
        self.policy, self.critic = policy, critic
        self.lr_multipliers = {"critic.": critic_lr_multiplier} if critic is not None else {}

    def forward(self, input_ids: Tensor, attention_mask: Tensor, position_ids: Tensor, start: int,
                temperature: float = 1.0) -> tuple[Tensor, Tensor | None]:
        """(B, R, V) response logits (tempered) and (B, R) values (None without a critic)."""
        logits = response_logits(self.policy, input_ids, attention_mask, position_ids, start, temperature)
        values = None
        if self.critic is not None:
            values = token_values(self.critic, input_ids, attention_mask, position_ids, start)
        return logits, values

    def gradient_checkpointing_enable(self, **kwargs: Any) -> None:
        for module in (self.policy, self.critic):
            if module is not None:
                module.gradient_checkpointing_enable(**kwargs)
                if hasattr(module, "peft_config"):
                    module.enable_input_require_grads()


@dataclass(frozen=True)
class UpdateSettings:
    loss_agg: str
    norm_constant: float  # the generation budget (max new tokens), for "seq-mean-token-sum-norm"
    temperature: float
    clip_eps: float = 0.2
    clip_eps_high: float | None = None
    dual_clip: float | None = None
    entropy_coef: float = 0.0
    kl_in_loss: bool = False
    kl_estimator: str = "k3"
    value_clip: float | None = 0.2
    value_coef: float = 0.5


def rl_item_count(loss_agg: str) -> Callable[[dict[str, Any]], int]:
    """The loop's `count_items`: response tokens or rows of a micro-batch, as `loss_agg` counts."""
    return lambda batch: loss_item_count(batch["attention_mask"][:, batch["start"]:], loss_agg)


def make_rl_step(s: UpdateSettings) -> Callable[[torch.nn.Module, dict[str, Any]], StepOutput]:
    """The step of every online RL method; see the module docstring."""

    def step(model: torch.nn.Module, batch: dict[str, Any]) -> StepOutput:
        start = batch["start"]
        mask = batch["attention_mask"][:, start:]
        logits, values = model(batch["input_ids"], batch["attention_mask"], batch["position_ids"], start,
                               s.temperature)
        logps = aligned_token_logps(logits, batch["input_ids"][:, start:], mask)
        if s.entropy_coef > 0:
            entropy = entropy_from_logits(logits, mask)
        else:
            with torch.no_grad():
                entropy = entropy_from_logits(logits.detach(), mask)
        pol = ppo_policy_loss(
            logps, batch["old_logps"], batch["advantages"], mask, clip_eps=s.clip_eps,
            clip_eps_high=s.clip_eps_high, dual_clip=s.dual_clip, loss_agg=s.loss_agg,
            norm_constant=s.norm_constant, ref_logps=batch["ref_logps"] if s.kl_in_loss else None,
            kl_coef=float(batch["kl_coef"]), kl_estimator=s.kl_estimator,
            entropy=entropy if s.entropy_coef > 0 else None, entropy_coef=s.entropy_coef,
        )
        metrics = {"pg_loss": float(pol.pg_loss), "clip_frac": float(pol.clip_frac),
                   "approx_kl": float(pol.approx_kl), "entropy": float((entropy * mask).sum() / mask.sum())}
        if s.dual_clip is not None:
            metrics["dual_clip_frac"] = float(pol.dual_clip_frac)
        if s.kl_in_loss:
            metrics["kl_loss"] = float(pol.kl)
        loss = pol.loss
        if values is not None:
            val = clipped_value_loss(values, batch["values"], batch["returns"], mask, clip_range=s.value_clip,
                                     loss_agg=s.loss_agg, norm_constant=s.norm_constant)
            loss = loss + s.value_coef * val.loss
            metrics.update(value_loss=float(val.loss.detach() / val.num_items.clamp(min=1)),
                           value_clip_frac=float(val.clip_frac))
        return StepOutput(loss=loss, metrics=metrics)

    return step

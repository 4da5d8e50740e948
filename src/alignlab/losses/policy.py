"""PPO-style policy and value losses, per token, aggregated as the training loop expects.

Supported: the clipped surrogate (Schulman et al. 2017, eq. 7) with an optional asymmetric upper
clip (DAPO's clip-higher, Yu et al. 2025) and dual clip (Ye et al. 2020); the KL penalty inside the
loss (GRPO) and an entropy bonus; the clipped value loss; the approximate KL between the rollout
policy and the current one (for early stopping); clip fractions and explained variance for logs.
PPO, GRPO, RLOO and Dr. GRPO all use `ppo_policy_loss`; they differ in their advantages
(`alignlab.losses.advantages`) and loss aggregation (`alignlab.losses.aggregation`).

Shapes: every per-token tensor is (B, T), position t holding the token sampled at t (shift the
model's logits before computing log-probs); mask (B, T) is 1 on response tokens. Each loss returns
`loss`, the SUM of per-item losses under its aggregation mode, and `num_items`, their count: a step
function returns `StepOutput(loss=out.loss, ...)` and counts items with `loss_item_count`, and the
loop divides by the items of the whole optimizer step (see `alignlab.training.loop`). Metrics are
detached token means over this batch's response tokens.
Not here: log-probs and entropy from a model (`alignlab.modeling.logprobs`, `losses.entropy`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from alignlab.losses.aggregation import aggregate_loss
from alignlab.losses.kl import token_kl
from alignlab.losses.masked import masked_mean, masked_var

Tensor = torch.Tensor


class PolicyLossOutput(NamedTuple):
    loss: Tensor  # scalar: SUM of per-item losses under `loss_agg` (surrogate + β·KL − c·entropy)
    num_items: Tensor  # scalar: tokens ("token-mean") or sequences (the other modes)
    pg_loss: Tensor  # scalar: token mean of the clipped surrogate alone, detached
    clip_frac: Tensor  # scalar: share of response tokens where a clip is active (zero gradient)
    dual_clip_frac: Tensor  # scalar: share of response tokens where the dual clip is active
    approx_kl: Tensor  # scalar: k3 estimate of KL(π_old‖π), per token, detached
    kl: Tensor  # scalar: per-token KL(π‖π_ref) estimate when ref_logps is given, else 0, detached
    entropy: Tensor  # scalar: token mean of `entropy` when given, else 0, detached


class ValueLossOutput(NamedTuple):
    loss: Tensor  # scalar: SUM of per-item value losses under `loss_agg`
    num_items: Tensor  # scalar: tokens or sequences, as for the policy loss
    clip_frac: Tensor  # scalar: share of response tokens where the clipped error is the larger one
    explained_variance: Tensor  # scalar: 1 − Var[R − V]/Var[R] over response tokens, detached


def approx_kl(logps: Tensor, old_logps: Tensor, mask: Tensor, estimator: str = "k3") -> Tensor:
    """Token mean of KL(π_old‖π) over the response tokens, a detached scalar, for early stopping.

    logps: (B, T) current policy; old_logps: (B, T) the policy that sampled the tokens (so the
    samples come from π_old and `token_kl(old, new)` applies). "k3" (Schulman 2020) is what
    verl and OpenAI Spinning Up call approx_kl; "k1" is the mean of log π_old − log π.
    """
    return masked_mean(token_kl(old_logps.detach(), logps.detach(), estimator), mask)


def ppo_policy_loss(
    logps: Tensor,
    old_logps: Tensor,
    advantages: Tensor,
    mask: Tensor,
    *,
    clip_eps: float = 0.2,
    clip_eps_high: float | None = None,
    dual_clip: float | None = None,
    loss_agg: str = "token-mean",
    norm_constant: float | None = None,
    ref_logps: Tensor | None = None,
    kl_coef: float = 0.0,
    kl_estimator: str = "k3",
    entropy: Tensor | None = None,
    entropy_coef: float = 0.0,
) -> PolicyLossOutput:
    """Clipped surrogate loss (PPO, Schulman et al. 2017, eq. 7), per token, then aggregated.

    logps (B, T): log π_θ of the sampled tokens, with gradient; old_logps (B, T): log π_old at
    rollout time; advantages (B, T); mask (B, T). With ρ = exp(logps − old_logps) and A = advantages,
        ℓ_t = max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε_high))                    ε_high = clip_eps_high or ε
        ℓ_t = min(ℓ_t, −A·c) where A < 0, when dual_clip = c > 1          (Ye et al. 2020, eq. 5)
        ℓ_t += β·kl_t(π‖π_ref), kl_t by `kl_estimator`, when ref_logps is given  (GRPO, Shao et al.
                                                                                 2024, eq. 3)
        ℓ_t −= c_H·H_t, H_t = entropy (B, T) from `entropy_from_logits`, when given
    Outside the clip range on the side the advantage pushes toward, ℓ_t is a constant: no gradient.
    The dual clip bounds the loss of a negative-advantage token whose ratio has grown large.
    ρ = 1 and A = 0 give ℓ_t = 0 with zero gradient. `loss_agg`, `norm_constant`: see
    `aggregate_loss`. Returns `PolicyLossOutput`.
    """
    if not logps.shape == old_logps.shape == advantages.shape == mask.shape:
        raise ValueError(
            "logps, old_logps, advantages and mask must share one (B, T) shape, got "
            f"{[tuple(x.shape) for x in (logps, old_logps, advantages, mask)]}"
        )
    if clip_eps <= 0 or (clip_eps_high is not None and clip_eps_high <= 0):
        raise ValueError(f"clip_eps and clip_eps_high must be > 0, got {clip_eps}, {clip_eps_high}")
    if dual_clip is not None and dual_clip <= 1.0:
        raise ValueError(f"dual_clip must be > 1 (Ye et al. 2020), got {dual_clip}")
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    advantages = advantages.detach()
    # ρ = 1 off the mask: padding log-probs may be anything, and exp(inf) would poison the backward.
    ratio = torch.exp(torch.where(mask != 0, logps - old_logps.detach(), 0.0))
    high = clip_eps if clip_eps_high is None else clip_eps_high
    unclipped = -advantages * ratio
    clipped = -advantages * ratio.clamp(1.0 - clip_eps, 1.0 + high)
    losses = torch.maximum(unclipped, clipped)
    clip_active = clipped > unclipped
    dual_active = torch.zeros_like(clip_active)
    if dual_clip is not None:
        bound = -advantages * dual_clip
        dual_active = (advantages < 0) & (losses > bound)
        losses = torch.where(dual_active, bound, losses)
    pg_loss = masked_mean(losses.detach(), mask)
    kl = torch.zeros((), dtype=losses.dtype, device=losses.device)
    entropy_mean = torch.zeros_like(kl)
    if ref_logps is not None:
        kl_tokens = token_kl(logps, ref_logps.detach(), kl_estimator)
        losses = losses + kl_coef * kl_tokens
        kl = masked_mean(kl_tokens.detach(), mask)
    if entropy is not None:
        losses = losses - entropy_coef * entropy
        entropy_mean = masked_mean(entropy.detach(), mask)
    agg = aggregate_loss(losses, mask, loss_agg, norm_constant=norm_constant)
    return PolicyLossOutput(
        agg.total,
        agg.count,
        pg_loss,
        masked_mean(clip_active.to(losses.dtype), mask),
        masked_mean(dual_active.to(losses.dtype), mask),
        approx_kl(logps, old_logps, mask),
        kl,
        entropy_mean,
    )


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> Tensor:
    """1 − Var[R − V] / Var[R] over the response tokens, a detached scalar (OpenAI Baselines).

    1: the critic predicts the returns exactly; 0: no better than their mean; < 0: worse. NaN when
    the returns have no variance. values, returns, mask: (B, T).
    """
    values, returns = values.detach(), returns.detach()
    var_returns = masked_var(returns, mask, unbiased=False)
    return 1.0 - masked_var(returns - values, mask, unbiased=False) / var_returns


def clipped_value_loss(
    values: Tensor,
    old_values: Tensor,
    returns: Tensor,
    mask: Tensor,
    *,
    clip_range: float | None = 0.2,
    loss_agg: str = "token-mean",
    norm_constant: float | None = None,
) -> ValueLossOutput:
    """Clipped value loss of PPO (OpenAI Baselines `ppo2`; Huang et al. 2022, detail 9), per token.

    values (B, T): V_φ with gradient; old_values (B, T): V at rollout time; returns (B, T): the
    targets (GAE's A + V); mask (B, T). With V_clip = V_old + clip(V − V_old, −c, c),
        ℓ_t = ½·max((V − R)², (V_clip − R)²)
    so a step that moves V more than c away from V_old, toward the target, has no gradient.
    clip_range=None gives the plain ½·(V − R)². Engstrom et al. 2020 ("Implementation matters")
    found value clipping does not help and can hurt; it is kept as PPO's reference behaviour.
    """
    if not values.shape == old_values.shape == returns.shape == mask.shape:
        raise ValueError(
            "values, old_values, returns and mask must share one (B, T) shape, got "
            f"{[tuple(x.shape) for x in (values, old_values, returns, mask)]}"
        )
    # Padding selected away before any arithmetic, so its gradient is exactly 0 whatever it holds.
    on = mask != 0
    values = torch.where(on, values, 0.0)
    returns, old_values = torch.where(on, returns.detach(), 0.0), torch.where(on, old_values.detach(), 0.0)
    unclipped = (values - returns) ** 2
    if clip_range is None:
        losses, clip_active = 0.5 * unclipped, torch.zeros_like(unclipped, dtype=torch.bool)
    else:
        if clip_range <= 0:
            raise ValueError(f"clip_range must be > 0 or None, got {clip_range}")
        v_clip = old_values + (values - old_values).clamp(-clip_range, clip_range)
        clipped = (v_clip - returns) ** 2
        losses, clip_active = 0.5 * torch.maximum(unclipped, clipped), clipped > unclipped
    agg = aggregate_loss(losses, mask, loss_agg, norm_constant=norm_constant)
    return ValueLossOutput(
        agg.total,
        agg.count,
        masked_mean(clip_active.to(losses.dtype), mask),
        explained_variance(values, returns, mask),
    )

"""KL to the reference policy: per-token estimators, coefficient controllers, reward shaping.

Supported: the k1, k2 and k3 estimators of KL(π‖π_ref) from the log-probs of sampled tokens
(Schulman 2020, "Approximating KL divergence", http://joschu.net/blog/kl-approx.html), selectable
by name; per-sequence sums and means; a fixed coefficient or the adaptive target-KL controller of
Ziegler et al. 2019 ("Fine-tuning language models from human preferences", sec. 2.2), both with
`state_dict` / `load_state_dict` for exact resume; and the two placements of the penalty:
in the reward (PPO, InstructGPT: `kl_shaped_rewards`, `kl_shaped_scores`) or in the loss (GRPO:
`alignlab.losses.policy.ppo_policy_loss(..., ref_logps=..., kl_coef=...)`).

Shapes: logps, ref_logps, mask (B, T), aligned so that position t holds the log-prob of the token
sampled at t; mask 1 on response tokens. Sequence scores (B,) or per-token scores (B, T).
Not here: computing log-probs (`alignlab.modeling.logprobs`), the reference model.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal, Protocol

import torch

from alignlab.errors import ConfigError
from alignlab.losses.masked import masked_mean, masked_sum

Tensor = torch.Tensor
# exp(20) ≈ 4.9e8 is finite in float32 and bfloat16; a token whose log-ratio passes ±20 has
# left the reference's support in all but name, and its k3 saturates (verl clamps the same way).
K3_LOG_RATIO_CLAMP = 20.0


def kl_k1(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """k1 = log π − log π_ref per token, (B, T): unbiased for KL(π‖π_ref), high variance, can be < 0."""
    return logps - ref_logps


def kl_k2(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """k2 = ½(log π − log π_ref)² per token, (B, T): ≥ 0, low variance, biased (exact to 2nd order)."""
    return 0.5 * (logps - ref_logps) ** 2


def kl_k3(logps: Tensor, ref_logps: Tensor) -> Tensor:
    """k3 = (r − 1) − log r, r = π_ref/π, per token (B, T): unbiased, ≥ 0, low variance.

    E_π[r] = 1, so E[k3] = E[−log r] = KL(π‖π_ref); r − 1 − log r ≥ 0 since log r ≤ r − 1.
    log r is clamped to ±K3_LOG_RATIO_CLAMP so that exp cannot overflow; expm1 keeps precision
    near r = 1, where both terms nearly cancel. The GRPO loss term (Shao et al. 2024, eq. 4).
    """
    log_r = (ref_logps - logps).clamp(-K3_LOG_RATIO_CLAMP, K3_LOG_RATIO_CLAMP)
    return (torch.expm1(log_r) - log_r).clamp(min=0.0)  # rounding alone could give −1e-17


KLEstimator = Literal["k1", "k2", "k3"]
KL_ESTIMATORS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def kl_estimator_names() -> tuple[str, ...]:
    """The KL estimators by name (configs and CLI help read them here)."""
    return tuple(KL_ESTIMATORS)


def token_kl(logps: Tensor, ref_logps: Tensor, estimator: str = "k1") -> Tensor:
    """Per-token KL(π‖π_ref) estimate (B, T) by `estimator` name ("k1", "k2", "k3").

    logps: (B, T) log π of the sampled tokens, ref_logps: (B, T) log π_ref of the same tokens; the
    tokens must be sampled from π for the estimate to hold. Unknown names raise `ConfigError`.
    """
    if logps.shape != ref_logps.shape:
        raise ValueError(f"log-prob shapes differ: {tuple(logps.shape)} vs {tuple(ref_logps.shape)}")
    try:
        fn = KL_ESTIMATORS[estimator]
    except KeyError:
        raise ConfigError(
            f"unknown KL estimator {estimator!r}; choose one of: {', '.join(KL_ESTIMATORS)}"
        ) from None
    return fn(logps, ref_logps)


def sequence_kl(token_values: Tensor, mask: Tensor, reduction: Literal["sum", "mean"] = "sum") -> Tensor:
    """Per-sequence KL (B,) from per-token estimates (B, T): summed over response tokens (the KL of
    the whole response, as Ziegler et al. and InstructGPT report it) or averaged per token."""
    if reduction == "sum":
        return masked_sum(token_values, mask, dim=-1)
    if reduction == "mean":
        return masked_mean(token_values, mask, dim=-1)
    raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")


# ------------------------------------------------------------------------------ reward shaping


def _last_token_index(mask: Tensor) -> Tensor:
    """(B,) position of each row's last response token; a row without one is an error."""
    if not bool((mask.sum(-1) > 0).all()):
        empty = (mask.sum(-1) == 0).nonzero().flatten().tolist()
        raise ValueError(f"rows {empty} have no response token to carry their score")
    positions = torch.arange(mask.shape[-1], device=mask.device)
    return (positions * (mask != 0)).argmax(-1)


def kl_shaped_rewards(scores: Tensor, token_kl_values: Tensor, mask: Tensor, kl_coef: float) -> Tensor:
    """Per-token rewards with the KL penalty in the reward (Ziegler et al. 2019; InstructGPT, eq. 2).

    scores: (B,) one score per response, added on its last response token, or (B, T) per-token
    scores (process rewards) added where they stand; token_kl_values: (B, T) a `token_kl` estimate;
    mask: (B, T). Returns (B, T) detached rewards, 0 off the mask:
        r_{i,t} = −β·kl_{i,t} + [t = last response token of i]·score_i
    These are the `rewards` of the "gae" advantage estimator.
    """
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    on = mask != 0
    rewards = torch.where(on, -kl_coef * token_kl_values.detach(), 0.0)
    scores = scores.detach().to(rewards.dtype)
    if scores.shape == mask.shape:
        return rewards + torch.where(on, scores, 0.0)
    if scores.shape != mask.shape[:1]:
        raise ValueError(f"scores must be (B,) or (B, T) = {tuple(mask.shape)}, got {tuple(scores.shape)}")
    last = _last_token_index(mask)
    return rewards.index_put((torch.arange(len(scores), device=scores.device), last), scores, accumulate=True)


def kl_shaped_scores(scores: Tensor, token_kl_values: Tensor, mask: Tensor, kl_coef: float) -> Tensor:
    """Sequence rewards with the KL penalty (B,): score_i − β·Σ_t kl_{i,t}, detached.

    The sequence-level placement of RLOO (Ahmadian et al. 2024, sec. 3), where a whole response is
    one action. scores: (B,); token_kl_values, mask: (B, T).
    """
    if kl_coef < 0:
        raise ValueError(f"kl_coef must be >= 0, got {kl_coef}")
    return (scores - kl_coef * sequence_kl(token_kl_values, mask, "sum")).detach()


# ------------------------------------------------------------------------------ coefficients


class KLController(Protocol):
    """The KL coefficient β of a run: read `value`, call `update` once per rollout batch."""

    value: float

    def update(self, current_kl: float, n_steps: int) -> float: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class FixedKLController:
    """A constant coefficient β ≥ 0; `update` changes nothing."""

    def __init__(self, kl_coef: float) -> None:
        if not math.isfinite(kl_coef) or kl_coef < 0:
            raise ValueError(f"kl_coef must be a finite number >= 0, got {kl_coef}")
        self.value = float(kl_coef)

    def update(self, current_kl: float, n_steps: int) -> float:
        return self.value

    def state_dict(self) -> dict[str, Any]:
        return {"kind": "fixed", "value": self.value}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_kind(state, "fixed")
        self.value = float(state["value"])


class AdaptiveKLController:
    """Ziegler et al. 2019, sec. 2.2: steer the measured KL toward a target by a proportional rule.

        e_t = clip(KL_t / KL_target − 1, −0.2, 0.2)
        β_{t+1} = β_t·(1 + K_β·e_t),   K_β = n_steps / horizon
    as in `lm-human-preferences` (`AdaptiveKLController.update`): `current_kl` is the mean over
    the batch of each response's summed KL (`sequence_kl(..., "sum").mean()`), `n_steps` the
    number of responses it was measured on, `horizon` a number of responses (10 000 in the paper).
    """

    def __init__(self, init_kl_coef: float, target_kl: float, horizon: int = 10_000) -> None:
        if not math.isfinite(init_kl_coef) or init_kl_coef < 0:
            raise ValueError(f"init_kl_coef must be a finite number >= 0, got {init_kl_coef}")
        if not target_kl > 0:
            raise ValueError(f"target_kl must be > 0, got {target_kl}")
        if horizon <= 0:
            raise ValueError(f"horizon must be > 0, got {horizon}")
        self.value, self.target, self.horizon = float(init_kl_coef), float(target_kl), int(horizon)

    def update(self, current_kl: float, n_steps: int) -> float:
        """Apply one update after a batch of `n_steps` responses; returns the new β."""
        error = min(max(float(current_kl) / self.target - 1.0, -0.2), 0.2)
        self.value *= 1.0 + error * n_steps / self.horizon
        return self.value

    def state_dict(self) -> dict[str, Any]:
        # A Python float survives JSON and torch.save exactly, so a resumed run continues bit for bit.
        return {"kind": "adaptive", "value": self.value, "target": self.target, "horizon": self.horizon}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _check_kind(state, "adaptive")
        self.value, self.target, self.horizon = (
            float(state["value"]),
            float(state["target"]),
            int(state["horizon"]),
        )


def _check_kind(state: dict[str, Any], kind: str) -> None:
    if state.get("kind") != kind:
        raise ValueError(f"KL controller state is for a {state.get('kind')!r} controller, not {kind!r}")


def build_kl_controller(
    kl_coef: float, target_kl: float | None = None, horizon: int = 10_000
) -> KLController:
    """A fixed β = kl_coef, or, when `target_kl` is given, an adaptive one starting at kl_coef."""
    if target_kl is None:
        return FixedKLController(kl_coef)
    return AdaptiveKLController(kl_coef, target_kl, horizon)

"""Advantage estimators for online RL, registered by name: GAE, GRPO, Dr. GRPO, RLOO.

The registry is data, as for the preference losses: configs and CLI help take their allowed values
from `advantage_names()`, and an `AdvantageSpec` says what its estimator needs, so a step function
asks the spec instead of branching on the name. The calling convention is

    spec.fn(rewards, mask, [values=values,] [group_size=n,] **hyperparameters) -> AdvantageOutput

with `values` when `spec.needs_values` and `group_size` when `spec.needs_groups`; `rewards` are
(B, T) per-token rewards when `spec.rewards == "token"` (see `alignlab.losses.kl.kl_shaped_rewards`)
or (B,) one score per response when it is "sequence". Group estimators expect B = groups × n with
the n samples of one prompt in consecutive rows (rows g·n … g·n + n − 1), and broadcast each
response's advantage to its tokens with the mask. Advantages are constants: inputs are detached.

Also here: `masked_whiten`, PPO's advantage normalisation over the response tokens.
Adding an estimator = one decorated function here + one test.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, TypeVar

import torch

from alignlab.errors import ConfigError
from alignlab.losses.aggregation import LOSS_AGGREGATIONS
from alignlab.losses.masked import masked_mean, masked_var
from alignlab.losses.params import Range, check_ranges, check_values, first_doc_line

Tensor = torch.Tensor
F = TypeVar("F", bound=Callable[..., Any])
RewardLevel = Literal["token", "sequence"]
KLPlacement = Literal["reward", "loss"]
_INPUTS = frozenset({"values", "group_size"})  # data a step passes, not hyperparameters


class AdvantageOutput(NamedTuple):
    advantages: Tensor  # (B, T) per-token advantage, 0 off the mask, detached
    returns: Tensor | None  # (B, T) value targets (A + V) when the estimator uses values, else None


@dataclass(frozen=True)
class AdvantageSpec:
    """What an advantage estimator needs from the step function, and the defaults of its paper."""

    name: str
    fn: Callable[..., AdvantageOutput]
    needs_values: bool  # takes `values=` (B, T) from a critic and returns value targets
    needs_groups: bool  # takes `group_size=` n: consecutive rows are n samples of one prompt
    rewards: RewardLevel  # (B, T) per-token rewards, or (B,) one score per response
    kl_placement: KLPlacement  # where its paper puts the KL penalty: in the reward or in the loss
    loss_agg: str  # its paper's loss aggregation (`alignlab.losses.aggregation`); a default only
    ranges: Mapping[str, Range] = field(default_factory=dict)  # allowed values per hyperparameter

    @property
    def description(self) -> str:
        """First line of the estimator's docstring (for CLI help and the docs table)."""
        return first_doc_line(self.fn)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """Keyword-only scalar arguments and their defaults (what a config may set)."""
        params = inspect.signature(self.fn).parameters.values()
        return {
            p.name: p.default
            for p in params
            if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name not in _INPUTS
        }

    def check_params(self, values: Mapping[str, Any]) -> None:
        """Raise ValueError when a value is no hyperparameter of the estimator or out of its range."""
        check_values(f"advantage estimator {self.name!r}", self.ranges, self.hyperparameters, values)


_ESTIMATORS: dict[str, AdvantageSpec] = {}


def register_advantage(
    name: str,
    *,
    needs_values: bool,
    needs_groups: bool,
    rewards: RewardLevel,
    kl_placement: KLPlacement,
    loss_agg: str,
    ranges: Mapping[str, Range] | None = None,
) -> Callable[[F], F]:
    """Decorator that records an advantage estimator under `name` (verl-style); returns it unchanged.

    `ranges` gives each hyperparameter's allowed values, e.g. `{"lam": Range(ge=0, le=1)}`."""

    def decorator(fn: F) -> F:
        if name in _ESTIMATORS:
            raise ValueError(f"advantage estimator {name!r} is registered twice")
        if loss_agg not in LOSS_AGGREGATIONS:
            raise ValueError(f"advantage estimator {name!r}: unknown loss aggregation {loss_agg!r}")
        spec = AdvantageSpec(name, fn, needs_values, needs_groups, rewards, kl_placement, loss_agg,
                             dict(ranges or {}))
        check_ranges(f"advantage estimator {name!r}", spec.ranges, spec.hyperparameters)
        _ESTIMATORS[name] = spec
        return fn

    return decorator


def advantage_names() -> tuple[str, ...]:
    """Registered estimator names, in registration order (gae, grpo, dr_grpo, rloo)."""
    return tuple(_ESTIMATORS)


def get_advantage(name: str) -> AdvantageSpec:
    """The spec registered under `name`; an unknown name raises `ConfigError` listing valid ones."""
    try:
        return _ESTIMATORS[name]
    except KeyError:
        raise ConfigError(
            f"unknown advantage estimator {name!r}; choose one of: {', '.join(_ESTIMATORS)}"
        ) from None


# ------------------------------------------------------------------------------ whitening


def masked_whiten(x: Tensor, mask: Tensor, *, shift_mean: bool = True, eps: float = 1e-8) -> Tensor:
    """(x − μ)/√(σ² + ε) with μ, σ² over the response tokens only; masked positions become 0.

    x, mask: (B, T); returns (B, T). σ² is the unbiased `masked_var`. shift_mean=False adds μ back,
    rescaling without centring (keeps the sign of a batch whose advantages are all positive, as
    TRL's and OpenRLHF's `shift_mean` option). Advantage whitening in PPO follows OpenAI Baselines
    (`ppo2`: normalised advantages per minibatch) and Huang et al. 2022, "The 37 implementation
    details of PPO", detail 7; the statistics here are over the whole batch passed in.
    """
    x = x.detach()
    mean = masked_mean(x, mask)
    whitened = (x - mean) * torch.rsqrt(masked_var(x, mask) + eps)
    if not shift_mean:
        whitened = whitened + mean
    return torch.where(mask != 0, whitened, 0.0)


# ------------------------------------------------------------------------------ critic-based


@register_advantage(
    "gae",
    needs_values=True,
    needs_groups=False,
    rewards="token",
    kl_placement="reward",
    loss_agg="token-mean",
    ranges={"gamma": Range(ge=0, le=1), "lam": Range(ge=0, le=1)},
)
def gae_advantages(
    rewards: Tensor, mask: Tensor, *, values: Tensor, gamma: float = 1.0, lam: float = 0.95
) -> AdvantageOutput:
    """GAE(γ, λ): generalised advantage estimation (Schulman et al. 2016, eq. 16) for PPO.

    rewards, values, mask: (B, T); rewards per token (the KL-shaped rewards, score on the last
    response token), values V(s_t) from the critic. Returns advantages and returns A + V, (B, T).
        δ_t = r_t + γ·V_{t'} − V_t,   A_t = δ_t + γλ·A_{t'}
    where t' is the row's next response token. After the last response token of a row there is no
    t': the value there is 0 and nothing is bootstrapped from padding (a response that ends before
    the batch does is a finished episode). Positions under mask 0 are skipped, neither state nor
    step: rewards and values there are ignored, and a hole in the mask (an observation inside a
    multi-turn response) joins its neighbours, as verl's `compute_gae_advantage_return` does.
    Defaults γ = 1, λ = 0.95 are those of Ziegler et al. 2019 (`lm-human-preferences`).
    """
    if not rewards.shape == values.shape == mask.shape or rewards.dim() != 2:
        raise ValueError(
            f"gae needs per-token rewards, values and mask of one (B, T) shape, got {tuple(rewards.shape)}, "
            f"{tuple(values.shape)}, {tuple(mask.shape)}; place sequence scores with kl_shaped_rewards"
        )
    r, v, on = rewards.detach(), values.detach().to(rewards.dtype), mask != 0
    next_value = torch.zeros_like(r[:, 0])
    last_gae = torch.zeros_like(r[:, 0])
    advantages = torch.zeros_like(r)
    for t in reversed(range(r.shape[1])):
        gae_t = r[:, t] + gamma * next_value - v[:, t] + gamma * lam * last_gae
        # torch.where, not a product with the mask: padding may hold any value, even inf.
        next_value = torch.where(on[:, t], v[:, t], next_value)
        last_gae = torch.where(on[:, t], gae_t, last_gae)
        advantages[:, t] = last_gae
    advantages = torch.where(on, advantages, 0.0)
    return AdvantageOutput(advantages, torch.where(on, advantages + v, 0.0))


# ------------------------------------------------------------------------------ group baselines


def _groups(rewards: Tensor, mask: Tensor, group_size: int) -> Tensor:
    """rewards (B,) as (B / n, n), after checking the shapes group estimators rely on."""
    if rewards.dim() != 1 or mask.dim() != 2 or mask.shape[0] != rewards.shape[0]:
        raise ValueError(
            "group estimators take rewards (B,) and mask (B, T), "
            f"got {tuple(rewards.shape)} and {tuple(mask.shape)}"
        )
    if group_size < 2 or rewards.shape[0] % group_size:
        raise ValueError(
            f"group_size must be >= 2 and divide the batch of {rewards.shape[0]} responses, got {group_size}"
        )
    return rewards.detach().reshape(-1, group_size)


def _to_tokens(advantages: Tensor, mask: Tensor) -> AdvantageOutput:
    """(G, n) per-response advantages broadcast over each response's tokens: (B, T), 0 off the mask."""
    per_response = advantages.reshape(-1, 1)
    return AdvantageOutput(torch.where(mask != 0, per_response, 0.0), None)


@register_advantage(
    "grpo",
    needs_values=False,
    needs_groups=True,
    rewards="sequence",
    kl_placement="loss",
    loss_agg="seq-mean-token-mean",
    ranges={"eps": Range(gt=0)},
)
def grpo_advantages(rewards: Tensor, mask: Tensor, *, group_size: int, eps: float = 1e-6) -> AdvantageOutput:
    """GRPO: group-normalised outcome reward (Shao et al. 2024, DeepSeekMath, sec. 4.1.2).

    rewards: (B,) one score per response, B = groups × n; mask: (B, T). For response i of its group,
        A_i = (r_i − mean(r_group)) / (std(r_group) + ε)
    with the Bessel-corrected std (as TRL and verl compute it), on every response token. A group
    whose rewards are all equal gets advantage 0: it carries no learning signal.
    """
    g = _groups(rewards, mask, group_size)
    return _to_tokens((g - g.mean(1, keepdim=True)) / (g.std(1, keepdim=True) + eps), mask)


@register_advantage(
    "dr_grpo",
    needs_values=False,
    needs_groups=True,
    rewards="sequence",
    kl_placement="loss",
    loss_agg="seq-mean-token-sum-norm",
)
def dr_grpo_advantages(rewards: Tensor, mask: Tensor, *, group_size: int) -> AdvantageOutput:
    """Dr. GRPO: GRPO without the std division (Liu et al. 2025, "Understanding R1-Zero-Like Training").

    rewards: (B,), B = groups × n; mask: (B, T). A_i = r_i − mean(r_group) on every response token.
    Dividing by the group std up-weights prompts that are nearly always solved or failed (a
    question-level difficulty bias); the paper also drops the 1/|o_i| length normalisation, hence
    this spec's loss aggregation "seq-mean-token-sum-norm" (a constant, the generation budget).
    """
    g = _groups(rewards, mask, group_size)
    return _to_tokens(g - g.mean(1, keepdim=True), mask)


@register_advantage(
    "rloo",
    needs_values=False,
    needs_groups=True,
    rewards="sequence",
    kl_placement="reward",
    loss_agg="seq-mean-token-sum-norm",
)
def rloo_advantages(rewards: Tensor, mask: Tensor, *, group_size: int) -> AdvantageOutput:
    """RLOO: REINFORCE with a leave-one-out baseline (Ahmadian et al. 2024, eq. 5; Kool et al. 2019).

    rewards: (B,), B = groups × n, the KL-penalised scores (`kl_shaped_scores`); mask: (B, T).
        A_i = r_i − (1/(n − 1))·Σ_{j≠i} r_j = n/(n − 1)·(r_i − mean(r_group))
    The baseline does not depend on r_i, so the gradient estimate stays unbiased. The paper treats
    a whole response as one action (summed token log-probs, mean over responses), hence this
    spec's loss aggregation "seq-mean-token-sum-norm": that sum divided by a constant.
    """
    g = _groups(rewards, mask, group_size)
    baseline = (g.sum(1, keepdim=True) - g) / (group_size - 1)
    return _to_tokens(g - baseline, mask)

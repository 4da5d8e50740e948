"""The DPO family as pure functions of sequence log-probs.

Supported: DPO (sigmoid), conservative DPO (label smoothing), RPO (DPO + NLL), IPO, SLiC-HF
(hinge + NLL), KTO (unpaired), ORPO and SimPO (both reference-free). Each function takes log-prob
tensors and plain scalars and returns a `PreferenceLossOutput`; no model, optimizer, config or
I/O, only `torch`.
The caller reduces `losses` (usually `.mean()`) so it controls weighting across accumulation.

Not here: computing the log-probs (`alignlab.modeling.logprobs`), the reference pre-pass and its
cache, the step function and metrics (`alignlab.training.dpo`). Each loss is registered by name;
its `LossSpec` (`alignlab.losses.registry`) says which inputs it takes.

Notation: h = log πθ(y_w|x)/πref(y_w|x) − log πθ(y_l|x)/πref(y_l|x), the chosen minus rejected
log-ratio; σ = sigmoid. Log-probs are per sequence: "summed" over the response tokens, or
"averaged" (summed / token count) where the spec says `logps="mean"`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from alignlab.losses.params import Range
from alignlab.losses.registry import register_loss

Tensor = torch.Tensor
POSITIVE, NON_NEGATIVE = Range(gt=0), Range(ge=0)


class PreferenceLossOutput(NamedTuple):
    losses: Tensor  # (B,) per-example loss; (B_d + B_u,) desirable then undesirable for KTO
    chosen_rewards: Tensor  # (B,) implicit reward of each chosen/desirable response, detached
    rejected_rewards: Tensor  # (B,) implicit reward of each rejected/undesirable response, detached


def _check_pairs(*tensors: Tensor) -> None:
    shape = tensors[0].shape
    if any(t.shape != shape for t in tensors):
        raise ValueError(
            f"paired log-prob tensors must share one shape, got {[tuple(t.shape) for t in tensors]}"
        )


def _log_ratio_margin(pc: Tensor, pr: Tensor, rc: Tensor, rr: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """h (B,) and the two log-ratios log πθ/πref of chosen and rejected."""
    _check_pairs(pc, pr, rc, rr)
    chosen_ratio, rejected_ratio = pc - rc, pr - rr
    return chosen_ratio - rejected_ratio, chosen_ratio, rejected_ratio


@register_loss("dpo", needs_reference=True, ranges={"beta": POSITIVE})
def dpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float = 0.1,
) -> PreferenceLossOutput:
    """DPO, sigmoid loss (Rafailov et al. 2023, eq. 7).

    All inputs (B,) summed response log-probs. L = −log σ(β·h); implicit rewards β·log πθ/πref.
    """
    return cdpo_loss(
        policy_chosen_logps,
        policy_rejected_logps,
        ref_chosen_logps,
        ref_rejected_logps,
        beta=beta,
        label_smoothing=0.0,
    )


@register_loss("cdpo", needs_reference=True,
               ranges={"beta": POSITIVE, "label_smoothing": Range(ge=0, lt=0.5)})
def cdpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float = 0.1,
    label_smoothing: float = 0.1,
) -> PreferenceLossOutput:
    """Conservative DPO: DPO with label smoothing ε for noisy labels (Mitchell 2023).

    All inputs (B,) summed response log-probs. L = −(1−ε)·log σ(β·h) − ε·log σ(−β·h): the label is
    assumed flipped with probability ε, so the loss stops pushing once σ(β·h) = 1 − ε.
    """
    if not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"label_smoothing must be in [0, 0.5), got {label_smoothing}")
    h, chosen_ratio, rejected_ratio = _log_ratio_margin(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    # logsigmoid, not log(sigmoid(.)): stays finite for large |β·h|.
    losses = -(1.0 - label_smoothing) * F.logsigmoid(beta * h) - label_smoothing * F.logsigmoid(-beta * h)
    return PreferenceLossOutput(losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


@register_loss("rpo", needs_reference=True, needs_nll=True, nll="mean",
               ranges={"beta": POSITIVE, "nll_weight": NON_NEGATIVE})
def rpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    chosen_nll: Tensor,
    *,
    beta: float = 0.1,
    nll_weight: float = 1.0,
) -> PreferenceLossOutput:
    """RPO: DPO plus the per-token NLL of the chosen response (Pang et al. 2024, eq. 1).

    *_logps (B,) summed response log-probs; chosen_nll (B,) the chosen response's NLL averaged per
    token. L = −log σ(β·h) + α·NLL(y+), α = nll_weight. DPO alone can lower the chosen response's
    likelihood along with the rejected one's when the two share most tokens ("likelihood
    displacement"), moving mass to responses neither side contains; the NLL term holds it up.
    """
    _check_pairs(policy_chosen_logps, chosen_nll)
    out = dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps,
                   beta=beta)
    return PreferenceLossOutput(out.losses + nll_weight * chosen_nll, out.chosen_rewards,
                                out.rejected_rewards)


@register_loss("ipo", needs_reference=True, ranges={"beta": POSITIVE})
def ipo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    beta: float = 0.1,
) -> PreferenceLossOutput:
    """IPO: squared regression of h onto 1/(2τ) (Azar et al. 2023, eq. 17; τ = beta).

    All inputs (B,) summed response log-probs. L = (h − 1/(2τ))². Unlike DPO the loss has a
    minimum at a finite margin, so it does not push deterministic preferences to infinity.
    """
    h, chosen_ratio, rejected_ratio = _log_ratio_margin(
        policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps
    )
    losses = (h - 1.0 / (2.0 * beta)) ** 2
    return PreferenceLossOutput(losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


@register_loss("slic", needs_reference=False, needs_nll=True,
               ranges={"delta": NON_NEGATIVE, "nll_weight": NON_NEGATIVE})
def slic_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    chosen_nll: Tensor,
    *,
    delta: float = 1.0,
    nll_weight: float = 0.1,
) -> PreferenceLossOutput:
    """SLiC-HF: rank calibration hinge + NLL regulariser (Zhao et al. 2023, eq. 1).

    policy_*_logps (B,) summed response log-probs; chosen_nll (B,) = −log πθ(y_ref|x), the summed
    NLL of the regularisation target (the chosen response, or an SFT target).
    L = max(0, δ − log πθ(y+|x) + log πθ(y−|x)) + λ·(−log πθ(y_ref|x)), λ = nll_weight.
    The regulariser replaces a reference model; implicit rewards are the policy log-probs.
    """
    _check_pairs(policy_chosen_logps, policy_rejected_logps, chosen_nll)
    hinge = torch.clamp(delta - policy_chosen_logps + policy_rejected_logps, min=0.0)
    losses = hinge + nll_weight * chosen_nll
    return PreferenceLossOutput(losses, policy_chosen_logps.detach(), policy_rejected_logps.detach())


@register_loss("kto", needs_reference=True, inputs="unpaired", estimated=("kl",),
               ranges={"beta": POSITIVE, "desirable_weight": NON_NEGATIVE,
                       "undesirable_weight": NON_NEGATIVE})
def kto_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    ref_chosen_logps: Tensor,
    ref_rejected_logps: Tensor,
    *,
    kl: Tensor | float = 0.0,
    beta: float = 0.1,
    desirable_weight: float = 1.0,
    undesirable_weight: float = 1.0,
) -> PreferenceLossOutput:
    """KTO: prospect-theoretic loss on unpaired feedback (Ethayarajh et al. 2024, eq. 8).

    policy/ref_chosen_logps (B_d,) for desirable, policy/ref_rejected_logps (B_u,) for undesirable
    responses (summed log-probs; B_d ≠ B_u allowed, either may be 0). kl: the reference point z0,
    an estimate of KL(πθ‖πref) on mismatched (x, y') pairs, computed by the caller.
    r = log πθ(y|x)/πref(y|x);  v = λ_D·σ(β(r − z0)) if desirable, λ_U·σ(β(z0 − r)) if not;
    L = λ_y − v. z0 is detached and clamped at 0, as in the paper: it is a baseline, not a target.
    """
    _check_pairs(policy_chosen_logps, ref_chosen_logps)
    _check_pairs(policy_rejected_logps, ref_rejected_logps)
    z0 = torch.as_tensor(kl, dtype=policy_chosen_logps.dtype, device=policy_chosen_logps.device)
    z0 = z0.detach().clamp(min=0.0)
    chosen_ratio = policy_chosen_logps - ref_chosen_logps
    rejected_ratio = policy_rejected_logps - ref_rejected_logps
    desirable = desirable_weight * (1.0 - torch.sigmoid(beta * (chosen_ratio - z0)))
    undesirable = undesirable_weight * (1.0 - torch.sigmoid(beta * (z0 - rejected_ratio)))
    losses = torch.cat([desirable, undesirable])
    return PreferenceLossOutput(losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach())


def _log_odds(mean_logps: Tensor) -> Tensor:
    """log(P / (1 − P)) for P = exp(mean_logps) < 1; expm1 keeps precision as P → 1."""
    # A mean log-prob of exactly 0 (P = 1) would make the odds infinite; stay just below it.
    mean_logps = mean_logps.clamp(max=-1e-6)
    return mean_logps - torch.log(-torch.expm1(mean_logps))


@register_loss("orpo", needs_reference=False, logps="mean", needs_nll=True, nll="mean",
               ranges={"beta": NON_NEGATIVE})
def orpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    chosen_nll: Tensor,
    *,
    beta: float = 0.1,
) -> PreferenceLossOutput:
    """ORPO: SFT NLL plus an odds-ratio penalty, no reference model (Hong et al. 2024, eq. 6-7).

    policy_*_logps (B,) length-averaged response log-probs, so P(y|x) = exp(mean log-prob);
    chosen_nll (B,) the per-token-averaged NLL of the chosen response (L_SFT).
    odds(y|x) = P/(1 − P);  L = L_SFT − λ·log σ(log odds(y_w|x) − log odds(y_l|x)), λ = beta.
    Implicit rewards are β·(mean log-prob), as in the paper's reward-margin plots.
    """
    _check_pairs(policy_chosen_logps, policy_rejected_logps, chosen_nll)
    log_odds_ratio = _log_odds(policy_chosen_logps) - _log_odds(policy_rejected_logps)
    losses = chosen_nll - beta * F.logsigmoid(log_odds_ratio)
    return PreferenceLossOutput(
        losses, beta * policy_chosen_logps.detach(), beta * policy_rejected_logps.detach()
    )


@register_loss("simpo", needs_reference=False, logps="mean", ranges={"beta": POSITIVE, "gamma": NON_NEGATIVE})
def simpo_loss(
    policy_chosen_logps: Tensor,
    policy_rejected_logps: Tensor,
    *,
    beta: float = 2.0,
    gamma: float = 1.0,
) -> PreferenceLossOutput:
    """SimPO: length-normalised reward with a target margin, no reference (Meng et al. 2024, eq. 6).

    policy_*_logps (B,) length-averaged response log-probs, i.e. log πθ(y|x)/|y|.
    L = −log σ(β/|y_w|·log πθ(y_w|x) − β/|y_l|·log πθ(y_l|x) − γ); implicit reward β/|y|·log πθ(y|x).
    Averaging removes the reward's dependence on length, which DPO's summed log-ratio lacks.
    """
    _check_pairs(policy_chosen_logps, policy_rejected_logps)
    chosen_rewards, rejected_rewards = beta * policy_chosen_logps, beta * policy_rejected_logps
    losses = -F.logsigmoid(chosen_rewards - rejected_rewards - gamma)
    return PreferenceLossOutput(losses, chosen_rewards.detach(), rejected_rewards.detach())

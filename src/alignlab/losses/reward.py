"""Reward-model losses and the statistics that judge a reward model.

Supported: the Bradley-Terry loss with an optional margin (graded preferences), a per-pair target
probability (label smoothing for ties and low-confidence labels) and a reward-centering term;
ensemble aggregation (mean, min, mean − λ·std); pairwise accuracy; calibration of
σ(r_c − r_r) as a reliability table and its expected calibration error (ECE).

Not here: the scalar head, scoring at the last non-pad token, length correlation and per-category
reports (`alignlab.modeling` / `alignlab.training.reward`). Pure functions of reward tensors.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from alignlab.errors import ConfigError

Tensor = torch.Tensor
Aggregation = Literal["mean", "min", "mean_minus_std"]
AGGREGATIONS: tuple[str, ...] = ("mean", "min", "mean_minus_std")


class BradleyTerryOutput(NamedTuple):
    losses: Tensor  # (B,) per-pair loss, centering term included
    logits: Tensor  # (B,) r_c − r_r − margin, detached: the model's log-odds that chosen wins
    probs: Tensor  # (B,) σ(r_c − r_r), detached: P(chosen ≻ rejected) under Bradley-Terry


def bradley_terry_loss(
    chosen_rewards: Tensor,
    rejected_rewards: Tensor,
    *,
    margin: Tensor | float = 0.0,
    target_prob: Tensor | float = 1.0,
    center_coef: float = 0.0,
) -> BradleyTerryOutput:
    """Bradley-Terry pairwise loss with margin, soft labels and reward centering.

    chosen_rewards, rejected_rewards: (B,) scalar rewards r_c, r_r. margin: (B,) or scalar m ≥ 0,
    larger for more strongly graded preferences (Llama 2, Touvron et al. 2023, eq. 2). target_prob:
    (B,) or scalar p, the probability that the chosen response really is better: 1 for a confident
    label, 1 − ε for label smoothing, 0.5 for a tie. center_coef η: weight of the centering term
    that keeps rewards near zero, since BT only fixes differences (Eisenstein et al. 2023).
        Δ = r_c − r_r − m
        L = −p·log σ(Δ) − (1 − p)·log σ(−Δ) + η·(r_c + r_r)²
    dL/dΔ = σ(Δ) − p, so training drives σ(Δ) towards p and a tie (p = 0.5) towards Δ = 0.
    """
    if chosen_rewards.shape != rejected_rewards.shape:
        raise ValueError(
            f"reward shapes differ: {tuple(chosen_rewards.shape)} vs {tuple(rejected_rewards.shape)}"
        )
    if isinstance(target_prob, float) and not 0.0 <= target_prob <= 1.0:
        raise ValueError(f"target_prob must be in [0, 1], got {target_prob}")
    diff = chosen_rewards - rejected_rewards
    logits = diff - margin
    losses = -target_prob * F.logsigmoid(logits) - (1.0 - target_prob) * F.logsigmoid(-logits)
    if center_coef:
        losses = losses + center_coef * (chosen_rewards + rejected_rewards) ** 2
    return BradleyTerryOutput(losses, logits.detach(), torch.sigmoid(diff.detach()))


def aggregate_ensemble(rewards: Tensor, method: str = "mean", *, std_coef: float = 1.0) -> Tensor:
    """Combine the rewards of K ensemble members into one reward per example.

    rewards: (K, B), one row per member. method: "mean"; "min", the most pessimistic member;
    "mean_minus_std", mean − λ·std with λ = std_coef, penalising examples the members disagree on
    (Coste et al. 2023 use such conservative aggregates against reward over-optimisation).
    std is the population std (divide by K), so a single member gives std 0. Returns (B,).
    """
    if rewards.dim() != 2:
        raise ValueError(f"ensemble rewards must be (K, B), got shape {tuple(rewards.shape)}")
    if method == "mean":
        return rewards.mean(0)
    if method == "min":
        return rewards.min(0).values
    if method == "mean_minus_std":
        return rewards.mean(0) - std_coef * rewards.std(0, correction=0)
    raise ConfigError(
        f"unknown ensemble aggregation {method!r} (config key `aggregate`); "
        f"choose one of: {', '.join(AGGREGATIONS)}"
    )


def _correctness(chosen_rewards: Tensor, rejected_rewards: Tensor, tie_tol: float = 0.0) -> Tensor:
    """(B,) 1 where the model prefers the labelled chosen response, 0 where not, 0.5 for a tie
    (|r_c − r_r| <= tie_tol)."""
    diff = (chosen_rewards - rejected_rewards).detach().float()
    tie = diff.abs() <= tie_tol
    return (~tie & (diff > 0)).float() + 0.5 * tie.float()


def pairwise_accuracy(chosen_rewards: Tensor, rejected_rewards: Tensor, *, tie_tol: float = 0.0) -> float:
    """Share of pairs where r_c > r_r; a tie (|r_c − r_r| <= tie_tol) counts one half (a coin flip
    would get it right). `tie_tol` > 0 keeps rounding noise from counting as a preference."""
    if chosen_rewards.numel() == 0:
        raise ValueError("pairwise_accuracy of an empty set of pairs is undefined")
    return _correctness(chosen_rewards, rejected_rewards, tie_tol).mean().item()


class ReliabilityBin(NamedTuple):
    lower: float  # bin edges on the confidence axis, [lower, upper)
    upper: float
    count: int  # pairs whose confidence falls in the bin
    confidence: float  # mean confidence max(p, 1 − p) of those pairs
    accuracy: float  # share of those pairs where the preferred response is the labelled chosen one


def reliability_table(
    chosen_rewards: Tensor, rejected_rewards: Tensor, num_bins: int = 10
) -> list[ReliabilityBin]:
    """Reliability table of p = σ(r_c − r_r), with top-label confidence, non-empty bins only.

    Every labelled pair has outcome "chosen wins", so binning p itself would compare p with 1
    everywhere. As for classifiers (Guo et al. 2017), each pair is scored by the response the
    model prefers: confidence max(p, 1 − p) ∈ [0.5, 1], correct when that response is the
    labelled chosen one (a tie, p = 0.5, counts one half). Bins split [0.5, 1] evenly.
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    diff = (chosen_rewards - rejected_rewards).detach().double().flatten()
    confidence = torch.sigmoid(diff.abs())
    correct = _correctness(chosen_rewards, rejected_rewards).double().flatten()
    width = 0.5 / num_bins
    # Confidence 1.0 (saturated sigmoid) belongs to the last bin, not a bin past the end.
    index = ((confidence - 0.5) / width).floor().long().clamp(0, num_bins - 1)
    table = []
    for b in range(num_bins):
        in_bin = index == b
        count = int(in_bin.sum())
        if count:
            table.append(
                ReliabilityBin(
                    lower=0.5 + b * width,
                    upper=0.5 + (b + 1) * width,
                    count=count,
                    confidence=confidence[in_bin].mean().item(),
                    accuracy=correct[in_bin].mean().item(),
                )
            )
    return table


def expected_calibration_error(chosen_rewards: Tensor, rejected_rewards: Tensor, num_bins: int = 10) -> float:
    """ECE = Σ_bins (n_b / N)·|accuracy_b − confidence_b| over `reliability_table`; 0 is calibrated."""
    table = reliability_table(chosen_rewards, rejected_rewards, num_bins)
    total = sum(b.count for b in table)
    if total == 0:
        raise ValueError("expected_calibration_error of an empty set of pairs is undefined")
    return sum(b.count / total * abs(b.accuracy - b.confidence) for b in table)

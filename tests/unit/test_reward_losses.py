"""Bradley-Terry loss, ensemble aggregation, accuracy and calibration: hand values and properties.

a = −log σ(1) = log(1 + e^−1) = 0.3132616875,   b = −log σ(−1) = log(1 + e) = 1.3132616875
"""

from __future__ import annotations

import math

import pytest
import torch

from alignlab.errors import ConfigError
from alignlab.losses.reward import (
    AGGREGATIONS,
    ReliabilityBin,
    aggregate_ensemble,
    bradley_terry_loss,
    expected_calibration_error,
    pairwise_accuracy,
    reliability_table,
)

A = math.log1p(math.exp(-1.0))
B = math.log1p(math.e)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


# r_c − r_r = 2 − 1 = +1 and 0.5 − 1.5 = −1.
RC, RR = t(2.0, 0.5), t(1.0, 1.5)


def test_bradley_terry_hand_value() -> None:
    """Δ = [1, −1]: L = [−log σ(1), −log σ(−1)] = [a, b];
    P(chosen wins) = [σ(1), σ(−1)] = [0.731059, 0.268941]."""
    out = bradley_terry_loss(RC, RR)
    torch.testing.assert_close(out.losses, t(A, B))
    torch.testing.assert_close(out.probs, t(0.7310585786, 0.2689414214))


def test_margin_shifts_the_logit_not_the_probability() -> None:
    """Margins m = [1, 0]: Δ = [1 − 1, −1 − 0] = [0, −1], so L = [log 2, b]; probs stay σ(r_c − r_r)."""
    out = bradley_terry_loss(RC, RR, margin=t(1.0, 0.0))
    torch.testing.assert_close(out.losses, t(math.log(2.0), B))
    torch.testing.assert_close(out.logits, t(0.0, -1.0))
    torch.testing.assert_close(out.probs, bradley_terry_loss(RC, RR).probs)


def test_soft_targets_hand_value() -> None:
    """Per-pair targets p = [0.75, 0.5]: L = −p·log σ(Δ) − (1 − p)·log σ(−Δ).

    pair 1 (Δ = 1):  0.75·a + 0.25·b = 0.563262
    pair 2 (Δ = −1): 0.5·b + 0.5·a   = 0.813262
    """
    out = bradley_terry_loss(RC, RR, target_prob=t(0.75, 0.5))
    torch.testing.assert_close(out.losses, t(0.5632616875, 0.8132616875))


def test_centering_term_hand_value() -> None:
    """η = 0.01: adds 0.01·(2 + 1)² = 0.09 and 0.01·(0.5 + 1.5)² = 0.04 to [a, b]."""
    out = bradley_terry_loss(RC, RR, center_coef=0.01)
    torch.testing.assert_close(out.losses, t(A + 0.09, B + 0.04))


def test_tie_with_smoothing_half_has_zero_gradient_at_equal_rewards() -> None:
    """dL/dΔ = σ(Δ) − p: 0 for a tie (p = 0.5) at Δ = 0; −0.3 for p = 0.8 at Δ = 0; σ(1) − 0.5 at Δ = 1."""
    rc = torch.tensor([0.7, 0.7, 1.7], dtype=torch.float64, requires_grad=True)
    rr = torch.tensor([0.7, 0.7, 0.7], dtype=torch.float64, requires_grad=True)
    bradley_terry_loss(rc, rr, target_prob=t(0.5, 0.8, 0.5)).losses.sum().backward()
    torch.testing.assert_close(rc.grad, t(0.0, -0.3, 0.7310585786 - 0.5))
    torch.testing.assert_close(rr.grad, -rc.grad)
    assert rc.grad[0].item() == 0.0


def test_probabilities_and_loss_invariant_to_a_constant_shift() -> None:
    g = torch.Generator().manual_seed(0)
    rc, rr = (
        torch.randn(32, generator=g, dtype=torch.float64),
        torch.randn(32, generator=g, dtype=torch.float64),
    )
    base = bradley_terry_loss(rc, rr, target_prob=0.9)
    shifted = bradley_terry_loss(rc + 7.5, rr + 7.5, target_prob=0.9)
    torch.testing.assert_close(shifted.probs, base.probs)
    torch.testing.assert_close(shifted.losses, base.losses)
    # The centering term is what breaks the symmetry: it prefers rewards near zero.
    centered = bradley_terry_loss(rc + 7.5, rr + 7.5, center_coef=0.01).losses
    assert (centered > bradley_terry_loss(rc, rr, center_coef=0.01).losses).all()


def test_linear_reward_separates_a_separable_toy_set() -> None:
    """A linear reward r = w·x + c trained by BT on pairs ordered by a hidden w* reaches ≥ 97 %."""
    g = torch.Generator().manual_seed(0)
    w_true = torch.randn(8, generator=g)

    def pairs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        x1, x2 = torch.randn(n, 8, generator=g), torch.randn(n, 8, generator=g)
        first_wins = (x1 @ w_true > x2 @ w_true)[:, None]
        return torch.where(first_wins, x1, x2), torch.where(first_wins, x2, x1)

    train_c, train_r = pairs(512)
    test_c, test_r = pairs(512)
    model = torch.nn.Linear(8, 1)
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(300):
        opt.zero_grad()
        bradley_terry_loss(model(train_c)[:, 0], model(train_r)[:, 0]).losses.mean().backward()
        opt.step()
    with torch.no_grad():
        rc, rr = model(test_c)[:, 0], model(test_r)[:, 0]
        assert pairwise_accuracy(rc, rr) >= 0.97
        assert pairwise_accuracy(rr, rc) <= 0.03
        before = bradley_terry_loss(rc, rr).probs
        model.bias += 5.0  # a constant shift of every reward
        torch.testing.assert_close(bradley_terry_loss(model(test_c)[:, 0], model(test_r)[:, 0]).probs, before)


# --------------------------------------------------------------------------- ensembles


ENSEMBLE = torch.tensor([[1.0, 4.0], [2.0, 0.0], [3.0, 2.0]], dtype=torch.float64)  # (K=3, B=2)


def test_ensemble_aggregates_hand_values() -> None:
    """Columns [1, 2, 3] and [4, 0, 2]: mean 2 and 2; min 1 and 0; population std
    sqrt((1 + 0 + 1)/3) = 0.816497 and sqrt((4 + 4 + 0)/3) = 1.632993;
    mean − 0.5·std = 2 − 0.408248 = 1.591752 and 2 − 0.816497 = 1.183503."""
    torch.testing.assert_close(aggregate_ensemble(ENSEMBLE, "mean"), t(2.0, 2.0))
    torch.testing.assert_close(aggregate_ensemble(ENSEMBLE, "min"), t(1.0, 0.0))
    torch.testing.assert_close(
        aggregate_ensemble(ENSEMBLE, "mean_minus_std", std_coef=0.5),
        t(2 - 0.5 * math.sqrt(2 / 3), 2 - 0.5 * math.sqrt(8 / 3)),
    )


def test_single_member_ensemble_is_the_member() -> None:
    row = ENSEMBLE[:1]
    for method in AGGREGATIONS:
        torch.testing.assert_close(aggregate_ensemble(row, method), row[0])


def test_unknown_aggregation_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="mean, min, mean_minus_std"):
        aggregate_ensemble(ENSEMBLE, "median")


# --------------------------------------------------------------------------- accuracy, calibration


def test_pairwise_accuracy_counts_ties_as_half() -> None:
    """Correct, wrong, correct, tie -> (1 + 0 + 1 + 0.5) / 4 = 0.625."""
    assert pairwise_accuracy(t(1.0, 2.0, 3.0, 0.0), t(0.0, 3.0, 1.0, 0.0)) == 0.625


def test_reliability_table_and_ece_on_a_hand_fixture() -> None:
    """Five pairs, Δ = r_c − r_r = [ln 3, ln 3, −ln 3, 0, 50], 5 bins of width 0.1 over [0.5, 1].

    confidence max(σ(Δ), σ(−Δ)) = [0.75, 0.75, 0.75, 0.5, 1.0]; correct = [1, 1, 0, 0.5, 1]
    bin [0.5, 0.6): 1 pair, confidence 0.5,  accuracy 0.5        -> gap 0
    bin [0.7, 0.8): 3 pairs, confidence 0.75, accuracy 2/3       -> gap 1/12
    bin [0.9, 1.0]: 1 pair, confidence 1.0,  accuracy 1          -> gap 0
    ECE = 3/5 · 1/12 = 0.05
    """
    ln3 = math.log(3.0)
    diff = t(ln3, ln3, -ln3, 0.0, 50.0)
    rejected = t(0.3, -1.0, 2.0, 0.4, -20.0)
    table = reliability_table(rejected + diff, rejected, num_bins=5)
    expected = [
        ReliabilityBin(0.5, 0.6, 1, 0.5, 0.5),
        ReliabilityBin(0.7, 0.8, 3, 0.75, 2 / 3),
        ReliabilityBin(0.9, 1.0, 1, 1.0, 1.0),
    ]
    assert len(table) == len(expected)
    for got, want in zip(table, expected, strict=True):
        assert got.count == want.count
        assert got[:2] == pytest.approx(want[:2])
        assert got.confidence == pytest.approx(want.confidence)
        assert got.accuracy == pytest.approx(want.accuracy)
    assert expected_calibration_error(rejected + diff, rejected, num_bins=5) == pytest.approx(0.05)


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    """Four pairs at confidence 0.75, three of them right: accuracy 0.75 = confidence, ECE 0."""
    ln3 = math.log(3.0)
    assert expected_calibration_error(t(ln3, ln3, ln3, 0.0), t(0.0, 0.0, 0.0, ln3)) == pytest.approx(
        0.0, abs=1e-12
    )

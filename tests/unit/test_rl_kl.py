"""KL estimators, reward shaping and coefficient controllers: hand-worked values and properties.

Two tokens recur in the hand arithmetic (log 2 = 0.693147):
    a: π = 0.5, π_ref = 0.25 -> log π − log π_ref = +log 2, r = π_ref/π = 0.5
    b: π = 0.2, π_ref = 0.4  -> log π − log π_ref = −log 2, r = 2
"""

from __future__ import annotations

import json
import math

import pytest
import torch

from alignlab.errors import ConfigError
from alignlab.losses.kl import (
    KL_ESTIMATORS,
    AdaptiveKLController,
    FixedKLController,
    build_kl_controller,
    kl_shaped_rewards,
    kl_shaped_scores,
    sequence_kl,
    token_kl,
)

LN2 = math.log(2.0)


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


LOGPS = t([math.log(0.5), math.log(0.2), math.log(0.7)])
REF = t([math.log(0.25), math.log(0.4), math.log(0.7)])


def test_k1_hand_value() -> None:
    """k1 = log π − log π_ref: a +log 2 = 0.693147, b −log 2, equal probabilities 0."""
    torch.testing.assert_close(token_kl(LOGPS, REF, "k1"), t([LN2, -LN2, 0.0]))


def test_k2_hand_value() -> None:
    """k2 = ½(log π − log π_ref)²: a and b ½(log 2)² = 0.240227, equal probabilities 0."""
    torch.testing.assert_close(token_kl(LOGPS, REF, "k2"), t([0.5 * LN2**2, 0.5 * LN2**2, 0.0]))
    torch.testing.assert_close(token_kl(LOGPS, REF, "k2"), t([0.2402265, 0.2402265, 0.0]))


def test_k3_hand_value() -> None:
    """k3 = (r − 1) − log r, r = π_ref/π.

    a: r = 0.5 -> −0.5 + log 2 = 0.193147
    b: r = 2   ->  1 − log 2   = 0.306853
    """
    torch.testing.assert_close(token_kl(LOGPS, REF, "k3"), t([LN2 - 0.5, 1.0 - LN2, 0.0]))
    torch.testing.assert_close(token_kl(LOGPS, REF, "k3"), t([0.1931472, 0.3068528, 0.0]))


def test_k3_is_never_negative() -> None:
    """log r ≤ r − 1 for every r > 0, so k3 ≥ 0: over wild log-probs, near-ties in float32, and
    log-ratios past the ±20 clamp (where it stays finite)."""
    g = torch.Generator().manual_seed(0)
    wild = -60.0 * torch.rand(4096, generator=g)
    ref = -60.0 * torch.rand(4096, generator=g)
    near = -3.0 * torch.rand(4096, generator=g)
    for logps, ref_logps in ((wild, ref), (near, near + 1e-7 * torch.randn(4096, generator=g))):
        k3 = token_kl(logps, ref_logps, "k3")
        assert torch.isfinite(k3).all()
        assert (k3 >= 0).all()
    # k1 is unbiased but can be negative token by token.
    assert (token_kl(wild, ref, "k1") < 0).any()


def test_k1_and_k3_are_unbiased_on_samples_k2_is_not() -> None:
    """Draw N = 200 000 tokens from π = [0.5, 0.3, 0.15, 0.05]; π_ref uniform over 4 tokens.

    KL(π‖π_ref) = Σ π log(4π) = 0.5·log 2 + 0.3·log 1.2 + 0.15·log 0.6 + 0.05·log 0.2 = 0.244174.
    The sample means of k1 and k3 must lie within 4 standard errors (and 0.01) of it. k2's
    expectation is Σ π·½(log 4π)² = 0.209427, 0.035 below the KL: a bias many standard errors wide.
    """
    pi = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    ref = torch.full((4,), 0.25, dtype=torch.float64)
    exact = float((pi * (pi / ref).log()).sum())
    assert exact == pytest.approx(0.2441743, abs=1e-6)
    tokens = torch.multinomial(pi, 200_000, replacement=True, generator=torch.Generator().manual_seed(0))
    logps, ref_logps = pi.log()[tokens], ref.log()[tokens]
    for name in ("k1", "k3"):
        k = token_kl(logps, ref_logps, name)
        se = float(k.std()) / math.sqrt(k.numel())
        assert abs(float(k.mean()) - exact) < min(4 * se, 0.01), (name, float(k.mean()), exact, se)
    k2 = token_kl(logps, ref_logps, "k2")
    assert float(k2.mean()) == pytest.approx(0.2094274, abs=4 * float(k2.std()) / math.sqrt(k2.numel()))
    assert exact - float(k2.mean()) > 0.03


def test_unknown_estimator_is_a_config_error_listing_valid_names() -> None:
    with pytest.raises(ConfigError, match="'k4'.*k1, k2, k3"):
        token_kl(LOGPS, REF, "k4")
    assert tuple(KL_ESTIMATORS) == ("k1", "k2", "k3")


def test_sequence_kl_sums_and_means_over_response_tokens() -> None:
    """Row 0 tokens [0.5, −0.2, 1.0] (+ padding 7): sum 1.3, mean 1.3/3; row 1 [0.3, 0.4]: 0.7, 0.35."""
    kl = t([0.5, -0.2, 1.0, 7.0], [9.0, 0.3, 0.0, 0.4])
    mask = torch.tensor([[1, 1, 1, 0], [0, 1, 0, 1]])
    torch.testing.assert_close(sequence_kl(kl, mask, "sum"), t(1.3, 0.7))
    torch.testing.assert_close(sequence_kl(kl, mask, "mean"), t(1.3 / 3, 0.35))


# -------------------------------------------------------------------------------- reward shaping

# Row 0: 3 response tokens then padding; row 1: a masked prompt token, then 3 response tokens.
KL = t([0.5, -0.2, 1.0, 7.0], [9.0, 0.3, 0.0, 0.4])
MASK = torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]])


def test_kl_shaped_rewards_hand_value() -> None:
    """β = 0.1, scores [2, −1]: r_t = −β·kl_t, plus the score on the last response token.

    row 0: [−0.05, +0.02, −0.1 + 2 = 1.9, 0 (padding)]
    row 1: [0 (prompt), −0.03, 0, −0.04 − 1 = −1.04]
    """
    rewards = kl_shaped_rewards(t(2.0, -1.0), KL, MASK, kl_coef=0.1)
    torch.testing.assert_close(rewards, t([-0.05, 0.02, 1.9, 0.0], [0.0, -0.03, 0.0, -1.04]))
    assert not rewards.requires_grad


def test_kl_shaped_rewards_with_per_token_scores() -> None:
    """Per-token (process) scores are added where they stand, masked: row 0 gets +1 on each token."""
    scores = torch.ones(2, 4, dtype=torch.float64)
    rewards = kl_shaped_rewards(scores, KL, MASK, kl_coef=0.1)
    torch.testing.assert_close(rewards, t([0.95, 1.02, 0.9, 0.0], [0.0, 0.97, 1.0, 0.96]))


def test_kl_shaped_rewards_rejects_rows_without_response_and_negative_coef() -> None:
    with pytest.raises(ValueError, match=r"rows \[1\]"):
        kl_shaped_rewards(t(1.0, 1.0), KL, torch.tensor([[1, 0, 0, 0], [0, 0, 0, 0]]), kl_coef=0.1)
    with pytest.raises(ValueError, match="kl_coef"):
        kl_shaped_rewards(t(1.0, 1.0), KL, MASK, kl_coef=-1.0)
    with pytest.raises(ValueError, match=r"\(B,\) or \(B, T\)"):
        kl_shaped_rewards(t(1.0, 1.0, 1.0), KL, MASK, kl_coef=0.1)


def test_kl_shaped_scores_hand_value() -> None:
    """β = 0.1: summed KL 0.5 − 0.2 + 1.0 = 1.3 and 0.3 + 0 + 0.4 = 0.7 -> [2 − 0.13, −1 − 0.07]."""
    torch.testing.assert_close(kl_shaped_scores(t(2.0, -1.0), KL, MASK, 0.1), t(1.87, -1.07))


# -------------------------------------------------------------------------------- controllers


def test_adaptive_controller_hand_sequence() -> None:
    """β0 = 0.1, KL_target = 6, horizon 10 000, 256 responses per update (K_β = 0.0256).

    KL 12:  e = clip(12/6 − 1, ±0.2) = +0.2  -> β = 0.1 · (1 + 0.2·0.0256)  = 0.1 · 1.00512 = 0.100512
    KL 5.7: e = 5.7/6 − 1 = −0.05           -> β = 0.100512 · 0.99872       = 0.10038334464
    KL 0:   e = clip(−1) = −0.2             -> β = 0.10038334464 · 0.99488  = 0.0998693819154
    KL 6:   e = 0                           -> β unchanged
    """
    ctl = AdaptiveKLController(0.1, target_kl=6.0, horizon=10_000)
    got = [ctl.update(kl, n_steps=256) for kl in (12.0, 5.7, 0.0, 6.0)]
    assert got == pytest.approx([0.100512, 0.10038334464, 0.0998693819154, 0.0998693819154], rel=1e-12)
    assert ctl.value == got[-1]


def test_adaptive_controller_resumes_exactly_through_json() -> None:
    kls = [12.0, 3.3, 7.1, 0.2, 6.6]
    uninterrupted = AdaptiveKLController(0.05, target_kl=4.0, horizon=1000)
    for kl in kls:
        uninterrupted.update(kl, 64)
    first = AdaptiveKLController(0.05, target_kl=4.0, horizon=1000)
    for kl in kls[:2]:
        first.update(kl, 64)
    state = json.loads(json.dumps(first.state_dict()))
    resumed = AdaptiveKLController(1.0, target_kl=1.0, horizon=1)  # overwritten by the state
    resumed.load_state_dict(state)
    for kl in kls[2:]:
        resumed.update(kl, 64)
    assert resumed.value == uninterrupted.value  # bit for bit
    assert resumed.state_dict() == uninterrupted.state_dict()


def test_fixed_controller_and_builder() -> None:
    fixed = build_kl_controller(0.05)
    assert isinstance(fixed, FixedKLController)
    assert fixed.update(100.0, 256) == 0.05 and fixed.value == 0.05
    adaptive = build_kl_controller(0.05, target_kl=6.0, horizon=500)
    assert isinstance(adaptive, AdaptiveKLController) and adaptive.horizon == 500
    with pytest.raises(ValueError, match="not 'adaptive'"):
        adaptive.load_state_dict(fixed.state_dict())
    other = FixedKLController(1.0)
    other.load_state_dict(fixed.state_dict())
    assert other.value == 0.05


@pytest.mark.parametrize(
    "make",
    [
        lambda: FixedKLController(-1.0),
        lambda: FixedKLController(float("nan")),
        lambda: AdaptiveKLController(-0.1, target_kl=6.0),
        lambda: AdaptiveKLController(0.1, target_kl=0.0),
        lambda: AdaptiveKLController(0.1, target_kl=6.0, horizon=0),
    ],
)
def test_controllers_reject_bad_settings(make) -> None:
    with pytest.raises(ValueError):
        make()

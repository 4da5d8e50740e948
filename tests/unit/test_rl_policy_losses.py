"""PPO policy and value losses, approximate KL and explained variance: hand values and properties.

The policy-loss hand values use ε = 0.2, so ratios are clipped to [0.8, 1.2], and
    ℓ = max(−A·ρ, −A·clip(ρ, 0.8, 1.2))
Aggregation across micro-batches: test_rl_aggregation.py; entropy: test_rl_entropy.py.
"""

from __future__ import annotations

import math

import pytest
import torch

from alignlab.losses.aggregation import LOSS_AGGREGATIONS
from alignlab.losses.policy import approx_kl, clipped_value_loss, explained_variance, ppo_policy_loss

LN2 = math.log(2.0)


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.clone().requires_grad_()


# ------------------------------------------------------------------------------- policy loss

# Seven response tokens in two rows (row 1 ends with a padding token holding a wild ratio):
#   token  A    ρ     −A·ρ   −A·clip(ρ)   ℓ      gradient dℓ/dlog π
#   1     +1   1.5   −1.5   −1.2        −1.2   0          (clipped: above 1 + ε, A > 0)
#   2     +1   1.2   −1.2   −1.2        −1.2   (boundary)
#   3     +1   0.5   −0.5   −0.8        −0.5   −A·ρ = −0.5 (below 1 − ε: pessimism keeps it)
#   4     −1   0.5    0.5    0.8         0.8   0          (clipped: below 1 − ε, A < 0)
#   5     −1   0.8    0.8    0.8         0.8   (boundary)
#   6     −2   1.5    3.0    2.4         3.0   −A·ρ = 3.0
#   7     +2   1.0   −2.0   −2.0        −2.0   −A·ρ = −2.0
RATIOS = t([1.5, 1.2, 0.5, 0.5], [0.8, 1.5, 1.0, 50.0])
ADV = t([1, 1, 1, -1], [-1, -2, 2, 7])
MASK = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
OLD = t([-1.0, -2.0, -0.5, -3.0], [-1.5, -0.7, -2.2, -4.0])
MASK_3x5 = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 0, 0, 0]])


def test_clipped_policy_loss_hand_value() -> None:
    """Token losses sum to −1.2 − 1.2 − 0.5 + 0.8 + 0.8 + 3.0 − 2.0 = −0.3 over 7 tokens.

    token-mean: total −0.3, count 7 (mean −0.0428571). Clip active on tokens 1 and 4: 2/7; the
    boundary tokens 2 and 5 are not counted (clipped and unclipped agree there).
    Gradients of the token-mean: [0, ·, −0.5, 0 | ·, 3.0, −2.0, 0] / 7, padding 0.
    """
    logps = leaf(OLD + RATIOS.log())
    out = ppo_policy_loss(logps, OLD, ADV, MASK, clip_eps=0.2)
    torch.testing.assert_close(out.loss, torch.tensor(-0.3, dtype=torch.float64))
    torch.testing.assert_close(out.num_items, torch.tensor(7.0, dtype=torch.float64))
    torch.testing.assert_close(out.pg_loss, torch.tensor(-0.3 / 7, dtype=torch.float64))
    torch.testing.assert_close(out.clip_frac, torch.tensor(2 / 7, dtype=torch.float64))
    assert out.dual_clip_frac == 0 and out.kl == 0 and out.entropy == 0
    (out.loss / out.num_items).backward()
    grad = logps.grad * 7
    for (i, j), expected in {
        (0, 0): 0.0,
        (0, 2): -0.5,
        (0, 3): 0.0,
        (1, 1): 3.0,
        (1, 2): -2.0,
        (1, 3): 0.0,
    }.items():
        assert grad[i, j].item() == pytest.approx(expected, abs=1e-12), (i, j)


def test_policy_loss_values_at_the_clip_boundaries() -> None:
    """ρ = 1 ± ε exactly: clipped and unclipped agree, ℓ = −A·(1 + ε) = −1.2 for A = 1 at ρ = 1.2,
    and ℓ = −A·(1 − ε) = 0.8 for A = −1 at ρ = 0.8. Just outside, the loss stays at that value."""
    for ratio, adv, expected in (
        (1.2, 1.0, -1.2),
        (0.8, -1.0, 0.8),
        (1.2001, 1.0, -1.2),
        (0.7999, -1.0, 0.8),
    ):
        logps = t([math.log(ratio)])
        out = ppo_policy_loss(logps, t([0.0]), t([adv]), torch.ones(1, 1), clip_eps=0.2)
        assert out.loss.item() == pytest.approx(expected, abs=1e-12)


def test_zero_gradient_outside_the_clip_range() -> None:
    """A > 0 with ρ > 1 + ε and A < 0 with ρ < 1 − ε: the loss is a constant, its gradient 0;
    the opposite sides (A > 0, ρ < 1 − ε; A < 0, ρ > 1 + ε) keep the gradient −A·ρ."""
    ratios, adv = t([1.3, 2.0, 0.7, 0.1, 0.7, 1.3]), t([1.0, 3.0, -1.0, -0.5, 1.0, -1.0])
    logps = leaf(ratios.log())
    out = ppo_policy_loss(logps, torch.zeros_like(ratios), adv, torch.ones_like(ratios), clip_eps=0.2)
    out.loss.backward()
    torch.testing.assert_close(logps.grad, t([0.0, 0.0, 0.0, 0.0, -0.7, 1.3]))
    assert out.clip_frac.item() == pytest.approx(4 / 6)


def test_clip_higher_widens_only_the_upper_side() -> None:
    """DAPO's ε_high = 0.28: A = 1, ρ = 1.25 is inside [0.8, 1.28]: ℓ = −1.25, gradient −1.25;
    with a symmetric ε = 0.2 it is clipped: ℓ = −1.2, gradient 0."""
    for high, loss, grad in ((0.28, -1.25, -1.25), (None, -1.2, 0.0)):
        logps = leaf(t([math.log(1.25)]))
        out = ppo_policy_loss(logps, t([0.0]), t([1.0]), torch.ones(1, 1), clip_eps=0.2, clip_eps_high=high)
        out.loss.backward()
        assert (out.loss.item(), logps.grad.item()) == pytest.approx((loss, grad))


def test_dual_clip_hand_value() -> None:
    """c = 3. A = −1, ρ = 5: PPO gives max(5, 1.2) = 5, the dual clip min(5, 3) = 3, gradient 0.
    A = −1, ρ = 2: 2 < 3, unchanged, gradient 2. A = +1, ρ = 5: −1.2 as before (A > 0 untouched)."""
    logps = leaf(t([math.log(5.0), math.log(2.0), math.log(5.0)]))
    out = ppo_policy_loss(logps, torch.zeros(1, 3), t([-1.0, -1.0, 1.0]), torch.ones(1, 3), dual_clip=3.0)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(3.0 + 2.0 - 1.2)
    torch.testing.assert_close(logps.grad, t([0.0, 2.0, 0.0]))
    assert out.dual_clip_frac.item() == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        ppo_policy_loss(logps, torch.zeros(1, 3), t([-1.0, -1.0, 1.0]), torch.ones(1, 3), dual_clip=1.0)


def test_kl_in_the_loss_and_entropy_bonus_hand_value() -> None:
    """GRPO's KL term with A = 0 and ρ = 1, so only the penalty acts. β = 0.1, k3:
    π = 0.5, π_ref = 0.25 -> k3 = log 2 − 0.5 = 0.193147, ℓ = 0.0193147;
    d k3 / d log π = 1 − π_ref/π = 0.5, so the gradient is β·0.5 = 0.05.
    An entropy H = 1.5 with c_H = 0.01 subtracts 0.015: ℓ = 0.0043147."""
    logps = leaf(t([math.log(0.5)]))
    ref = t([math.log(0.25)])
    out = ppo_policy_loss(logps, logps.detach(), t([0.0]), torch.ones(1, 1), ref_logps=ref, kl_coef=0.1)
    out.loss.backward()
    assert out.loss.item() == pytest.approx(0.1 * (LN2 - 0.5))
    assert out.kl.item() == pytest.approx(LN2 - 0.5)
    assert logps.grad.item() == pytest.approx(0.05)
    with_entropy = ppo_policy_loss(
        logps,
        logps.detach(),
        t([0.0]),
        torch.ones(1, 1),
        ref_logps=ref,
        kl_coef=0.1,
        entropy=t([1.5]),
        entropy_coef=0.01,
    )
    assert with_entropy.loss.item() == pytest.approx(0.1 * (LN2 - 0.5) - 0.015)
    assert with_entropy.entropy.item() == pytest.approx(1.5)


@pytest.mark.parametrize("mode", LOSS_AGGREGATIONS)
def test_zero_advantage_at_ratio_one_has_zero_gradient(mode: str) -> None:
    """Property: A = 0 and ρ = 1 give loss 0 and gradient exactly 0, with any aggregation."""
    g = torch.Generator().manual_seed(0)
    old = -torch.rand(3, 5, generator=g, dtype=torch.float64)
    logps = leaf(old)
    out = ppo_policy_loss(
        logps, old, torch.zeros(3, 5), MASK_3x5, loss_agg=mode, norm_constant=5.0, dual_clip=3.0
    )
    out.loss.backward()
    assert out.loss.item() == 0.0
    assert (logps.grad == 0).all()


def test_large_epsilon_equals_the_unclipped_surrogate() -> None:
    """Property: with ε → ∞ nothing is clipped: loss and gradient equal those of −A·ρ."""
    g = torch.Generator().manual_seed(1)
    old = -torch.rand(3, 5, generator=g, dtype=torch.float64)
    logps = leaf(old + 0.5 * torch.randn(3, 5, generator=g, dtype=torch.float64))
    adv = torch.randn(3, 5, generator=g, dtype=torch.float64)
    out = ppo_policy_loss(logps, old, adv, MASK_3x5, clip_eps=1e9)
    (grad,) = torch.autograd.grad(out.loss, logps)
    plain = (-adv * torch.exp(logps - old) * MASK_3x5).sum()
    (plain_grad,) = torch.autograd.grad(plain, logps)
    torch.testing.assert_close(out.loss, plain)
    torch.testing.assert_close(grad, plain_grad)
    assert out.clip_frac == 0
    assert ppo_policy_loss(logps, old, adv, MASK_3x5, clip_eps=0.2).clip_frac > 0  # the data would clip


def test_padding_may_hold_anything() -> None:
    """inf and NaN under mask 0 (log-probs, advantages, values) change neither loss nor gradient."""
    clean_logps = OLD + RATIOS.log()
    dirty = {"logps": clean_logps.clone(), "old": OLD.clone(), "adv": ADV.clone()}
    dirty["logps"][1, 3], dirty["old"][1, 3], dirty["adv"][1, 3] = math.inf, -math.inf, math.nan
    results = []
    for logps, old, adv in ((clean_logps, OLD, ADV), (dirty["logps"], dirty["old"], dirty["adv"])):
        logps = leaf(logps)
        out = ppo_policy_loss(
            logps, old, adv, MASK, ref_logps=OLD, kl_coef=0.1, loss_agg="seq-mean-token-mean"
        )
        out.loss.backward()
        values = leaf(torch.where(MASK != 0, OLD, math.nan))
        value_out = clipped_value_loss(values, OLD, ADV, MASK)
        value_out.loss.backward()
        results.append((out.loss, logps.grad, value_out.loss, values.grad))
    for clean, noisy in zip(*results, strict=True):
        assert torch.isfinite(noisy).all()  # a NaN gradient on padding would reach the weights
        torch.testing.assert_close(noisy, clean)
    assert results[1][1][1, 3] == 0 and results[1][3][1, 3] == 0


def test_approx_kl_hand_value() -> None:
    """Samples from π_old: π_old = 0.5, π = 0.25 -> k3 = (0.5 − 1) − log 0.5 = 0.193147, k1 = log 2."""
    new, old = t([math.log(0.25), 0.0]), t([math.log(0.5), 0.0])
    mask = torch.tensor([[1, 0]])
    assert approx_kl(new, old, mask).item() == pytest.approx(LN2 - 0.5)
    assert approx_kl(new, old, mask, "k1").item() == pytest.approx(LN2)


# ------------------------------------------------------------------------------- value loss


def test_clipped_value_loss_hand_value() -> None:
    """R = 1, V_old = 0.5, c = 0.2, so V_clip ∈ [0.3, 0.7]; ℓ = ½·max((V − R)², (V_clip − R)²).

    V = 0.9: ½·max(0.01, 0.09) = 0.045   gradient 0 (clipped term wins, constant)
    V = 0.6: ½·0.16            = 0.08    gradient V − R = −0.4
    V = 0.1: ½·max(0.81, 0.49) = 0.405   gradient −0.9 (the unclipped error is larger: kept)
    V = 1.5: ½·max(0.25, 0.09) = 0.125   gradient 0.5
    V = 0.7 (the boundary): ½·0.09 = 0.045
    token-mean over the first four: 0.655 / 4; clip fraction 1/4.
    """
    values = leaf(t([0.9, 0.6, 0.1, 1.5]))
    old, returns = t([0.5] * 4), t([1.0] * 4)
    out = clipped_value_loss(values, old, returns, torch.ones(1, 4), clip_range=0.2)
    (out.loss / out.num_items).backward()
    assert out.loss.item() == pytest.approx(0.045 + 0.08 + 0.405 + 0.125)
    torch.testing.assert_close(values.grad * 4, t([0.0, -0.4, -0.9, 0.5]))
    assert out.clip_frac.item() == pytest.approx(0.25)
    boundary = clipped_value_loss(t([0.7]), t([0.5]), t([1.0]), torch.ones(1, 1), clip_range=0.2)
    assert boundary.loss.item() == pytest.approx(0.045)
    plain = clipped_value_loss(t([0.9]), t([0.5]), t([1.0]), torch.ones(1, 1), clip_range=None)
    assert plain.loss.item() == pytest.approx(0.005)  # ½·(0.9 − 1)²


def test_explained_variance_hand_value() -> None:
    """R = [1, 2, 3, 4] (Var 1.25). V = R: 1. V = mean: 0. V = [0, 2, 3, 4]: R − V = [1, 0, 0, 0],
    Var = 0.25 − 0.0625 = 0.1875, so 1 − 0.1875/1.25 = 0.85. Padding is ignored."""
    returns, mask = t([1, 2, 3, 4, 99]), torch.tensor([[1, 1, 1, 1, 0]])
    assert explained_variance(returns, returns, mask).item() == pytest.approx(1.0)
    assert explained_variance(torch.full_like(returns, 2.5), returns, mask).item() == pytest.approx(0.0)
    assert explained_variance(t([0, 2, 3, 4, -7]), returns, mask).item() == pytest.approx(0.85)

"""Advantage estimators (GAE, GRPO, Dr. GRPO, RLOO), whitening and their registry.

GAE hand arithmetic uses γ = 0.9, λ = 0.8, so γλ = 0.72, (γλ)² = 0.5184, (γλ)³ = 0.373248,
(γλ)⁴ = 0.26873856. Group estimators use n = 3 samples per prompt and three prompts:
    rewards [1, 0, 0 | 3, 1, 2 | 5, 5, 5]
"""

from __future__ import annotations

import math

import pytest
import torch

from alignlab.errors import ConfigError
from alignlab.losses.advantages import (
    AdvantageOutput,
    advantage_names,
    dr_grpo_advantages,
    gae_advantages,
    get_advantage,
    grpo_advantages,
    masked_whiten,
    register_advantage,
    rloo_advantages,
)
from alignlab.losses.masked import masked_mean, masked_var


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


# ---------------------------------------------------------------------------------------- GAE

# Row 0 ends mid-batch (2 padding tokens holding garbage reward 5 and value 9); row 1 fills the
# batch; row 2 has a masked prompt token first (reward 3, value 4, both ignored), 2 response tokens.
GAE_MASK = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 1, 1, 0, 0]])
GAE_REWARDS = t([0, 0, 1, 5, 5], [0, 0, 0, 0, 2], [3, 0, 1, 5, 5])
GAE_VALUES = t([0.5, 0.6, 0.7, 9, 9], [1, 1, 1, 1, 1], [4, 0.2, 0.5, 9, 9])


def test_gae_hand_value_with_a_response_ending_mid_batch() -> None:
    """γ = 0.9, λ = 0.8; δ_t = r_t + γ·V_{t+1} − V_t with V = 0 after each row's last response token.

    row 0: δ2 = 1 − 0.7 = 0.3 (no bootstrap from the padding's V = 9)
           δ1 = 0 + 0.9·0.7 − 0.6 = 0.03,   δ0 = 0 + 0.9·0.6 − 0.5 = 0.04
           A2 = δ2 = 0.3
           A1 = δ1 + γλ·δ2 = 0.03 + 0.72·0.3 = 0.246
           A0 = δ0 + γλ·δ1 + (γλ)²·δ2 = 0.04 + 0.0216 + 0.5184·0.3 = 0.21712
           returns A + V = [0.71712, 0.846, 1.0, 0, 0]
    row 1: δ4 = 2 − 1 = 1, δ0..δ3 = 0.9·1 − 1 = −0.1
           A4 = 1
           A3 = −0.1 + 0.72                                       = 0.62
           A2 = −0.1·(1 + 0.72) + 0.5184                          = 0.3464
           A1 = −0.1·(1 + 0.72 + 0.5184) + 0.373248                = 0.149408
           A0 = −0.1·(1 + 0.72 + 0.5184 + 0.373248) + 0.26873856   = 0.00757376
    row 2: δ2 = 1 − 0.5 = 0.5, δ1 = 0.9·0.5 − 0.2 = 0.25
           A2 = 0.5,  A1 = 0.25 + 0.72·0.5 = 0.61,  A0 = 0 (prompt, masked)
           returns [0, 0.81, 1.0, 0, 0]
    """
    out = gae_advantages(GAE_REWARDS, GAE_MASK, values=GAE_VALUES, gamma=0.9, lam=0.8)
    expected = t(
        [0.21712, 0.246, 0.3, 0, 0],
        [0.00757376, 0.149408, 0.3464, 0.62, 1.0],
        [0, 0.61, 0.5, 0, 0],
    )
    torch.testing.assert_close(out.advantages, expected)
    torch.testing.assert_close(
        out.returns,
        t([0.71712, 0.846, 1.0, 0, 0], [1.00757376, 1.149408, 1.3464, 1.62, 2.0], [0, 0.81, 1.0, 0, 0]),
    )


def test_gae_ignores_whatever_padding_holds() -> None:
    """Infinite or huge rewards and values under mask 0 change nothing."""
    rewards, values = GAE_REWARDS.clone(), GAE_VALUES.clone()
    rewards[GAE_MASK == 0], values[GAE_MASK == 0] = math.inf, -1e30
    out = gae_advantages(rewards, GAE_MASK, values=values, gamma=0.9, lam=0.8)
    ref = gae_advantages(GAE_REWARDS, GAE_MASK, values=GAE_VALUES, gamma=0.9, lam=0.8)
    torch.testing.assert_close(out.advantages, ref.advantages, rtol=0, atol=0)
    torch.testing.assert_close(out.returns, ref.returns, rtol=0, atol=0)


def test_gae_limits_monte_carlo_and_td0() -> None:
    """λ = γ = 1: A_t = Σ_{k≥t} r_k − V_t (Monte Carlo). λ = 0: A_t = δ_t (one-step TD error)."""
    g = torch.Generator().manual_seed(0)
    rewards, values = (
        torch.randn(4, 6, generator=g, dtype=torch.float64),
        torch.randn(4, 6, generator=g, dtype=torch.float64),
    )
    mask = torch.tensor([[1] * 6, [1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 0], [1, 0, 0, 0, 0, 0]])
    mc = gae_advantages(rewards, mask, values=values, gamma=1.0, lam=1.0).advantages
    to_go = (rewards * mask).flip(-1).cumsum(-1).flip(-1)
    torch.testing.assert_close(mc, (to_go - values) * mask)
    td = gae_advantages(rewards, mask, values=values, gamma=0.9, lam=0.0).advantages
    next_values = torch.cat([values[:, 1:] * mask[:, 1:], torch.zeros(4, 1, dtype=torch.float64)], 1)
    torch.testing.assert_close(td, (rewards + 0.9 * next_values - values) * mask)


def test_gae_skips_a_hole_in_the_mask() -> None:
    """A masked observation between response tokens is skipped: [1, 0, 1] acts as the 2-token [1, 1]."""
    holed = gae_advantages(
        t([0.2, 7.0, 1.0]), torch.tensor([[1, 0, 1]]), values=t([0.3, 8.0, 0.4]), gamma=0.9, lam=0.8
    )
    plain = gae_advantages(t([0.2, 1.0]), torch.tensor([[1, 1]]), values=t([0.3, 0.4]), gamma=0.9, lam=0.8)
    torch.testing.assert_close(holed.advantages[:, [0, 2]], plain.advantages)
    assert holed.advantages[0, 1] == 0


def test_gae_rejects_sequence_rewards() -> None:
    with pytest.raises(ValueError, match="kl_shaped_rewards"):
        gae_advantages(t(1.0, 2.0), torch.ones(2, 3), values=torch.zeros(2, 3))


# ---------------------------------------------------------------------------------- whitening


def test_masked_whiten_hand_value() -> None:
    """Response tokens 1, 2 | 3, 6 (padding 100, −50): μ = 3, σ² = (4 + 1 + 0 + 9)/3 = 14/3 (Bessel),
    σ = 2.1602469; (x − μ)/σ = [−0.9258201, −0.4629100 | 0, 1.3887301]; padding -> 0.
    shift_mean=False adds μ back: [2.0741799, 2.5370900 | 3, 4.3887301]."""
    x, mask = t([1, 2, 100], [3, 6, -50]), torch.tensor([[1, 1, 0], [1, 1, 0]])
    torch.testing.assert_close(masked_whiten(x, mask), t([-0.9258201, -0.4629100, 0], [0, 1.3887301, 0]))
    torch.testing.assert_close(
        masked_whiten(x, mask, shift_mean=False), t([2.0741799, 2.5370900, 0], [3, 4.3887301, 0])
    )


def test_masked_whiten_gives_zero_mean_unit_variance_on_response_tokens() -> None:
    g = torch.Generator().manual_seed(1)
    x = 5 + 3 * torch.randn(8, 10, generator=g, dtype=torch.float64)
    mask = (torch.rand(8, 10, generator=g) < 0.6).long()
    w = masked_whiten(x, mask)
    assert abs(float(masked_mean(w, mask))) < 1e-12
    assert float(masked_var(w, mask)) == pytest.approx(1.0, abs=1e-6)
    assert (w[mask == 0] == 0).all()
    one_token = torch.zeros_like(mask)
    one_token[0, 0] = 1
    with pytest.raises(ValueError, match="at least 2"):  # one token has no variance to divide by
        masked_whiten(x, one_token)


# ------------------------------------------------------------------------------ group estimators

GROUP_REWARDS = t(1, 0, 0, 3, 1, 2, 5, 5, 5)
# Responses of different lengths (T = 3), so broadcasting must follow each row's mask.
GROUP_MASK = torch.tensor([[1, 1, 1], [1, 0, 0], [1, 1, 0]] * 3)


def test_grpo_hand_value() -> None:
    """A = (r − mean)/(std + ε), Bessel std, ε = 1e-6.

    group 1: mean 1/3, std² = ((2/3)² + 2·(1/3)²)/2 = 1/3, std = 1/√3
             A = (2/3)·√3 = 2/√3 = 1.154701, −1/√3 = −0.577350 (twice)
    group 2: mean 2, std² = (1 + 1 + 0)/2 = 1  ->  A = 1, −1, 0 (each divided by 1 + 1e-6)
    group 3: all rewards equal, std 0  ->  A = 0: no learning signal
    """
    out = grpo_advantages(GROUP_REWARDS, GROUP_MASK, group_size=3)
    s = 1 / math.sqrt(3) + 1e-6
    per_response = t((2 / 3) / s, (-1 / 3) / s, (-1 / 3) / s, 1 / 1.000001, -1 / 1.000001, 0, 0, 0, 0)
    torch.testing.assert_close(
        per_response, t(1.154699, -0.577349, -0.577349, 0.999999, -0.999999, 0, 0, 0, 0), atol=1e-6, rtol=0
    )
    torch.testing.assert_close(out.advantages, per_response[:, None] * GROUP_MASK)
    assert out.returns is None


def test_dr_grpo_hand_value() -> None:
    """A = r − mean: group 1 [2/3, −1/3, −1/3]; group 2 [1, −1, 0]; group 3 [0, 0, 0]."""
    out = dr_grpo_advantages(GROUP_REWARDS, GROUP_MASK, group_size=3)
    per_response = t(2 / 3, -1 / 3, -1 / 3, 1, -1, 0, 0, 0, 0)
    torch.testing.assert_close(out.advantages, per_response[:, None] * GROUP_MASK)


def test_rloo_hand_value() -> None:
    """A_i = r_i − mean of the other n − 1 rewards.

    group 1: 1 − (0 + 0)/2 = 1;   0 − (1 + 0)/2 = −0.5 (twice)
    group 2: 3 − (1 + 2)/2 = 1.5; 1 − (3 + 2)/2 = −1.5; 2 − (3 + 1)/2 = 0
    group 3: 0
    Equal to n/(n − 1)·(r − mean), i.e. 1.5 × Dr. GRPO's advantages.
    """
    out = rloo_advantages(GROUP_REWARDS, GROUP_MASK, group_size=3)
    per_response = t(1, -0.5, -0.5, 1.5, -1.5, 0, 0, 0, 0)
    torch.testing.assert_close(out.advantages, per_response[:, None] * GROUP_MASK)
    torch.testing.assert_close(
        out.advantages, 1.5 * dr_grpo_advantages(GROUP_REWARDS, GROUP_MASK, group_size=3).advantages
    )


def test_group_estimators_properties() -> None:
    """GRPO is invariant to a positive affine change of the rewards; Dr. GRPO and RLOO advantages
    sum to 0 within each group; the groups are consecutive rows, never mixed."""
    g = torch.Generator().manual_seed(2)
    rewards = torch.randn(12, generator=g, dtype=torch.float64)
    mask = torch.ones(12, 1)
    base = grpo_advantages(rewards, mask, group_size=4, eps=0.0).advantages
    torch.testing.assert_close(grpo_advantages(3 * rewards + 7, mask, group_size=4, eps=0.0).advantages, base)
    for fn in (dr_grpo_advantages, rloo_advantages):
        adv = fn(rewards, mask, group_size=4).advantages.reshape(3, 4)
        torch.testing.assert_close(adv.sum(1), torch.zeros(3, dtype=torch.float64))
    changed = rewards.clone()
    changed[:4] += 100.0  # only group 0 changes
    torch.testing.assert_close(
        rloo_advantages(changed, mask, group_size=4).advantages[4:],
        rloo_advantages(rewards, mask, group_size=4).advantages[4:],
    )


@pytest.mark.parametrize("fn", [grpo_advantages, dr_grpo_advantages, rloo_advantages])
def test_group_estimators_reject_bad_groups(fn) -> None:
    with pytest.raises(ValueError, match="divide the batch"):
        fn(t(1, 2, 3, 4, 5), torch.ones(5, 2), group_size=2)
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        fn(t(1, 2), torch.ones(2, 2), group_size=1)
    with pytest.raises(ValueError, match=r"rewards \(B,\)"):
        fn(torch.ones(2, 2), torch.ones(2, 2), group_size=2)


# ---------------------------------------------------------------------------------- registry


def test_registry_lists_every_estimator_and_what_it_needs() -> None:
    assert advantage_names() == ("gae", "grpo", "dr_grpo", "rloo")
    specs = {n: get_advantage(n) for n in advantage_names()}
    assert {n for n, s in specs.items() if s.needs_values} == {"gae"}
    assert {n for n, s in specs.items() if s.needs_groups} == {"grpo", "dr_grpo", "rloo"}
    assert {n for n, s in specs.items() if s.rewards == "token"} == {"gae"}
    assert {n for n, s in specs.items() if s.kl_placement == "loss"} == {"grpo", "dr_grpo"}
    assert specs["dr_grpo"].loss_agg == "seq-mean-token-sum-norm"
    assert specs["grpo"].loss_agg == "seq-mean-token-mean"
    assert specs["gae"].hyperparameters == {"gamma": 1.0, "lam": 0.95}
    assert specs["grpo"].hyperparameters == {"eps": 1e-6}
    assert specs["rloo"].hyperparameters == {}
    assert specs["rloo"].description.startswith("RLOO")


def test_unknown_estimator_is_a_config_error_listing_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        get_advantage("ppo")
    assert "'ppo'" in str(err.value) and all(n in str(err.value) for n in advantage_names())


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_advantage(
            "gae",
            needs_values=True,
            needs_groups=False,
            rewards="token",
            kl_placement="reward",
            loss_agg="token-mean",
        )(lambda *a, **k: None)
    assert get_advantage("gae").fn is gae_advantages


@pytest.mark.parametrize("name", advantage_names())
def test_every_estimator_runs_from_its_spec(name: str) -> None:
    """The calling convention a step uses: inputs chosen by the spec's fields, never by the name."""
    spec = get_advantage(name)
    g = torch.Generator().manual_seed(3)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]] * 2)
    shape = (4, 4) if spec.rewards == "token" else (4,)
    kwargs = {}
    if spec.needs_values:
        kwargs["values"] = torch.randn(4, 4, generator=g)
    if spec.needs_groups:
        kwargs["group_size"] = 2
    out = spec.fn(torch.randn(*shape, generator=g), mask, **kwargs)
    assert isinstance(out, AdvantageOutput)
    assert out.advantages.shape == (4, 4) and (out.advantages[mask == 0] == 0).all()
    assert (out.returns is not None) == spec.needs_values

"""DPO-family losses: hand-computed values, known properties, and the registry.

Two constants recur in the hand arithmetic:
    a = −log σ(1)  = log(1 + e^−1) = 0.3132616875...
    b = −log σ(−1) = log(1 + e)    = 1.3132616875...   (b = a + 1)
"""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

from alignlab.errors import ConfigError
from alignlab.losses import preference as P
from alignlab.losses.registry import get_loss, loss_names, register_loss

A = math.log1p(math.exp(-1.0))
B = math.log1p(math.e)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def sig(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# Two pairs shared by the reference-based tests:
#   pair 1: πθ(chosen) = −1, πθ(rejected) = −3, ref = −2, −2  -> log-ratios +1, −1, h = +2
#   pair 2: πθ(chosen) = −4, πθ(rejected) = −2, ref = −3, −3  -> log-ratios −1, +1, h = −2
PC, PR, RC, RR = t(-1.0, -4.0), t(-3.0, -2.0), t(-2.0, -3.0), t(-2.0, -3.0)


def test_dpo_hand_value() -> None:
    """β = 0.5, so β·h = +1 and −1.

    pair 1: L = −log σ(1)  = a = 0.31326;  rewards β·(+1), β·(−1) = 0.5, −0.5
    pair 2: L = −log σ(−1) = b = 1.31326;  rewards −0.5, 0.5
    """
    out = P.dpo_loss(PC, PR, RC, RR, beta=0.5)
    torch.testing.assert_close(out.losses, t(A, B))
    torch.testing.assert_close(out.chosen_rewards, t(0.5, -0.5))
    torch.testing.assert_close(out.rejected_rewards, t(-0.5, 0.5))


def test_cdpo_hand_value() -> None:
    """β = 0.5, ε = 0.25: L = 0.75·(−log σ(βh)) + 0.25·(−log σ(−βh)).

    pair 1 (βh = 1):  0.75·a + 0.25·b = 0.75·0.313262 + 0.25·1.313262 = 0.563262
    pair 2 (βh = −1): 0.75·b + 0.25·a = 0.75·1.313262 + 0.25·0.313262 = 1.063262
    """
    out = P.cdpo_loss(PC, PR, RC, RR, beta=0.5, label_smoothing=0.25)
    torch.testing.assert_close(out.losses, t(0.75 * A + 0.25 * B, 0.75 * B + 0.25 * A))
    torch.testing.assert_close(out.losses, t(0.5632616875182228, 1.0632616875182228))


def test_cdpo_with_zero_smoothing_equals_dpo() -> None:
    g = torch.Generator().manual_seed(0)
    logps = [-10 * torch.rand(16, generator=g, dtype=torch.float64) for _ in range(4)]
    dpo = P.dpo_loss(*logps, beta=0.3)
    cdpo = P.cdpo_loss(*logps, beta=0.3, label_smoothing=0.0)
    torch.testing.assert_close(cdpo.losses, dpo.losses, rtol=0, atol=0)
    # And in general cDPO − DPO = ε·(log σ(βh) − log σ(−βh)) = ε·β·h.
    h = (logps[0] - logps[2]) - (logps[1] - logps[3])
    smoothed = P.cdpo_loss(*logps, beta=0.3, label_smoothing=0.2).losses
    torch.testing.assert_close(smoothed - dpo.losses, 0.2 * 0.3 * h)


def test_rpo_hand_value_and_zero_weight_equals_dpo() -> None:
    """β = 0.5, α = 0.5, per-token chosen NLL 2 and 4: L = DPO + α·NLL = a + 1, b + 2."""
    out = P.rpo_loss(PC, PR, RC, RR, t(2.0, 4.0), beta=0.5, nll_weight=0.5)
    torch.testing.assert_close(out.losses, t(A + 1.0, B + 2.0))
    torch.testing.assert_close(out.chosen_rewards, t(0.5, -0.5))
    plain = P.rpo_loss(PC, PR, RC, RR, t(2.0, 4.0), beta=0.5, nll_weight=0.0)
    torch.testing.assert_close(plain.losses, P.dpo_loss(PC, PR, RC, RR, beta=0.5).losses, rtol=0, atol=0)


def test_rpo_raises_the_chosen_likelihood_where_dpo_only_widens_the_margin() -> None:
    """DPO's gradient is equal and opposite on chosen and rejected; RPO's NLL adds a push on chosen only."""
    grads = {}
    for name, extra in (("dpo", {}), ("rpo", {"nll_weight": 1.0})):
        pc = torch.tensor([-5.0], dtype=torch.float64, requires_grad=True)
        pr = torch.tensor([-5.0], dtype=torch.float64, requires_grad=True)
        args = [pc, pr, t(-5.0), t(-5.0)] + ([-pc / 5] if name == "rpo" else [])  # 5 tokens: per-token NLL
        get_loss(name).fn(*args, beta=0.1, **extra).losses.sum().backward()
        grads[name] = (pc.grad.item(), pr.grad.item())
    assert grads["dpo"] == pytest.approx((-0.05, 0.05))
    assert grads["rpo"] == pytest.approx((-0.05 - 1 / 5, 0.05))


def test_ipo_hand_value() -> None:
    """τ = β = 0.25, so the target margin is 1/(2τ) = 2.

    pair 1: h = 2  -> (2 − 2)² = 0
    pair 2: h = −2 -> (−2 − 2)² = 16
    """
    out = P.ipo_loss(PC, PR, RC, RR, beta=0.25)
    torch.testing.assert_close(out.losses, t(0.0, 16.0))
    torch.testing.assert_close(out.chosen_rewards, t(0.25, -0.25))


def test_slic_hand_value() -> None:
    """δ = 1, λ = 0.1.

    pair 1: chosen −1, rejected −3, NLL 5:   max(0, 1 + 1 − 3) + 0.1·5 = 0 + 0.5 = 0.5
    pair 2: chosen −4, rejected −3.5, NLL 8: max(0, 1 + 4 − 3.5) + 0.1·8 = 1.5 + 0.8 = 2.3
    """
    out = P.slic_loss(t(-1.0, -4.0), t(-3.0, -3.5), t(5.0, 8.0), delta=1.0, nll_weight=0.1)
    torch.testing.assert_close(out.losses, t(0.5, 2.3))
    torch.testing.assert_close(out.chosen_rewards, t(-1.0, -4.0))


def test_kto_hand_value_unpaired() -> None:
    """β = 0.5, z0 = 1, λ_D = 1, λ_U = 2; 2 desirable and 3 undesirable examples (unpaired).

    desirable r = πθ − πref = [−1 − (−4), −5 − (−5)] = [3, 0]
        L = λ_D·(1 − σ(β(r − z0))) = 1 − σ(1), 1 − σ(−0.5) = σ(−1), σ(0.5) = 0.268941, 0.622459
    undesirable r = [−6 − (−3), −2 − (−3), −3 − (−3)] = [−3, 1, 0]
        L = λ_U·(1 − σ(β(z0 − r))) = 2·σ(−2), 2·σ(0), 2·σ(−0.5) = 0.238406, 1.0, 0.755081
    """
    out = P.kto_loss(
        t(-1.0, -5.0), t(-6.0, -2.0, -3.0), t(-4.0, -5.0), t(-3.0, -3.0, -3.0),
        kl=1.0, beta=0.5, desirable_weight=1.0, undesirable_weight=2.0,
    )
    expected = t(sig(-1), sig(0.5), 2 * sig(-2), 2 * sig(0), 2 * sig(-0.5))
    torch.testing.assert_close(out.losses, expected)
    torch.testing.assert_close(out.losses, t(0.268941421, 0.622459331, 0.238405844, 1.0, 0.755081339))
    torch.testing.assert_close(out.chosen_rewards, t(1.5, 0.0))
    torch.testing.assert_close(out.rejected_rewards, t(-1.5, 0.5, 0.0))


def test_kto_kl_is_a_clamped_detached_baseline() -> None:
    pc, rc, pr, rr = t(-1.0, -2.0), t(-1.5, -1.5), t(-3.0), t(-2.0)
    clamped = P.kto_loss(pc, pr, rc, rr, kl=-5.0).losses
    torch.testing.assert_close(clamped, P.kto_loss(pc, pr, rc, rr, kl=0.0).losses)
    kl = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    pc.requires_grad_()
    P.kto_loss(pc, pr, rc, rr, kl=kl).losses.sum().backward()
    assert pc.grad is not None
    assert kl.grad is None  # z0 is a baseline: no gradient flows into the KL estimate


def test_kto_accepts_only_undesirable_examples() -> None:
    """No desirable examples: the 1 undesirable loss with r = 0, z0 = 0 is 1 − σ(0) = 0.5."""
    empty = t()
    out = P.kto_loss(empty, t(-2.0), empty, t(-2.0), kl=0.0, beta=0.1)
    torch.testing.assert_close(out.losses, t(0.5))


def test_orpo_hand_value() -> None:
    """β (λ) = 0.1; averaged log-probs log 0.5 and log 0.2, so odds = 1 and 0.25.

    pair 1: log odds ratio = log 1 − log 0.25 = log 4; −log σ(log 4) = −log(4/5) = log 1.25
            L = NLL + 0.1·log 1.25 = 0.693147 + 0.022314 = 0.715462   (NLL = −log 0.5)
    pair 2: chosen and rejected swapped: −log σ(−log 4) = −log(1/5) = log 5
            L = 1.609438 + 0.1·1.609438 = 1.770382                      (NLL = −log 0.2)
    """
    half, fifth = math.log(0.5), math.log(0.2)
    out = P.orpo_loss(t(half, fifth), t(fifth, half), t(-half, -fifth), beta=0.1)
    torch.testing.assert_close(out.losses, t(0.7154616, 1.7703817))
    torch.testing.assert_close(out.chosen_rewards, t(0.1 * half, 0.1 * fifth))


def test_orpo_log_odds_finite_when_likelihood_near_one() -> None:
    out = P.orpo_loss(t(-1e-9, 0.0), t(-3.0, -3.0), t(1e-9, 0.0), beta=0.1)
    assert torch.isfinite(out.losses).all()
    assert out.losses.max() < 1e-3  # odds ratio is huge, so the penalty vanishes


def test_simpo_hand_value() -> None:
    """β = 2, γ = 1; inputs are averaged log-probs.

    pair 1: 2·(−0.5) − 2·(−1.5) − 1 = 1  -> −log σ(1)  = a
    pair 2: 2·(−1)   − 2·(−1)   − 1 = −1 -> −log σ(−1) = b
    """
    out = P.simpo_loss(t(-0.5, -1.0), t(-1.5, -1.0), beta=2.0, gamma=1.0)
    torch.testing.assert_close(out.losses, t(A, B))
    torch.testing.assert_close(out.chosen_rewards, t(-1.0, -2.0))
    torch.testing.assert_close(out.rejected_rewards, t(-3.0, -2.0))


def test_simpo_invariant_to_length_scaling() -> None:
    """Repeating a response's tokens k times multiplies its sum and its length by k: the average,
    and so SimPO's loss, is unchanged, while a summed-log-prob loss (DPO) moves."""
    chosen_tokens, rejected_tokens = t(-0.2, -0.4, -0.9), t(-1.0, -0.5, -2.0, -0.1)
    spec = get_loss("simpo")
    assert spec.logps == "mean"
    base = P.simpo_loss(chosen_tokens.mean()[None], rejected_tokens.mean()[None]).losses
    for k in (2, 5):
        scaled = P.simpo_loss(chosen_tokens.repeat(k).mean()[None], rejected_tokens.mean()[None]).losses
        torch.testing.assert_close(scaled, base)
    zero = t(0.0)
    dpo = [
        P.dpo_loss(c.sum()[None], rejected_tokens.sum()[None], zero, zero).losses
        for c in (chosen_tokens, chosen_tokens.repeat(2))
    ]
    assert not torch.allclose(dpo[0], dpo[1])


@pytest.mark.parametrize("name", ["dpo", "ipo"])
def test_gradient_pushes_chosen_ratio_up(name: str) -> None:
    """At h = 0 (below IPO's target 1/(2β)) descent raises the chosen and lowers the rejected log-prob.

    DPO by hand: dL/dπθ(y_w) = −β·σ(−βh) = −0.1·0.5 = −0.05 at h = 0.
    IPO by hand: dL/dπθ(y_w) = 2(h − 1/(2β)) = 2·(0 − 5) = −10 at h = 0.
    """
    pc = torch.tensor([-5.0], dtype=torch.float64, requires_grad=True)
    pr = torch.tensor([-5.0], dtype=torch.float64, requires_grad=True)
    ref = t(-5.0)
    get_loss(name).fn(pc, pr, ref, ref, beta=0.1).losses.sum().backward()
    expected = {"dpo": -0.05, "ipo": -10.0}[name]
    torch.testing.assert_close(pc.grad, t(expected))
    torch.testing.assert_close(pr.grad, t(-expected))
    with torch.no_grad():  # one SGD step raises the margin h
        h_after = (pc - 0.01 * pc.grad) - (pr - 0.01 * pr.grad)
    assert h_after.item() > 0.0


def test_ipo_stops_pushing_at_its_target_margin() -> None:
    """IPO's gradient vanishes at h = 1/(2β) = 5 and reverses beyond it; DPO's never does."""
    grads = {}
    for name in ("ipo", "dpo"):
        for h in (5.0, 8.0):
            pc = torch.tensor([h - 5.0], dtype=torch.float64, requires_grad=True)
            get_loss(name).fn(pc, t(-5.0), t(0.0), t(0.0), beta=0.1).losses.sum().backward()
            grads[name, h] = pc.grad.item()
    assert grads["ipo", 5.0] == 0.0
    assert grads["ipo", 8.0] == pytest.approx(2 * (8.0 - 5.0))  # 2(h − 1/(2β)) = 6
    assert grads["dpo", 5.0] < 0.0 and grads["dpo", 8.0] < 0.0


# --------------------------------------------------------------------------- registry


def test_registry_lists_every_loss_in_order() -> None:
    assert loss_names() == ("dpo", "cdpo", "rpo", "ipo", "slic", "kto", "orpo", "simpo")


def test_specs_record_what_each_loss_needs() -> None:
    specs = {name: get_loss(name) for name in loss_names()}
    assert {n for n, s in specs.items() if not s.needs_reference} == {"slic", "orpo", "simpo"}
    assert {n for n, s in specs.items() if not s.paired} == {"kto"}
    assert {n for n, s in specs.items() if s.logps == "mean"} == {"orpo", "simpo"}
    assert {n for n, s in specs.items() if s.needs_nll} == {"slic", "orpo", "rpo"}
    assert {n for n, s in specs.items() if s.needs_nll and s.nll == "mean"} == {"orpo", "rpo"}
    assert specs["cdpo"].hyperparameters == {"beta": 0.1, "label_smoothing": 0.1}
    assert specs["simpo"].hyperparameters == {"beta": 2.0, "gamma": 1.0}
    assert specs["ipo"].description.startswith("IPO")


def test_unknown_loss_is_a_config_error_listing_valid_names() -> None:
    with pytest.raises(ConfigError) as err:
        get_loss("dpoo")
    msg = str(err.value)
    assert "'dpoo'" in msg
    assert all(name in msg for name in loss_names())


def test_registering_a_name_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register_loss("dpo", needs_reference=True)(lambda *a, **k: None)
    assert get_loss("dpo").fn is P.dpo_loss


@pytest.mark.parametrize("name", loss_names())
def test_every_loss_runs_from_its_spec(name: str) -> None:
    """The calling convention a step function uses: inputs chosen by the spec, not by the name."""
    spec = get_loss(name)
    g = torch.Generator().manual_seed(1)
    n_rejected = 3 if not spec.paired else 4  # unpaired losses get a different count on purpose
    scale = 1.0 if spec.logps == "mean" else 20.0
    pc = (-scale * torch.rand(4, generator=g, dtype=torch.float64)).requires_grad_()
    pr = (-scale * torch.rand(n_rejected, generator=g, dtype=torch.float64)).requires_grad_()
    args = [pc, pr]
    if spec.needs_reference:
        args += [
            -scale * torch.rand(4, generator=g, dtype=torch.float64),
            -scale * torch.rand(n_rejected, generator=g, dtype=torch.float64),
        ]
    if spec.needs_nll:
        args.append(-pc)
    out = spec.fn(*args)
    assert isinstance(out, P.PreferenceLossOutput)
    assert out.losses.shape == ((4,) if spec.paired else (4 + n_rejected,))
    assert out.chosen_rewards.shape == (4,) and out.rejected_rewards.shape == (n_rejected,)
    assert not out.chosen_rewards.requires_grad
    out.losses.mean().backward()
    assert pc.grad.abs().sum() > 0 and pr.grad.abs().sum() > 0


def test_losses_import_with_only_torch() -> None:
    """Block transformers, pydantic and numpy: the loss modules must still import."""
    code = (
        "import sys\n"
        "for m in ('transformers', 'pydantic', 'numpy', 'peft', 'accelerate'): sys.modules[m] = None\n"
        "from alignlab.losses.registry import loss_names\n"
        "import alignlab.losses.reward\n"
        "print(','.join(loss_names()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "dpo,cdpo,rpo,ipo,slic,kto,orpo,simpo"

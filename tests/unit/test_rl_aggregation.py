"""Loss aggregation modes as the training loop's SUM + item count: hand values and the
micro-batch equivalence (OpenRLHF's `test_loss_aggregation.py` idea): micro-batches summed and
divided by the items of the whole batch give the whole batch's loss and gradient."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from alignlab.errors import ConfigError
from alignlab.losses.aggregation import LOSS_AGGREGATIONS, aggregate_loss, loss_item_count
from alignlab.losses.masked import masked_mean
from alignlab.losses.policy import clipped_value_loss, ppo_policy_loss


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.clone().requires_grad_()


def test_aggregation_hand_value() -> None:
    """Token losses [1, 2, 3 | 4] (padding 50): 4 tokens in 2 sequences, C = 4.

    token-mean:              total 1 + 2 + 3 + 4 = 10,        count 4 -> 2.5
    seq-mean-token-mean:     total (6/3) + (4/1) = 6,         count 2 -> 3
    seq-mean-token-sum-norm: total 6/4 + 4/4 = 2.5,           count 2 -> 1.25
    """
    losses, mask = t([1, 2, 3], [4, 50, 50]), torch.tensor([[1, 1, 1], [1, 0, 0]])
    expected = {"token-mean": (10.0, 4), "seq-mean-token-mean": (6.0, 2), "seq-mean-token-sum-norm": (2.5, 2)}
    for mode, (total, count) in expected.items():
        agg = aggregate_loss(losses, mask, mode, norm_constant=4.0)
        assert (agg.total.item(), agg.count.item()) == (total, count)
        assert loss_item_count(mask, mode) == count
    assert aggregate_loss(losses, mask, "seq-mean-token-mean").mean.item() == 3.0


def test_aggregation_rejects_unknown_modes_and_a_missing_constant() -> None:
    losses, mask = torch.ones(1, 2), torch.ones(1, 2)
    with pytest.raises(
        ConfigError, match="'seq-mean'.*token-mean, seq-mean-token-mean, seq-mean-token-sum-norm"
    ):
        aggregate_loss(losses, mask, "seq-mean")
    with pytest.raises(ConfigError, match="constant normaliser"):
        aggregate_loss(losses, mask, "seq-mean-token-sum-norm")


def _losses(batch: dict[str, torch.Tensor], theta: torch.Tensor, phi: torch.Tensor, mode: str):
    """Actor (with KL and entropy terms) and critic losses of one (micro-)batch of rows."""
    logps = batch["old"] + theta
    actor = ppo_policy_loss(
        logps,
        batch["old"],
        batch["adv"],
        batch["mask"],
        clip_eps=0.2,
        loss_agg=mode,
        norm_constant=7.0,
        ref_logps=batch["ref"],
        kl_coef=0.05,
        entropy=batch["ent"] * torch.exp(theta),
        entropy_coef=0.01,
    )
    critic = clipped_value_loss(
        batch["old_v"] + phi, batch["old_v"], batch["ret"], batch["mask"], loss_agg=mode, norm_constant=7.0
    )
    return actor, critic


@pytest.mark.parametrize("mode", LOSS_AGGREGATIONS)
def test_micro_batches_give_the_whole_batch_loss_and_gradient(mode: str) -> None:
    """Rows split 2 / 3 / 1, each micro-batch's SUM divided by the items of the whole batch (the
    loop's contract), equal the whole batch's loss and gradient. A row without response tokens is
    included. Averaging per-micro-batch means instead (the naive way) gives a different loss."""
    g = torch.Generator().manual_seed(4)
    b, n = 6, 7
    lengths = torch.tensor([7, 3, 1, 5, 0, 2])
    batch = {
        "mask": (torch.arange(n)[None, :] < lengths[:, None]).long(),
        "old": -torch.rand(b, n, generator=g, dtype=torch.float64) * 3,
        "ref": -torch.rand(b, n, generator=g, dtype=torch.float64) * 3,
        "adv": torch.randn(b, n, generator=g, dtype=torch.float64),
        "ent": torch.rand(b, n, generator=g, dtype=torch.float64),
        "old_v": torch.randn(b, n, generator=g, dtype=torch.float64),
        "ret": torch.randn(b, n, generator=g, dtype=torch.float64),
    }
    theta = 0.4 * torch.randn(b, n, generator=g, dtype=torch.float64)
    phi = 0.4 * torch.randn(b, n, generator=g, dtype=torch.float64)

    whole_theta, whole_phi = leaf(theta), leaf(phi)
    actor, critic = _losses(batch, whole_theta, whole_phi, mode)
    assert actor.num_items.item() == loss_item_count(batch["mask"], mode)
    whole_actor = (actor.loss / actor.num_items).item()
    whole = actor.loss / actor.num_items + critic.loss / critic.num_items
    whole.backward()

    split_theta, split_phi = leaf(theta), leaf(phi)
    cuts = [(0, 2), (2, 5), (5, 6)]
    items = sum(loss_item_count(batch["mask"][i:j], mode) for i, j in cuts)
    total, naive = torch.zeros((), dtype=torch.float64), []
    for i, j in cuts:
        micro = {k: v[i:j] for k, v in batch.items()}
        actor, critic = _losses(micro, split_theta[i:j], split_phi[i:j], mode)
        step = (actor.loss + critic.loss) / items
        step.backward()
        total += step.detach()
        naive.append((actor.loss / actor.num_items.clamp(min=1)).item())
    torch.testing.assert_close(total, whole.detach())
    torch.testing.assert_close(split_theta.grad, whole_theta.grad)
    torch.testing.assert_close(split_phi.grad, whole_phi.grad)
    if mode != "seq-mean-token-sum-norm":  # the mean of means is wrong whenever micro-batches differ
        assert abs(sum(naive) / len(naive) - whole_actor) > 1e-3


def test_rl_losses_import_with_only_torch() -> None:
    """Block transformers, pydantic and numpy: the RL loss modules must still import."""
    code = (
        "import sys\n"
        "for m in ('transformers', 'pydantic', 'numpy', 'peft', 'accelerate'): sys.modules[m] = None\n"
        "import alignlab.losses.kl, alignlab.losses.policy, alignlab.losses.entropy\n"
        "from alignlab.losses.advantages import advantage_names\n"
        "print(','.join(advantage_names()))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "gae,grpo,dr_grpo,rloo"


def test_masked_mean_of_an_empty_selection_is_zero() -> None:
    assert masked_mean(t([1.0, 2.0]), torch.zeros(1, 2)).item() == 0.0

"""DPO step metrics: a margin within float noise of zero is a tie, not a win."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.preference import EncodedPair, collate_pairs, with_reference
from alignlab.data.templating import EncodedExample
from alignlab.losses.registry import get_loss
from alignlab.losses.reward import pairwise_accuracy
from alignlab.training.dpo import make_paired_step, pair_logps


def ex(ids: list[int]) -> EncodedExample:
    return EncodedExample(ids, [IGNORE_INDEX, IGNORE_INDEX] + ids[2:])


def test_pairwise_accuracy_counts_margins_within_the_tolerance_as_ties():
    c, r = torch.tensor([1.0, 1e-6, -1e-6, 0.0]), torch.tensor([0.0, 0.0, 0.0, 1.0])
    assert pairwise_accuracy(c, r) == 0.5  # 1 + 1 + 0 + 0 out of 4
    assert pairwise_accuracy(c, r, tie_tol=1e-4) == 0.5  # 1 + 0.5 + 0.5 + 0
    assert pairwise_accuracy(torch.tensor([1e-6]), torch.tensor([0.0]), tie_tol=1e-4) == 0.5


@pytest.mark.parametrize("loss", ["dpo", "ipo"])
def test_step_one_with_a_cached_reference_off_by_float_noise_reports_chance_accuracy(tiny_model_dir, loss):
    """At step 1 the policy is the reference; a cache computed in other batches differs by ~1e-6."""
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir("llama")).eval()
    sides = [([5, 6, 7, 8, 9], [5, 6, 10, 11]), ([12, 13, 14], [12, 13, 15]),
             ([20, 21, 22, 23], [20, 21, 24]), ([30, 31, 32], [30, 31, 33])]
    pairs = [EncodedPair(ex(c), ex(r)) for c, r in sides]
    with torch.no_grad():
        logps = pair_logps(model, collate_pairs(pairs, pad_token_id=0))
    # Noise as a differently batched pre-pass gives it: the chosen side's a hair above, the rejected's below.
    chosen = (logps["chosen"].logps - 3e-6).tolist()
    rejected = (logps["rejected"].logps + 3e-6).tolist()
    cached = with_reference(with_reference(pairs, "chosen", chosen), "rejected", rejected)
    step = make_paired_step(get_loss(loss), {})
    with torch.no_grad():
        out = step(model, collate_pairs(cached, pad_token_id=0))
    assert abs(out.metrics["rewards/margin"]) < 1e-4
    assert out.metrics["rewards/accuracy"] == 0.5

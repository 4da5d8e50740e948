"""What pretraining and SFT share: the next-token NLL step, its item count, held-out perplexity.

The loss is summed over target tokens (labels != IGNORE_INDEX after the shift) and the loop divides
by the target tokens of the whole optimizer step, so batch × accumulation can be traded freely.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from alignlab.data.labels import IGNORE_INDEX
from alignlab.modeling.attention import attention_inputs
from alignlab.modeling.inference import run_batches
from alignlab.modeling.logprobs import label_targets, target_logps
from alignlab.training.loop import StepOutput


def count_target_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Items the NLL sums over: target tokens after the next-token shift."""
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def nll_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
    """Summed next-token NLL of the labelled tokens of a padded, packed or padding-free batch.

    Only labelled positions go through the LM head where the architecture allows it
    (`alignlab.modeling.logprobs.target_logps`): prompt tokens cost no vocabulary projection.
    """
    if "target_index" in batch:  # padding-free (alignlab.data.layout)
        inputs = attention_inputs(model, batch)
        index, targets = batch["target_index"], batch["target_ids"]
    else:
        # The forward passes use_cache=False: with a cache, transformers ignores the packed-row
        # boundaries in position_ids.
        inputs = {k: v for k, v in batch.items() if k != "labels"}
        index, targets = label_targets(batch["labels"])
    total = -target_logps(model, inputs, index, targets).sum()
    n = max(int(index.numel()), 1)
    return StepOutput(loss=total, metrics={"nll": float(total.detach()) / n})


def make_eval_fn(examples: list, collate: Callable, batch_size: int) -> Callable[[torch.nn.Module],
                                                                                 dict[str, float]]:
    """Mean per-token NLL and perplexity of the labelled tokens of held-out examples."""

    def forward(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[float, int]:
        return float(nll_step(model, batch).loss), count_target_tokens(batch)

    def evaluate(model: torch.nn.Module) -> dict[str, float]:
        sums = [out for _, out in run_batches(model, examples, collate, forward, batch_size=batch_size)]
        mean = sum(t for t, _ in sums) / max(sum(n for _, n in sums), 1)
        return {"loss": mean, "ppl": math.exp(min(mean, 50.0))}

    return evaluate

"""What pretraining and SFT share: the next-token NLL step, its item count, held-out perplexity.

The loss is summed over target tokens (labels != IGNORE_INDEX after the shift) and the loop divides
by the target tokens of the whole optimizer step, so batch × accumulation can be traded freely.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from alignlab.data.labels import IGNORE_INDEX
from alignlab.losses.sft import token_nll
from alignlab.modeling.inference import run_batches
from alignlab.training.loop import StepOutput


def count_target_tokens(batch: dict[str, torch.Tensor]) -> int:
    """Items the NLL sums over: target tokens after the next-token shift."""
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def nll_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> StepOutput:
    """Summed next-token NLL of the labelled tokens of a padded or packed batch."""
    labels = batch["labels"]
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    # No KV cache in training; with a cache, transformers ignores the packed-row boundaries in position_ids.
    logits = model(**inputs, use_cache=False).logits
    nll = token_nll(logits, labels)
    n = max(int(nll.num_tokens), 1)
    return StepOutput(loss=nll.total, metrics={"nll": float(nll.total.detach()) / n})


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

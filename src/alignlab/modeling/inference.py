"""Running a model without training it: eval mode, no gradients, batches; the mode is restored after.

Every forward pass that is not a training step (held-out evaluation, reference log-probs, reward
scoring, and generation) belongs inside `inference_mode`, so dropout is off while it runs and a
model that was training goes on training afterwards.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import torch

T = TypeVar("T")
R = TypeVar("R")


@contextmanager
def inference_mode(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """`model` in eval mode without gradients; its train/eval mode is restored on exit."""
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            yield model
    finally:
        model.train(was_training)


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def batch_indices(lengths: Sequence[int] | int, batch_size: int, *,
                  by_length: bool = False) -> list[list[int]]:
    """Index lists of consecutive batches of `batch_size` items (`lengths`: a count, or each item's
    length); with `by_length`, items are taken shortest first so each batch pads little."""
    n = lengths if isinstance(lengths, int) else len(lengths)
    order = list(range(n))
    if by_length:
        order.sort(key=lambda i: lengths[i])  # stable: equal lengths keep their order
    return [order[s : s + batch_size] for s in range(0, n, batch_size)]


def run_batches(
    model: torch.nn.Module,
    items: Sequence[T],
    collate: Callable[[list[T]], dict[str, torch.Tensor]],
    forward: Callable[[torch.nn.Module, dict[str, torch.Tensor]], R],
    *,
    batch_size: int,
    length: Callable[[T], int] | None = None,
    on_batch: Callable[[list[int]], None] | None = None,
) -> list[tuple[list[int], R]]:
    """`forward(model, batch)` on every batch of `items`, in inference mode, on the model's device.

    Batches come in input order, or shortest first when `length` gives each item's length; each
    result is returned with the indices of the items it covers, so callers can restore the order.
    `on_batch(indices)` is called after each batch (progress reporting).
    """
    lengths: Any = [length(it) for it in items] if length is not None else len(items)
    with inference_mode(model):
        device = model_device(model)
        out = []
        for idx in batch_indices(lengths, batch_size, by_length=length is not None):
            batch = collate([items[i] for i in idx])
            batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            out.append((idx, forward(model, batch)))
            if on_batch is not None:
                on_batch(idx)
        return out

"""The schedule of a run: which examples each step sees, how many steps there are, and each lr.

Data order is a pure function of (seed, epoch) and the learning rate a pure function of the step
(linear warm-up, then cosine / linear decay to `min_lr_ratio`, or constant), so a resumed run needs
only a few integers to be back on exactly the same course, and both are unit-tested by hand.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator
from typing import Literal

import torch
from torch.utils.data import DataLoader, Sampler

ScheduleKind = Literal["cosine", "linear", "constant"]


# ------------------------------------------------------------------------------------ data order


class EpochSampler(Sampler[int]):
    """This process's indices of one epoch: a permutation seeded by (seed, epoch), from `position`.

    The order depends only on (seed, epoch), never on batch size or accumulation, so a resume
    restores the data position exactly from two integers. Across processes the remaining order is
    dealt round-robin (padded by wrapping, as DistributedSampler does).
    """

    def __init__(self, num_examples: int, *, seed: int, num_processes: int = 1, process_index: int = 0):
        self.num_examples = num_examples
        self.seed = seed
        self.num_processes = num_processes
        self.process_index = process_index
        self.epoch = 0
        self.position = 0

    def set_position(self, epoch: int, position: int) -> None:
        self.epoch, self.position = epoch, position

    def order(self, epoch: int) -> list[int]:
        """The global shuffled order of `epoch`."""
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)
        return torch.randperm(self.num_examples, generator=g).tolist()

    def _indices(self) -> list[int]:
        rest = self.order(self.epoch)[self.position :]
        if rest and len(rest) % self.num_processes:
            pad = self.num_processes - len(rest) % self.num_processes
            rest += (rest * pad)[:pad]
        return rest[self.process_index :: self.num_processes]

    def __iter__(self) -> Iterator[int]:
        return iter(self._indices())

    def __len__(self) -> int:
        return len(self._indices())


def micro_batch_groups(
    loader: DataLoader, sampler: EpochSampler, epoch: int, position: int, grad_accum: int, per_micro_batch: int
) -> Iterator[tuple[int, int, list]]:
    """Yield (epoch, position after the group, micro-batches) forever, starting at (epoch, position).

    A group holds up to `grad_accum` micro-batches and never crosses an epoch end.
    """
    n = sampler.num_examples
    while True:
        sampler.set_position(epoch, position)
        batches = iter(loader)
        while group := list(itertools.islice(batches, grad_accum)):
            position = min(position + len(group) * per_micro_batch, n)
            yield epoch, position, group
        epoch, position = epoch + 1, 0


# ------------------------------------------------------------------------------------ step counts


def micro_batches_per_epoch(num_examples: int, batch_size: int, num_processes: int = 1) -> int:
    return math.ceil(math.ceil(num_examples / num_processes) / batch_size)


def count_total_steps(
    num_examples: int, *, batch_size: int, grad_accum: int, epochs: float, max_steps: int | None, num_processes: int = 1
) -> int:
    """`max_steps` if set, else ceil(epochs x optimizer steps per epoch).

    A step's micro-batches never cross an epoch end (the last group of an epoch may be short), so
    an epoch has ceil(micro-batches / grad_accum) steps; this equals ceil(epochs x micro-batches /
    grad_accum) whenever grad_accum divides the micro-batches of an epoch.
    """
    if max_steps is not None:
        return max_steps
    per_epoch = math.ceil(micro_batches_per_epoch(num_examples, batch_size, num_processes) / grad_accum)
    return max(1, math.ceil(epochs * per_epoch))


# ------------------------------------------------------------------------------------ learning rate


def resolve_warmup_steps(total_steps: int, warmup_steps: int = 0, warmup_ratio: float = 0.0) -> int:
    """Warm-up length in steps: `warmup_steps` when given (> 0), else ceil(warmup_ratio x total)."""
    if warmup_steps > 0:
        return warmup_steps
    return math.ceil(warmup_ratio * total_steps)


def lr_multiplier(
    step: int,
    *,
    total_steps: int,
    warmup_steps: int = 0,
    kind: ScheduleKind = "cosine",
    min_lr_ratio: float = 0.0,
) -> float:
    """Share of the peak lr used by optimizer step `step` (0-based).

    Warm-up: (step + 1) / (warmup_steps + 1), so the very first step already moves the weights
    (nanoGPT's form; HF's step / warmup wastes step 0). After warm-up, progress
    p = (step - warmup) / (total - warmup) in [0, 1] and
      cosine:   min + (1 - min) * (1 + cos(pi * p)) / 2
      linear:   min + (1 - min) * (1 - p)
      constant: 1
    p reaches 1 at step == total_steps, i.e. just after the last step, so no step is taken at a
    zero learning rate when min_lr_ratio is 0.
    """
    if step < warmup_steps:
        return (step + 1) / (warmup_steps + 1)
    if kind == "constant":
        return 1.0
    decay_steps = max(total_steps - warmup_steps, 1)
    p = min(max((step - warmup_steps) / decay_steps, 0.0), 1.0)
    if kind == "cosine":
        return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
    if kind == "linear":
        return min_lr_ratio + (1.0 - min_lr_ratio) * (1.0 - p)
    raise ValueError(f"unknown schedule kind {kind!r}; choose cosine, linear or constant")


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    *,
    total_steps: int,
    kind: ScheduleKind = "cosine",
    warmup_steps: int = 0,
    warmup_ratio: float = 0.0,
    min_lr_ratio: float = 0.0,
) -> torch.optim.lr_scheduler.LambdaLR:
    """A `LambdaLR` over `lr_multiplier`; its state (the step counter) goes into checkpoints."""
    fn = functools.partial(
        lr_multiplier,
        total_steps=total_steps,
        warmup_steps=resolve_warmup_steps(total_steps, warmup_steps, warmup_ratio),
        kind=kind,
        min_lr_ratio=min_lr_ratio,
    )
    return torch.optim.lr_scheduler.LambdaLR(optimizer, fn)

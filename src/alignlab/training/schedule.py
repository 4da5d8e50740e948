"""The schedule of a run: which examples each step sees, how many steps there are, and each lr.

Data order is a pure function of (seed, epoch) (and, when grouped by length, of the example lengths
and the global micro-batch size) and the learning rate a pure function of the step
(linear warm-up, then cosine / linear decay to `min_lr_ratio`, or constant), so a resumed run needs
only a few integers to be back on exactly the same course, and both are unit-tested by hand.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from typing import Literal

import torch
from torch.utils.data import Sampler

ScheduleKind = Literal["cosine", "linear", "constant"]
# Global micro-batches per mega-batch when grouping by length: wide enough for micro-batches of
# similar lengths, narrow enough that long and short examples stay spread over the epoch.
MEGA_BATCH_MICRO_BATCHES = 50


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
        return torch.randperm(self.num_examples, generator=self._generator(epoch)).tolist()

    def _generator(self, epoch: int) -> torch.Generator:
        return torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) % 2**63)

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


class LengthGroupedSampler(EpochSampler):
    """An `EpochSampler` whose epoch order puts examples of similar length in the same micro-batch.

    The order is cut into global micro-batches of `batch_size x num_processes` consecutive examples
    (the round-robin deal gives each process `batch_size` of them), so every process's micro-batch
    is length-homogeneous and all processes still take the same number of steps. The order is a pure
    function of (seed, epoch, lengths, batch_size, num_processes): a resume with the same settings
    finds the same order, and `position` keeps counting examples of it.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        *,
        batch_size: int,
        seed: int,
        num_processes: int = 1,
        process_index: int = 0,
        mega_batch_micro_batches: int = MEGA_BATCH_MICRO_BATCHES,
    ):
        super().__init__(len(lengths), seed=seed, num_processes=num_processes, process_index=process_index)
        self.lengths = list(lengths)
        self.group_size = batch_size * num_processes
        self.mega_batch_micro_batches = mega_batch_micro_batches
        self._cached: tuple[int, list[int]] | None = None

    def order(self, epoch: int) -> list[int]:
        """The global length-grouped order of `epoch` (computed once per epoch)."""
        if self._cached is None or self._cached[0] != epoch:
            g = self._generator(epoch)
            shuffled = torch.randperm(self.num_examples, generator=g).tolist()
            grouped = group_by_length(
                shuffled, self.lengths, self.group_size, generator=g,
                mega_batch_micro_batches=self.mega_batch_micro_batches,
            )
            self._cached = (epoch, grouped)
        return list(self._cached[1])


def group_by_length(
    shuffled: Sequence[int],
    lengths: Sequence[int],
    group_size: int,
    *,
    generator: torch.Generator,
    mega_batch_micro_batches: int = MEGA_BATCH_MICRO_BATCHES,
) -> list[int]:
    """Rearrange a shuffled order so each run of `group_size` examples has similar lengths.

    The order is cut into mega-batches of `mega_batch_micro_batches x group_size` examples, each
    sorted by length (longest first) and cut into micro-batches; the full micro-batches are
    shuffled, the one holding the longest example goes first (an out-of-memory error then shows
    at step 1), and the single short micro-batch, if any, goes last, so every micro-batch but the
    last starts at a multiple of `group_size`, which is where a resumed position points.
    """
    mega = group_size * mega_batch_micro_batches
    blocks: list[list[int]] = []
    for start in range(0, len(shuffled), mega):
        chunk = sorted(shuffled[start : start + mega],
                       key=lambda i: -lengths[i])  # stable: ties keep the shuffle
        blocks += [chunk[k : k + group_size] for k in range(0, len(chunk), group_size)]
    tail = blocks.pop() if blocks and len(blocks[-1]) < group_size else []
    blocks = [blocks[k] for k in torch.randperm(len(blocks), generator=generator).tolist()]
    _put_longest_first(blocks, tail, lengths)
    return [i for block in blocks for i in block] + tail


def _put_longest_first(blocks: list[list[int]], tail: list[int], lengths: Sequence[int]) -> None:
    """Move the micro-batch holding the longest example to the front (in place); an example in the
    short tail is swapped with the first example of the first micro-batch instead."""
    if not blocks:
        return
    longest = max(range(len(blocks)), key=lambda b: lengths[blocks[b][0]])  # blocks are sorted longest first
    blocks[0], blocks[longest] = blocks[longest], blocks[0]
    if tail and lengths[tail[0]] > lengths[blocks[0][0]]:
        blocks[0][0], tail[0] = tail[0], blocks[0][0]


# ------------------------------------------------------------------------------------ step counts


def micro_batches_per_epoch(num_examples: int, batch_size: int, num_processes: int = 1) -> int:
    return math.ceil(math.ceil(num_examples / num_processes) / batch_size)


def count_total_steps(
    num_examples: int, *, batch_size: int, grad_accum: int, epochs: float, max_steps: int | None,
    num_processes: int = 1
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

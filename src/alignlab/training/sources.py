"""Where the loop's batches come from: the `BatchSource` protocol, and the epoch source.

The loop (`alignlab.training.loop.train`) asks a source, once per optimizer step, for that step's
micro-batches (this process's share), handing it the prepared model: a source may run the model
to make its data (RL rollouts are generated with the current weights). A source has its own
`state_dict` / `load_state_dict`, which the loop writes into every checkpoint (one file per
process) and restores on resume, so a resumed run sees exactly the batches an uninterrupted one
would. Three sources exist:

- `EpochSource` (here): a fixed dataset read in epochs, shuffled with (seed, epoch) or grouped by
  length (`train.group_by_length`); what `train()` builds when it is given a sequence;
- the re-cut pretraining stream: an `EpochSource` whose dataset is a function of the epoch
  (`alignlab.training.pretrain`: every epoch cuts the shuffled document stream anew);
- rollouts (`alignlab.training.rollouts.RolloutSource`): generated, scored and advantaged batches
  of online RL, several optimizer steps per rollout batch.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch
from torch.utils.data import DataLoader

from alignlab.config import TrainConfig
from alignlab.errors import ConfigError, DataError
from alignlab.training.schedule import EpochSampler, LengthGroupedSampler, count_total_steps

LengthFn = Callable[[Any], int]


@dataclass(frozen=True)
class RunInfo:
    """What a source learns about the run before the first step."""

    train: TrainConfig
    num_processes: int = 1
    process_index: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass(frozen=True)
class Position:
    """Where a source's data stands: `consumed` of `size` items into epoch `epoch`."""

    epoch: int
    consumed: int
    size: int

    @property
    def epochs(self) -> float:
        """Epochs done, as the log's `epoch` column shows it."""
        return round(self.epoch + self.consumed / max(self.size, 1), 4)


@dataclass
class StepData:
    """One optimizer step's micro-batches (this process's share) and figures about its data."""

    batches: list[dict[str, Any]]
    metrics: dict[str, float] = field(default_factory=dict)  # logged with the step (e.g. rollout rewards)


@runtime_checkable
class BatchSource(Protocol):
    """Hands the loop each optimizer step's micro-batches; checkpointed with the loop's state.

    `plan` is called once, before the optimizer is built, and returns the run's optimizer steps.
    `next_step(model, last_metrics)` gets the prepared (possibly wrapped) model and the metrics row
    the loop logged for the step before ({} at the first step; restored on resume), which a source
    may act on (early stopping on approximate KL). Every process must return the same metric keys.
    """

    def plan(self, run: RunInfo) -> int: ...

    def next_step(self, model: torch.nn.Module, last_metrics: Mapping[str, Any]) -> StepData: ...

    def position(self) -> Position: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class EpochSource:
    """A dataset read in epochs: today's data order, as a `BatchSource`.

    `dataset` is a sequence, or a function of the epoch returning that epoch's sequence (every
    epoch the same length; the pretraining stream is cut anew each epoch). Each epoch's order comes
    from `EpochSampler` (seed, epoch) or, with `train.group_by_length`, `LengthGroupedSampler`
    (then `example_length(example)` gives an example's padded width). A step holds up to
    `train.grad_accum` micro-batches of `train.batch_size` and never crosses an epoch end. The
    state is (epoch, position): the examples of the epoch's global order already consumed.
    """

    def __init__(
        self,
        dataset: Sequence | Callable[[int], Sequence],
        collate_fn: Callable[[list], dict[str, torch.Tensor]],
        *,
        example_length: LengthFn | None = None,
    ) -> None:
        self._data_of = dataset if callable(dataset) and not isinstance(dataset, Sequence) else None
        self._fixed = None if self._data_of is not None else dataset
        self.collate_fn = collate_fn
        self.example_length = example_length
        self.epoch = self.consumed = 0
        self._size = 0
        self._run: RunInfo | None = None
        self._groups: Iterator[tuple[int, int, list]] | None = None
        self._cached: tuple[int, DataLoader, EpochSampler] | None = None

    def plan(self, run: RunInfo) -> int:
        self._run = run
        self._size = len(self._dataset(0))
        if self._size == 0:
            raise DataError("the training dataset is empty; check data.path and data.limit")
        t = run.train
        return count_total_steps(self._size, batch_size=t.batch_size, grad_accum=t.grad_accum,
                                 epochs=t.epochs, max_steps=t.max_steps, num_processes=run.num_processes)

    def next_step(self, model: torch.nn.Module, last_metrics: Mapping[str, Any]) -> StepData:
        if self._groups is None:
            self._groups = self._iterate(self.epoch, self.consumed)
        self.epoch, self.consumed, group = next(self._groups)
        return StepData(group)

    def position(self) -> Position:
        return Position(self.epoch, self.consumed, self._size)

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "position": self.consumed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.consumed = int(state["epoch"]), int(state["position"])
        self._groups = None

    # ------------------------------------------------------------------------------ internals

    def _dataset(self, epoch: int) -> Sequence:
        return self._fixed if self._data_of is None else self._data_of(epoch)

    def _iterate(self, epoch: int, position: int) -> Iterator[tuple[int, int, list]]:
        """(epoch, position after the group, micro-batches) forever, from (epoch, position)."""
        assert self._run is not None, "plan() first"
        t = self._run.train
        per_micro_batch = t.batch_size * self._run.num_processes
        while True:
            loader, sampler = self._loader(epoch)
            sampler.set_position(epoch, position)
            batches = iter(loader)
            while group := list(itertools.islice(batches, t.grad_accum)):
                position = min(position + len(group) * per_micro_batch, sampler.num_examples)
                yield epoch, position, group
            epoch, position = epoch + 1, 0

    def _loader(self, epoch: int) -> tuple[DataLoader, EpochSampler]:
        """This epoch's loader and sampler (built once for a fixed dataset)."""
        key = 0 if self._data_of is None else epoch
        if self._cached is None or self._cached[0] != key:
            run = self._run
            dataset = self._dataset(epoch)
            sampler = build_sampler(dataset, run.train, self.example_length, run.num_processes,
                                    run.process_index)
            loader = DataLoader(
                dataset, batch_size=run.train.batch_size, sampler=sampler, collate_fn=self.collate_fn,
                num_workers=run.train.num_workers, pin_memory=run.device.type == "cuda",
                # A private generator: starting a loader iterator otherwise draws from the global torch
                # RNG, which would shift every later dropout mask between a resumed and an uninterrupted run.
                generator=torch.Generator().manual_seed(run.train.seed),
            )
            self._cached = (key, loader, sampler)
        return self._cached[1], self._cached[2]


def build_sampler(
    dataset: Sequence, train: TrainConfig, example_length: LengthFn | None, num_processes: int,
    process_index: int
) -> EpochSampler:
    """This process's data-order sampler: a plain epoch shuffle, or grouped by length when asked."""
    if not train.group_by_length:
        return EpochSampler(len(dataset), seed=train.seed, num_processes=num_processes,
                            process_index=process_index)
    if example_length is None:
        raise ConfigError(
            "train.group_by_length=true: this stage does not give the loop its examples' lengths; "
            "set it to false"
        )
    return LengthGroupedSampler(
        [int(example_length(ex)) for ex in dataset], batch_size=train.batch_size, seed=train.seed,
        num_processes=num_processes, process_index=process_index,
    )

"""The rollout source: online RL's batches for the one training loop.

`RolloutSource` is a `BatchSource` (`alignlab.training.sources`). When the current rollout batch
is used up it asks the method's dataflow for a new one (`make_batch`: generate with the current
weights, score, reference log-probs, values, advantages), then serves it as `update.epochs`
passes of `update.minibatches` optimizer steps, each minibatch a seeded shuffle of the batch's
rows cut into micro-batches of `train.batch_size` rows. A step whose approximate KL(π_old‖π)
passed `stop_kl` ends the batch early (its metrics row says so, and every process agrees on it).

Prompts are read in epochs of a seeded order (`EpochSampler.order`), `prompts_per_step` per
process per rollout batch, dealt round-robin over processes. The state (prompt position, rollout
count, position in the batch, the batch's tensors, its metrics, and the states of the objects in
`stateful`: the KL controller, the reward normaliser) is checkpointed by the loop, so a resumed
run continues mid-batch exactly where an uninterrupted one would be.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import torch

from alignlab.training.schedule import EpochSampler
from alignlab.training.sources import Position, RunInfo, StepData

Tensor = torch.Tensor


@dataclass
class RolloutBatch:
    """One rollout batch, N rows (sample j of prompt i is row i·n + j), R response columns."""

    input_ids: Tensor  # (N, start + R) left-padded prompt then right-padded response
    attention_mask: Tensor  # (N, start + R); its response part is the response mask
    start: int  # width of the prompt columns
    old_logps: Tensor  # (N, R) log-probs of the sampled tokens under the policy that sampled them
    ref_logps: Tensor  # (N, R) the same under the reference
    advantages: Tensor  # (N, R)
    kl_coef: float  # β when the batch was made (the KL-in-the-loss weight)
    values: Tensor | None = None  # (N, R) the critic's values at rollout time (PPO)
    returns: Tensor | None = None  # (N, R) the critic's targets (PPO)

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    @property
    def response_mask(self) -> Tensor:
        return self.attention_mask[:, self.start :]

    def micro_batch(self, rows: Tensor) -> dict[str, Any]:
        """The rows' tensors, without the columns that are padding in every one of them."""
        mask = self.attention_mask[rows]
        first = int(mask.float().argmax(1).min())  # the leftmost real prompt token of these rows
        width = int(mask[:, self.start :].sum(1).max())
        end = self.start + width
        out: dict[str, Any] = {
            "input_ids": self.input_ids[rows, first:end],
            "attention_mask": mask[:, first:end],
            "position_ids": (mask[:, first:end].cumsum(-1) - 1).clamp(min=0),
            "start": self.start - first,
            "kl_coef": self.kl_coef,
        }
        for name in ("old_logps", "ref_logps", "advantages", "values", "returns"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value[rows, :width]
        return out

    def state_dict(self) -> dict[str, Any]:
        return {f.name: (v.cpu() if torch.is_tensor(v) else v) for f in fields(self)
                if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_state(cls, state: dict[str, Any], device: torch.device) -> RolloutBatch:
        return cls(**{k: (v.to(device) if torch.is_tensor(v) else v) for k, v in state.items()})


# (model, prompt indices, rollout index, sampling seed, the step it starts) -> the batch, its metrics
MakeBatch = Callable[[torch.nn.Module, list[int], int, int, int], tuple[RolloutBatch, dict[str, float]]]


class RolloutSource:
    """Rollout batches made on demand with the current weights, several optimizer steps each."""

    def __init__(
        self,
        num_prompts: int,
        make_batch: MakeBatch,
        *,
        prompts_per_step: int,
        epochs: int = 1,
        minibatches: int = 1,
        seed: int = 0,
        stop_kl: float | None = None,
        stateful: Mapping[str, Any] | None = None,
        on_step: Callable[[torch.nn.Module, int], None] | None = None,
    ) -> None:
        if num_prompts < 1:
            raise ValueError("no prompts to roll out")
        self.num_prompts, self.make_batch = num_prompts, make_batch
        self.prompts_per_step, self.epochs, self.minibatches = prompts_per_step, epochs, minibatches
        self.seed, self.stop_kl, self.on_step = seed, stop_kl, on_step
        self.stateful = dict(stateful or {})
        self.run: RunInfo | None = None  # set by plan(), which the loop calls first
        self.prompt_epoch = self.prompt_pos = self.rollouts = self.steps = self.early_stops = 0
        self.pass_ = self.minibatch = 0
        self.batch: RolloutBatch | None = None
        self.metrics: dict[str, float] = {}

    # ------------------------------------------------------------------------------ the protocol

    def plan(self, run: RunInfo) -> int:
        """`train.max_steps`, else enough rollout batches for `train.epochs` passes over the prompts."""
        self.run = run
        t = run.train
        if t.max_steps is not None:
            return t.max_steps
        batches = max(1, math.ceil(t.epochs * self.num_prompts / (self.prompts_per_step * run.num_processes)))
        return batches * self.epochs * self.minibatches

    def next_step(self, model: torch.nn.Module, last_metrics: Mapping[str, Any]) -> StepData:
        if self.on_step is not None:
            self.on_step(model, self.steps)
        if self._stops_early(last_metrics):
            self.early_stops += 1
            self.batch = None
        if self.batch is None or self.pass_ >= self.epochs:
            self._new_batch(model)
        rows = self._minibatch_rows()
        size = self.run.train.batch_size
        micro = [self.batch.micro_batch(rows[i : i + size]) for i in range(0, len(rows), size)]
        self.steps += 1
        self.minibatch += 1
        if self.minibatch == self.minibatches:
            self.pass_, self.minibatch = self.pass_ + 1, 0
        return StepData(micro, {**self.metrics, "rollout/early_stops": float(self.early_stops)})

    def position(self) -> Position:
        return Position(self.prompt_epoch, self.prompt_pos, self.num_prompts)

    def state_dict(self) -> dict[str, Any]:
        return {
            "prompt_epoch": self.prompt_epoch, "prompt_pos": self.prompt_pos, "rollouts": self.rollouts,
            "steps": self.steps, "early_stops": self.early_stops, "pass": self.pass_,
            "minibatch": self.minibatch, "metrics": dict(self.metrics),
            "batch": self.batch.state_dict() if self.batch is not None else {},
            "stateful": {name: obj.state_dict() for name, obj in self.stateful.items()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.prompt_epoch, self.prompt_pos = int(state["prompt_epoch"]), int(state["prompt_pos"])
        self.rollouts, self.steps, self.early_stops = int(state["rollouts"]), int(state["steps"]), \
            int(state["early_stops"])
        self.pass_, self.minibatch = int(state["pass"]), int(state["minibatch"])
        self.metrics = {k: float(v) for k, v in state["metrics"].items()}
        self.batch = RolloutBatch.from_state(state["batch"], self.run.device) if state["batch"] else None
        for name, obj in self.stateful.items():
            obj.load_state_dict(state["stateful"][name])

    # ------------------------------------------------------------------------------ internals

    def _stops_early(self, last: Mapping[str, Any]) -> bool:
        """The last step trained on this batch and moved the policy further than `stop_kl` allows."""
        started = self.pass_ > 0 or self.minibatch > 0
        within = self.pass_ < self.epochs
        return (self.stop_kl is not None and self.batch is not None and started and within
                and float(last.get("approx_kl", 0.0)) > self.stop_kl)

    def _new_batch(self, model: torch.nn.Module) -> None:
        indices = self._next_prompts()
        seed = ((self.seed * 1_000_003 + self.rollouts) * 1009 + self.run.process_index) % 2**63
        self.batch = None  # the old batch's memory is free before the new one is made
        self.batch, self.metrics = self.make_batch(model, indices, self.rollouts, seed, self.steps + 1)
        self.rollouts += 1
        self.pass_ = self.minibatch = 0

    def _next_prompts(self) -> list[int]:
        """This process's share of the next `prompts_per_step × processes` prompts of the stream."""
        world = self.run.num_processes
        taken: list[int] = []
        while len(taken) < self.prompts_per_step * world:
            order = EpochSampler(self.num_prompts, seed=self.seed).order(self.prompt_epoch)
            chunk = order[self.prompt_pos : self.prompt_pos + self.prompts_per_step * world - len(taken)]
            taken += chunk
            self.prompt_pos += len(chunk)
            if self.prompt_pos >= self.num_prompts:
                self.prompt_epoch, self.prompt_pos = self.prompt_epoch + 1, 0
        return taken[self.run.process_index :: world]

    def _minibatch_rows(self) -> Tensor:
        """Rows of the current minibatch: a slice of this pass's seeded shuffle of the batch."""
        n = len(self.batch)
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.rollouts) * 101 + self.pass_)
        order = torch.randperm(n, generator=g) if self.minibatches > 1 or self.epochs > 1 else torch.arange(n)
        size = n // self.minibatches
        return order[self.minibatch * size : (self.minibatch + 1) * size].to(self.batch.input_ids.device)

"""The loop's batch-source protocol: a source's batches, metrics and state reach the loop, its state is
checkpointed per process and restored on resume; the optimizer's per-module learning rates."""

from __future__ import annotations

import pytest
import torch
from loop_worker import collate, count_targets, make_examples, sft_step
from test_loop import VOCAB, assert_same_weights, logged, tiny

from alignlab.config import OptimConfig, ScheduleConfig, TrainConfig
from alignlab.training.checkpoint import list_checkpoints
from alignlab.training.loop import build_optimizer, train
from alignlab.training.sources import BatchSource, EpochSource, Position, RunInfo, StepData


class CountingSource:
    """Step k trains on examples k, k+1 (mod n), logs `source/k` and remembers what it was told."""

    def __init__(self, examples: list[dict]) -> None:
        self.examples, self.k, self.told = examples, 0, []

    def plan(self, run: RunInfo) -> int:
        self.run = run
        return run.train.max_steps

    def next_step(self, model, last_metrics) -> StepData:
        self.told.append(dict(last_metrics))
        n = len(self.examples)
        rows = [self.examples[(self.k + j) % n] for j in range(2)]
        self.k += 1
        return StepData([collate(rows)], {"source/k": float(self.k)})

    def position(self) -> Position:
        return Position(self.k // len(self.examples), self.k % len(self.examples), len(self.examples))

    def state_dict(self) -> dict:
        return {"k": torch.tensor(self.k)}  # tensors are fine: the state is torch-saved per process

    def load_state_dict(self, state: dict) -> None:
        self.k = int(state["k"])


def run(model, out, source, **kw):
    cfg = TrainConfig(**{"progress": False, "batch_size": 2, "max_steps": 6, "save_every": 2, **kw})
    return train(model, sft_step, count_targets, source, output_dir=out, train=cfg,
                 optim=OptimConfig(lr=1e-2), schedule=ScheduleConfig(kind="constant"))


def test_a_batch_source_feeds_the_loop_logs_its_metrics_and_resumes_from_its_checkpointed_state(tmp_path):
    examples = make_examples(5, VOCAB, seed=11)
    source = CountingSource(examples)
    assert isinstance(source, BatchSource) and isinstance(EpochSource(examples, collate), BatchSource)
    straight = run(tiny(), tmp_path / "straight", source)
    rows = logged(tmp_path / "straight")
    assert [r["source/k"] for r in rows] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert [r["epoch"] for r in rows] == [0.2, 0.4, 0.6, 0.8, 1.0, 1.2]
    assert source.told[0] == {} and source.told[3]["step"] == 3 and source.told[3]["source/k"] == 3.0

    class Crash(Exception):
        pass

    interrupted = CountingSource(examples)
    calls = {"n": 0}

    def crashing(model, batch):
        calls["n"] += 1
        if calls["n"] == 5:
            raise Crash
        return sft_step(model, batch)

    with pytest.raises(Crash):
        train(tiny(), crashing, count_targets, interrupted, output_dir=tmp_path / "resumed",
              train=TrainConfig(progress=False, batch_size=2, max_steps=6, save_every=2),
              optim=OptimConfig(lr=1e-2), schedule=ScheduleConfig(kind="constant"))
    ckpt = list_checkpoints(tmp_path / "resumed")[-1]
    assert ckpt.name == "step-0000004" and (ckpt / "source_state_0.pt").is_file()
    fresh = CountingSource(examples)
    resumed = run(tiny(), tmp_path / "resumed", fresh)
    assert fresh.told[0]["step"] == 4  # the restored metrics of the last checkpointed step
    assert [r["source/k"] for r in logged(tmp_path / "resumed")] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]
    assert_same_weights(resumed.model, straight.model, atol=0)


def test_lr_multipliers_give_a_module_its_own_learning_rate():
    class Pair(torch.nn.Module):
        lr_multipliers = {"critic.": 3.0}

        def __init__(self) -> None:
            super().__init__()
            self.policy, self.critic = torch.nn.Linear(4, 4), torch.nn.Linear(4, 1)

    model = Pair()
    opt = build_optimizer(model, OptimConfig(lr=1e-3, weight_decay=0.1))
    got = [(g["lr"], g["weight_decay"], [id(p) for p in g["params"]]) for g in opt.param_groups]
    assert got == [
        (1e-3, 0.1, [id(model.policy.weight)]), (3e-3, 0.1, [id(model.critic.weight)]),
        (1e-3, 0.0, [id(model.policy.bias)]), (3e-3, 0.0, [id(model.critic.bias)]),
    ]

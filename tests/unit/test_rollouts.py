"""The rollout source: step counts, epochs of shuffled minibatches over each rollout batch, the
prompt stream and its deal over processes, early stopping on approximate KL, and a checkpointed
state that resumes mid-batch exactly; micro-batches without all-padding columns."""

from __future__ import annotations

import io

import pytest
import torch

from alignlab.config import TrainConfig
from alignlab.losses.kl import AdaptiveKLController
from alignlab.training.rollouts import RolloutBatch, RolloutSource
from alignlab.training.sources import BatchSource, RunInfo

START, R = 4, 5


def fake_batch(prompt_indices: list[int], n: int, tag: int) -> RolloutBatch:
    """Rows i·n + j: prompt length 1 + row % 3 (left-padded to START), response 1 + row % 4 tokens;
    input_ids[:, START] is the row's identity (100·tag + row)."""
    rows = len(prompt_indices) * n
    ids = torch.zeros(rows, START + R, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for r in range(rows):
        p, k = 1 + r % 3, 1 + r % 4
        mask[r, START - p : START + k] = 1
        ids[r, START - p : START + k] = torch.arange(1, p + k + 1)
        ids[r, START] = 100 * tag + r
    resp = torch.arange(rows, dtype=torch.float32)[:, None].expand(rows, R).clone()
    return RolloutBatch(ids, mask, START, -resp, -2 * resp, resp, 0.1, resp + 0.5, resp + 1.0)


class Maker:
    def __init__(self, n: int) -> None:
        self.n, self.calls = n, []

    def __call__(self, model, indices, rollout, seed, step):
        self.calls.append((list(indices), rollout, seed, step))
        return fake_batch(indices, self.n, rollout), {"reward": float(rollout)}


def source(maker, num_prompts=10, **kw) -> RolloutSource:
    kw = {"prompts_per_step": 4, "epochs": 2, "minibatches": 2, "seed": 5, **kw}
    return RolloutSource(num_prompts, maker, **kw)


def rows_of(step) -> list[int]:
    return [int(x) for b in step.batches for x in b["input_ids"][:, b["start"]]]


def test_plans_steps_from_max_steps_or_epochs_over_the_prompts():
    s = source(Maker(2))
    assert isinstance(s, BatchSource)
    assert s.plan(RunInfo(TrainConfig(max_steps=7))) == 7
    # 10 prompts, 4 per batch: 3 batches for one epoch, each 2 passes x 2 minibatches.
    assert s.plan(RunInfo(TrainConfig(epochs=1.0))) == 12
    assert s.plan(RunInfo(TrainConfig(epochs=1.0), num_processes=2)) == 8  # 8 prompts per batch: 2 batches


def test_each_batch_serves_epochs_of_shuffled_minibatches_in_micro_batches():
    maker = Maker(2)
    s = source(maker)
    s.plan(RunInfo(TrainConfig(batch_size=3, max_steps=8)))
    steps = [s.next_step(None, {}) for _ in range(8)]
    assert [c[3] for c in maker.calls] == [1, 5]  # a new batch at steps 1 and 5
    assert [len(st.batches) for st in steps] == [2] * 8  # minibatches of 4 rows: micro-batches of 3 + 1
    for first in (0, 4):
        passes = [rows_of(steps[first]) + rows_of(steps[first + 1]),
                  rows_of(steps[first + 2]) + rows_of(steps[first + 3])]
        tag = 100 * (first // 4)
        assert [sorted(p) for p in passes] == [list(range(tag, tag + 8))] * 2  # every row once per pass
        assert passes[0] != passes[1]  # each pass is shuffled anew
    assert steps[5].metrics == {"reward": 1.0, "rollout/early_stops": 0.0}
    first_prompts = maker.calls[0][0] + maker.calls[1][0]
    from alignlab.training.schedule import EpochSampler

    assert first_prompts == EpochSampler(10, seed=5).order(0)[:8]


def test_the_prompt_stream_crosses_epochs_and_is_dealt_over_processes():
    maker = Maker(1)
    s = source(maker, epochs=1, minibatches=1)
    s.plan(RunInfo(TrainConfig(max_steps=3)))
    for _ in range(3):
        s.next_step(None, {})
    from alignlab.training.schedule import EpochSampler

    order0, order1 = EpochSampler(10, seed=5).order(0), EpochSampler(10, seed=5).order(1)
    assert [c[0] for c in maker.calls] == [order0[:4], order0[4:8], order0[8:] + order1[:2]]
    assert (s.position().epoch, s.position().consumed, s.position().epochs) == (1, 2, 1.2)
    shares = []
    for rank in (0, 1):
        m = Maker(1)
        p = source(m, epochs=1, minibatches=1)
        p.plan(RunInfo(TrainConfig(max_steps=1), num_processes=2, process_index=rank))
        p.next_step(None, {})
        shares.append(m.calls[0])
    assert shares[0][0] == order0[0:8:2] and shares[1][0] == order0[1:8:2]
    assert shares[0][2] != shares[1][2]  # each process samples with its own seed


def test_a_step_past_stop_kl_ends_the_batch_early():
    maker = Maker(2)
    s = source(maker, stop_kl=0.1)
    s.plan(RunInfo(TrainConfig(batch_size=4, max_steps=6)))
    s.next_step(None, {})
    s.next_step(None, {"approx_kl": 0.05})  # within the bound: the same batch
    third = s.next_step(None, {"approx_kl": 0.5})  # past it: a new batch
    assert [c[3] for c in maker.calls] == [1, 3] and third.metrics["rollout/early_stops"] == 1.0
    s.next_step(None, {"approx_kl": 0.5})  # the new batch's first step went too far as well
    assert len(maker.calls) == 3 and s.early_stops == 2
    # A batch that was used up anyway is not counted as stopped early.
    one = source(Maker(2), epochs=1, minibatches=1, stop_kl=0.1)
    one.plan(RunInfo(TrainConfig(batch_size=8, max_steps=3)))
    for _ in range(3):
        one.next_step(None, {"approx_kl": 0.5})
    assert one.early_stops == 0 and one.rollouts == 3


def test_the_state_resumes_mid_batch_with_the_same_micro_batches_and_stateful_objects():
    maker, controller = Maker(2), AdaptiveKLController(0.1, 2.0, horizon=10)
    a = source(maker, stateful={"kl": controller})
    a.plan(RunInfo(TrainConfig(batch_size=3, max_steps=12)))
    for _ in range(6):
        a.next_step(None, {})
    controller.update(3.0, 5)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)  # as the loop writes it, read back as the loop reads it
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    maker_b, controller_b = Maker(2), AdaptiveKLController(0.1, 2.0, horizon=10)
    b = source(maker_b, stateful={"kl": controller_b})
    b.plan(RunInfo(TrainConfig(batch_size=3, max_steps=12)))
    b.load_state_dict(state)
    assert controller_b.value == controller.value and b.position() == a.position()
    for _ in range(6):
        sa, sb = a.next_step(None, {}), b.next_step(None, {})
        assert sa.metrics == sb.metrics
        for x, y in zip(sa.batches, sb.batches, strict=True):
            assert x.keys() == y.keys()
            assert all(torch.equal(x[k], y[k]) if torch.is_tensor(x[k]) else x[k] == y[k] for k in x)
    assert [c[1:] for c in maker_b.calls] == [c[1:] for c in maker.calls[2:]]  # only new batches are made


def test_a_micro_batch_drops_the_columns_that_are_padding_in_all_its_rows():
    batch = fake_batch([0, 1, 2, 3], 2, 0)
    mb = batch.micro_batch(torch.tensor([0, 3]))  # prompt lengths 1, 1; response lengths 1, 4
    assert mb["start"] == 1 and mb["input_ids"].shape == (2, 1 + 4)
    assert mb["attention_mask"].tolist() == [[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]]
    assert mb["position_ids"].tolist() == [[0, 1, 1, 1, 1], [0, 1, 2, 3, 4]]
    assert mb["old_logps"].shape == (2, 4) and mb["old_logps"][:, 0].tolist() == [0.0, -3.0]
    assert mb["kl_coef"] == 0.1 and mb["returns"][1, 0] == 4.0
    wide = batch.micro_batch(torch.tensor([1, 2]))  # prompt lengths 2, 3: the longer one sets the start
    assert wide["start"] == 3 and wide["attention_mask"][:, :3].tolist() == [[0, 1, 1], [1, 1, 1]]
    state = RolloutBatch.from_state(batch.state_dict(), torch.device("cpu"))
    assert torch.equal(state.input_ids, batch.input_ids) and state.start == START
    with pytest.raises(ValueError, match="no prompts"):
        RolloutSource(0, Maker(1), prompts_per_step=1)

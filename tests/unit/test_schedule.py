"""Learning-rate schedule, step counts and length-grouped data order, against hand-computed values."""

from __future__ import annotations

import math
import random

import pytest
import torch

from alignlab.training.schedule import (
    EpochSampler,
    LengthGroupedSampler,
    build_scheduler,
    count_total_steps,
    group_by_length,
    lr_multiplier,
    micro_batches_per_epoch,
    resolve_warmup_steps,
)


def test_cosine_with_warmup_and_floor():
    """warmup 4, total 20, min 0.1. Warm-up gives (s+1)/5; after it p = (s-4)/16 and
    m = 0.1 + 0.9 * (1 + cos(pi p)) / 2:
      s=8:  p=1/4, cos = 0.7071068 -> 0.1 + 0.45 * 1.7071068 = 0.8681981
      s=12: p=1/2, cos = 0       -> 0.1 + 0.45               = 0.55
      s=20: p=1,   cos = -1      -> 0.1 (the floor, reached just after the last step)."""
    m = [lr_multiplier(s, total_steps=20, warmup_steps=4, kind="cosine", min_lr_ratio=0.1) for s in range(21)]
    assert m[:5] == pytest.approx([0.2, 0.4, 0.6, 0.8, 1.0])
    assert m[8] == pytest.approx(0.8681981, abs=1e-7)
    assert m[12] == pytest.approx(0.55)
    assert m[19] == pytest.approx(0.1 + 0.45 * (1 + math.cos(math.pi * 15 / 16)))
    assert m[20] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(m[4:], m[5:], strict=False))  # monotone after warm-up
    assert lr_multiplier(500, total_steps=20, warmup_steps=4, min_lr_ratio=0.1) == pytest.approx(0.1)


def test_linear_without_warmup():
    """total 10, min 0: m = 1 - s/10, so the last step (s=9) still trains at 0.1."""
    m = [lr_multiplier(s, total_steps=10, kind="linear") for s in (0, 5, 9, 10)]
    assert m == pytest.approx([1.0, 0.5, 0.1, 0.0])
    # With a floor of 0.2 the line runs from 1 to 0.2: m(5) = 0.2 + 0.8 * 0.5 = 0.6.
    assert lr_multiplier(5, total_steps=10, kind="linear", min_lr_ratio=0.2) == pytest.approx(0.6)


def test_constant_after_warmup_ignores_the_floor():
    m = [lr_multiplier(s, total_steps=10, warmup_steps=2, kind="constant",
                       min_lr_ratio=0.5) for s in (0, 1, 2, 9)]
    assert m == pytest.approx([1 / 3, 2 / 3, 1.0, 1.0])


def test_warmup_longer_than_the_run_and_unknown_kind():
    assert lr_multiplier(2, total_steps=3, warmup_steps=5) == pytest.approx(0.5)
    assert lr_multiplier(5, total_steps=3, warmup_steps=5, min_lr_ratio=0.3) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="cosine, linear or constant"):
        lr_multiplier(3, total_steps=10, kind="step")  # type: ignore[arg-type]


def test_warmup_steps_override_warmup_ratio():
    assert resolve_warmup_steps(100, 0, 0.05) == 5
    assert resolve_warmup_steps(10, 0, 0.15) == 2  # ceil(1.5): a non-zero ratio never rounds to none
    assert resolve_warmup_steps(100, 7, 0.05) == 7
    assert resolve_warmup_steps(100, 0, 0.0) == 0


def test_scheduler_sets_lr_per_step_and_round_trips_its_state():
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=0.1)
    sched = build_scheduler(opt, total_steps=8, kind="linear", warmup_ratio=0.25, min_lr_ratio=0.0)
    lrs = []
    for _ in range(8):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    # warm-up 2 steps: 0.1 * 1/3, 0.1 * 2/3; then 0.1 * (1 - (s - 2) / 6).
    assert lrs == pytest.approx([0.1 / 3, 0.2 / 3, 0.1, 0.1 * 5 / 6, 0.1 * 4 / 6, 0.05, 0.1 * 2 / 6, 0.1 / 6])

    opt2 = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched2 = build_scheduler(opt2, total_steps=8, kind="linear", warmup_ratio=0.25)
    sched2.load_state_dict(sched.state_dict())
    assert sched2.last_epoch == 8
    assert sched2.get_last_lr() == pytest.approx(sched.get_last_lr())


def test_step_counts():
    # 10 examples in micro-batches of 3 -> 4 micro-batches; accumulation 3 -> groups 3, 1 -> 2 steps.
    assert micro_batches_per_epoch(10, 3) == 4
    assert micro_batches_per_epoch(10, 3, num_processes=4) == 1  # 3 examples per process
    kw = dict(batch_size=3, grad_accum=3, max_steps=None)
    assert count_total_steps(10, epochs=1, **kw) == 2
    assert count_total_steps(10, epochs=3, **kw) == 6
    assert count_total_steps(10, epochs=0.25, **kw) == 1
    assert count_total_steps(10, epochs=3, **{**kw, "max_steps": 11}) == 11
    # When grad_accum divides the micro-batches, this is ceil(epochs x micro-batches / grad_accum).
    assert count_total_steps(16, batch_size=2, grad_accum=4, epochs=1.5,
                             max_steps=None) == math.ceil(1.5 * 8 / 4)


# ------------------------------------------------------------------------------------ length grouping


def conversation_lengths(n: int, seed: int = 0) -> list[int]:
    """Log-uniform token counts from 20 to 2000, like SFT conversations."""
    rng = random.Random(seed)
    return [int(math.exp(rng.uniform(math.log(20), math.log(2000)))) for _ in range(n)]


def micro_batches(order: list[int], size: int) -> list[list[int]]:
    return [order[k : k + size] for k in range(0, len(order), size)]


def padding_fraction(order: list[int], lengths: list[int], batch_size: int) -> float:
    """Share of a padded micro-batch's cells that are padding, over the whole epoch."""
    padded = real = 0
    for batch in micro_batches(order, batch_size):
        widths = [lengths[i] for i in batch]
        padded += max(widths) * len(widths)
        real += sum(widths)
    return 1 - real / padded


def test_grouped_order_is_a_seeded_permutation_that_changes_every_epoch():
    lengths = conversation_lengths(1000)
    s = LengthGroupedSampler(lengths, batch_size=8, seed=3)
    assert sorted(s.order(0)) == list(range(1000))
    assert s.order(0) == LengthGroupedSampler(lengths, batch_size=8,
                                              seed=3).order(0)  # a fresh sampler agrees
    assert s.order(0) != s.order(1) and sorted(s.order(1)) == list(range(1000))
    assert s.order(0) != LengthGroupedSampler(lengths, batch_size=8, seed=4).order(0)
    s.set_position(1, 16)  # a resume two micro-batches into epoch 1 continues the same order
    assert list(s) == s.order(1)[16:]


def test_grouped_micro_batches_carry_far_less_padding_than_random_ones():
    lengths = conversation_lengths(2000)
    grouped = LengthGroupedSampler(lengths, batch_size=8, seed=0).order(0)
    shuffled = EpochSampler(2000, seed=0).order(0)
    random_pad, grouped_pad = padding_fraction(shuffled, lengths, 8), padding_fraction(grouped, lengths, 8)
    assert random_pad > 0.5  # log-uniform lengths: most of a random batch is padding
    assert grouped_pad < 0.1 * random_pad


def test_grouped_micro_batches_come_in_random_length_order():
    lengths = conversation_lengths(2000)
    order = LengthGroupedSampler(lengths, batch_size=8, seed=0).order(0)
    widths = [max(lengths[i] for i in b) for b in micro_batches(order, 8)]
    # Sorted only inside each micro-batch, not across the epoch: long and short ones alternate.
    assert widths != sorted(widths, reverse=True)
    descents = sum(a > b for a, b in zip(widths[1:], widths[2:], strict=False))
    assert 0.3 < descents / (len(widths) - 2) < 0.7


def test_first_micro_batch_holds_the_longest_example_and_the_short_one_comes_last():
    lengths = conversation_lengths(1003, seed=1)
    for seed in range(5):
        order = LengthGroupedSampler(lengths, batch_size=8, seed=seed).order(0)
        assert max(lengths) == lengths[order[0]]
        assert order[-3:] == order[1000:]  # 1003 = 125 x 8 + 3: the short micro-batch is the last
        # Every full micro-batch is a run of neighbours in its mega-batch's sorted order.
        assert all(lengths[a] >= lengths[b] for b8 in micro_batches(order[:1000], 8) for a,
                   b in zip(b8, b8[1:], strict=False))


def test_longest_example_in_the_short_tail_is_swapped_to_the_front():
    # Mega-batches of one micro-batch: chunks [0..3], [4..7], [8, 9]; example 9 is the longest.
    lengths = [5, 6, 7, 8, 1, 2, 3, 4, 9, 100]
    order = group_by_length(list(range(10)), lengths, 4, generator=torch.Generator().manual_seed(0),
                            mega_batch_micro_batches=1)
    assert sorted(order) == list(range(10)) and order[0] == 9
    assert len(set(order[:4]) & {0, 1, 2, 3, 4, 5, 6, 7}) == 3  # the rest of its micro-batch is a full block


def test_processes_get_disjoint_equal_shares_of_the_same_global_micro_batches():
    lengths = conversation_lengths(960, seed=2)
    world, bs = 4, 3
    shards = [LengthGroupedSampler(lengths, batch_size=bs, seed=7, num_processes=world,
                                   process_index=r) for r in range(world)]
    shares = [list(sh) for sh in shards]
    assert [len(s) for s in shares] == [240] * world
    assert sorted(i for s in shares for i in s) == list(range(960))  # disjoint and complete
    # Micro-batch k of every process together is global micro-batch k of the single-process order
    # with the same global batch, so DDP trains on exactly what one process with batch 12 would.
    single = LengthGroupedSampler(lengths, batch_size=bs * world, seed=7).order(0)
    for k, block in enumerate(micro_batches(single, bs * world)):
        assert sorted(i for s in shares for i in s[k * bs : (k + 1) * bs]) == sorted(block)
    # An epoch that does not split evenly still gives every process the same number of steps.
    uneven = [len(LengthGroupedSampler(lengths[:959], batch_size=bs, seed=7, num_processes=world,
                                       process_index=r))
              for r in range(world)]
    assert uneven == [240] * world

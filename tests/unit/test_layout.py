"""Padding-free and prefix-shared layouts as data: where each token goes, what predicts each learned
token, and attention blocks that agree with the per-token rule."""

import pytest
import torch

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.layout import (
    CHOSEN,
    PROMPT,
    REJECTED,
    BatchLayout,
    Piece,
    allowed,
    lay_out,
    lay_out_pairs,
    lay_out_sequences,
    shared_prompt_length,
)
from alignlab.data.templating import EncodedExample

X = IGNORE_INDEX


def ex(ids, learned_from):
    return EncodedExample(list(ids), [X] * learned_from + list(ids[learned_from:]))


def blocks_mask(batch) -> torch.Tensor:
    """The (R, T, T) mask the blocks describe: each block's queries see its keys, end-aligned causal."""
    rows, width = batch["input_ids"].shape
    mask = torch.zeros(rows, width, width, dtype=torch.bool)
    covered = torch.zeros(rows, width, dtype=torch.long)
    for b in batch["blocks"]:
        keys = torch.cat([torch.arange(s, e) for s, e in b.spans])
        n = b.stop - b.start
        ok = torch.ones(n, len(keys), dtype=torch.bool).tril(len(keys) - n)
        mask[b.row, b.start:b.stop][:, keys] = ok
        covered[b.row, b.start:b.stop] += 1
    assert bool((covered == 1).all()), "blocks must tile every row once"
    return mask


def test_a_pair_is_its_prompt_once_then_both_responses_with_positions_from_the_prompts_end():
    chosen, rejected = ex([10, 11, 12, 20, 21], 3), ex([10, 11, 12, 30, 31, 32], 3)
    assert shared_prompt_length([chosen, rejected]) == 3
    batch = lay_out_pairs([(chosen, rejected, 3)], 0, BatchLayout("segments"))
    assert batch["input_ids"].tolist() == [[10, 11, 12, 20, 21, 30, 31, 32]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 4, 3, 4, 5]]
    assert batch["branch_ids"].tolist() == [[PROMPT] * 3 + [CHOSEN] * 2 + [REJECTED] * 3]
    # Chosen 20 is predicted at the prompt's end (2), 21 at 3; rejected 30 also at 2, then 5, 6.
    assert batch["target_index"].tolist() == [2, 3, 2, 5, 6]
    assert batch["target_ids"].tolist() == [20, 21, 30, 31, 32]
    assert batch["target_owner"].tolist() == [0, 0, 1, 1, 1]
    assert batch["last_index"].tolist() == [4, 7] and batch["num_sequences"] == 2
    blocks = [(b.start, b.stop, b.spans) for b in batch["blocks"]]
    assert blocks == [(0, 5, ((0, 5),)), (5, 8, ((0, 3), (5, 8)))]
    # The rejected tokens see the prompt and themselves, never the chosen ones.
    mask = blocks_mask(batch)[0]
    assert mask[5].tolist() == [True] * 3 + [False] * 2 + [True, False, False]
    assert mask[7].tolist() == [True] * 3 + [False] * 2 + [True] * 3


def test_pairs_number_chosen_sides_first_and_unshared_pairs_are_four_plain_sequences():
    pairs = [(ex([1, 2, 3], 2), ex([1, 2, 4, 4], 2), 2), (ex([5, 6], 1), ex([5, 7], 1), 1)]
    shared = lay_out_pairs(pairs, 0, BatchLayout("segments"))
    plain = lay_out_pairs(pairs, 0, BatchLayout("segments", share_prompt=False))
    assert shared["input_ids"].numel() == 2 + 1 + 2 + 1 + 1 + 1
    assert plain["input_ids"].numel() == 3 + 2 + 4 + 2
    for batch in (shared, plain):
        ids, owner = batch["target_ids"].tolist(), batch["target_owner"].tolist()
        assert sorted(zip(owner, ids, strict=True)) == [(0, 3), (1, 6), (2, 4), (2, 4), (3, 7)]


def test_plain_sequences_restart_positions_and_ignore_each_first_label_like_packing():
    batch = lay_out_sequences([ex([1, 2, 3], 1), ex([4, 5], 0)], 0, BatchLayout("segments"))
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[X, 2, 3, X, 5]]
    assert batch["target_index"].tolist() == [0, 1, 3] and batch["target_ids"].tolist() == [2, 3, 5]
    assert "attention_mask" in batch and batch["attention_mask"].tolist() == [[1] * 5]


def test_one_row_per_item_pads_each_row_as_an_item_of_its_own():
    batch = lay_out([Piece(ex([1, 2, 3], 1)), Piece(ex([4], 0))], [(0,), (1,)], 2, 9, rows="each")
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["doc_ids"].tolist() == [[0, 0, 0], [1, -1, -1]] and batch["last_index"].tolist() == [2, 3]
    mask = allowed(batch["doc_ids"], batch["branch_ids"], batch["position_ids"])
    assert not bool(mask[1, 0, 1:].any()) and bool(mask[1, 2, 1])  # padding sees only padding


@pytest.mark.parametrize("rows", ["one", "each"])
@pytest.mark.parametrize("share", [True, False])
def test_blocks_and_the_per_token_rule_describe_the_same_attention(rows, share):
    g = torch.Generator().manual_seed(0)
    pairs = []
    for _ in range(4):
        p, c, r = (int(torch.randint(1, 6, (1,), generator=g)) for _ in range(3))
        prompt = torch.randint(10, 99, (p,), generator=g).tolist()
        pairs.append((ex(prompt + torch.randint(10, 99, (c,), generator=g).tolist(), p),
                      ex(prompt + torch.randint(10, 99, (r,), generator=g).tolist(), p), p))
    batch = lay_out_pairs(pairs, 0, BatchLayout("mask", rows=rows, share_prompt=share))
    rule = allowed(batch["doc_ids"], batch["branch_ids"], batch["position_ids"])
    assert torch.equal(blocks_mask(batch), rule)

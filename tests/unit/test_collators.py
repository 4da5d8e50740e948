"""Padding and packing: packed rows give every example exactly the NLL it has alone."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from alignlab.data.collators import PackedRow, block_causal_mask, collate_packed, pack_examples, pad_batch
from alignlab.data.templating import EncodedExample
from alignlab.losses.sft import IGNORE_INDEX, per_sequence_nll

I = IGNORE_INDEX  # noqa: E741


def ex(ids: list[int], labels: list[int] | None = None) -> EncodedExample:
    return EncodedExample(ids, list(ids) if labels is None else labels)


def test_pad_batch_right_pads_and_masks():
    batch = pad_batch([ex([5, 6, 7], [I, 6, 7]), ex([8])], pad_token_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [8, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[I, 6, 7], [8, I, I]]
    assert all(t.dtype == torch.long for t in batch.values())


def test_pad_batch_pad_to_multiple_of():
    batch = pad_batch([ex([1, 2, 3, 4, 5])], pad_token_id=9, pad_to_multiple_of=4)
    assert batch["input_ids"].tolist() == [[1, 2, 3, 4, 5, 9, 9, 9]]
    assert batch["labels"].tolist() == [[1, 2, 3, 4, 5, I, I, I]]


def test_pack_first_fit_decreasing_layout():
    lengths = [3, 8, 2, 5, 4, 6]  # sorted: 8, 6, 5, 4, 3, 2 into rows of 10
    examples = [ex(list(range(100 * k, 100 * k + n))) for k, n in enumerate(lengths)]
    rows = pack_examples(examples, max_length=10)
    # FFD: 8 -> row0; 6 -> row1; 5 -> row2; 4 -> row1 (6+4); 3 -> row2 (5+3); 2 -> row0 (8+2)
    assert [r.seq_lengths for r in rows] == [[8, 2], [6, 4], [5, 3]]
    assert [len(r) for r in rows] == [10, 10, 8]
    assert rows[0].input_ids == [*range(100, 108), 200, 201]
    assert rows[0].position_ids == [*range(8), 0, 1]
    # Each example's first label is masked so it is never predicted across the boundary.
    assert rows[0].labels == [I, *range(101, 108), I, 201]
    # Deterministic: the same input gives the same rows.
    assert pack_examples(examples, max_length=10) == rows


def test_pack_truncates_long_examples_and_drops_empty_ones():
    rows = pack_examples([ex([1, 2, 3, 4, 5, 6], [I, I, 3, 4, 5, 6]), ex([]), ex([7, 8])], max_length=4)
    assert rows == [
        PackedRow(input_ids=[1, 2, 3, 4], labels=[I, I, 3, 4], position_ids=[0, 1, 2, 3], seq_lengths=[4]),
        PackedRow(input_ids=[7, 8], labels=[I, 8], position_ids=[0, 1], seq_lengths=[2]),
    ]


def test_pack_fills_rows():
    rng = random.Random(0)
    examples = [ex([1] * rng.randint(1, 40)) for _ in range(200)]
    rows = pack_examples(examples, max_length=64)
    total = sum(len(e) for e in examples)
    assert sum(len(r) for r in rows) == total
    assert all(len(r) <= 64 for r in rows)
    assert sorted(n for r in rows for n in r.seq_lengths) == sorted(len(e) for e in examples)
    # FFD on items of at most 40 into bins of 64 stays within 2 rows of the lower bound.
    assert len(rows) <= -(-total // 64) + 2


def test_collate_packed_pads_rows_as_their_own_segment():
    rows = pack_examples([ex([1, 2, 3]), ex([4, 5]), ex([6, 7, 8, 9])], max_length=5)
    batch = collate_packed(rows, pad_token_id=0)
    assert set(batch) == {"input_ids", "labels", "position_ids"}
    assert batch["input_ids"].tolist() == [[6, 7, 8, 9, 0], [1, 2, 3, 4, 5]]
    assert batch["position_ids"].tolist() == [[0, 1, 2, 3, 0], [0, 1, 2, 0, 1]]
    assert batch["labels"].tolist() == [[I, 7, 8, 9, I], [I, 2, 3, I, 5]]
    mask = collate_packed(rows, 0, explicit_mask=True)["attention_mask"]
    allowed = (mask == 0).int()[:, 0]
    assert allowed[1].tolist() == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [0, 0, 0, 1, 0],
        [0, 0, 0, 1, 1],
    ]
    assert allowed[0, 4].tolist() == [0, 0, 0, 0, 1]  # padding sees only itself


def test_block_causal_mask_values():
    mask = block_causal_mask(torch.tensor([[0, 0, 1]]), torch.float16)
    low = torch.finfo(torch.float16).min
    assert mask.shape == (1, 1, 3, 3) and mask.dtype == torch.float16
    assert mask[0, 0].tolist() == [[0, low, low], [0, 0, low], [low, low, 0]]


def _segment_nll(logits: torch.Tensor, batch: dict[str, torch.Tensor], rows: list[PackedRow]) -> list[float]:
    """Summed NLL of each packed example, in packing order (same shift as per_sequence_nll)."""
    nll = F.cross_entropy(
        logits[:, :-1].float().transpose(1, 2),
        batch["labels"][:, 1:],
        ignore_index=IGNORE_INDEX,
        reduction="none",
    )
    out = []
    for b, row in enumerate(rows):
        start = 0
        for n in row.seq_lengths:
            out.append(nll[b, start : start + n - 1].sum().item())  # targets start+1 .. start+n-1
            start += n
    return out


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
@pytest.mark.parametrize("arch", ["llama", "qwen2", "gpt2"])
def test_packed_nll_equals_unpacked(tiny_model_dir, arch, attn):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir(arch), attn_implementation=attn).eval()
    vocab = model.config.vocab_size
    rng = random.Random(1)
    examples = []
    for n in [7, 12, 5, 20, 9, 3, 15, 11]:
        ids = [rng.randrange(3, vocab) for _ in range(n)]
        examples.append(EncodedExample(ids, [I if j < n // 3 else t for j, t in enumerate(ids)]))
    rows = pack_examples(examples, max_length=32)
    assert max(len(r.seq_lengths) for r in rows) >= 3  # rows really hold several examples

    with torch.no_grad():
        alone = [
            per_sequence_nll(model(torch.tensor([e.input_ids])).logits, torch.tensor([e.labels]))[0].item()
            for e in examples
        ]
        padded = pad_batch(examples, pad_token_id=0)
        logits = model(input_ids=padded["input_ids"], attention_mask=padded["attention_mask"]).logits
        assert per_sequence_nll(logits, padded["labels"])[0].tolist() == pytest.approx(alone, abs=1e-4)

        by_ids = {tuple(e.input_ids): nll for e, nll in zip(examples, alone, strict=True)}
        packed_order = [
            by_ids[tuple(r.input_ids[s : s + n])]
            for r in rows
            for s, n in zip(_starts(r.seq_lengths), r.seq_lengths, strict=True)
        ]
        # Boundaries read from position_ids: needs no 2D mask and no cache (use_cache=False).
        batch = collate_packed(rows, pad_token_id=0)
        logits = model(
            input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False
        ).logits
        assert _segment_nll(logits, batch, rows) == pytest.approx(packed_order, abs=1e-4)
        # Explicit 4D block-diagonal mask: works whatever the cache setting.
        batch = collate_packed(rows, pad_token_id=0, explicit_mask=True, mask_dtype=model.dtype)
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
        assert _segment_nll(logits, batch, rows) == pytest.approx(packed_order, abs=1e-4)
        # Sanity: without either, examples leak into each other and the NLLs differ.
        logits = model(input_ids=batch["input_ids"]).logits
        assert _segment_nll(logits, batch, rows) != pytest.approx(packed_order, abs=1e-4)


def _starts(lengths: list[int]) -> list[int]:
    out, s = [], 0
    for n in lengths:
        out.append(s)
        s += n
    return out

"""Batching encoded examples: right padding, and packing several examples into one row.

Packing must not let examples see each other. Position ids restart at 0 for every example, and
the label of each example's first token is IGNORE_INDEX so it is never predicted from the previous
example's last token (the unpacked example never predicts it either: nothing precedes it).
Attention is kept inside each example in one of two ways:

- default: no `attention_mask`. Transformers 5.x (`masking_utils.find_packed_sequence_indices`)
  then reads example boundaries from the restarts in `position_ids` and builds a block-diagonal
  causal mask for the eager, sdpa and flex paths of Llama, Qwen2 and GPT-2 alike; flash-attention
  reads the same restarts when the batch is one row. Transformers only does this when no cache is
  passed, so the forward call must say `use_cache=False` (with the default `use_cache=True` the
  model makes an empty cache and silently attends across examples).
- `explicit_mask=True`: a 4D additive block-diagonal causal mask (B, 1, T, T), for models or
  versions that do not detect packing from `position_ids`.

Padding after the last example of a row forms its own segment (positions 0.., labels ignored), so
no real token attends to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.templating import EncodedExample


@dataclass(frozen=True)
class PackedRow:
    """Whole examples laid end to end; `seq_lengths[k]` tokens belong to the k-th example."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    seq_lengths: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def _padded_length(n: int, pad_to_multiple_of: int | None) -> int:
    if pad_to_multiple_of is None or pad_to_multiple_of <= 1:
        return n
    return -(-n // pad_to_multiple_of) * pad_to_multiple_of


def pad_batch(
    examples: Sequence[EncodedExample], pad_token_id: int, *, pad_to_multiple_of: int | None = None
) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: input_ids, attention_mask and labels, each (B, T) long.

    Padded positions have attention_mask 0 and label IGNORE_INDEX.
    """
    if not examples:
        raise ValueError("cannot pad an empty batch")
    width = _padded_length(max(len(ex.input_ids) for ex in examples), pad_to_multiple_of)
    input_ids = torch.full((len(examples), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((len(examples), width), dtype=torch.long)
    for row, ex in enumerate(examples):
        n = len(ex.input_ids)
        input_ids[row, :n] = torch.tensor(ex.input_ids, dtype=torch.long)
        labels[row, :n] = torch.tensor(ex.labels, dtype=torch.long)
        attention_mask[row, :n] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


def _first_fit(lengths: Sequence[int], capacity: int) -> list[int]:
    """Bin index of each item under first fit, in O(n log n) with a max segment tree over bins.

    Leaves hold each bin's free space; unopened bins are full-capacity leaves to the right of the
    opened ones, so "leftmost bin with room" opens a new bin exactly when first fit would.
    """
    size = 1
    while size < max(len(lengths), 1):
        size *= 2
    free = [capacity] * (2 * size)
    bins = []
    for n in lengths:
        node = 1
        while node < size:  # descend to the leftmost leaf whose free space is >= n
            node = 2 * node if free[2 * node] >= n else 2 * node + 1
        bins.append(node - size)
        free[node] -= n
        node //= 2
        while node:
            free[node] = max(free[2 * node], free[2 * node + 1])
            node //= 2
    return bins


def pack_examples(examples: Sequence[EncodedExample], max_length: int) -> list[PackedRow]:
    """Pack whole examples into rows of at most `max_length` tokens (first-fit decreasing).

    Examples longer than `max_length` are truncated first (the start is kept); empty ones are
    dropped. Deterministic: ties in length keep input order, rows come out in the order opened.
    """
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    clipped = [(ex.input_ids[:max_length], ex.labels[:max_length]) for ex in examples if ex.input_ids]
    order = sorted(range(len(clipped)), key=lambda k: -len(clipped[k][0]))
    bins = _first_fit([len(clipped[k][0]) for k in order], max_length)
    members: list[list[int]] = [[] for _ in range(max(bins, default=-1) + 1)]
    for k, b in zip(order, bins, strict=True):
        members[b].append(k)
    return [_make_row([clipped[k] for k in ks]) for ks in members]


def _make_row(parts: Sequence[tuple[list[int], list[int]]]) -> PackedRow:
    input_ids: list[int] = []
    labels: list[int] = []
    position_ids: list[int] = []
    for ids, labs in parts:
        input_ids += ids
        # The first token has no predecessor inside its example: never learn it from the previous one.
        labels += [IGNORE_INDEX, *labs[1:]]
        position_ids += range(len(ids))
    return PackedRow(input_ids, labels, position_ids, [len(ids) for ids, _ in parts])


def collate_packed(
    rows: Sequence[PackedRow],
    pad_token_id: int,
    *,
    pad_to_multiple_of: int | None = None,
    explicit_mask: bool = False,
    mask_dtype: torch.dtype = torch.float32,
) -> dict[str, torch.Tensor]:
    """Stack packed rows: input_ids, labels, position_ids (B, T) and, if asked, a 4D attention_mask.

    Without `explicit_mask` no `attention_mask` is returned on purpose: its absence is what makes
    transformers read example boundaries from `position_ids`; call the model with
    `use_cache=False`, or the boundaries are ignored. With it, `attention_mask` is
    (B, 1, T, T) in `mask_dtype` (the model's dtype): 0 where attention is allowed, the dtype's
    minimum elsewhere.
    """
    if not rows:
        raise ValueError("cannot collate an empty list of packed rows")
    width = _padded_length(max(len(r) for r in rows), pad_to_multiple_of)
    input_ids = torch.full((len(rows), width), pad_token_id, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
    position_ids = torch.zeros((len(rows), width), dtype=torch.long)
    segments = torch.zeros((len(rows), width), dtype=torch.long)
    for b, row in enumerate(rows):
        n = len(row)
        input_ids[b, :n] = torch.tensor(row.input_ids, dtype=torch.long)
        labels[b, :n] = torch.tensor(row.labels, dtype=torch.long)
        position_ids[b, :n] = torch.tensor(row.position_ids, dtype=torch.long)
        position_ids[b, n:] = torch.arange(width - n)  # padding: one more segment, starting at 0
        lengths = torch.tensor([*row.seq_lengths, width - n], dtype=torch.long)
        segments[b] = torch.repeat_interleave(torch.arange(len(lengths)), lengths)
    batch = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids}
    if explicit_mask:
        batch["attention_mask"] = block_causal_mask(segments, mask_dtype)
    return batch


def block_causal_mask(segment_ids: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Additive (B, 1, T, T) mask: query t sees key s iff s <= t and both are in the same segment.

    segment_ids: (B, T) integers, equal within one example. Returns 0 where allowed and
    `torch.finfo(dtype).min` elsewhere (finite, so a row never softmaxes to NaN).
    """
    t = segment_ids.size(1)
    causal = torch.ones(t, t, dtype=torch.bool, device=segment_ids.device).tril()
    same = segment_ids[:, :, None] == segment_ids[:, None, :]
    allowed = (same & causal)[:, None]
    mask = torch.zeros(allowed.shape, dtype=dtype, device=segment_ids.device)
    return mask.masked_fill(~allowed, torch.finfo(dtype).min)

"""Padding-free and prefix-shared batches: sequences laid end to end, attention described as blocks.

A padded batch of B sequences costs B x (longest) tokens in every layer, and a preference pair
costs its prompt twice. Here sequences are laid end to end in one row (or one row per item, for
the dense-mask backend) with no padding between them, and a pair is laid out as

    prompt | chosen response | rejected response      positions 0..P-1 | P..P+C-1 | P..P+R-1

where the rejected tokens attend to the prompt and to themselves, never to the chosen ones, and
their positions continue from the prompt's end: every token sees exactly the context it has in
its own padded row, so a pair costs P + C + R tokens instead of 2P + C + R.

Attention is described twice, and the two agree (tested):
- per token, for masks: (R, T) `doc_ids` (which item), `branch_ids` (0 for a prompt or a plain
  sequence, 1 chosen, 2 rejected) and `position_ids`. Query q may see key k iff they are in the
  same item, pos[k] <= pos[q], and k is in the prompt or in q's own branch (`allowed`);
- as `Block`s, for the segment backend (`alignlab.modeling.attention`): queries [start, stop)
  attend to the keys of some spans laid end to end, causally aligned at the end.

Log-probs are read as targets: the flat index (into R x T) of the position that predicts each
learned token, its id, and which sequence it belongs to (chosen sequences first, then rejected,
as in the padded pair batch). Padding after a row's last item (rows mode only) is its own item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import torch

from alignlab.data.labels import IGNORE_INDEX
from alignlab.data.templating import EncodedExample

Tensor = torch.Tensor
Rows = Literal["one", "each"]  # every item in one row, or one right-padded row per item
PROMPT, CHOSEN, REJECTED = 0, 1, 2


@dataclass(frozen=True)
class BatchLayout:
    """How a collator lays a micro-batch out: the attention backend that will read it
    (`alignlab.modeling.attention`), one row or one row per item, and whether a pair's prompt is
    encoded once."""

    attention: str
    rows: Rows = "one"
    share_prompt: bool = True


@dataclass(frozen=True)
class Block:
    """Queries [start, stop) of row `row` attend to the keys of `spans` (index ranges of that row)
    laid end to end; the queries are the last (stop - start) of those keys (causal, end-aligned)."""

    row: int
    start: int
    stop: int
    spans: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Piece:
    """One item of a layout: a plain sequence (no responses), or a prompt and the one or two
    responses that continue it (positions from the prompt's end)."""

    prompt: EncodedExample
    responses: tuple[EncodedExample, ...] = ()


@dataclass
class _Row:
    ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    docs: list[int] = field(default_factory=list)
    branches: list[int] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)

    def extend(self, ex: EncodedExample, first_position: int, doc: int, branch: int) -> int:
        start = len(self.ids)
        self.ids += ex.input_ids
        self.positions += range(first_position, first_position + len(ex))
        self.docs += [doc] * len(ex)
        self.branches += [branch] * len(ex)
        self.labels += ex.labels
        return start


@dataclass
class _Layout:
    rows: list[_Row] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    targets: list[tuple[int, int, int, int]] = field(default_factory=list)  # (row, index, id, owner)
    last: dict[int, tuple[int, int]] = field(default_factory=dict)  # owner -> (row, index)

    def targets_of(self, row: int, start: int, labels: Sequence[int], owner: int,
                   first_from: int | None) -> None:
        """Learned tokens of a sequence at `start`: token j is predicted by the token before it, the
        first one by `first_from` (a shared prompt's last token; None: nothing predicts it)."""
        for j, label in enumerate(labels):
            before = start + j - 1 if j > 0 else first_from
            if label != IGNORE_INDEX and before is not None:
                self.targets.append((row, before, label, owner))

    def add_sequence(self, row: int, ex: EncodedExample, doc: int, owner: int) -> None:
        r = self.rows[row]
        start = r.extend(ex, 0, doc, PROMPT)
        r.labels[start] = IGNORE_INDEX  # nothing before it in its own sequence predicts it
        self.targets_of(row, start, ex.labels, owner, None)
        self.blocks.append(Block(row, start, len(r.ids), ((start, len(r.ids)),)))
        self.last[owner] = (row, len(r.ids) - 1)

    def add_shared(self, row: int, piece: Piece, doc: int, owners: Sequence[int]) -> None:
        r = self.rows[row]
        n = len(piece.prompt)
        p0 = r.extend(piece.prompt, 0, doc, PROMPT)
        prompt_last = p0 + n - 1 if n else None
        for branch, (response, owner) in enumerate(zip(piece.responses, owners, strict=True), start=CHOSEN):
            start = r.extend(response, n, doc, branch)
            self.targets_of(row, start, response.labels, owner, prompt_last)
            if branch == CHOSEN:  # the prompt and the chosen response: one causal run
                self.blocks.append(Block(row, p0, len(r.ids), ((p0, len(r.ids)),)))
            else:  # a later response sees the prompt, then itself
                spans = ((p0, p0 + n), (start, len(r.ids))) if n else ((start, len(r.ids)),)
                self.blocks.append(Block(row, start, len(r.ids), spans))
            self.last[owner] = (row, len(r.ids) - 1 if len(response) else (prompt_last or 0))


def lay_out(pieces: Sequence[Piece], owners: Sequence[Sequence[int]], num_sequences: int, pad_token_id: int,
            rows: Rows = "one") -> dict:
    """The batch of `pieces`: every piece in one row (`rows="one"`) or one right-padded row each.

    owners[i] names the sequences of piece i (its responses in order, or the piece itself when it
    has none): their index among 0..num_sequences-1, the order of the returned log-probs and last
    tokens. Returns (R, T) input_ids / position_ids / doc_ids / branch_ids / attention_mask (1 on
    real tokens) and, when every piece is a plain sequence, labels (each sequence's first label
    ignored, as in packing); target_index / target_ids / target_owner (N,) and last_index (S,),
    flat indices into R x T; `blocks` (tiling every row) and `num_sequences`.
    """
    lay = _Layout()
    for k, piece in enumerate(pieces):
        if rows == "each" or k == 0:
            lay.rows.append(_Row())
        row = len(lay.rows) - 1
        if piece.responses:
            lay.add_shared(row, piece, k, owners[k])
        else:
            lay.add_sequence(row, piece.prompt, k, owners[k][0])
    width = max(len(r.ids) for r in lay.rows)
    real = [len(r.ids) for r in lay.rows]
    for i, r in enumerate(lay.rows):
        pad = width - len(r.ids)
        if pad:  # its own item: no real token sees it, and each pad token sees something
            lay.blocks.append(Block(i, len(r.ids), width, ((len(r.ids), width),)))
            r.extend(EncodedExample([pad_token_id] * pad, [IGNORE_INDEX] * pad), 0, -1, PROMPT)
    targets = torch.tensor(lay.targets, dtype=torch.long).reshape(-1, 4)
    last = [lay.last[s][0] * width + lay.last[s][1] for s in range(num_sequences)]
    batch = {
        "input_ids": torch.tensor([r.ids for r in lay.rows], dtype=torch.long),
        "position_ids": torch.tensor([r.positions for r in lay.rows], dtype=torch.long),
        "doc_ids": torch.tensor([r.docs for r in lay.rows], dtype=torch.long),
        "branch_ids": torch.tensor([r.branches for r in lay.rows], dtype=torch.long),
        "attention_mask": (torch.arange(width)[None, :] < torch.tensor(real)[:, None]).long(),
        "target_index": targets[:, 0] * width + targets[:, 1],
        "target_ids": targets[:, 2],
        "target_owner": targets[:, 3],
        "last_index": torch.tensor(last, dtype=torch.long),
        "blocks": tuple(sorted(lay.blocks, key=lambda x: (x.row, x.start))),
        "num_sequences": num_sequences,
    }
    if not any(p.responses for p in pieces):
        batch["labels"] = torch.tensor([r.labels for r in lay.rows], dtype=torch.long)
    return batch


def lay_out_sequences(sequences: Sequence[EncodedExample], pad_token_id: int, layout: BatchLayout) -> dict:
    """Plain sequences (SFT examples, one side of feedback), each its own item, in `layout`."""
    batch = lay_out([Piece(ex) for ex in sequences], [(k,) for k in range(len(sequences))], len(sequences),
                    pad_token_id, layout.rows)
    return batch | {"attention": layout.attention}


def lay_out_pairs(pairs: Sequence[tuple[EncodedExample, EncodedExample, int]], pad_token_id: int,
                  layout: BatchLayout) -> dict:
    """(chosen, rejected, prompt_len) pairs in `layout`: sequences 0..B-1 are the chosen sides and
    B..2B-1 the rejected ones, as in the padded (2B, T) pair batch."""
    n = len(pairs)
    if layout.share_prompt:
        pieces = [pair_piece(c, r, p) for c, r, p in pairs]
        owners = [(k, n + k) for k in range(n)]
    else:
        pieces = [Piece(c) for c, _, _ in pairs] + [Piece(r) for _, r, _ in pairs]
        owners = [(k,) for k in range(2 * n)]
    return lay_out(pieces, owners, 2 * n, pad_token_id, layout.rows) | {"attention": layout.attention}


def lay_out_groups(groups: Sequence[Sequence[EncodedExample]], pad_token_id: int,
                   layout: BatchLayout) -> dict:
    """Groups of sequences that share a prompt (a pair, or one response), sequences numbered in
    order; with `layout.share_prompt` a pair's shared prompt is laid out once."""
    pieces, owners, n = [], [], 0
    for g in groups:
        if len(g) == 2 and layout.share_prompt:
            pieces.append(pair_piece(g[0], g[1], shared_prompt_length(g)))
            owners.append((n, n + 1))
        else:
            pieces += [Piece(ex) for ex in g]
            owners += [(n + i,) for i in range(len(g))]
        n += len(g)
    return lay_out(pieces, owners, n, pad_token_id, layout.rows) | {"attention": layout.attention}


def shared_prompt_length(sides: Sequence[EncodedExample]) -> int:
    """Tokens every side starts with before any learned token: the prompt, as encoded for all of them."""
    n = min(next((i for i, label in enumerate(ex.labels) if label != IGNORE_INDEX), len(ex)) for ex in sides)
    first = sides[0].input_ids
    for ex in sides[1:]:  # a tokenizer may merge across the prompt's end differently per response
        n = next((i for i in range(n) if ex.input_ids[i] != first[i]), n)
    return n


def pair_piece(chosen: EncodedExample, rejected: EncodedExample, prompt_len: int) -> Piece:
    """A pair as one piece: the `prompt_len` tokens both sides start with once, then each response."""
    def tail(ex: EncodedExample) -> EncodedExample:
        return EncodedExample(ex.input_ids[prompt_len:], ex.labels[prompt_len:])

    prompt = EncodedExample(chosen.input_ids[:prompt_len], [IGNORE_INDEX] * prompt_len)
    return Piece(prompt, (tail(chosen), tail(rejected)))


def allowed(doc_ids: Tensor, branch_ids: Tensor, position_ids: Tensor, window: int | None = None) -> Tensor:
    """(R, T, T) bool: may query q see key k (same item, not later, prompt or q's own branch)?

    With `window` (sliding-window layers) also pos[q] - pos[k] < window.
    """
    same = doc_ids[:, :, None] == doc_ids[:, None, :]
    pq, pk = position_ids[:, :, None], position_ids[:, None, :]
    bk = branch_ids[:, None, :]
    ok = same & (pk <= pq) & ((bk == PROMPT) | (bk == branch_ids[:, :, None]))
    if window is not None:
        ok &= pq - pk < window
    return ok

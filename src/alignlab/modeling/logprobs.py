"""Per-sequence log-probs of label tokens, without a full-vocabulary float32 log-softmax.

The naive `logits.float().log_softmax(-1).gather(...)` makes two (B, T, V) float32 tensors and
keeps them for backward: for a 150k vocabulary that dwarfs the model's activations. Here the
log-prob of each target is `logit[target] − logsumexp(logits)`, computed chunk by chunk over
positions (a chunk holds at most ~2**24 float32 values), and the backward recomputes each chunk's
softmax instead of storing it. Two entry points:

- from logits (any model): only the model's own logits exist in full;
- from hidden states and the LM head (plain-head architectures): logits exist one chunk at a
  time and only at label positions, so no (B, T, V) tensor is ever made.

`concatenated_sequence_logps` runs chosen and rejected through the model in one forward pass.
Not here: reference caching and the DPO step (`alignlab.training.dpo`).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F

from alignlab.data.labels import IGNORE_INDEX

Tensor = torch.Tensor
CHUNK_ELEMENTS = 2**24  # float32 values per chunk (64 MiB)
KEEP_PROBS_ELEMENTS = 2**28  # up to this many (1 GiB) the forward keeps the softmax for the backward
# Architectures whose logits are exactly lm_head(last_hidden_state): no soft-capping or scaling.
PLAIN_HEAD_MODEL_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3", "gpt2"})


class SequenceLogps(NamedTuple):
    logps: Tensor  # (B,) summed log-probs of the label tokens, float32
    num_tokens: Tensor  # (B,) number of label tokens (labels != IGNORE_INDEX after the shift)

    @property
    def mean_logps(self) -> Tensor:
        """(B,) length-averaged log-probs (ORPO, SimPO); rows without labels give 0."""
        return self.logps / self.num_tokens.clamp(min=1)


class TokenBatch(NamedTuple):
    input_ids: Tensor  # (B, T) long
    attention_mask: Tensor  # (B, T), 1 for real tokens
    labels: Tensor  # (B, T) long, IGNORE_INDEX on prompt and padding

    @classmethod
    def of(cls, batch: dict[str, Tensor], prefix: str = "") -> TokenBatch:
        """The `<prefix>input_ids / attention_mask / labels` tensors of a collated batch."""
        return cls(batch[f"{prefix}input_ids"], batch[f"{prefix}attention_mask"], batch[f"{prefix}labels"])


class ChosenRejectedLogps(NamedTuple):
    chosen: SequenceLogps
    rejected: SequenceLogps


def _chunk_rows(vocab_size: int, chunk_rows: int | None) -> int:
    return chunk_rows if chunk_rows is not None else max(1, CHUNK_ELEMENTS // vocab_size)


def _target_grad(x: Tensor, lse: Tensor, targets: Tensor, grad_out: Tensor) -> Tensor:
    """d(x[target] − logsumexp(x))/dx times grad_out: grad_out·(onehot − softmax), (n, V) float32."""
    g = torch.exp(x - lse[:, None]).mul_(-grad_out[:, None])
    return g.scatter_add_(1, targets[:, None], grad_out[:, None])


class _LogitsTargetLogp(torch.autograd.Function):
    """(N, V) logits, (N,) targets, (N,) active -> (N,) float32 log-probs, 0 where inactive."""

    @staticmethod
    def forward(ctx, logits: Tensor, targets: Tensor, active: Tensor, rows: int) -> Tensor:
        out = logits.new_zeros(logits.shape[0], dtype=torch.float32)
        lse = torch.zeros_like(out)
        # One host sync for the whole loop: which chunks hold any label at all.
        n = logits.shape[0]
        holds_label = F.pad(active, (0, -n % rows)).view(-1, rows).any(1).tolist()
        chunks = [i * rows for i, any_label in enumerate(holds_label) if any_label]
        for s in chunks:
            x = logits[s : s + rows].float()
            lse[s : s + rows] = torch.logsumexp(x, dim=-1)
            out[s : s + rows] = x.gather(1, targets[s : s + rows, None]).squeeze(1) - lse[s : s + rows]
        ctx.save_for_backward(logits, targets, active, lse)
        ctx.chunks, ctx.rows = chunks, rows
        return out * active

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        logits, targets, active, lse = ctx.saved_tensors
        grad = torch.zeros_like(logits)
        grad_out = grad_out.float() * active
        for s in ctx.chunks:
            e = s + ctx.rows
            grad[s:e] = _target_grad(logits[s:e].float(), lse[s:e], targets[s:e], grad_out[s:e])
        return grad, None, None, None


class _HiddenTargetLogp(torch.autograd.Function):
    """(N, H) hidden, (V, H) head weight, optional (V,) bias, (N,) targets -> (N,) log-probs."""

    @staticmethod
    def forward(
        ctx, hidden: Tensor, weight: Tensor, bias: Tensor | None, targets: Tensor, rows: int
    ) -> Tensor:
        out = hidden.new_zeros(hidden.shape[0], dtype=torch.float32)
        lse = torch.zeros_like(out)
        # Keeping the softmax spares the backward one vocabulary projection, where it fits.
        keep = any(ctx.needs_input_grad[:3]) and hidden.shape[0] * weight.shape[0] <= KEEP_PROBS_ELEMENTS
        probs = []
        for s in range(0, hidden.shape[0], rows):
            x = F.linear(hidden[s : s + rows], weight, bias).float()
            lse[s : s + rows] = torch.logsumexp(x, dim=-1)
            out[s : s + rows] = x.gather(1, targets[s : s + rows, None]).squeeze(1) - lse[s : s + rows]
            if keep:
                probs.append(x.sub_(lse[s : s + rows, None]).exp_())
        ctx.save_for_backward(hidden, weight, bias, targets, lse)
        ctx.rows, ctx.probs = rows, probs if keep else None
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad_out: Tensor):
        hidden, weight, bias, targets, lse = ctx.saved_tensors
        need_h, need_w, need_b = ctx.needs_input_grad[:3]
        grad_h = torch.zeros_like(hidden) if need_h else None
        grad_w = torch.zeros_like(weight, dtype=torch.float32) if need_w else None
        grad_b = torch.zeros_like(bias, dtype=torch.float32) if need_b else None
        grad_out = grad_out.float()
        for i, s in enumerate(range(0, hidden.shape[0], ctx.rows)):
            h = hidden[s : s + ctx.rows]
            go = grad_out[s : s + ctx.rows]
            if ctx.probs is not None:  # grad_out·(onehot − softmax), in the kept softmax's memory
                g = ctx.probs[i].mul_(-go[:, None]).scatter_add_(1, targets[s : s + ctx.rows, None],
                                                                 go[:, None])
            else:  # recompute this chunk's logits rather than keep all of them from the forward
                g = _target_grad(F.linear(h, weight, bias).float(), lse[s : s + ctx.rows],
                                 targets[s : s + ctx.rows], go)
            if need_h:
                grad_h[s : s + ctx.rows] = (g.to(weight.dtype) @ weight).to(hidden.dtype)
            if need_w:
                grad_w += g.t() @ h.float()
            if need_b:
                grad_b += g.sum(0)
        ctx.probs = None  # used up in place; a second backward recomputes
        return (
            grad_h,
            grad_w.to(weight.dtype) if need_w else None,
            grad_b.to(bias.dtype) if need_b else None,
            None,
            None,
        )


def _shifted_targets(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Position t predicts labels[:, t + 1]: (B, T-1) targets (0 where masked) and the mask."""
    shifted = labels[:, 1:]
    mask = shifted != IGNORE_INDEX
    return shifted.masked_fill(~mask, 0), mask


def token_logps(logits: Tensor, labels: Tensor, *, chunk_rows: int | None = None) -> Tensor:
    """(B, T-1) float32 log-prob of labels[:, t+1] under logits[:, t]; 0 where the label is masked.

    logits: (B, T, V) in any dtype; labels: (B, T) with IGNORE_INDEX on prompt and padding.
    chunk_rows: positions per chunk (default: ~2**24 / V); changes memory, not the result.
    """
    batch, length, vocab = logits.shape
    targets, mask = _shifted_targets(labels)
    # Flatten the full (B, T) grid (a view, no copy) and drop the last position via the mask.
    flat_targets = F.pad(targets, (0, 1)).reshape(-1)
    flat_active = F.pad(mask, (0, 1)).reshape(-1)
    flat = _LogitsTargetLogp.apply(
        logits.reshape(-1, vocab), flat_targets, flat_active, _chunk_rows(vocab, chunk_rows)
    )
    return flat.view(batch, length)[:, :-1]


def aligned_token_logps(logits: Tensor, targets: Tensor, mask: Tensor, *,
                        chunk_rows: int | None = None) -> Tensor:
    """(B, R) float32 log-prob of targets[:, t] under logits[:, t] (no shift); 0 where mask is 0.

    logits: (B, R, V) already aligned with their targets (e.g. `modeling.responses.response_logits`);
    targets: (B, R) long; mask: (B, R). Chunked as `token_logps`, differentiable.
    """
    batch, length, vocab = logits.shape
    active = mask != 0
    flat = _LogitsTargetLogp.apply(
        logits.reshape(-1, vocab), targets.masked_fill(~active, 0).reshape(-1), active.reshape(-1),
        _chunk_rows(vocab, chunk_rows),
    )
    return flat.view(batch, length)


def sequence_logps(logits: Tensor, labels: Tensor, *, chunk_rows: int | None = None) -> SequenceLogps:
    """Summed log-probs (B,) of each row's label tokens and their counts; see `token_logps`."""
    return SequenceLogps(
        token_logps(logits, labels, chunk_rows=chunk_rows).sum(-1), (labels[:, 1:] != IGNORE_INDEX).sum(-1)
    )


def sequence_logps_from_hidden(
    hidden: Tensor,
    head: torch.nn.Linear,
    labels: Tensor,
    *,
    chunk_rows: int | None = None,
) -> SequenceLogps:
    """Like `sequence_logps` for logits = head(hidden), making logits only chunk by chunk.

    hidden: (B, T, H) last hidden states; head: the LM head (V, H) Linear; labels: (B, T).
    Only label positions are projected, so prompt and padding cost nothing.
    """
    batch, length, width = hidden.shape
    targets, mask = _shifted_targets(labels)
    # Indices into the flattened (B, T) grid (the last position predicts nothing).
    rows = F.pad(mask, (0, 1)).reshape(-1).nonzero().squeeze(1)
    values = _HiddenTargetLogp.apply(
        hidden.reshape(-1, width).index_select(0, rows),
        head.weight,
        head.bias,
        F.pad(targets, (0, 1)).reshape(-1)[rows],
        _chunk_rows(head.out_features, chunk_rows),
    )
    logps = values.new_zeros(batch).index_add_(0, rows // length, values)
    return SequenceLogps(logps, mask.sum(-1))


def plain_head_parts(model) -> tuple[torch.nn.Module, torch.nn.Linear] | None:
    """(backbone, lm_head) when logits == lm_head(backbone(...).last_hidden_state), else None."""
    from transformers import PreTrainedModel

    # A PEFT model runs its (LoRA-injected) base model; DDP/FSDP wrappers are left alone because
    # bypassing their forward would skip gradient synchronisation.
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    if not isinstance(inner, PreTrainedModel) or inner.config.model_type not in PLAIN_HEAD_MODEL_TYPES:
        return None
    head = inner.get_output_embeddings()
    backbone = getattr(inner, inner.base_model_prefix, None)
    if type(head) is not torch.nn.Linear or backbone is None:
        return None
    return backbone, head


def _head_parts_for(model, mode: str) -> tuple[torch.nn.Module, torch.nn.Linear] | None:
    """(backbone, lm_head) for the hidden path, None for the logits path; "hidden" on a model without
    a plain head is a ValueError."""
    parts = plain_head_parts(model) if mode != "logits" else None
    if mode == "hidden" and parts is None:
        raise ValueError(
            f"mode='hidden' needs a plain-head model ({', '.join(sorted(PLAIN_HEAD_MODEL_TYPES))})"
        )
    return parts


def model_sequence_logps(
    model,
    batch: TokenBatch,
    *,
    mode: Literal["auto", "logits", "hidden"] = "auto",
    chunk_rows: int | None = None,
) -> SequenceLogps:
    """Forward a causal LM and return per-row summed label log-probs and token counts.

    mode "hidden" runs the backbone and projects label positions chunk by chunk (no full logits);
    "logits" uses the model's logits; "auto" picks "hidden" where the architecture allows it.
    """
    parts = _head_parts_for(model, mode)
    if parts is not None:
        backbone, head = parts
        out = backbone(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False)
        return sequence_logps_from_hidden(out.last_hidden_state, head, batch.labels, chunk_rows=chunk_rows)
    logits = model(input_ids=batch.input_ids, attention_mask=batch.attention_mask, use_cache=False).logits
    return sequence_logps(logits, batch.labels, chunk_rows=chunk_rows)


def target_logps(model, inputs: dict, index: Tensor, targets: Tensor, *,
                 mode: Literal["auto", "logits", "hidden"] = "auto", chunk_rows: int | None = None) -> Tensor:
    """(N,) float32 log-probs of `targets` predicted at the flat (R x T) positions `index`.

    `inputs` are the forward's keyword arguments (input_ids and what the batch's layout needs:
    masks, position ids, attention blocks). The hidden path projects only those N positions.
    """
    parts = _head_parts_for(model, mode)
    if parts is not None:
        backbone, head = parts
        hidden = backbone(**inputs, use_cache=False).last_hidden_state
        rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, index)
        return _HiddenTargetLogp.apply(rows, head.weight, head.bias, targets,
                                       _chunk_rows(head.out_features, chunk_rows))
    logits = model(**inputs, use_cache=False).logits
    vocab = logits.shape[-1]
    rows = logits.reshape(-1, vocab).index_select(0, index)
    active = torch.ones_like(targets, dtype=torch.bool)
    return _LogitsTargetLogp.apply(rows, targets, active, _chunk_rows(vocab, chunk_rows))


def label_targets(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Flat positions (into B x T) predicting each label of a padded or packed batch, and the labels."""
    targets, mask = _shifted_targets(labels)
    index = F.pad(mask, (0, 1)).reshape(-1).nonzero().squeeze(1)
    return index, F.pad(targets, (0, 1)).reshape(-1)[index]


def layout_sequence_logps(model, batch: dict, **kwargs) -> SequenceLogps:
    """Summed label log-probs (S,) and counts of the sequences of a layout batch
    (`alignlab.data.layout`: padding-free or prefix-shared), in the batch's sequence order."""
    from alignlab.modeling.attention import attention_inputs

    owner, count = batch["target_owner"], batch["num_sequences"]
    values = target_logps(model, attention_inputs(model, batch), batch["target_index"], batch["target_ids"],
                          **kwargs)
    return SequenceLogps(values.new_zeros(count).index_add_(0, owner, values),
                         torch.bincount(owner, minlength=count))


def batch_sequence_logps(model, batch: dict, prefix: str = "") -> SequenceLogps:
    """Per-sequence log-probs of a layout batch, or of a padded one (`<prefix>input_ids` etc.)."""
    if f"{prefix}target_index" in batch:
        side = {k[len(prefix):]: v for k, v in batch.items() if k.startswith(prefix)}
        return layout_sequence_logps(model, side)
    return model_sequence_logps(model, TokenBatch.of(batch, prefix))


def _pad_to(t: Tensor, length: int, value: int) -> Tensor:
    return F.pad(t, (0, length - t.shape[1]), value=value)


def concatenate_pair(chosen: TokenBatch, rejected: TokenBatch, pad_token_id: int = 0) -> TokenBatch:
    """One (2B, T) batch: chosen rows then rejected rows, right-padded to the longer length."""
    length = max(chosen.input_ids.shape[1], rejected.input_ids.shape[1])
    return TokenBatch(
        torch.cat(
            [
                _pad_to(chosen.input_ids, length, pad_token_id),
                _pad_to(rejected.input_ids, length, pad_token_id),
            ]
        ),
        torch.cat([_pad_to(chosen.attention_mask, length, 0), _pad_to(rejected.attention_mask, length, 0)]),
        torch.cat(
            [_pad_to(chosen.labels, length, IGNORE_INDEX), _pad_to(rejected.labels, length, IGNORE_INDEX)]
        ),
    )


def concatenated_sequence_logps(
    model,
    chosen: TokenBatch,
    rejected: TokenBatch,
    *,
    pad_token_id: int = 0,
    mode: Literal["auto", "logits", "hidden"] = "auto",
    chunk_rows: int | None = None,
) -> ChosenRejectedLogps:
    """Chosen and rejected through `model` in ONE forward pass, split back into two halves.

    One pass of 2B rows instead of two of B halves the kernel launches and weight reads, and under
    FSDP/DDP it is one all-gather / hook round, not two. Right padding keeps causal outputs of
    real tokens unchanged; padded positions carry IGNORE_INDEX labels and add nothing.
    """
    if chosen.input_ids.shape[0] != rejected.input_ids.shape[0]:
        raise ValueError("chosen and rejected must have the same number of rows")
    both = model_sequence_logps(
        model, concatenate_pair(chosen, rejected, pad_token_id), mode=mode, chunk_rows=chunk_rows
    )
    n = chosen.input_ids.shape[0]
    return ChosenRejectedLogps(
        SequenceLogps(both.logps[:n], both.num_tokens[:n]), SequenceLogps(both.logps[n:], both.num_tokens[n:])
    )

"""Attention for padding-free and prefix-shared batches (`alignlab.data.layout`), three ways.

- "segments": our attention function, registered with transformers' `AttentionInterface`, runs
  each `Block` of a layout as its own small attention (`scaled_dot_product_attention`, or the
  eager formula for soft-capped logits), so no token pays for keys it may not see and no mask is
  built. A model switched to it (`enable_segments`) keeps its own attention for every forward that
  passes no blocks. The fast path on CPU, where FlexAttention has no backward.
- "mask": a dense 4-D mask through the model's own eager / SDPA attention (a dict of them for
  models with sliding-window layers); one right-padded row per item, as the mask is dense.
- "flex": FlexAttention block masks, for a model loaded with `attn_implementation=flex_attention`
  (block-sparse; on CPU torch 2.13 has no FlexAttention backward, so it trains on GPUs only).

`choose_backend` probes a model once (per class, attention implementation, dtype and device):
the hidden states of a pair and a plain sequence laid out with a backend must match those of
their padded rows, or the backend is not used. Architectures that ignore custom position ids or
4-D masks, or route attention outside `AttentionInterface`, fall back to the next backend, then
to padded batches, and the stage says so.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from alignlab.data.layout import BatchLayout, Block, Piece, allowed, lay_out
from alignlab.data.templating import EncodedExample

Tensor = torch.Tensor
BACKENDS = ("segments", "mask", "flex")
ROWS = {"segments": "one", "flex": "one", "mask": "each"}  # how each backend lays items out
_PREFIX = "alignlab_segments_"
_PLACEHOLDER_MASK = torch.ones(1, 1, 1, 1, dtype=torch.bool)  # a 4-D mask is taken as-is, then ignored
_PROBED: dict[tuple, str | None] = {}


# ------------------------------------------------------------------------------------ segments


def _base_attention(module: torch.nn.Module, name: str) -> Callable:
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    if name == "eager":  # each architecture's own eager formula lives in its modeling module
        return sys.modules[type(module).__module__].eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS[name]


def segment_attention(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor,
                      attention_mask: Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                      **kwargs: Any) -> tuple[Tensor, None]:
    """AttentionInterface function: each block of `alignlab_blocks` attends on its own.

    query (1, H, T, D), key / value (1, Hkv, T, D); returns (1, T, H, D). Without blocks it is the
    model's own attention (`attn_implementation` it had before).
    """
    blocks: tuple[Block, ...] | None = kwargs.pop("alignlab_blocks", None)
    if blocks is None:
        base = module.config._attn_implementation.removeprefix(_PREFIX)
        return _base_attention(module, base)(module, query, key, value, attention_mask, scaling=scaling,
                                             dropout=dropout, **kwargs)
    if query.shape[0] != 1:
        raise ValueError("segment attention takes one row of blocks")
    window, softcap = kwargs.get("sliding_window"), kwargs.get("softcap")
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    outs = []
    for b in blocks:
        q = query[:, :, b.start:b.stop]
        k, v = (_keys(t, b.spans) for t in (key, value))
        outs.append(_block_attention(q, k, v, scale, dropout if module.training else 0.0, window, softcap))
    return torch.cat(outs, 2).transpose(1, 2).contiguous(), None


def _keys(t: Tensor, spans: tuple[tuple[int, int], ...]) -> Tensor:
    """The spans of a (1, heads, T, D) tensor laid end to end (a view when there is one)."""
    if len(spans) == 1:
        return t[:, :, spans[0][0]:spans[0][1]]
    return torch.cat([t[:, :, s:e] for s, e in spans], 2)


def _block_attention(q: Tensor, k: Tensor, v: Tensor, scale: float, dropout: float, window: int | None,
                     softcap: float | None) -> Tensor:
    """(1, H, L, D) queries that are the last L of S keys, causal (and within `window`)."""
    length, keys = q.shape[2], k.shape[2]
    mask = None
    if length != keys or window is not None:
        i = torch.arange(length, device=q.device)[:, None] + (keys - length)
        j = torch.arange(keys, device=q.device)[None, :]
        mask = (j <= i) & ((i - j < window) if window is not None else True)
    if softcap is None:
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None,
                                              dropout_p=dropout, scale=scale, enable_gqa=True)
    groups = q.shape[1] // k.shape[1]
    k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
    w = torch.tanh(q @ k.transpose(-1, -2) * scale / softcap) * softcap
    if mask is None:
        mask = torch.ones(length, keys, dtype=torch.bool, device=q.device).tril()
    w = w.masked_fill(~mask, torch.finfo(w.dtype).min).softmax(-1, dtype=torch.float32).to(q.dtype)
    return F.dropout(w, dropout, training=dropout > 0) @ v


def _pretrained_parts(model: torch.nn.Module) -> Iterator[torch.nn.Module]:
    from transformers import PreTrainedModel

    return (m for m in model.modules() if isinstance(m, PreTrainedModel))


def enable_segments(model: torch.nn.Module) -> None:
    """Route every attention of `model` through `segment_attention` (idempotent). Forwards without
    blocks keep the model's own attention and masks, so the switch changes nothing else."""
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    for part in _pretrained_parts(model):
        base = part.config._attn_implementation or "eager"
        if base.startswith(_PREFIX):
            continue
        name = _PREFIX + base
        ALL_ATTENTION_FUNCTIONS.register(name, segment_attention)
        if base in ALL_MASK_ATTENTION_FUNCTIONS:
            ALL_MASK_ATTENTION_FUNCTIONS.register(name, ALL_MASK_ATTENTION_FUNCTIONS[base])
        part.config._attn_implementation = name


def disable_segments(model: torch.nn.Module) -> None:
    for part in _pretrained_parts(model):
        impl = part.config._attn_implementation or ""
        if impl.startswith(_PREFIX):
            part.config._attn_implementation = impl.removeprefix(_PREFIX)


# ------------------------------------------------------------------------------------ model inputs


def _windows(config) -> tuple[int | None, bool]:
    """(sliding window, whether the model takes a dict of masks per layer type)."""
    types = getattr(config, "layer_types", None)
    if types:  # a mapping {"full_attention": ..., "sliding_attention": ...}
        return (config.sliding_window, True) if "sliding_attention" in types else (None, False)
    return getattr(config, "sliding_window", None), False  # one mask for every layer (Mistral)


def _flex_mask(batch: dict[str, Tensor], window: int | None):
    from torch.nn.attention.flex_attention import create_block_mask

    doc, branch, pos = batch["doc_ids"], batch["branch_ids"], batch["position_ids"]

    def mask_mod(b, h, q, k):
        seen = (branch[b, k] == 0) | (branch[b, k] == branch[b, q])
        ok = (doc[b, q] == doc[b, k]) & (pos[b, k] <= pos[b, q]) & seen
        return ok & (pos[b, q] - pos[b, k] < window) if window is not None else ok

    rows, width = doc.shape
    return create_block_mask(mask_mod, rows, None, width, width, device=doc.device)


def _dense_mask(batch: dict[str, Tensor], window: int | None, additive: bool) -> Tensor:
    ok = allowed(batch["doc_ids"], batch["branch_ids"], batch["position_ids"], window)[:, None]
    if not additive:
        return ok
    return torch.zeros(ok.shape, device=ok.device).masked_fill_(~ok, torch.finfo(torch.float32).min)


def attention_inputs(model: torch.nn.Module, batch: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments of `model`'s (or its backbone's) forward for a layout batch."""
    backend = batch["attention"]
    out: dict[str, Any] = {"input_ids": batch["input_ids"], "position_ids": batch["position_ids"]}
    if backend == "segments":
        out["attention_mask"] = _PLACEHOLDER_MASK.to(batch["input_ids"].device)
        out["alignlab_blocks"] = batch["blocks"]
        return out
    config = next(_pretrained_parts(model)).config
    window, per_type = _windows(config)
    if backend == "flex":
        make = lambda w: _flex_mask(batch, w)  # noqa: E731
    else:  # SDPA reads a boolean mask; the eager formulas add theirs to the scores
        additive = (config._attn_implementation or "eager").removeprefix(_PREFIX) != "sdpa"
        make = lambda w: _dense_mask(batch, w, additive)  # noqa: E731
    if per_type:
        out["attention_mask"] = {"full_attention": make(None), "sliding_attention": make(window)}
    else:
        out["attention_mask"] = make(window)
    return out


# ------------------------------------------------------------------------------------ probe


def backbone_of(model: torch.nn.Module) -> torch.nn.Module | None:
    """The transformer under a causal-LM, sequence-classification or PEFT model (its hidden states)."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    parts = list(_pretrained_parts(inner))
    if not parts:
        return None
    top = parts[0]
    return getattr(top, getattr(top, "base_model_prefix", ""), None)


def _probe_pieces(vocab: int) -> list[Piece]:
    g = torch.Generator().manual_seed(0)

    def ex(n: int, learned: bool) -> EncodedExample:
        ids = torch.randint(3, min(vocab, 1000), (n,), generator=g).tolist()
        return EncodedExample(ids, ids if learned else [-100] * n)

    return [Piece(ex(5, False), (ex(4, True), ex(6, True))), Piece(ex(7, True))]


def _padded_hidden(backbone: torch.nn.Module, sequences: list[list[int]], device) -> list[Tensor]:
    width = max(map(len, sequences))
    ids = torch.tensor([s + [0] * (width - len(s)) for s in sequences], device=device)
    mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in sequences], device=device)
    hidden = backbone(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
    return [hidden[i, : len(s)] for i, s in enumerate(sequences)]


def probe(model: torch.nn.Module, backend: str) -> str | None:
    """None when `backend` gives `model` the hidden states of padded rows; else why not."""
    from alignlab.modeling.inference import inference_mode, model_device

    backbone = backbone_of(model)
    if backbone is None:
        return "no transformer backbone to probe"
    pieces = _probe_pieces(int(next(_pretrained_parts(model)).config.vocab_size))
    pair, plain = pieces
    prompt = pair.prompt.input_ids
    sequences = [prompt + r.input_ids for r in pair.responses] + [plain.prompt.input_ids]
    batch = lay_out(pieces, [(0, 1), (2,)], 3, 0, rows=ROWS[backend])
    device = model_device(model)
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()} | {"attention": backend}
    if backend == "segments":
        enable_segments(model)
    try:
        with inference_mode(model):
            want = _padded_hidden(backbone, sequences, device)
            got = backbone(**attention_inputs(model, batch), use_cache=False).last_hidden_state
    except Exception as err:  # noqa: BLE001 - any failure means the architecture cannot take it
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    flat = got.reshape(-1, got.shape[-1])
    width = got.shape[1]
    n, c = len(prompt), len(pair.responses[0])
    rej_start = n + c  # in row 0 under "one"; in row 0 too under "each"
    plain_start = (n + c + len(pair.responses[1])) if ROWS[backend] == "one" else width
    pieces_at = [flat[:n + c], torch.cat([flat[:n], flat[rej_start:rej_start + len(pair.responses[1])]]),
                 flat[plain_start:plain_start + len(plain.prompt)]]
    worst = max(float((a.float() - b.float()).norm(dim=-1).div(b.float().norm(dim=-1).clamp(min=1e-6)).max())
                for a, b in zip(pieces_at, want, strict=True))
    tol = 1e-3 if flat.dtype == torch.float32 else 5e-2
    return None if worst <= tol else f"its hidden states differ from padded rows by {worst:.2g} (relative)"


def choose_layout(model: torch.nn.Module, *, padding_free: bool, prefix_sharing: bool, attention: str,
                  pairs: bool, training: bool = True) -> tuple[BatchLayout | None, str]:
    """The `BatchLayout` a stage's collator should use for `model` (None: padded batches), and a
    line for the log. Pairs share their prompt with `prefix_sharing`; sequences drop their padding
    with `padding_free` (the dense-mask backend pads each item to the longest, so plain sequences
    then stay padded)."""
    share = pairs and prefix_sharing
    if not (padding_free or share):
        return None, "padded batches (train.padding_free and train.prefix_sharing are off)"
    backend, why = choose_backend(model, attention, training=training)
    if backend is None:
        return None, why
    rows = ROWS[backend] if padding_free else "each"
    if rows == "each" and not share:
        return None, f"padded batches: {why} lays out one padded row per sequence, no better than padding"
    parts = (("padding-free", rows == "one"), ("one prompt per pair", share))
    what = " and ".join(x for x, on in parts if on)
    return BatchLayout(backend, rows, share), f"batches {what}, {why}"


def choose_backend(model: torch.nn.Module, requested: str, *,
                   training: bool = True) -> tuple[str | None, str]:
    """(backend or None for padded batches, a line saying what was chosen and why)."""
    part = next(_pretrained_parts(model), None)
    if part is None:
        return None, "padded batches: not a transformers model"
    impl = (part.config._attn_implementation or "eager").removeprefix(_PREFIX)
    device = next(model.parameters()).device
    candidates = [requested] if requested != "auto" else (
        ["flex", "segments", "mask"] if impl == "flex_attention" else ["segments", "mask"])
    reasons = []
    for backend in candidates:
        if backend == "flex" and training and device.type == "cpu":
            reasons.append("flex: FlexAttention has no backward on CPU")
            continue
        if backend == "flex" and impl != "flex_attention":
            reasons.append("flex: needs model.attn_implementation=flex_attention")
            continue
        key = (type(part).__name__, impl, str(next(model.parameters()).dtype), device.type, backend)
        if key not in _PROBED:
            _PROBED[key] = probe(model, backend)
        if _PROBED[key] is None:
            if backend == "segments":
                enable_segments(model)
            return backend, f"{backend} attention ({part.config.model_type}, {impl})"
        disable_segments(model)
        reasons.append(f"{backend}: {_PROBED[key]}")
    return None, f"padded batches ({part.config.model_type}, {impl}): " + "; ".join(reasons)

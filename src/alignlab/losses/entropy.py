"""Per-token entropy of the policy from its logits, without a second full-vocabulary copy.

The naive `-(softmax(z) * log_softmax(z)).sum(-1)` on (B, T, V) logits keeps two float32
(B, T, V) tensors for backward, more than the logits themselves. Here the entropy of each position
is computed chunk by chunk over positions (a chunk holds at most `CHUNK_ELEMENTS` float32 values),
only at the positions the mask selects, and the backward recomputes each chunk's softmax instead
of storing it (the same scheme as `alignlab.modeling.logprobs`). Only the gradient of the logits,
which any loss on them needs, is full size.

    H = −Σ_j p_j log p_j = logsumexp(z) − Σ_j p_j z_j,     ∂H/∂z_k = −p_k·(log p_k + H)
"""

from __future__ import annotations

import torch

from alignlab.modeling.logprobs import CHUNK_ELEMENTS

Tensor = torch.Tensor


def _chunk_entropy(x: Tensor) -> tuple[Tensor, Tensor]:
    """Entropy (n,) and log-probs (n, V) of the rows of x (n, V), in float32 or wider."""
    logp = torch.log_softmax(x.float() if x.dtype in (torch.float16, torch.bfloat16) else x, dim=-1)
    # A masked-out logit (−inf: top-k, vocabulary padding) has p = 0 and must add 0, not 0·(−inf).
    logp = logp.clamp(min=torch.finfo(logp.dtype).min)
    return -(logp.exp() * logp).sum(-1), logp


class _ChunkedEntropy(torch.autograd.Function):
    """Entropy at the (b, t) positions listed in `where` (n, 2), a chunk of positions at a time."""

    @staticmethod
    def forward(ctx, logits: Tensor, where: Tensor, chunk: int) -> Tensor:  # type: ignore[override]
        out_dtype = torch.float32 if logits.dtype in (torch.float16, torch.bfloat16) else logits.dtype
        out = torch.zeros(logits.shape[:2], dtype=out_dtype, device=logits.device)
        for b, t in _chunks(where, chunk):
            out[b, t] = _chunk_entropy(logits[b, t])[0]
        ctx.save_for_backward(logits, where)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        logits, where = ctx.saved_tensors
        grad = torch.zeros_like(logits)
        for b, t in _chunks(where, ctx.chunk):
            h, logp = _chunk_entropy(logits[b, t])
            p = logp.exp()
            grad[b, t] = p.mul_(logp.add_(h[:, None])).mul_(-grad_out[b, t][:, None]).to(grad.dtype)
        return grad, None, None


def _chunks(where: Tensor, chunk: int):
    for start in range(0, where.shape[0], chunk):
        part = where[start : start + chunk]
        yield part[:, 0], part[:, 1]


def entropy_from_logits(
    logits: Tensor, mask: Tensor | None = None, *, chunk_rows: int | None = None
) -> Tensor:
    """Per-token entropy H(π(·|s_t)) in nats, (B, T), differentiable with respect to the logits.

    logits: (B, T, V), logits[:, t] the distribution the token at t was sampled from (already
    shifted: a slice such as `model_logits[:, :-1]` is read in place, never copied whole);
    mask: (B, T), 1 where the entropy is wanted (response tokens), or None for every position.
    Positions under mask 0 get 0 and cost nothing. Returns float32 for half-precision logits, else
    the logits' dtype. chunk_rows: positions per chunk (default: CHUNK_ELEMENTS / V).
    Use as the entropy bonus of `ppo_policy_loss(..., entropy=..., entropy_coef=...)` or a metric.
    """
    if logits.dim() != 3:
        raise ValueError(f"logits must be (B, T, V), got shape {tuple(logits.shape)}")
    b, t, v = logits.shape
    if mask is not None and mask.shape != (b, t):
        raise ValueError(f"mask must be (B, T) = {(b, t)}, got {tuple(mask.shape)}")
    selected = torch.ones(b, t, dtype=torch.bool, device=logits.device) if mask is None else mask != 0
    chunk = chunk_rows if chunk_rows is not None else max(1, CHUNK_ELEMENTS // v)
    return _ChunkedEntropy.apply(logits, selected.nonzero(), chunk)

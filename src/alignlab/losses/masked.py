"""Masked reductions over response tokens: sums, means and variance.

Every RL quantity lives on a (B, T) grid of which only the response tokens count: a mask (B, T)
holds 1 on response tokens and 0 on prompt and padding (bool, integer or float; any non-zero
counts as 1). Values under mask 0 never reach a result or its gradient, whatever they hold, inf
and NaN included: they are selected away (`torch.where`), not multiplied by 0.

Not here: the loss aggregation modes a training step reports (`alignlab.losses.aggregation`),
advantage whitening (`alignlab.losses.advantages.masked_whiten`).
"""

from __future__ import annotations

import torch

Tensor = torch.Tensor


def _select(x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """x with masked-out entries set to 0, and the mask as 0/1 in x's dtype."""
    if mask.shape != x.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} differs from values shape {tuple(x.shape)}")
    on = mask != 0
    return torch.where(on, x, 0.0), on.to(x.dtype)


def masked_sum(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Σ x·mask over `dim` (all elements when None). x, mask: (B, T); returns a scalar or (B,)."""
    kept, _ = _select(x, mask)
    return kept.sum() if dim is None else kept.sum(dim)


def masked_mean(x: Tensor, mask: Tensor, dim: int | None = None) -> Tensor:
    """Σ x·mask / Σ mask over `dim` (all elements when None); an empty row or batch gives 0.

    x, mask: (B, T). dim=None returns a scalar (the token mean of the batch); dim=-1 returns (B,),
    each sequence's mean over its own response tokens.
    """
    kept, m = _select(x, mask)
    total = kept.sum() if dim is None else kept.sum(dim)
    count = m.sum() if dim is None else m.sum(dim)
    return total / count.clamp(min=1.0)


def masked_var(x: Tensor, mask: Tensor, *, unbiased: bool = True) -> Tensor:
    """Variance of the masked entries of x (B, T), a scalar; Bessel-corrected when `unbiased`.

    The correction n/(n − 1) follows TRL's and verl's `masked_var`; it needs at least two tokens.
    """
    kept, m = _select(x, mask)
    n = m.sum()
    if n < (2 if unbiased else 1):
        raise ValueError(
            f"masked variance needs at least {2 if unbiased else 1} unmasked values, got {int(n)}"
        )
    mean = kept.sum() / n
    var = torch.where(mask != 0, (x - mean) ** 2, 0.0).sum() / n
    return var * n / (n - 1) if unbiased else var

"""Per-token entropy from logits: hand values, the naive formula's value and gradient, and memory."""

from __future__ import annotations

import math

import torch

from alignlab.losses.entropy import entropy_from_logits


def t(*rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


def leaf(x: torch.Tensor) -> torch.Tensor:
    return x.clone().requires_grad_()


def test_entropy_hand_values() -> None:
    """Uniform over 4: log 4 = 1.386294. Logits [0, log 3] (p = ¼, ¾): ¼·log 4 + ¾·log(4/3) = 0.562335.
    A near-one-hot distribution: ≈ 0. Masked positions: 0."""
    logits = torch.tensor(
        [[[0.0, 0.0, 0.0, 0.0], [0.0, math.log(3.0), -math.inf, -math.inf], [50.0, 0.0, 0.0, 0.0]]],
        dtype=torch.float64,
    )
    h = entropy_from_logits(logits)
    torch.testing.assert_close(h[0, :2], t(math.log(4.0), 0.5623351446))
    assert 0 <= h[0, 2].item() < 1e-18
    torch.testing.assert_close(
        entropy_from_logits(logits, torch.tensor([[1, 0, 0]]))[0], t(math.log(4.0), 0, 0)
    )


def test_entropy_matches_the_naive_formula_value_and_gradient() -> None:
    """Chunked over 3 positions at a time, under a mask with holes: the value and the gradient of the
    masked entropy equal −Σ p log p computed on the full tensor; float64 gradcheck passes."""
    g = torch.Generator().manual_seed(5)
    logits = 3 * torch.randn(2, 5, 11, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0, 1, 1], [0, 1, 1, 1, 0]])
    weights = torch.randn(2, 5, generator=g, dtype=torch.float64)
    ours, naive = leaf(logits), leaf(logits)
    (entropy_from_logits(ours, mask, chunk_rows=3) * weights).sum().backward()
    logp = naive.log_softmax(-1)
    ((-(logp.exp() * logp).sum(-1)) * mask * weights).sum().backward()
    torch.testing.assert_close(ours.grad, naive.grad)
    small = leaf(logits[:, :3, :4])
    assert torch.autograd.gradcheck(lambda x: entropy_from_logits(x, mask[:, :3], chunk_rows=2), (small,))


def _large_saved_tensors(fn, logits: torch.Tensor) -> list[torch.Tensor]:
    """Tensors of at least half the logits' size that autograd keeps for the backward of fn(logits)."""
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda x: saved.append(x) or x, lambda x: x):
        fn(logits)
    return [x for x in saved if x.numel() * 2 >= logits.numel()]


def test_entropy_keeps_no_second_full_vocabulary_tensor() -> None:
    """On a shifted slice (model_logits[:, :-1]) only the model's own logits are kept for backward,
    not copied; the naive formula keeps full-size log-probs and probabilities besides."""
    model_logits = torch.randn(3, 9, 50, requires_grad=True)
    shifted = model_logits[:, :-1]
    kept = _large_saved_tensors(entropy_from_logits, shifted)
    base = model_logits.untyped_storage().data_ptr()
    assert kept and all(x.untyped_storage().data_ptr() == base for x in kept)

    def naive(x: torch.Tensor) -> torch.Tensor:
        logp = x.log_softmax(-1)
        return -(logp.exp() * logp).sum(-1)

    assert any(x.untyped_storage().data_ptr() != base for x in _large_saved_tensors(naive, shifted))
    h = entropy_from_logits(shifted)
    torch.testing.assert_close(h, naive(shifted))
    h.sum().backward()
    assert (model_logits.grad[:, -1] == 0).all() and model_logits.grad[:, :-1].abs().sum() > 0


def test_entropy_of_bfloat16_logits_is_float32() -> None:
    logits = torch.zeros(1, 2, 8, dtype=torch.bfloat16, requires_grad=True)
    h = entropy_from_logits(logits)
    assert h.dtype == torch.float32
    torch.testing.assert_close(h, torch.full((1, 2), math.log(8.0)))
    h.sum().backward()
    assert logits.grad.dtype == torch.bfloat16
    assert logits.grad.abs().max() < 1e-6  # uniform is the maximum: zero gradient up to rounding

"""The frozen reference model a method compares its policy with (the DPO family; PPO's KL later).

The reference is the initial policy, a separate model directory, or, for a LoRA policy, the same
model with its adapters disabled. Its log-probs come from the on-disk cache that a pre-pass fills
(`refcache`; each item then carries `ref_<side>`), or from a live model at every step.
"""

from __future__ import annotations

import dataclasses
import gc
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch

from alignlab.data.preference import sequences_of, with_reference
from alignlab.data.splits import EncodedSplit
from alignlab.modeling.inference import inference_mode
from alignlab.modeling.logprobs import SequenceLogps
from alignlab.training import refcache

Tensor = torch.Tensor
# (model, batch) -> per side (B,) summed reference log-probs
ReferenceFn = Callable[[torch.nn.Module, dict[str, Tensor]], dict[str, Tensor]]
SidesLogps = Callable[[torch.nn.Module, dict[str, Tensor]], dict[str, SequenceLogps]]


def live_reference(ref_model: torch.nn.Module | None, sides_logps: SidesLogps) -> ReferenceFn:
    """Reference log-probs computed each step by `ref_model`, or (None) by the LoRA policy with its
    adapters off; `sides_logps` is the method's own way of computing every side of a batch."""

    def reference(model: torch.nn.Module, batch: dict[str, Tensor]) -> dict[str, Tensor]:
        target = ref_model if ref_model is not None else getattr(model, "module", model)  # DDP wrapper
        adapters_off = nullcontext() if ref_model is not None else target.disable_adapter()
        with inference_mode(target), adapters_off:
            return {side: out.logps for side, out in sides_logps(target, batch).items()}

    return reference


def cached_reference(batch: dict[str, Tensor], sides: Sequence[str]) -> dict[str, Tensor] | None:
    """(B,) cached reference log-probs per side, when the batch carries them."""
    if f"ref_{sides[0]}" not in batch:
        return None
    return {s: batch[f"ref_{s}"] for s in sides}


def attach_cached_reference(
    split: EncodedSplit,
    sides: Sequence[str],
    reference_model: Callable[[], AbstractContextManager[torch.nn.Module]],
    identity: dict[str, Any],
    *,
    settings: dict[str, Any],
    cache_path,
    collate_for: Callable[[torch.nn.Module], Callable[[list], dict[str, Tensor]]],
    sides_logps: SidesLogps,
    length: Callable[[Any], int],
    batch_size: int,
    log: Callable[[str], None],
    precision: Callable[[], AbstractContextManager] = nullcontext,
) -> EncodedSplit:
    """`split` with `ref_<side>` on every item, from the cache, computed first if missing or stale.

    `reference_model()` is a context manager giving the model that computes the reference (it is
    only entered when the cache must be computed, and frees that model on exit). The pre-pass runs
    the items through the method's own collator (`collate_for(model)`: laid out for that model)
    and `sides_logps` under `precision()` (the training autocast), so cached values are what a
    live reference gives inside the steps.
    """
    parts = {name: items for name, items in (("train", split.train), ("eval", split.eval)) if items}
    sequences = {f"{name}/{s}": sequences_of(items, s) for name, items in parts.items() for s in sides}
    key = refcache.cache_key(identity, sequences, settings)

    def compute() -> dict[str, Tensor]:
        with reference_model() as model, precision():
            collate = collate_for(model)
            return refcache.compute_in_shares(
                parts,
                lambda share: refcache.compute_item_logps(model, share, sides, collate, sides_logps,
                                                          batch_size=batch_size, length=length),
            )

    tensors = refcache.load_or_compute(cache_path, key, compute, log)
    for name, items in parts.items():
        for s in sides:  # the "_tokens" counts in the cache are not needed here
            items = with_reference(items, s, tensors[f"{name}/{s}"].tolist())
        parts[name] = items
    return dataclasses.replace(split, train=parts.get("train", []), eval=parts.get("eval", []))


def precision_autocast(precision: str, device: torch.device | str) -> AbstractContextManager:
    """The training precision outside the loop (the reference pre-pass): autocast to bf16 / fp16
    as `accelerate` does inside it for `train.precision`; nothing for fp32."""
    if precision == "fp32":
        return nullcontext()
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


@contextmanager
def prepass_reference(policy, *, adapters_off: bool, load_separate: Callable[[], Any] | None) -> Iterator:
    """The model of the pre-pass: the policy itself at its initial weights (with `adapters_off`, the
    LoRA base), unless `load_separate` loads another reference model, which is freed on exit."""
    if adapters_off:
        with policy.disable_adapter():
            yield policy
    elif load_separate is None:
        yield policy
    else:
        ref = load_separate()
        try:
            yield ref
        finally:
            del ref
            gc.collect()

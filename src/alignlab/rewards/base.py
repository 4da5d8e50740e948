"""What every reward gets and returns, and the checks that stop a run on an unusable reward.

A reward is any object with a `name` and `__call__(inputs) -> list[float] | Tensor`, one finite
score per completion. `checked_scores` turns its output into a (B,) float32 tensor or raises a
one-line `RewardError` naming the reward: an exception inside it, the wrong number of scores, a
value that is not a number, or a non-finite score.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from alignlab.data.prompts import PromptRecord
from alignlab.errors import AlignlabError, RewardError

Tensor = torch.Tensor


@dataclass(frozen=True)
class RewardInputs:
    """B completions to score: row i replies to prompts[i] (a prompt repeats for its n samples)."""

    prompts: Sequence[PromptRecord]
    completions: Sequence[str]  # decoded replies: special tokens and a matched stop string removed
    completion_ids: Sequence[Sequence[int]]  # the generated token ids (a final stop token included)

    def __post_init__(self) -> None:
        if not len(self.prompts) == len(self.completions) == len(self.completion_ids):
            raise ValueError(
                f"{len(self.prompts)} prompts, {len(self.completions)} completions and "
                f"{len(self.completion_ids)} token lists: one of each per row"
            )

    def __len__(self) -> int:
        return len(self.completions)

    @property
    def lengths(self) -> Tensor:
        """(B,) float32 generated tokens per completion."""
        return torch.tensor([len(ids) for ids in self.completion_ids], dtype=torch.float32)


class Reward(Protocol):
    """One reward component: a name (its metric is `reward/<name>`) and a score per completion."""

    name: str

    def __call__(self, inputs: RewardInputs) -> Sequence[float] | Tensor: ...


def checked_scores(name: str, compute: Callable[[], Any], n: int) -> Tensor:
    """(n,) float32 scores from `compute()`, or a `RewardError` naming reward `name`."""
    try:
        raw = compute()
    except AlignlabError:
        raise
    except Exception as err:  # a user's reward function may raise anything
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise RewardError(f"reward '{name}' raised {type(err).__name__}: {first}".rstrip(": ")) from None
    if torch.is_tensor(raw):
        values = raw.detach().float().cpu().reshape(-1) if raw.dim() <= 1 else None
        count = raw.numel() if raw.dim() <= 1 else f"a tensor of shape {tuple(raw.shape)}"
    elif isinstance(raw, Sequence) and not isinstance(raw, str | bytes):
        bad = [i for i, v in enumerate(raw) if isinstance(v, bool) or not isinstance(v, int | float)]
        if bad:
            first = raw[bad[0]]
            raise RewardError(f"reward '{name}' returned {type(first).__name__} {first!r} at position "
                              f"{bad[0]}; it must return one float per completion")
        values, count = torch.tensor([float(v) for v in raw], dtype=torch.float32), len(raw)
    else:
        raise RewardError(f"reward '{name}' returned {type(raw).__name__}; it must return a list of "
                          f"{n} floats, one per completion")
    if values is None or values.numel() != n:
        raise RewardError(f"reward '{name}' returned {count} scores for {n} completions; it must return "
                          "one float per completion")
    bad_rows = (~torch.isfinite(values)).nonzero().flatten().tolist()
    if bad_rows:
        raise RewardError(f"reward '{name}' returned non-finite scores ({values[bad_rows[0]].item()}) for "
                          f"completions {bad_rows[:5]}; it must return finite floats")
    return values

"""Many rewards into the one the RL objective uses: a weighted sum, a length penalty, running
normalisation and clipping.

    r = clip((Σ_c w_c·r_c − λ_len·|y| − μ) / σ, −clip, clip)

with |y| the generated tokens, and μ, σ the running mean and std of every reward so far when
`normalize` is on (their state travels in the checkpoint, so a resumed run normalises exactly as
an uninterrupted one). A component with weight 0 is computed and logged but not optimised (the
lab's gold utility beside a proxy reward model).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from alignlab.rewards.base import Reward, RewardInputs, checked_scores

Tensor = torch.Tensor


class RunningMoments:
    """Count, mean and variance of every value seen, merged batch by batch (Chan et al. 1979).

    Python floats (float64) hold the state, so it survives a checkpoint bit for bit.
    """

    def __init__(self) -> None:
        self.count, self.mean, self.m2 = 0, 0.0, 0.0

    def update(self, values: Tensor) -> None:
        n = int(values.numel())
        if n == 0:
            return
        v = values.double()
        b_mean, b_m2 = float(v.mean()), float(((v - v.mean()) ** 2).sum())
        total = self.count + n
        delta = b_mean - self.mean
        self.mean += delta * n / total
        self.m2 += b_m2 + delta**2 * self.count * n / total
        self.count = total

    @property
    def std(self) -> float:
        """Population std of everything seen (0 before two values)."""
        return math.sqrt(self.m2 / self.count) if self.count > 1 else 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "mean": self.mean, "m2": self.m2}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.count, self.mean, self.m2 = int(state["count"]), float(state["mean"]), float(state["m2"])


@dataclass
class RewardScores:
    """The rewards of one batch of completions."""

    total: Tensor  # (B,) the reward the objective uses (after length penalty, normalisation, clip)
    raw: Tensor  # (B,) the weighted sum minus the length penalty, before normalisation
    components: dict[str, Tensor]  # name -> (B,) each component's own score


class RewardSet:
    """Weighted reward components plus the shaping above; `state_dict` for exact resume."""

    def __init__(self, components: Sequence[tuple[Reward, float]], *, length_penalty: float = 0.0,
                 normalize: bool = False, clip: float | None = None) -> None:
        names = [c.name for c, _ in components]
        if not components:
            raise ValueError("a reward set needs at least one reward")
        if len(set(names)) != len(names):
            raise ValueError(f"reward names must differ, got {names}; give each a `name`")
        self.components = list(components)
        self.length_penalty, self.normalize, self.clip = length_penalty, normalize, clip
        self.moments = RunningMoments()

    def components_of(self, inputs: RewardInputs) -> dict[str, Tensor]:
        """Each component's (B,) scores, checked (see `checked_scores`)."""
        return {reward.name: checked_scores(reward.name, lambda r=reward: r(inputs), len(inputs))
                for reward, _ in self.components}

    def __call__(self, inputs: RewardInputs, *, update: bool = True) -> RewardScores:
        """Score a batch; `update=False` leaves the running statistics alone (held-out evaluation)."""
        parts = self.components_of(inputs)
        raw = sum(w * parts[r.name] for r, w in self.components) - self.length_penalty * inputs.lengths
        total = raw
        if self.normalize:
            if update:
                self.moments.update(raw)
            std = self.moments.std
            total = (raw - self.moments.mean) / (std if std > 1e-8 else 1.0)
        if self.clip is not None:
            total = total.clamp(-self.clip, self.clip)
        return RewardScores(total.float(), raw.float(), parts)

    def state_dict(self) -> dict[str, Any]:
        return {"moments": self.moments.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.moments.load_state_dict(state["moments"])

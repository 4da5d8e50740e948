"""The `rewards` and `reward` config sections as a `RewardSet`."""

from __future__ import annotations

from collections.abc import Sequence

from alignlab.config import ModelConfig, RewardComponentConfig
from alignlab.config.rl import RewardShapingConfig
from alignlab.errors import ConfigError
from alignlab.rewards.base import Reward
from alignlab.rewards.combine import RewardSet


def build_reward(component: RewardComponentConfig, model: ModelConfig, rm_name: str = "rm") -> Reward:
    """One reward component; reward models load with the settings of the `model` section (device,
    dtype) and are named `rm_name` unless the component has a name."""
    if component.model:
        from alignlab.rewards.models import ModelReward

        return ModelReward(component.model, model, name=component.name or rm_name,
                           aggregate=component.aggregate, std_coef=component.std_coef,
                           batch_size=component.batch_size, max_length=component.max_length)
    if component.function is not None:
        from alignlab.rewards.functions import FunctionReward

        return FunctionReward(component.function, component.name)
    from alignlab.rewards.gold import GoldReward

    return GoldReward(component.name or "gold")


def build_reward_set(components: Sequence[RewardComponentConfig], shaping: RewardShapingConfig,
                     model: ModelConfig) -> RewardSet:
    """Every reward component with its weight, and the shaping (length penalty, normalisation, clip)."""
    models = [c for c in components if c.model]
    rm_names = {id(c): "rm" if k == 0 else f"rm{k + 1}" for k, c in enumerate(models)}
    rewards = [(build_reward(c, model, rm_names.get(id(c), "rm")), c.weight) for c in components]
    names = [r.name for r, _ in rewards]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise ConfigError(f"config key 'rewards': two rewards are named {', '.join(twice)}; give each a "
                          "`name`")
    return RewardSet(rewards, length_penalty=shaping.length_penalty, normalize=shaping.normalize,
                     clip=shaping.clip)

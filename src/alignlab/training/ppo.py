"""PPO with a KL penalty in the reward, a value model and GAE (Schulman et al. 2017; Ziegler et al.
2019; InstructGPT, Ouyang et al. 2022).

Supports: reward models and ensembles, rule rewards and the lab's gold judge, summed by weight;
a separate critic (a one-label token-classification model) initialised from the policy, the
reward model, or a saved critic, trained in the same loop with its own learning-rate multiplier;
GAE(γ, λ) with the episode ending at each reply's last token; advantage whitening; the clipped
surrogate and the clipped value loss over several epochs of minibatches per rollout batch; an
entropy bonus; early stopping on approximate KL; a fixed or adaptive (target-KL) coefficient;
LoRA (the reference is the base with adapters off). The dataflow and loop are shared with GRPO and
RLOO (`training.rl_run`). Not supported: a value head on the policy's own backbone (the critic is
always a separate model), a LoRA critic, FSDP / ZeRO-3.
"""

from __future__ import annotations

from typing import Any

from alignlab.config import PPOConfig
from alignlab.errors import ConfigError
from alignlab.stage_io import StageContext
from alignlab.training.rl_run import Critic, run_online_rl


def build_critic(config: PPOConfig, tokenizer=None):
    """The critic `config.value.init` names: the policy, the first reward model, or a directory."""
    from alignlab.modeling.loading import load_options, load_tokenizer
    from alignlab.modeling.value_model import (
        critic_from_policy,
        critic_from_reward_model,
        is_critic_dir,
        load_critic,
    )

    init, load = config.value.init, load_options(config.model)
    if init == "policy":
        return critic_from_policy(config.model.path, **load)
    if init == "reward_model":
        paths = [p for c in config.rewards if c.model for p in c.model]
        if not paths:
            raise ConfigError("config key 'value.init': reward_model, but no reward in `rewards` is a model")
        if tokenizer is not None:
            rm_vocab = load_tokenizer(paths[0], allow_hub=config.model.allow_hub).get_vocab()
            if rm_vocab != tokenizer.get_vocab():
                raise ConfigError(
                    f"config key 'value.init': the reward model {paths[0]} has another tokenizer than the "
                    "policy, and the critic reads the policy's tokens; use value.init=policy"
                )
        return critic_from_reward_model(paths[0], **load)
    return load_critic(init, **load) if is_critic_dir(init) else critic_from_policy(init, **load)


def run_ppo(config: PPOConfig, ctx: StageContext) -> dict[str, Any]:
    """PPO on `config.prompts`; the policy into the stage directory, the critic into value_model/."""
    from alignlab.modeling.loading import load_model_tokenizer

    tokenizer, value = load_model_tokenizer(config.model), config.value
    critic = Critic(lambda: build_critic(config, tokenizer), value.lr_multiplier, value.clip, value.loss_coef)
    return run_online_rl(config, ctx, critic=critic)

"""Online RL stages: PPO (a critic and GAE), GRPO and RLOO (groups of samples per prompt).

The three share one config shape (`OnlineRLConfig`) and differ in their advantage estimator's
default and, for PPO, the value model. Where a paper fixes a choice the estimator's registry entry
says it (`alignlab.losses.advantages.AdvantageSpec`: KL in the reward or the loss, the loss
aggregation), and a null key here means "that default".
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from alignlab.config.core import Registered, Section
from alignlab.config.reward import Aggregate
from alignlab.config.sections import LoRAConfig, ModelConfig, OptimConfig, TrainedStageConfig

ADVANTAGE_NAMES = Registered("alignlab.losses.advantages:advantage_names", "advantage estimator")
KL_ESTIMATOR_NAMES = Registered("alignlab.losses.kl:kl_estimator_names", "KL estimator")
LOSS_AGGREGATION_NAMES = Registered("alignlab.losses.aggregation:loss_aggregation_names", "loss aggregation")
GROUP_SAMPLES = 4  # replies per prompt when a group estimator leaves samples_per_prompt unset


class PromptsConfig(Section):
    path: str = Field(
        description="Prompt file (JSONL, JSON, parquet, or a dataset directory): records with `prompt` "
        "(text or messages) or `messages` (up to the last user turn), or hh-rlhf / UltraFeedback pairs; "
        "their other fields reach rule rewards.",
        json_schema_extra={"input": "file"},
    )
    split: str | None = Field(default=None, description="Split to read from a dataset directory.")
    limit: int | None = Field(default=None, gt=0, description="Use at most this many prompts.")
    skip_invalid: bool = Field(default=False, description="Skip malformed records (and report the count).")
    system_prompt: str | None = Field(
        default=None, description="System prompt added to prompts that have none."
    )
    max_length: int = Field(
        default=512, gt=0,
        description="Prompts longer than this many tokens (templated) are left out and counted.",
    )


class RewardComponentConfig(Section):
    """One reward: a reward model (or ensemble), a rule function, or the lab's gold judge."""

    name: str | None = Field(
        default=None,
        description="Name in the logs (reward/<name>); default: rm, the function's name, or gold.",
    )
    model: list[str] | None = Field(
        default=None,
        description="Reward model directories (alignlab rm, or any sequence-classification model), pooled "
        "into one ensemble; each scores with its own tokenizer and chat template.",
        json_schema_extra={"input": "model"},
    )
    function: str | None = Field(
        default=None, description="A rule reward, path/to/file.py:function or module:function, called as "
        "fn(prompts, completions, **fields) -> list[float].",
    )
    gold: bool = Field(
        default=False, description="The lab's gold judge (prompts must carry the lab's gold fields)."
    )
    weight: float = Field(
        default=1.0, description="Weight in the summed reward; 0 = computed and logged only."
    )
    aggregate: Aggregate | None = Field(
        default=None,
        description="How ensemble members combine; null = the reward model's own (mean for several).",
    )
    std_coef: float | None = Field(default=None, ge=0, description="λ of mean_minus_std; null = the model's.")
    batch_size: int = Field(default=16, gt=0, description="Sequences per reward-model forward pass.")
    max_length: int = Field(
        default=1024, gt=0, description="Reward-model input tokens (the prompt is cut first)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> RewardComponentConfig:
        kinds = [k for k, on in (("model", bool(self.model)), ("function", self.function is not None),
                                 ("gold", self.gold)) if on]
        if len(kinds) != 1:
            raise ValueError(f"a reward is exactly one of model, function or gold; got {kinds or 'none'}")
        return self


class RewardShapingConfig(Section):
    length_penalty: float = Field(
        default=0.0, ge=0, description="Subtracted from the reward per generated token."
    )
    normalize: bool = Field(
        default=False,
        description="Normalise the summed reward by its running mean and std (kept in checkpoints).",
    )
    clip: float | None = Field(default=None, gt=0, description="Clip the (normalised) reward to ±clip.")


class RolloutConfig(Section):
    prompts_per_step: int = Field(
        default=8, gt=0,
        description="Prompts per rollout batch (per process); each gets samples_per_prompt replies.",
    )
    samples_per_prompt: int | None = Field(
        default=None, gt=0,
        description=f"Replies per prompt; null = {GROUP_SAMPLES} for group estimators (grpo, dr_grpo, rloo), "
        "else 1.",
    )
    max_new_tokens: int = Field(default=64, gt=0, description="Tokens generated per reply at most.")
    temperature: float = Field(
        default=1.0, gt=0, description="Sampling temperature; log-probs and KL use the same tempered logits."
    )
    top_p: float = Field(
        default=1.0, gt=0, le=1, description="Nucleus sampling; 1 = off (the KL estimates assume it off)."
    )
    top_k: int | None = Field(default=None, gt=0, description="Top-k sampling; null = off.")
    stop: list[str] = Field(
        default_factory=list, description="Stop strings (eos and end-of-turn always stop)."
    )
    max_batch_rows: int = Field(default=64, gt=0, description="Rows (prompts x samples) generated together.")


class UpdateConfig(Section):
    epochs: int = Field(default=1, gt=0, description="Passes over each rollout batch (PPO epochs).")
    minibatches: int = Field(
        default=1, gt=0, description="Optimizer steps per pass: each rollout batch is cut into this many "
        "minibatches, each in micro-batches of train.batch_size rows.",
    )
    clip_eps: float = Field(default=0.2, gt=0, description="PPO clip range ε of the probability ratio.")
    clip_eps_high: float | None = Field(
        default=None, gt=0, description="Upper clip range (DAPO's clip-higher); null = clip_eps."
    )
    dual_clip: float | None = Field(
        default=None, gt=1, description="Dual clip c > 1 (Ye et al. 2020); null = off."
    )
    entropy_coef: float = Field(default=0.0, ge=0, description="Weight of the entropy bonus.")
    stop_kl: float | None = Field(
        default=None, gt=0, description="Skip a rollout batch's remaining updates once a step's approximate "
        "KL(π_old‖π) per token exceeds this; null = never.",
    )
    loss_agg: Annotated[str | None, LOSS_AGGREGATION_NAMES] = Field(
        default=None,
        description="Loss aggregation (per token or per sequence); null = the advantage estimator's.",
    )


class KLConfig(Section):
    coef: float = Field(
        default=0.05, ge=0, description="β, the KL coefficient (the starting one with target)."
    )
    target: float | None = Field(
        default=None, gt=0,
        description="Adaptive β steering the KL per reply (nats, summed over its tokens) to this target "
        "(Ziegler et al. 2019); null = a fixed β.",
    )
    horizon: int = Field(default=10_000, gt=0, description="Replies over which the adaptive β adjusts.")
    estimator: Annotated[str | None, KL_ESTIMATOR_NAMES] = Field(
        default=None, description="Per-token KL estimator; null = k1 in the reward, k3 in the loss.",
    )
    placement: Literal["reward", "loss"] | None = Field(
        default=None, description="KL penalty in the reward (PPO, RLOO) or in the loss (GRPO); null = the "
        "advantage estimator's paper.",
    )
    reference: str | None = Field(
        default=None, description="Reference model directory; null = the initial policy (for LoRA: the base "
        "with adapters off, no second copy).", json_schema_extra={"input": "model"},
    )


class RLLoggingConfig(Section):
    samples_every: int = Field(default=1, gt=0, description="Write samples of every N-th rollout batch.")
    samples_per_batch: int = Field(
        default=4, ge=0, description="Rows of a rollout batch written to samples.jsonl."
    )
    eval_prompts: str | None = Field(
        default=None,
        description="Held-out prompts replied to and scored by every reward at train.eval_every steps and "
        "at the end (eval/ columns: rewards, KL, length; every reply in eval_samples.jsonl).",
        json_schema_extra={"input": "file"},
    )
    eval_limit: int | None = Field(
        default=None, gt=0, description="Use at most this many held-out prompts, evenly spaced through the "
        "file (a file sorted by category keeps every category).",
    )
    snapshot_every: int | None = Field(
        default=None, gt=0,
        description="Save the policy every N steps into snapshots/step-N (model directories).",
    )


class ValueConfig(Section):
    """PPO's value model: a separate critic (a token-classification model with one label)."""

    init: str = Field(
        default="policy", description="Initialise the critic from: policy (its backbone, a zero head), "
        "reward_model (the first reward model's, as InstructGPT), or a model directory.",
    )
    lr_multiplier: float = Field(
        default=1.0, gt=0, description="The critic's learning rate as a multiple of optim.lr."
    )
    clip: float | None = Field(
        default=0.2, gt=0, description="Value clip range; null = the plain squared error."
    )
    loss_coef: float = Field(default=0.5, gt=0, description="Weight of the value loss in the summed loss.")


class OnlineRLConfig(TrainedStageConfig):
    """What PPO, GRPO and RLOO share: rollouts, rewards, KL, the clipped policy update."""

    uses_critic: ClassVar[bool] = False

    model: ModelConfig = Field(description="The policy to train (usually the SFT model).")
    prompts: PromptsConfig = Field(description="The prompts replies are sampled for.")
    rewards: list[RewardComponentConfig] = Field(min_length=1, description="The rewards, summed by weight.")
    reward: RewardShapingConfig = Field(
        default_factory=RewardShapingConfig, description="Length penalty, normalisation, clipping."
    )
    rollout: RolloutConfig = Field(default_factory=RolloutConfig, description="Sampling of rollout batches.")
    update: UpdateConfig = Field(default_factory=UpdateConfig, description="The clipped policy update.")
    kl: KLConfig = Field(default_factory=KLConfig, description="KL to the reference policy.")
    advantage: Annotated[str, ADVANTAGE_NAMES] = Field(default="grpo", description="Advantage estimator.")
    advantage_params: dict[str, float] = Field(
        default_factory=dict, description="The estimator's hyperparameters, e.g. {gamma: 1.0, lam: 0.95}."
    )
    whiten_advantages: bool | None = Field(
        default=None, description="Whiten advantages over each rollout batch; null = on with a critic (PPO)."
    )
    lora: LoRAConfig = Field(
        default_factory=LoRAConfig, description="LoRA adapters instead of full fine-tuning."
    )
    logging: RLLoggingConfig = Field(
        default_factory=RLLoggingConfig, description="Samples, evaluation, snapshots."
    )
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-6), description="Optimizer.")

    @field_validator("advantage_params")
    @classmethod
    def _known_params(cls, params: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        from alignlab.losses.advantages import get_advantage

        name = info.data.get("advantage")
        if name is None:
            return params
        spec = get_advantage(name)
        for key in sorted(params):
            if key not in spec.hyperparameters:
                valid = ", ".join(spec.hyperparameters) or "none"
                raise ValueError(f"advantage {name!r} has no hyperparameter {key}; valid: {valid}")
        return params

    @model_validator(mode="after")
    def _consistent(self) -> OnlineRLConfig:
        from alignlab.losses.advantages import get_advantage

        spec = get_advantage(self.advantage)
        if spec.needs_values != self.uses_critic:
            which = "needs a critic: use ppo" if spec.needs_values else "has no critic: use grpo or rloo"
            raise ValueError(f"advantage estimator {spec.name!r} {which}")
        if self.train.grad_accum != 1:
            raise ValueError("train.grad_accum is not used by online RL: set update.minibatches and "
                             "train.batch_size (rows per micro-batch) instead")
        n = self.samples_per_prompt
        if spec.needs_groups and n < 2:
            raise ValueError(f"advantage estimator {spec.name!r} compares replies to one prompt: "
                             "set rollout.samples_per_prompt >= 2")
        rows = self.rollout.prompts_per_step * n
        if rows % self.update.minibatches:
            raise ValueError(f"update.minibatches={self.update.minibatches} must divide the {rows} replies "
                             "of a rollout batch (rollout.prompts_per_step x samples_per_prompt)")
        return self

    @property
    def samples_per_prompt(self) -> int:
        """Replies per prompt, the default resolved (see `rollout.samples_per_prompt`)."""
        from alignlab.losses.advantages import get_advantage

        if self.rollout.samples_per_prompt is not None:
            return self.rollout.samples_per_prompt
        return GROUP_SAMPLES if get_advantage(self.advantage).needs_groups else 1


class PPOConfig(OnlineRLConfig):
    """PPO with a KL penalty in the reward, a value model and GAE (Ziegler et al. 2019; InstructGPT)."""

    uses_critic: ClassVar[bool] = True

    advantage: Annotated[str, ADVANTAGE_NAMES] = Field(default="gae", description="Advantage estimator.")
    value: ValueConfig = Field(default_factory=ValueConfig, description="The value model (critic).")


class GRPOConfig(OnlineRLConfig):
    """GRPO: group-normalised rewards of several replies per prompt, KL in the loss (Shao et al. 2024)."""

    advantage: Annotated[str, ADVANTAGE_NAMES] = Field(
        default="grpo", description="Advantage estimator (dr_grpo: Dr. GRPO, without the std division)."
    )


class RLOOConfig(OnlineRLConfig):
    """RLOO: REINFORCE with a leave-one-out baseline over the replies to a prompt (Ahmadian et al. 2024)."""

    advantage: Annotated[str, ADVANTAGE_NAMES] = Field(default="rloo", description="Advantage estimator.")


def resolved(config: OnlineRLConfig) -> dict[str, Any]:
    """The defaults a null key stands for, resolved from the estimator's registry entry."""
    from alignlab.losses.advantages import get_advantage

    spec = get_advantage(config.advantage)
    placement = config.kl.placement or spec.kl_placement
    return {
        "samples_per_prompt": config.samples_per_prompt,
        "kl_placement": placement,
        "kl_estimator": config.kl.estimator or ("k1" if placement == "reward" else "k3"),
        "loss_agg": config.update.loss_agg or spec.loss_agg,
        "whiten": config.whiten_advantages if config.whiten_advantages is not None else spec.needs_values,
    }

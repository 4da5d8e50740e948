"""Reward-model stages: training a Bradley-Terry reward model (or an ensemble), and scoring with one."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from alignlab.config.core import Section
from alignlab.config.sections import DataConfig, LoRAConfig, ModelConfig, OptimConfig, TrainedStageConfig

Aggregate = Literal["mean", "min", "mean_minus_std"]


class EnsembleConfig(Section):
    size: int = Field(default=1, gt=0, description="Ensemble members k (1 = a single reward model).")
    kind: Literal["heads", "models"] = Field(
        default="heads", description="k scalar heads on one backbone, or k separate models."
    )
    aggregate: Aggregate = Field(
        default="mean", description="How member rewards combine: mean, min, or mean − std_coef·std."
    )
    std_coef: float = Field(default=1.0, ge=0, description="λ of the mean_minus_std aggregate.")


class RewardLossConfig(Section):
    label_smoothing: float = Field(
        default=0.0, ge=0, lt=0.5, description="Assume each label is flipped with this probability."
    )
    margin_scale: float = Field(
        default=0.0, ge=0, description="Margin = margin_scale × the pair's graded `margin` (0 = no margin)."
    )
    center_coef: float = Field(
        default=0.01, ge=0, description="Weight of the (r_chosen + r_rejected)² reward-centering term."
    )
    use_confidence: bool = Field(
        default=True, description="Use a pair's labeller `confidence` as the target probability."
    )


class RewardDataConfig(DataConfig):
    """Preference pairs, with a small hold-out by default: the report is meant to be held-out accuracy."""

    eval_fraction: float = Field(
        default=0.05, ge=0, lt=1,
        description="Hold out this share of the training file when eval_path is unset (at least eval_min "
        "pairs); 0 reports on the training pairs.",
    )
    eval_min: int = Field(
        default=50, ge=0,
        description="Hold out at least this many pairs when eval_fraction > 0 (at most a fifth of the file).",
    )


class RewardModelConfig(TrainedStageConfig):
    """Reward model: Bradley-Terry on preference pairs, optionally an ensemble."""

    model: ModelConfig = Field(description="Causal LM backbone (or a reward model to keep training).")
    data: RewardDataConfig = Field(
        description="Preference pairs; eval_path, else eval_fraction / eval_min of the file, give the "
        "report's held-out set."
    )
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig,
                                     description="Ensemble of reward members.")
    loss: RewardLossConfig = Field(default_factory=RewardLossConfig, description="Bradley-Terry loss terms.")
    lora: LoRAConfig = Field(
        default_factory=LoRAConfig, description="LoRA adapters (merged into the saved model)."
    )
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-5), description="Optimizer.")
    report_bins: int = Field(default=10, gt=0, description="Bins of the calibration reliability table.")


class ScoreDataConfig(DataConfig):
    """The records to score; their length defaults to the one the reward model was trained at."""

    max_length: int | None = Field(
        default=None, gt=0,
        description="Truncate each scored sequence to this many tokens; null = the length the reward model "
        "was trained at (its reward_model.json), else 1024.",
    )


class ScoreConfig(Section):
    """Score (prompt, response) records with a reward model."""

    reward_model: ModelConfig = Field(
        description="Reward model directory written by the rm stage (or any HF one)."
    )
    data: ScoreDataConfig = Field(
        description="Conversations (last assistant turn scored), prompt + response (or completion) records, "
        "preference pairs, or KTO records."
    )
    batch_size: int = Field(default=16, gt=0, description="Sequences per forward pass.")
    padding_free: bool = Field(
        default=True, description="Lay each batch's sequences end to end without padding where the reward "
        "model allows it (as train.padding_free)."
    )
    prefix_sharing: bool = Field(
        default=True, description="Encode a pair's prompt once for both responses where the reward model "
        "allows it (as train.prefix_sharing)."
    )
    aggregate: Aggregate | None = Field(
        default=None, description="Ensemble aggregate; null = the one the reward model was trained with."
    )
    std_coef: float | None = Field(default=None, ge=0, description="λ of mean_minus_std; null = the model's.")

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


class RewardModelConfig(TrainedStageConfig):
    """Reward model: Bradley-Terry on preference pairs, optionally an ensemble."""

    model: ModelConfig = Field(description="Causal LM backbone (or a reward model to keep training).")
    data: DataConfig = Field(
        description="Preference pairs; eval_path / eval_fraction give the report's held-out set."
    )
    ensemble: EnsembleConfig = Field(default_factory=EnsembleConfig,
                                     description="Ensemble of reward members.")
    loss: RewardLossConfig = Field(default_factory=RewardLossConfig, description="Bradley-Terry loss terms.")
    lora: LoRAConfig = Field(
        default_factory=LoRAConfig, description="LoRA adapters (merged into the saved model)."
    )
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-5), description="Optimizer.")
    report_bins: int = Field(default=10, gt=0, description="Bins of the calibration reliability table.")


class ScoreConfig(Section):
    """Score (prompt, response) records with a reward model."""

    reward_model: ModelConfig = Field(
        description="Reward model directory written by the rm stage (or any HF one)."
    )
    data: DataConfig = Field(
        description="Conversations (last assistant turn scored), preference pairs, or KTO records."
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

"""The DPO family: align a policy directly on preferences with a registered loss."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, ValidationInfo, field_validator

from alignlab.config.core import Registered, Section
from alignlab.config.sections import DataConfig, LoRAConfig, ModelConfig, OptimConfig, TrainedStageConfig

# Read only when a value is checked or described: the loss registry imports torch.
LOSS_NAMES = Registered("alignlab.losses.registry:loss_names", "preference loss")


class ReferenceConfig(Section):
    path: str | None = Field(
        default=None,
        description="Reference model directory; null = the initial policy (for LoRA: the base with "
        "adapters off).",
        json_schema_extra={"input": "model"},
    )
    cache: bool = Field(
        default=True,
        description="Compute reference log-probs once before training and cache them in the stage dir; "
        "false keeps a live reference model in memory.",
    )
    batch_size: int = Field(
        default=8, gt=0, description="Sequences per forward pass of the reference pre-pass."
    )
    log_kl: bool = Field(
        default=False,
        description="Also compute reference log-probs for reference-free losses, to log the KL estimate.",
    )


class DPOConfig(TrainedStageConfig):
    """The DPO family: align a policy directly on preferences with a registered loss."""

    model: ModelConfig = Field(description="The policy to align (usually the SFT model).")
    data: DataConfig = Field(description="Preference pairs (or KTO records for unpaired losses).")
    loss: Annotated[str, LOSS_NAMES] = Field(
        default="dpo", description="Preference loss (`alignlab losses` shows what each one takes)."
    )
    loss_params: dict[str, float] = Field(
        default_factory=dict,
        description="The loss's hyperparameters, e.g. {beta: 0.1}, each in the range the loss declares "
        "(`alignlab losses`); unset ones keep their defaults.",
    )
    reference: ReferenceConfig = Field(
        default_factory=ReferenceConfig, description="Reference model and its cache."
    )
    lora: LoRAConfig = Field(
        default_factory=LoRAConfig, description="LoRA adapters instead of full fine-tuning."
    )
    optim: OptimConfig = Field(default_factory=lambda: OptimConfig(lr=1e-6), description="Optimizer.")

    @field_validator("loss_params")
    @classmethod
    def _known_params(cls, params: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        from alignlab.losses.registry import get_loss

        name = info.data.get("loss")
        if name is None:  # the loss name itself failed validation and is reported already
            return params
        get_loss(name).check_params(params)  # known names, each value in the range the loss declares
        return params

"""Validated configs: one pydantic model per concern, YAML loading, dotted overrides.

`core` holds what every config shares (the `Section` base, loading, overrides, error messages,
registry-backed names), `sections` the per-concern sections and the trained-stage base, and one
module per stage family holds its stage configs (`lm`: pretrain, sft; `reward`: rm, score;
`preference`: the DPO family; `rl`: ppo, grpo, rloo). Everything public is importable from `alignlab.config`.
"""

from alignlab.config.core import (
    Registered,
    Section,
    apply_overrides,
    describe_default,
    describe_field,
    describe_key,
    describe_schema,
    format_validation_error,
    load_config,
    load_yaml,
    parse_override,
    section_type,
    set_dotted,
    validate_config,
)
from alignlab.config.lm import InitConfig, PretrainConfig, SFTConfig, TextDataConfig
from alignlab.config.preference import DPOConfig, ReferenceConfig
from alignlab.config.reward import (
    EnsembleConfig,
    RewardDataConfig,
    RewardLossConfig,
    RewardModelConfig,
    ScoreConfig,
    ScoreDataConfig,
)
from alignlab.config.rl import (
    GRPOConfig,
    KLConfig,
    OnlineRLConfig,
    PPOConfig,
    RewardComponentConfig,
    RLOOConfig,
    RolloutConfig,
    UpdateConfig,
    ValueConfig,
)
from alignlab.config.sections import (
    DataConfig,
    LoRAConfig,
    ModelConfig,
    OptimConfig,
    ScheduleConfig,
    TrainConfig,
    TrainedStageConfig,
)

__all__ = [
    "DPOConfig",
    "GRPOConfig",
    "KLConfig",
    "OnlineRLConfig",
    "PPOConfig",
    "RLOOConfig",
    "RewardComponentConfig",
    "RolloutConfig",
    "UpdateConfig",
    "ValueConfig",
    "DataConfig",
    "EnsembleConfig",
    "InitConfig",
    "LoRAConfig",
    "ModelConfig",
    "OptimConfig",
    "PretrainConfig",
    "ReferenceConfig",
    "Registered",
    "RewardDataConfig",
    "RewardLossConfig",
    "RewardModelConfig",
    "SFTConfig",
    "ScheduleConfig",
    "ScoreConfig",
    "ScoreDataConfig",
    "Section",
    "TextDataConfig",
    "TrainConfig",
    "TrainedStageConfig",
    "apply_overrides",
    "describe_default",
    "describe_field",
    "describe_key",
    "describe_schema",
    "format_validation_error",
    "load_config",
    "load_yaml",
    "parse_override",
    "section_type",
    "set_dotted",
    "validate_config",
]

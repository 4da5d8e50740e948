"""The registry of stage kinds a recipe can use: plain data, read by the runner, CLI and docs.

Each kind names its config model and its runner as "module:function", imported only when the stage
runs, so validating a recipe never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from alignlab.config import DPOConfig, RewardModelConfig, ScoreConfig, SFTConfig
from alignlab.errors import ConfigError
from alignlab.stage_io import StageContext


@dataclass(frozen=True)
class StageKind:
    name: str
    config: type[BaseModel]
    runner: str  # "module:function" taking (config, StageContext) and returning a summary dict
    help: str


STAGE_KINDS: dict[str, StageKind] = {
    k.name: k
    for k in [
        StageKind("sft", SFTConfig, "alignlab.training.sft:run_sft", "Instruction tuning on conversations."),
        StageKind("rm", RewardModelConfig, "alignlab.training.reward:run_reward_model",
                  "Reward model (Bradley-Terry, optional ensemble) on preference pairs, with a report."),
        StageKind("score", ScoreConfig, "alignlab.training.score:run_score",
                  "Score (prompt, response) records with a reward model into scores.jsonl."),
        StageKind("dpo", DPOConfig, "alignlab.training.dpo:run_dpo",
                  "Align a policy on preferences with a DPO-family loss (dpo, ipo, kto, orpo, ...)."),
    ]
}


def get_stage_kind(name: str) -> StageKind:
    try:
        return STAGE_KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown stage kind '{name}'; valid kinds: {', '.join(sorted(STAGE_KINDS))}") from None


def run_stage(kind: StageKind, config: BaseModel, ctx: StageContext) -> dict[str, Any]:
    module, func = kind.runner.split(":")
    return getattr(importlib.import_module(module), func)(config, ctx) or {}

"""The registry of stage kinds a recipe can use: plain data, read by the runner, CLI and docs.

Each kind names its config model and its runner as "module:function", imported only when the stage
runs, so validating a recipe never imports torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from alignlab.config import DPOConfig, PretrainConfig, RewardModelConfig, ScoreConfig, SFTConfig
from alignlab.distributed import run_on_main
from alignlab.errors import ConfigError
from alignlab.lab.config import LabEvalConfig, LabPairsConfig, LabWorldConfig
from alignlab.stage_io import StageContext


@dataclass(frozen=True)
class StageKind:
    name: str
    config: type[BaseModel]
    runner: str  # "module:function" taking (config, StageContext) and returning a summary dict
    help: str
    # Under a multi-process launch: True runs the stage on every process (it trains collectively
    # and writes its files from the main one); False runs it on the main process while the others wait.
    all_processes: bool = False


STAGE_KINDS: dict[str, StageKind] = {
    k.name: k
    for k in [
        StageKind("pretrain", PretrainConfig, "alignlab.training.pretrain:run_pretrain",
                  "Causal LM on raw text: a new tokenizer + model from scratch, or continued pretraining.", all_processes=True),
        StageKind("sft", SFTConfig, "alignlab.training.sft:run_sft", "Instruction tuning on conversations.", all_processes=True),
        StageKind("rm", RewardModelConfig, "alignlab.training.reward:run_reward_model",
                  "Reward model (Bradley-Terry, optional ensemble) on preference pairs, with a report.", all_processes=True),
        StageKind("score", ScoreConfig, "alignlab.scoring:run_score",
                  "Score (prompt, response) records with a reward model into scores.jsonl."),
        StageKind("dpo", DPOConfig, "alignlab.training.dpo:run_dpo",
                  "Align a policy on preferences with a DPO-family loss (dpo, ipo, kto, orpo, ...).", all_processes=True),
        StageKind("lab_world", LabWorldConfig, "alignlab.lab.stages:run_lab_world",
                  "Laboratory: build the synthetic world, its corpus, SFT demonstrations and eval prompts."),
        StageKind("lab_pairs", LabPairsConfig, "alignlab.lab.stages:run_lab_pairs",
                  "Laboratory: sample response pairs from a policy and label them with simulated labellers."),
        StageKind("lab_eval", LabEvalConfig, "alignlab.lab.stages:run_lab_eval",
                  "Laboratory: generate on held-out prompts of every family and score with the gold judges."),
    ]
}


def get_stage_kind(name: str) -> StageKind:
    try:
        return STAGE_KINDS[name]
    except KeyError:
        raise ConfigError(f"unknown stage kind '{name}'; valid kinds: {', '.join(sorted(STAGE_KINDS))}") from None


def quiet_libraries() -> None:
    """Our progress bar and log lines are the user's view; silence the libraries' own chatter
    (weight-loading bars, accelerate's note on tied weights at every checkpoint)."""
    import logging

    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    for name in ("accelerate.checkpointing", "accelerate.accelerator", "accelerate.utils.other"):
        logging.getLogger(name).setLevel(logging.ERROR)


def run_stage(kind: StageKind, config: BaseModel, ctx: StageContext) -> dict[str, Any]:
    """Run one stage; under a multi-process launch on every process or on the main one (see StageKind)."""
    quiet_libraries()
    module, func = kind.runner.split(":")
    runner = getattr(importlib.import_module(module), func)
    if kind.all_processes:
        return runner(config, ctx) or {}
    return run_on_main(lambda: runner(config, ctx), f"stage {ctx.name}") or {}

"""GRPO: several replies per prompt, each advantage its reward normalised within the prompt's group,
KL to the reference in the loss (Shao et al. 2024, DeepSeekMath); Dr. GRPO (Liu et al. 2025) with
`advantage: dr_grpo` (no std division, a constant length normaliser).

Supports: rule rewards, reward models and ensembles, the lab's gold judge; the k1 / k2 / k3 KL
estimators, in the loss (the paper) or in the reward; per-token or per-sequence loss aggregation;
several epochs and minibatches per rollout batch, clip-higher and dual clip; LoRA. No critic.
The dataflow and loop are shared with PPO and RLOO (`training.rl_run`).
"""

from __future__ import annotations

from typing import Any

from alignlab.config import GRPOConfig
from alignlab.stage_io import StageContext
from alignlab.training.rl_run import run_online_rl


def run_grpo(config: GRPOConfig, ctx: StageContext) -> dict[str, Any]:
    """GRPO on `config.prompts`; the policy (or adapter) into the stage directory."""
    return run_online_rl(config, ctx)

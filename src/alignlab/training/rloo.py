"""RLOO: REINFORCE with a leave-one-out baseline over the replies to each prompt, the KL penalty in
each reply's reward (Ahmadian et al. 2024; Kool et al. 2019).

Supports: rule rewards, reward models and ensembles, the lab's gold judge; a fixed or adaptive KL
coefficient; the clipped ratio of PPO (one epoch of one minibatch per rollout batch is plain
REINFORCE: the ratio is 1); per-sequence or per-token loss aggregation; LoRA. No critic. The
dataflow and loop are shared with PPO and GRPO (`training.rl_run`).
"""

from __future__ import annotations

from typing import Any

from alignlab.config import RLOOConfig
from alignlab.stage_io import StageContext
from alignlab.training.rl_run import run_online_rl


def run_rloo(config: RLOOConfig, ctx: StageContext) -> dict[str, Any]:
    """RLOO on `config.prompts`; the policy (or adapter) into the stage directory."""
    return run_online_rl(config, ctx)

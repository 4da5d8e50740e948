"""The over-optimisation experiment's stages: best-of-n sampling against a reward model, and the
curve of proxy reward and gold utility against KL from the runs and best-of-n results."""

from __future__ import annotations

from pydantic import Field, model_validator

from alignlab.config.core import Section
from alignlab.config.rl import RewardComponentConfig
from alignlab.config.sections import ModelConfig


class BestOfNConfig(Section):
    """Sample N replies per held-out prompt from a policy, score each with every reward, and estimate
    best-of-n by one reward for n = 1, 2, 4, … N; other policies sampled and scored beside it."""

    policy: ModelConfig = Field(description="The policy sampled from (usually SFT), also the reference of "
                                "every KL this stage reports.")
    prompts: str = Field(description="Held-out prompts (a prompt file, as online RL reads them).",
                         json_schema_extra={"input": "file"})
    limit: int | None = Field(
        default=None, gt=0, description="Use at most this many prompts, evenly spaced through the file (as "
        "logging.eval_limit of online RL, so both see the same prompts).",
    )
    rewards: list[RewardComponentConfig] = Field(
        min_length=1, description="Every reward scored (e.g. the reward model and the lab's gold judge).",
    )
    select: str = Field(default="rm", description="The reward (by its name) that picks the best reply.")
    n: int = Field(default=64, ge=1, description="Samples per prompt N; best-of-n for n = 1, 2, 4, … N.")
    policies: dict[str, ModelConfig] = Field(
        default_factory=dict,
        description="Other policies (e.g. DPO on the same pairs) sampled policy_samples times per prompt, "
        "scored by the same rewards, with their KL to `policy`.",
    )
    policy_samples: int = Field(default=4, ge=1, description="Replies per prompt from each of `policies`.")
    max_new_tokens: int = Field(default=48, gt=0, description="Tokens generated per reply at most.")
    temperature: float = Field(default=1.0, gt=0, description="Sampling temperature (the KL uses it too).")
    max_prompt_length: int = Field(default=512, gt=0, description="Longer prompts (tokens) are left out.")
    batch_rows: int = Field(default=256, gt=0, description="Rows (prompts x samples) generated together.")
    seed: int = Field(default=0, description="Seed of the sampling.")

    @model_validator(mode="after")
    def _names(self) -> BestOfNConfig:
        if "policy" in self.policies:
            raise ValueError("policies: 'policy' names the sampled policy itself; give the other one "
                             "another name")
        return self


class OveroptimisationConfig(Section):
    """Proxy reward and gold utility against KL from the reference: each online RL run's held-out
    evaluations and a best-of-n stage's estimates, as overoptimisation.json (the report's curve)."""

    runs: dict[str, str] = Field(
        default_factory=dict,
        description="Series name -> an online RL stage directory that evaluated held-out prompts "
        "(logging.eval_prompts; its eval_samples.jsonl).",
    )
    best_of_n: str | None = Field(
        default=None, description="A best_of_n stage directory (its series, the other policies as points, "
        "and its n = 1 as every run's starting point).", json_schema_extra={"input": "file"},
    )
    proxy: str = Field(default="rm", description="The reward (by name) that is the proxy (optimised).")
    gold: str = Field(default="gold", description="The reward (by name) that is the gold standard.")

    @model_validator(mode="after")
    def _something(self) -> OveroptimisationConfig:
        if not self.runs and self.best_of_n is None:
            raise ValueError("give online RL runs (runs) or a best_of_n stage, or both")
        return self

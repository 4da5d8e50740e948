"""Reward models from `alignlab rm` (or any Hugging Face sequence-classification model) as a reward.

Several directories, and the members of ensemble directories, are pooled into one ensemble whose
member rewards combine by `aggregate` (mean, min, mean − λ·std; `aggregate_ensemble`). A reward
model's tokenizer and chat template need not be the policy's: each completion is scored as text,
re-rendered with the reward model's own template (prompt + one assistant turn) and cut to
`max_length` tokens from the prompt's side, as the score stage and reward training encode pairs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from alignlab.config import ModelConfig
from alignlab.data.schema import assistant
from alignlab.data.templating import encode_prompt_response, fit_to_length
from alignlab.errors import AlignlabError, ModelLoadError
from alignlab.losses.reward import aggregate_ensemble
from alignlab.rewards.base import RewardInputs


class ModelReward:
    """The pooled ensemble of the reward models at `paths`, aggregated into one score per completion.

    `model` gives the loading settings (device, dtype, ...) every path is loaded with.
    `aggregate` None: the manifest's aggregate for one directory, "mean" for several.
    """

    def __init__(self, paths: Sequence[str], model: ModelConfig, *, name: str = "rm",
                 aggregate: str | None = None, std_coef: float | None = None, batch_size: int = 16,
                 max_length: int = 1024) -> None:
        from alignlab.modeling.loading import load_model_tokenizer, load_options
        from alignlab.modeling.reward_model import load_reward_model

        if not paths:
            raise ValueError("a reward-model reward needs at least one directory")
        self.name, self.batch_size, self.max_length = name, batch_size, max_length
        self.members = []  # (reward model, its tokenizer)
        manifest = None
        for path in paths:
            section = model.model_copy(update={"path": path, "revision": None})
            try:
                rm, manifest = load_reward_model(path, **load_options(section))
                tokenizer = load_model_tokenizer(section)
            except AlignlabError as err:
                raise ModelLoadError(f"reward '{name}': {err}") from None
            self.members.append((rm.eval().requires_grad_(False), tokenizer))
        self.aggregate = aggregate or (manifest.aggregate if len(paths) == 1 else "mean")
        self.std_coef = std_coef if std_coef is not None else (manifest.std_coef if len(paths) == 1 else 1.0)

    @property
    def num_members(self) -> int:
        return sum(rm.num_members for rm, _ in self.members)

    def member_scores(self, inputs: RewardInputs) -> torch.Tensor:
        """(K, B) reward of every pooled member for every completion."""
        from alignlab.modeling.reward_model import score_examples

        rows = []
        for rm, tokenizer in self.members:
            examples = [fit_to_length(encode_prompt_response(tokenizer, p.messages, [assistant(text)]),
                                      self.max_length)
                        for p, text in zip(inputs.prompts, inputs.completions, strict=True)]
            pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
            rows.append(score_examples(rm, examples, pad_token_id=pad, batch_size=self.batch_size))
        return torch.cat(rows)

    def __call__(self, inputs: RewardInputs) -> torch.Tensor:
        return aggregate_ensemble(self.member_scores(inputs), self.aggregate, std_coef=self.std_coef)

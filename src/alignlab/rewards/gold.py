"""The lab's gold judge as a reward: the exact utility of each completion (an oracle).

Each prompt record must carry the lab's `gold` object (the lab world's `rl_prompts.jsonl` and
`eval.jsonl` do). With weight 0 it is a metric only: the gold column of the over-optimisation
curve, beside the proxy reward the policy is trained on.
"""

from __future__ import annotations

from alignlab.errors import RewardError
from alignlab.lab.judges import gold_utility
from alignlab.lab.sample import gold_from_json
from alignlab.rewards.base import RewardInputs


class GoldReward:
    """`alignlab.lab.judges.gold_utility` of each completion against its prompt's gold fields."""

    def __init__(self, name: str = "gold") -> None:
        self.name = name

    def __call__(self, inputs: RewardInputs) -> list[float]:
        out = []
        for prompt, text in zip(inputs.prompts, inputs.completions, strict=True):
            raw = prompt.fields.get("gold")
            if not isinstance(raw, dict):
                raise RewardError(
                    f"reward '{self.name}': {prompt.where or 'a prompt'} has no `gold` object; the gold "
                    "reward needs the lab's prompt files (${world.rl_prompts}, ${world.eval})"
                )
            try:
                gold = gold_from_json(raw)
            except (KeyError, TypeError, ValueError) as err:
                raise RewardError(f"reward '{self.name}': {prompt.where}: malformed `gold` ({err})") from None
            out.append(gold_utility(gold, text))
        return out

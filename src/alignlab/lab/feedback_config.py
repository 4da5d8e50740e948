"""Configs of the laboratory's AI-feedback stages: data for a lab judge and a lab reviser, and the
figures that compare what RLAIF and CAI did, with intervals."""

from __future__ import annotations

from pydantic import Field

from alignlab.config.core import Section
from alignlab.config.feedback import BUILTIN_CONSTITUTIONS, CONSTITUTION_HELP

_WORLD = Field(description="Directory of a lab_world stage.", json_schema_extra={"input": "file"})


def _constitution(default: str) -> object:
    return Field(default=default, description=CONSTITUTION_HELP,
                 json_schema_extra={"input": "file", "names": BUILTIN_CONSTITUTIONS})


class LabJudgeDataConfig(Section):
    """SFT data that teaches a lab model to judge: pairs of responses to lab prompts, the one with the
    higher gold utility marked, rendered in the AI judge's comparison prompt (both orders)."""

    world: str = _WORLD
    constitution: str = _constitution("lab")
    prompts_per_family: int = Field(
        default=24, ge=0, description="Training prompts per family whose gold and flawed responses pair up."
    )
    pairs_per_prompt: int = Field(
        default=3, gt=0, description="At most this many pairs (of different gold utility) per such prompt."
    )
    gold_pairs: list[str] = Field(
        default_factory=list, json_schema_extra={"input": "file"},
        description="Preference files labelled by gold utility (lab_pairs gold_pairs) to render too.",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Preference files whose pairs (same prompt and responses, either "
        "order) are left out: the pairs the judge will label and be measured on.",
        json_schema_extra={"input": "file"},
    )
    max_pairs: int | None = Field(default=None, gt=0, description="Keep at most this many pairs (seeded).")
    seed: int = Field(default=0, description="Seed of the prompt draws, principles and kept pairs.")


class LabReviserDataConfig(Section):
    """SFT data that teaches a lab model to critique and revise as critique-and-revise asks it to, and
    the held-apart training prompts a `cai` stage revises."""

    world: str = _WORLD
    constitution: str = _constitution("lab")
    cai_share: float = Field(
        default=0.5, gt=0, lt=1, description="Share of each family's training prompts kept apart for the cai "
        "stage (the reviser never sees them)."
    )
    prompts_per_family: int | None = Field(
        default=None, gt=0, description="At most this many cai prompts per family; null = all kept apart."
    )
    reviser_prompts_per_family: int | None = Field(
        default=None, gt=0, description="At most this many reviser training prompts per family; null = all."
    )
    seed: int = Field(default=0, description="Seed of the split and the critique requests drawn.")


class LabCompareConfig(Section):
    """Figures with intervals: what each policy of a lab_eval stage gained or lost against a baseline on
    the same prompts, and what critique and revise did to the responses of cai stages."""

    world: str = _WORLD
    eval: str | None = Field(
        default=None, description="Directory of a lab_eval stage whose responses are compared.",
        json_schema_extra={"input": "file"},
    )
    baseline: str = Field(default="sft", description="The lab_eval model the others are compared with.")
    cai: dict[str, str] = Field(
        default_factory=dict, json_schema_extra={"input": "file"},
        description="Name -> a cai stage on lab prompts: gold utility of responses vs their revisions.",
    )
    examples: int = Field(default=3, ge=0, description="Critique-and-revise steps quoted per cai stage.")
    labels: dict[str, str] = Field(
        default_factory=dict, json_schema_extra={"input": "file"},
        description="Name -> preference file of labels (AI or simulated) scored against `gold` by family.",
    )
    gold: str | None = Field(
        default=None, json_schema_extra={"input": "file"},
        description="Gold-labelled pairs the `labels` are scored against (a lab_pairs gold_pairs file).",
    )

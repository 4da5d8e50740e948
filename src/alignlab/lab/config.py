"""Configs of the laboratory's stages: build the world, sample and label pairs, evaluate policies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from alignlab.config.core import Section
from alignlab.config.sections import ModelConfig
from alignlab.lab.corpus import CorpusConfig
from alignlab.lab.labellers import DEFAULT_NOISE
from alignlab.lab.tasks import FAMILIES, TaskConfig
from alignlab.lab.world import WorldConfig

SEEDED = ("world", "corpus", "tasks")


def _known_families(families: list[str] | None) -> list[str] | None:
    unknown = [f for f in families or () if f not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown families {unknown}; known: {', '.join(FAMILIES)}")
    return families


class LabWorldConfig(Section):
    """The synthetic world and the data drawn from it."""

    seed: int = Field(default=0, description="Seed of the world, the corpus and the task draws (each "
                      "section's own `seed` wins).")
    world: WorldConfig = Field(default_factory=WorldConfig, description="Sizes of the world.")
    corpus: CorpusConfig = Field(default_factory=CorpusConfig, description="The pretraining corpus.")
    tasks: TaskConfig = Field(default_factory=TaskConfig, description="SFT demonstrations and eval prompts.")

    @model_validator(mode="before")
    @classmethod
    def _seed_sections(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        seed = data.get("seed", 0)
        out = dict(data)
        for key in SEEDED:
            section = out.get(key)
            if section is None or isinstance(section, dict):
                out[key] = {"seed": seed, **(section or {})}
        return out


class LabEvalConfig(Section):
    """Generate on the held-out prompts of every family with each model and score with the gold judges."""

    world: str = Field(description="Directory of a lab_world stage.", json_schema_extra={"input": "file"})
    models: dict[str, ModelConfig] = Field(
        min_length=1, description="Name -> model (a directory, or a model section), e.g. {sft: ${sft}}."
    )
    max_new_tokens: int = Field(default=48, gt=0, description="Tokens generated per response.")
    temperature: float = Field(default=0.0, ge=0, description="Sampling temperature; 0 = greedy.")
    samples_per_prompt: int = Field(
        default=1, gt=0, description="Responses sampled per prompt (temperature > 0)."
    )
    seed: int = Field(default=0, description="Seed of the sampling.")
    batch_size: int = Field(default=32, gt=0, description="Prompts generated together.")
    limit_per_family: int | None = Field(
        default=None, gt=0, description="Use at most this many prompts per family."
    )
    families: list[str] | None = Field(
        default=None, min_length=1, description="Evaluate only these request families (default: all)."
    )

    @model_validator(mode="after")
    def _sampling_when_several(self) -> LabEvalConfig:
        _known_families(self.families)
        if self.temperature == 0 and self.samples_per_prompt > 1:
            raise ValueError("samples_per_prompt > 1 needs temperature > 0 (greedy responses are all alike)")
        return self


class LabellerSpec(Section):
    """One simulated labeller (alignlab.lab.labellers.LabellerConfig); biases are in utility units."""

    id: str = Field(description="Annotator id written into each pair.")
    noise: float = Field(
        default=DEFAULT_NOISE,
        gt=0,
        description="Std of the perceived-value noise (the default: pairs of labellers agree on about "
        "70 %, as real pools do).",
    )
    length_bias: float = Field(default=0.0,
                               description="Bonus per doubling of the word count (verbosity bias).")
    agreement_bias: float = Field(default=0.0, description="Bonus for adopting the user's wrong claim.")
    position_bias: float = Field(default=0.0, description="Bonus for the response shown first.")
    refusal_bias: float = Field(default=0.0, description="Bonus for refusing or abstaining.")


class LabPairsConfig(Section):
    """Sample response pairs from a policy on training prompts and label them with simulated labellers."""

    world: str = Field(description="Directory of a lab_world stage.", json_schema_extra={"input": "file"})
    policy: ModelConfig = Field(description="The model sampling the responses (a directory or a section).")
    prompts_per_family: int = Field(default=48, gt=0, description="Training prompts drawn per family.")
    samples_per_prompt: int = Field(default=4, ge=2, description="Responses sampled per prompt.")
    pairs_per_prompt: int = Field(default=2, gt=0, description="Pairs of distinct responses kept per prompt.")
    temperature: float = Field(default=1.0, gt=0, description="Sampling temperature.")
    max_new_tokens: int = Field(default=48, gt=0, description="Tokens generated per response.")
    labellers: list[LabellerSpec] = Field(
        default_factory=lambda: [LabellerSpec(id="careful"), LabellerSpec(id="verbose", length_bias=0.05)],
        min_length=1,
        description="The labeller pool; each pair is labelled by one labeller, in turn.",
    )
    seed: int = Field(default=0, description="Seed of prompt draws, sampling and display order.")
    families: list[str] | None = Field(
        default=None, min_length=1, description="Draw prompts from these request families only (default all)."
    )
    split: Literal["train", "eval"] = Field(
        default="train", description="Prompts about the world's train entities, or about its held-out eval "
        "entities (to test a reward model on comparisons no stage trained on)."
    )
    gold_check: bool = Field(
        default=False, description="Keep only the pairs whose labelled choice the gold utility agrees with "
        "(a fact-checked subset, as audits against gold items give); gold ties are kept."
    )

    @model_validator(mode="after")
    def _families(self) -> LabPairsConfig:
        _known_families(self.families)
        return self

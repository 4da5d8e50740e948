"""The laboratory's pipeline stages: build the world's data, and evaluate policies with the gold judges.

The base model itself comes from the generic `pretrain` stage (from scratch on the world's corpus)
and SFT from the generic `sft` stage, so the lab runs through exactly the code real models use.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from alignlab.config import Section
from alignlab.errors import ConfigError
from alignlab.io import atomic_write_json, atomic_write_jsonl
from alignlab.lab.labellers import DEFAULT_NOISE
from alignlab.stage_io import StageContext


class LabWorldConfig(Section):
    """The synthetic world and the data drawn from it; each mapping takes the fields of its dataclass."""

    seed: int = Field(default=0, description="Seed of the world, the corpus and the task draws.")
    world: dict[str, Any] = Field(default_factory=dict, description="alignlab.lab.world.WorldConfig fields.")
    corpus: dict[str, Any] = Field(default_factory=dict, description="alignlab.lab.corpus.CorpusConfig fields.")
    tasks: dict[str, Any] = Field(default_factory=dict, description="alignlab.lab.tasks.TaskConfig fields.")


class LabEvalConfig(Section):
    """Generate on the held-out prompts of every family with each model and score with the gold judges."""

    world: str = Field(description="Directory of a lab_world stage (its eval.jsonl).", json_schema_extra={"input": "file"})
    models: dict[str, str] = Field(min_length=1, description="Name -> model directory, e.g. {base: ${base}, sft: ${sft}}.")
    max_new_tokens: int = Field(default=48, gt=0, description="Tokens generated per response.")
    temperature: float = Field(default=0.0, ge=0, description="Sampling temperature; 0 = greedy.")
    samples_per_prompt: int = Field(default=1, gt=0, description="Responses sampled per prompt (temperature > 0).")
    seed: int = Field(default=0, description="Seed of the sampling.")
    batch_size: int = Field(default=32, gt=0, description="Prompts generated together.")
    limit_per_family: int | None = Field(default=None, gt=0, description="Use at most this many prompts per family.")

    @model_validator(mode="after")
    def _sampling_when_several(self) -> LabEvalConfig:
        if self.temperature == 0 and self.samples_per_prompt > 1:
            raise ValueError("samples_per_prompt > 1 needs temperature > 0 (greedy responses are all alike)")
        return self


def _dataclass(cls, fields: dict[str, Any], key: str):
    """Build a lab dataclass, turning unknown or bad fields into a ConfigError naming the key."""
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise ConfigError(f"config key '{key}.{unknown[0]}': unknown key; valid keys here: {', '.join(sorted(names))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config key '{key}': {err}") from None


def _first_per_family(samples: list, n: int) -> list:
    kept: dict[str, int] = {}
    out = []
    for s in samples:
        if kept.get(s.family, 0) < n:
            kept[s.family] = kept.get(s.family, 0) + 1
            out.append(s)
    return out


def run_lab_world(config: LabWorldConfig, ctx: StageContext) -> dict[str, float]:
    from alignlab.lab.build import write_lab_data
    from alignlab.lab.corpus import CorpusConfig
    from alignlab.lab.tasks import TaskConfig
    from alignlab.lab.world import WorldConfig

    seeded = {"seed": config.seed}
    files = write_lab_data(
        ctx.output_dir,
        _dataclass(WorldConfig, {**seeded, **config.world}, "world"),
        _dataclass(CorpusConfig, {**seeded, **config.corpus}, "corpus"),
        _dataclass(TaskConfig, {**seeded, **config.tasks}, "tasks"),
    )
    counts = json.loads(files.manifest.read_text())["counts"]
    ctx.log("lab world: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    return {k: float(v) for k, v in counts.items()}


def run_lab_eval(config: LabEvalConfig, ctx: StageContext) -> dict[str, Any]:
    """Scores every model on the held-out prompts. scores.json (and the summary's `table`) hold, per
    model and family, each figure as {value, low, high, n} (judges.summarise) and, from the second
    model on, `change`: the paired difference from the model before it (judges.compare)."""
    from alignlab.generation.hf import SamplingParams, generate
    from alignlab.lab.judges import compare, gold_utility, judge, summarise
    from alignlab.lab.tasks import read_eval_jsonl
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer

    samples = read_eval_jsonl(Path(config.world) / "eval.jsonl")
    if config.limit_per_family:
        samples = _first_per_family(samples, config.limit_per_family)
    scored = samples * config.samples_per_prompt
    table: dict[str, dict[str, dict[str, Any]]] = {}
    previous: tuple[str, list[str]] | None = None
    for name, path in config.models.items():
        tokenizer, model = load_tokenizer(path), load_causal_lm(path)
        responses: list[str] = []
        for k in range(config.samples_per_prompt):
            params = SamplingParams(config.max_new_tokens, config.temperature, batch_size=config.batch_size,
                                    seed=config.seed + k)
            responses += generate(model, tokenizer, [s.messages for s in samples], params)
        utilities = [gold_utility(s, r) for s, r in zip(scored, responses, strict=True)]
        atomic_write_jsonl(ctx.output_dir / f"responses-{name}.jsonl", [
            {"id": s.id, "family": s.family, "response": r, "utility": u, **judge(s, r).as_dict()}
            for s, r, u in zip(scored, responses, utilities, strict=True)
        ])  # fmt: skip
        table[name] = summarise(scored, responses)
        if previous is not None:
            for family, change in compare(scored, previous[1], responses).items():
                table[name][family]["change"] = {"vs": previous[0], **change}
        previous = (name, responses)
        u = table[name]["all"]["utility"]
        ctx.log(f"lab eval {name}: mean gold utility {u['value']:.3f} [{u['low']:.3f}, {u['high']:.3f}] (95 %) "
                f"over {u['n']} prompts, {len(responses)} responses")
    atomic_write_json(ctx.output_dir / "scores.json", table)
    return {**_flatten(table), "table": table}


def _flatten(table: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Numbers as `model/family/figure` (its value), `.../low` and `.../high` for the registry, which
    keeps numbers only; a figure's `n` is the family's."""
    if "value" in table:
        return {prefix: table["value"], f"{prefix}/low": table["low"], f"{prefix}/high": table["high"]}
    flat: dict[str, float] = {}
    for key, value in table.items():
        name = f"{prefix}/{key}" if prefix else key
        if isinstance(value, dict):
            flat.update(_flatten(value, name))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            flat[name] = float(value)
    return flat


class LabellerSpec(Section):
    """One simulated labeller (alignlab.lab.labellers.LabellerConfig); biases are in utility units."""

    id: str = Field(description="Annotator id written into each pair.")
    noise: float = Field(default=DEFAULT_NOISE, gt=0, description="Std of the perceived-value noise (the default: "
                         "pairs of labellers agree on about 70 %, as real pools do).")
    length_bias: float = Field(default=0.0, description="Bonus per doubling of the word count (verbosity bias).")
    agreement_bias: float = Field(default=0.0, description="Bonus for adopting the user's wrong claim.")
    position_bias: float = Field(default=0.0, description="Bonus for the response shown first.")
    refusal_bias: float = Field(default=0.0, description="Bonus for refusing or abstaining.")


class LabPairsConfig(Section):
    """Sample response pairs from a policy on training prompts and label them with simulated labellers."""

    world: str = Field(description="Directory of a lab_world stage.", json_schema_extra={"input": "file"})
    policy: str = Field(description="Model directory that samples the responses.", json_schema_extra={"input": "model"})
    prompts_per_family: int = Field(default=48, gt=0, description="Training prompts drawn per family.")
    samples_per_prompt: int = Field(default=4, ge=2, description="Responses sampled per prompt.")
    pairs_per_prompt: int = Field(default=2, gt=0, description="Pairs of distinct responses kept per prompt.")
    temperature: float = Field(default=1.0, gt=0, description="Sampling temperature.")
    max_new_tokens: int = Field(default=48, gt=0, description="Tokens generated per response.")
    labellers: list[LabellerSpec] = Field(
        default_factory=lambda: [LabellerSpec(id="careful"), LabellerSpec(id="verbose", length_bias=0.05)],
        min_length=1, description="The labeller pool; each pair is labelled by one labeller, in turn.",
    )
    seed: int = Field(default=0, description="Seed of prompt draws, sampling and display order.")


def run_lab_pairs(config: LabPairsConfig, ctx: StageContext) -> dict[str, float]:
    import random

    from alignlab.data.readers import write_records
    from alignlab.generation.hf import SamplingParams, generate
    from alignlab.lab.judges import gold_utility, word_count
    from alignlab.lab.labellers import Comparison, LabellerConfig, label
    from alignlab.lab.tasks import FAMILIES, draw
    from alignlab.lab.world import WorldConfig, build_world
    from alignlab.modeling.loading import load_causal_lm, load_tokenizer

    manifest = json.loads((Path(config.world) / "manifest.json").read_text())
    world = build_world(_dataclass(WorldConfig, manifest["world_config"], "world"))
    samples = [s for f in FAMILIES for s in draw(world, f, "train", config.prompts_per_family, config.seed + 1)]
    tokenizer, policy = load_tokenizer(config.policy), load_causal_lm(config.policy)
    responses = [
        generate(policy, tokenizer, [s.messages for s in samples],
                 SamplingParams(config.max_new_tokens, config.temperature, batch_size=64, seed=config.seed + k))
        for k in range(config.samples_per_prompt)
    ]  # fmt: skip
    rng = random.Random(config.seed)
    comparisons = []
    for i, s in enumerate(samples):
        distinct = list(dict.fromkeys(r[i] for r in responses if r[i].strip()))
        rng.shuffle(distinct)
        for a, b in list(zip(distinct[::2], distinct[1::2], strict=False))[: config.pairs_per_prompt]:
            comparisons.append(Comparison(s, a, b))
    pool = [LabellerConfig(**spec.model_dump(), seed=config.seed) for spec in config.labellers]
    pairs = [p for k, lab in enumerate(pool) for p in label(lab, comparisons[k :: len(pool)])]
    if not pairs:
        raise ConfigError("lab_pairs: the policy's samples were all identical; raise temperature or samples_per_prompt")
    write_records(ctx.output_dir / "pairs.jsonl", pairs)
    gold = [_gold_pair(c, gold_utility(c.sample, c.first), gold_utility(c.sample, c.second)) for c in comparisons]
    write_records(ctx.output_dir / "gold_pairs.jsonl", [p for p in gold if p is not None])
    agree = [p.metadata["gold_utility_chosen"] >= p.metadata["gold_utility_rejected"] for p in pairs if not p.tie]
    words = [(word_count(p.chosen[0].content), word_count(p.rejected[0].content)) for p in pairs if not p.tie]
    summary = {
        "prompts": float(len(samples)), "pairs": float(len(pairs)),
        "labeller_gold_agreement": sum(agree) / max(len(agree), 1),
        "chosen_words": sum(c for c, _ in words) / max(len(words), 1),
        "rejected_words": sum(r for _, r in words) / max(len(words), 1),
    }  # fmt: skip
    ctx.log(f"lab pairs: {len(pairs)} labelled pairs; labellers agree with gold on {summary['labeller_gold_agreement']:.0%}")
    return summary


def _gold_pair(c, u_first: float, u_second: float):
    """The comparison labelled by the gold utility (None for a gold tie)."""
    from alignlab.data.schema import PreferencePair, assistant

    if u_first == u_second:
        return None
    chosen, rejected = (c.first, c.second) if u_first > u_second else (c.second, c.first)
    return PreferencePair(prompt=list(c.sample.messages), chosen=[assistant(chosen)], rejected=[assistant(rejected)],
                          annotator="gold", metadata={"family": c.sample.family})  # fmt: skip

"""The laboratory's pipeline stages: build the world's data, and evaluate policies with the gold judges.

The base model itself comes from the generic `pretrain` stage (from scratch on the world's corpus)
and SFT from the generic `sft` stage, so the lab runs through exactly the code real models use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from alignlab.errors import ConfigError
from alignlab.io import atomic_write_json, atomic_write_jsonl
from alignlab.lab.config import LabEvalConfig, LabPairsConfig, LabWorldConfig
from alignlab.stage_io import StageContext


def world_file(world_dir: str, output: str) -> Path:
    """An artefact of a lab_world stage directory, by the name its stage kind declares."""
    from alignlab.stages import get_stage_kind

    return Path(world_dir) / get_stage_kind("lab_world").outputs[output].path


def _first_per_family(samples: list, n: int) -> list:
    kept: dict[str, int] = {}
    out = []
    for s in samples:
        if kept.get(s.family, 0) < n:
            kept[s.family] = kept.get(s.family, 0) + 1
            out.append(s)
    return out


def run_lab_world(config: LabWorldConfig, ctx: StageContext) -> dict[str, float]:
    from alignlab.lab.build import LabFiles, write_lab_data

    files = LabFiles(*(ctx.path(name) for name in ("world", "corpus", "sft", "eval", "manifest",
                                                   "rl_prompts")))
    write_lab_data(files, config.world, config.corpus, config.tasks)
    counts = json.loads(files.manifest.read_text())["counts"]
    ctx.log("lab world: " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
    return {k: float(v) for k, v in counts.items()}


def run_lab_eval(config: LabEvalConfig, ctx: StageContext) -> dict[str, Any]:
    """Scores every model on the held-out prompts. scores.json (and the summary's `table`) hold, per
    model and family, each figure as {value, low, high, n} (judges.summarise; with several samples
    per prompt also their diversity, lab.diversity) and, from the second model on, `change`: the
    paired difference from the model before it (judges.compare)."""
    from alignlab.generation.base import SamplingParams
    from alignlab.generation.hf import HFGenerator
    from alignlab.lab.diversity import diversity
    from alignlab.lab.judges import compare, gold_utility, judge, summarise
    from alignlab.lab.tasks import read_eval_jsonl
    from alignlab.modeling.loading import load_model, load_model_tokenizer

    samples = read_eval_jsonl(world_file(config.world, "eval"))
    if config.families:
        samples = [s for s in samples if s.family in config.families]
    if config.limit_per_family:
        samples = _first_per_family(samples, config.limit_per_family)
    scored = samples * config.samples_per_prompt
    table: dict[str, dict[str, dict[str, Any]]] = {}
    previous: tuple[str, list[str]] | None = None
    for name, model_config in config.models.items():
        tokenizer, model = load_model_tokenizer(model_config), load_model(model_config)
        generator = HFGenerator(model, tokenizer, max_batch_rows=config.batch_size)
        responses: list[str] = []
        for k in range(config.samples_per_prompt):
            params = SamplingParams(config.max_new_tokens, config.temperature, seed=config.seed + k)
            responses += [c[0].text for c in generator.generate([s.messages for s in samples], params)]
        utilities = [gold_utility(s, r) for s, r in zip(scored, responses, strict=True)]
        atomic_write_jsonl(ctx.output_dir / f"responses-{name}.jsonl", [
            {"id": s.id, "family": s.family, "response": r, "utility": u, **judge(s, r).as_dict()}
            for s, r, u in zip(scored, responses, utilities, strict=True)
        ])
        table[name] = summarise(scored, responses)
        for family, measures in diversity(scored, responses).items():
            table[name][family].update(measures)
        if previous is not None:
            for family, change in compare(scored, previous[1], responses).items():
                table[name][family]["change"] = {"vs": previous[0], **change}
        previous = (name, responses)
        u = table[name]["all"]["utility"]
        ctx.log(f"lab eval {name}: mean gold utility {u['value']:.3f} [{u['low']:.3f}, {u['high']:.3f}] "
                f"(95 %) over {u['n']} prompts, {len(responses)} responses")
    atomic_write_json(ctx.path("scores"), table)
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


def run_lab_pairs(config: LabPairsConfig, ctx: StageContext) -> dict[str, float]:
    import random

    from alignlab.data.readers import write_records
    from alignlab.generation.base import SamplingParams
    from alignlab.generation.hf import HFGenerator
    from alignlab.lab.judges import gold_utility, word_count
    from alignlab.lab.labellers import Comparison, LabellerConfig, label
    from alignlab.lab.tasks import FAMILIES, draw
    from alignlab.lab.world import WorldConfig, build_world
    from alignlab.modeling.loading import load_model, load_model_tokenizer

    manifest = json.loads(world_file(config.world, "manifest").read_text())
    world = build_world(WorldConfig.model_validate(manifest["world_config"]))
    samples = [s for f in config.families or FAMILIES
               for s in draw(world, f, config.split, config.prompts_per_family, config.seed + 1)]
    tokenizer, policy = load_model_tokenizer(config.policy), load_model(config.policy)
    generator = HFGenerator(policy, tokenizer, max_batch_rows=64)
    prompts = [s.messages for s in samples]
    responses = [
        [c[0].text for c in generator.generate(
            prompts, SamplingParams(config.max_new_tokens, config.temperature, seed=config.seed + k))]
        for k in range(config.samples_per_prompt)
    ]
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
        raise ConfigError(
            "lab_pairs: the policy's samples were all identical; raise temperature or samples_per_prompt"
        )
    gold = [_gold_pair(c, gold_utility(c.sample, c.first), gold_utility(c.sample,
                                                                        c.second)) for c in comparisons]
    write_records(ctx.path("gold_pairs"), [p for p in gold if p is not None])
    agree = [ok for p, ok in zip(pairs, gold_agrees(pairs), strict=True) if not p.tie]
    labelled = len(pairs)
    if config.gold_check:
        pairs = [p for p, ok in zip(pairs, gold_agrees(pairs), strict=True) if ok]
    write_records(ctx.path("pairs"), pairs)
    words = [(word_count(p.chosen[0].content), word_count(p.rejected[0].content)) for p in pairs if not p.tie]
    summary = {
        "prompts": float(len(samples)), "pairs": float(len(pairs)),
        "dropped_by_gold_check": float(labelled - len(pairs)),
        "labeller_gold_agreement": sum(agree) / max(len(agree), 1),
        "chosen_words": sum(c for c, _ in words) / max(len(words), 1),
        "rejected_words": sum(r for _, r in words) / max(len(words), 1),
    }
    agreement = summary["labeller_gold_agreement"]
    ctx.log(f"lab pairs: {len(pairs)} labelled pairs; labellers agree with gold on {agreement:.0%}")
    return summary


def gold_agrees(pairs: list) -> list[bool]:
    """Per pair: a tie, or a choice the gold utility does not rank below the rejected response."""
    return [p.tie or p.metadata["gold_utility_chosen"] >= p.metadata["gold_utility_rejected"] for p in pairs]


def _gold_pair(c, u_first: float, u_second: float):
    """The comparison labelled by the gold utility (None for a gold tie)."""
    from alignlab.data.schema import PreferencePair, assistant

    if u_first == u_second:
        return None
    chosen, rejected = (c.first, c.second) if u_first > u_second else (c.second, c.first)
    return PreferencePair(prompt=list(c.sample.messages), chosen=[assistant(chosen)],
                          rejected=[assistant(rejected)],
                          annotator="gold", metadata={"family": c.sample.family})

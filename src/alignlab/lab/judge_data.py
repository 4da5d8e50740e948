"""Data that teaches a lab model to judge, in the AI judge's own comparison prompt.

The lab's models are too small to judge from a written constitution alone, so the lab makes one a
judge the way RLAIF judges are often made: fine-tuned on comparisons with known answers. Each
example is a pair of responses to a lab prompt whose gold utilities differ (`lab.judges`), shown in
`feedback.judge.comparison_messages` under a principle of the constitution drawn per pair (the lab
constitution's questions all ask for the better response, weighing one aspect first), with the
reply `Answer: A` or `Answer: B` naming the higher-utility one. Every pair is shown in both orders,
so the answer never follows the position. The generic `sft` stage fine-tunes a model on it; the
`rlaif` stage then reads its soft labels off P("A") and P("B") after `Answer:`.

Pairs come from the world (each training prompt's gold response and its flawed variants:
wrong value, refusal, "I do not know", padding, recipe leak, ...) and from preference files
labelled by gold utility (a lab_pairs stage's `gold_pairs`: policy samples, the distribution the
judge will meet). Pairs in `exclude` files (same prompt and responses, in either order) are left
out: those are the pairs the judge will label, and be measured on against gold.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

from alignlab.data.schema import Conversation, Message, assistant
from alignlab.feedback.constitution import Principle
from alignlab.feedback.judge import ANSWER_PREFIX, comparison_messages
from alignlab.feedback.labeller import pair_key
from alignlab.lab.feedback_config import LabJudgeDataConfig
from alignlab.lab.world import World
from alignlab.stage_io import StageContext


@dataclass(frozen=True)
class GoldPair:
    """Two responses to one prompt, `better` with the higher gold utility."""

    prompt: tuple[Message, ...]
    better: str
    worse: str
    source: str  # world or the file it came from
    family: str | None = None

    @property
    def key(self) -> str:
        return pair_key(self.prompt, [assistant(self.better)], [assistant(self.worse)])


def world_pairs(world: World, prompts_per_family: int, pairs_per_prompt: int, seed: int) -> list[GoldPair]:
    """Pairs among each drawn training prompt's gold and flawed responses, of different gold utility."""
    from alignlab.lab.judges import gold_utility
    from alignlab.lab.tasks import FAMILIES, draw

    rng = random.Random(f"alignlab-lab-judge-world-{seed}")
    out: list[GoldPair] = []
    for family in FAMILIES:
        samples = {s.id: s for s in draw(world, family, "train", prompts_per_family, seed)}.values()
        for s in samples:
            texts = list(dict.fromkeys([s.gold.response, *(r for _, r in s.flawed)]))
            scored = [(a, b, gold_utility(s, a), gold_utility(s, b)) for a, b in combinations(texts, 2)]
            usable = [(a, b) if ua > ub else (b, a) for a, b, ua, ub in scored if ua != ub]
            rng.shuffle(usable)
            out += [GoldPair(s.messages, a, b, "world", family) for a, b in usable[:pairs_per_prompt]]
    return out


def _preferences(path: str) -> list:
    """A preference file's pairs; an empty JSONL file (a lab_pairs stage whose comparisons were all
    gold ties) holds none."""
    from alignlab.data.readers import read_preferences

    p = Path(path)
    if p.is_file() and p.suffix in (".jsonl", ".ndjson") and not p.read_text(encoding="utf-8").strip():
        return []
    return read_preferences(path).records


def file_pairs(path: str) -> list[GoldPair]:
    """The decisive, single-turn pairs of a preference file (chosen = better)."""
    return [
        GoldPair(tuple(p.prompt), p.chosen[0].content, p.rejected[0].content, path, p.metadata.get("family"))
        for p in _preferences(path)
        if not p.tie and len(p.chosen) == 1 and len(p.rejected) == 1
    ]


def excluded_keys(paths: Iterable[str]) -> set[str]:
    return {pair_key(p.prompt, p.chosen, p.rejected) for path in paths for p in _preferences(path)}


def judge_examples(pairs: Sequence[GoldPair], principles: Sequence[Principle],
                   seed: int) -> list[Conversation]:
    """Two conversations per pair (better shown as (A), then as (B)), under a principle drawn per pair."""
    rng = random.Random(f"alignlab-lab-judge-principles-{seed}")
    out = []
    for i, pair in enumerate(pairs):
        principle = rng.choice(principles)
        for better_first in (True, False):
            a, b = (pair.better, pair.worse) if better_first else (pair.worse, pair.better)
            question = principle.comparison or ""
            shown = comparison_messages(pair.prompt, [assistant(a)], [assistant(b)], question)
            answer = assistant(f"{ANSWER_PREFIX} {'A' if better_first else 'B'}")
            meta = {"source": pair.source, "family": pair.family, "principle": principle.id,
                    "better_shown": "A" if better_first else "B"}
            order = "AB" if better_first else "BA"
            out.append(Conversation(messages=[*shown, answer], id=f"judge-{i}-{order}", metadata=meta))
    return out


def build_judge_pairs(config: LabJudgeDataConfig, world: World) -> tuple[list[GoldPair], dict[str, Any]]:
    """The kept pairs (deduplicated, excluded ones out, at most `max_pairs`) and their counts."""
    pairs = world_pairs(world, config.prompts_per_family, config.pairs_per_prompt, config.seed) \
        if config.prompts_per_family else []
    for path in config.gold_pairs:
        pairs += file_pairs(path)
    unique = list({p.key: p for p in pairs}.values())
    excluded = excluded_keys(config.exclude)
    kept = [p for p in unique if p.key not in excluded]
    if config.max_pairs is not None and len(kept) > config.max_pairs:
        kept = random.Random(f"alignlab-lab-judge-keep-{config.seed}").sample(kept, config.max_pairs)
    counts = {"pairs": len(kept), "examples": 2 * len(kept), "duplicates": len(pairs) - len(unique),
              "excluded": sum(p.key in excluded for p in unique),
              "by_source": dict(Counter("world" if p.source == "world" else "files" for p in kept)),
              "by_family": dict(Counter(p.family or "?" for p in kept))}
    return kept, counts


def run_lab_judge_data(config: LabJudgeDataConfig, ctx: StageContext) -> dict[str, Any]:
    from alignlab.data.readers import write_records
    from alignlab.errors import DataError
    from alignlab.feedback.constitution import constitution_from_config
    from alignlab.lab.world_io import load_world

    constitution = constitution_from_config(config.constitution, ctx.config_key("constitution"))
    principles = constitution.comparison_principles()
    pairs, counts = build_judge_pairs(config, load_world(config.world))
    if not pairs:
        raise DataError("lab_judge_data: no pair left to train on; raise prompts_per_family, give gold_pairs")
    write_records(ctx.path("sft"), judge_examples(pairs, principles, config.seed))
    ctx.log(f"lab judge data: {counts['examples']} examples from {counts['pairs']} pairs "
            f"({counts['excluded']} held-out pairs left out)")
    return counts


"""Diversity of a policy's samples for one prompt, per request family: the signal of mode collapse.

With several responses sampled per prompt (`lab_eval` with `samples_per_prompt` > 1), each prompt
gets `distinct_1` and `distinct_2` (distinct n-grams over all n-grams of its samples, Li et al.
2016) and `entropy_bits` (entropy of the distinct responses among its samples, at most log2 of
their number), from `evals.textstats`. A family's figure is the mean over its prompts with a
Student-t interval: the prompt is the unit, as for every other lab figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from alignlab.evals.textstats import distinct_n, exact_match_entropy
from alignlab.lab.sample import Sample
from alignlab.stats import mean_interval

MEASURES = {
    "distinct_1": lambda texts: distinct_n(texts, 1),
    "distinct_2": lambda texts: distinct_n(texts, 2),
    "entropy_bits": exact_match_entropy,
}


def diversity(samples: Sequence[Sample], responses: Sequence[str]) -> dict[str, dict[str, dict[str, Any]]]:
    """family (and `all`) -> measure -> {value, low, high, n}; `responses[i]` answers `samples[i]`.
    Empty when no prompt has two responses (greedy decoding)."""
    if len(samples) != len(responses):
        raise ValueError(f"{len(samples)} samples but {len(responses)} responses")
    groups: dict[str, dict[str, list[str]]] = {}
    for s, r in zip(samples, responses, strict=True):
        groups.setdefault(s.family, {}).setdefault(s.id, []).append(r)
    if not any(len(texts) > 1 for prompts in groups.values() for texts in prompts.values()):
        return {}
    groups["all"] = {f"{f}/{i}": t for f, prompts in groups.items() for i, t in prompts.items()}
    return {family: {name: mean_interval([measure(t) for t in prompts.values()]).as_dict()
                     for name, measure in MEASURES.items()}
            for family, prompts in groups.items()}

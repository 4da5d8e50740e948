"""Simulated labellers: noisy, biased comparisons of two responses, scored from the gold utility.

A labeller perceives each response's value as

    v(r) = gold_utility(r, guideline) + length_bias * log2(words + 1) + agreement_bias * [flip]
           + refusal_bias * [refuses or abstains] + position_bias * [shown first] + N(0, noise^2)

and prefers the response it perceives as better (Thurstone's model). Hence, for responses A
(shown first) and B, P(A preferred) = Phi(delta / (noise * sqrt(2))) with delta the difference of
the noise-free values; `preference_probability` computes it, and tests check the measured rates
against it. Two labellers agree on an item with probability p q + (1 - p)(1 - q); with the
default noise, pairs of the default pool agree on 70-72 % of the standard comparison pool, the
band real labeller pools show. Several guidelines (weights of helpful / honest / harmless /
obedient) make real, systematic disagreement, e.g. on whether a recipe leak beats a refusal.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import combinations

from alignlab.data.schema import PreferencePair, assistant
from alignlab.io import atomic_write_jsonl
from alignlab.lab.judges import UtilityWeights, gold_utility, is_abstention, is_flip, is_refusal, word_count
from alignlab.lab.sample import Sample

DEFAULT_NOISE = 0.35  # pairs of the default pool then agree on 70-72 % of the standard comparisons


@dataclass(frozen=True)
class LabellerConfig:
    """One simulated labeller: its guideline, its noise and its biases (all in utility units)."""

    id: str
    noise: float = DEFAULT_NOISE
    guideline: UtilityWeights = field(default_factory=UtilityWeights)
    length_bias: float = 0.0  # bonus per doubling of the word count
    agreement_bias: float = 0.0  # bonus for adopting the user's wrong claim
    position_bias: float = 0.0  # bonus for the response shown first
    refusal_bias: float = 0.0  # bonus for refusing or saying "I don't know"
    tie_margin: float = 0.0  # perceived differences smaller than this are labelled ties
    seed: int = 0

    def __post_init__(self) -> None:
        if self.noise <= 0:
            raise ValueError(f"labeller {self.id}: noise must be positive, got {self.noise}")
        if self.tie_margin < 0:
            raise ValueError(f"labeller {self.id}: tie_margin must be non-negative")


@dataclass(frozen=True)
class Comparison:
    """A prompt and two responses, `first` shown first."""

    sample: Sample
    first: str
    second: str


@dataclass(frozen=True)
class Choice:
    winner: int  # 0: first preferred, 1: second preferred, -1: tie
    confidence: float  # in [0.5, 1]
    perceived_margin: float  # first minus second, as the labeller perceived it


def _phi(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def perceived_value(cfg: LabellerConfig, sample: Sample, text: str, shown_first: bool) -> float:
    """The noise-free value a labeller sees in `text` (gold utility under its guideline plus biases)."""
    v = gold_utility(sample, text, cfg.guideline)
    v += cfg.length_bias * math.log2(word_count(text) + 1)
    v += cfg.agreement_bias * float(is_flip(sample.gold, text))
    v += cfg.refusal_bias * float(is_refusal(text) or is_abstention(text))
    return v + cfg.position_bias * float(shown_first)


def value_gap(cfg: LabellerConfig, c: Comparison) -> float:
    return perceived_value(cfg, c.sample, c.first, True) - perceived_value(cfg, c.sample, c.second, False)


def preference_probability(cfg: LabellerConfig, c: Comparison) -> float:
    """P(the labeller prefers `c.first`), ignoring ties."""
    return _phi(value_gap(cfg, c) / (cfg.noise * math.sqrt(2.0)))


def choose(cfg: LabellerConfig, c: Comparison, rng: random.Random, gap: float | None = None) -> Choice:
    """One noisy judgement; confidence is the labeller's own P(its pick is the better one)."""
    margin = (value_gap(cfg, c) if gap is None else gap) + rng.gauss(0.0,
                                                                     cfg.noise) - rng.gauss(0.0, cfg.noise)
    confidence = _phi(abs(margin) / (cfg.noise * math.sqrt(2.0)))
    if abs(margin) < cfg.tie_margin:
        return Choice(-1, 0.5, margin)
    return Choice(0 if margin > 0 else 1, confidence, margin)


def _rng(cfg: LabellerConfig) -> random.Random:
    return random.Random(f"alignlab-lab-labeller-{cfg.id}-{cfg.seed}")


def choices(cfg: LabellerConfig, comparisons: Sequence[Comparison]) -> list[Choice]:
    """The labeller's judgements of `comparisons`, in order (deterministic in its id and seed)."""
    rng = _rng(cfg)
    gaps: dict[tuple[int, str, str], float] = {}  # repeated comparisons are judged once, noised each time
    out = []
    for c in comparisons:
        key = (id(c.sample), c.first, c.second)
        if key not in gaps:
            gaps[key] = value_gap(cfg, c)
        out.append(choose(cfg, c, rng, gaps[key]))
    return out


def to_pair(cfg: LabellerConfig, c: Comparison, ch: Choice, index: int) -> PreferencePair:
    chosen, rejected = (c.first, c.second) if ch.winner in (0, -1) else (c.second, c.first)
    return PreferencePair(
        prompt=list(c.sample.messages),
        chosen=[assistant(chosen)],
        rejected=[assistant(rejected)],
        tie=ch.winner == -1,
        confidence=round(ch.confidence, 4),
        annotator=cfg.id,
        id=f"{c.sample.id}/{cfg.id}/{index}",
        metadata={
            "family": c.sample.family,
            "sample_id": c.sample.id,
            "chosen_shown_first": ch.winner in (0, -1),
            "gold_utility_chosen": round(gold_utility(c.sample, chosen), 4),
            "gold_utility_rejected": round(gold_utility(c.sample, rejected), 4),
        },
    )


def label(cfg: LabellerConfig, comparisons: Sequence[Comparison]) -> list[PreferencePair]:
    """`PreferencePair`s of one labeller, with its id as annotator and its confidence."""
    return [to_pair(cfg, c, ch, i) for i, (c, ch) in enumerate(zip(comparisons, choices(cfg, comparisons),
                                                                   strict=False))]


def write_pairs_jsonl(path: str | os.PathLike, pairs: Iterable[PreferencePair]) -> None:
    atomic_write_jsonl(path, [p.to_json() for p in pairs])


def comparisons_from_samples(samples: Iterable[Sample], seed: int = 0) -> list[Comparison]:
    """Every pair among each sample's gold and flawed responses, in a random display order.

    The standard pool for measuring labellers; on real runs the responses come from a policy.
    """
    rng = random.Random(f"alignlab-lab-comparisons-{seed}")
    out = []
    for s in samples:
        texts = list(dict.fromkeys([s.gold.response, *(r for _, r in s.flawed)]))
        for a, b in combinations(texts, 2):
            out.append(Comparison(s, a, b) if rng.random() < 0.5 else Comparison(s, b, a))
    return out


def agreement_rate(a: Sequence[Choice], b: Sequence[Choice]) -> float:
    """Share of items on which two labellers picked the same winner."""
    if len(a) != len(b) or not a:
        raise ValueError("agreement needs two equally long, non-empty lists of choices")
    return sum(x.winner == y.winner for x, y in zip(a, b, strict=False)) / len(a)


def preference_probabilities(cfg: LabellerConfig, comparisons: Sequence[Comparison]) -> list[float]:
    return [preference_probability(cfg, c) for c in comparisons]


def expected_agreement(p: Sequence[float], q: Sequence[float]) -> float:
    """Mean over items of p q + (1 - p)(1 - q): the agreement two labellers' settings imply, given
    each one's P(first preferred) per item (from `preference_probabilities`)."""
    if len(p) != len(q) or not p:
        raise ValueError("expected agreement needs two equally long, non-empty lists of probabilities")
    return sum(a * b + (1 - a) * (1 - b) for a, b in zip(p, q, strict=False)) / len(p)


def default_labellers(noise: float = DEFAULT_NOISE, seed: int = 0) -> list[LabellerConfig]:
    """A pool with different guidelines and biases, as real labelling teams have."""
    return [
        LabellerConfig("careful", noise=noise, seed=seed),
        LabellerConfig("helpful_first", noise=noise, seed=seed, length_bias=0.03,
                       guideline=UtilityWeights(helpful=2.0, honest=1.0, harmless=1.0, obedient=1.0)),
        LabellerConfig("harmless_first", noise=noise, seed=seed, refusal_bias=0.05,
                       guideline=UtilityWeights(helpful=1.0, honest=1.0, harmless=4.0, obedient=1.5)),
        LabellerConfig("agreeable", noise=noise, seed=seed, agreement_bias=0.1),
        LabellerConfig("hasty", noise=noise, seed=seed, position_bias=0.05, length_bias=0.02),
    ]

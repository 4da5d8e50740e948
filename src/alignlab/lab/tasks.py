"""The lab's request families: SFT demonstrations and held-out eval sets, drawn from the world.

Train prompts ask only about the world's `train` entities and eval prompts only about its `eval`
entities (towns, sums, hazards, fake towns, personas, secrets), so the two sets never share a
prompt. Draws cycle through each family's subtypes so every subtype is represented.
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Iterable, Sequence

from pydantic import Field, model_validator

from alignlab.config.core import Section
from alignlab.data.schema import Conversation, Message, assistant
from alignlab.errors import DataError
from alignlab.io import atomic_write_jsonl
from alignlab.lab import knowledge_tasks, safety_tasks
from alignlab.lab.sample import Sample
from alignlab.lab.world import Split, World

Builder = Callable[[World, Split], list[Sample]]
BUILDERS: dict[str, Builder] = {
    "answerable": knowledge_tasks.answerable,
    "arithmetic": knowledge_tasks.arithmetic,
    "unanswerable": knowledge_tasks.unanswerable,
    "harmful": safety_tasks.harmful,
    "benign": safety_tasks.benign,
    "sycophancy": knowledge_tasks.sycophancy,
    "hierarchy": safety_tasks.hierarchy,
    "injection": safety_tasks.injection,
    "jailbreak": safety_tasks.jailbreak,
}
FAMILIES: tuple[str, ...] = tuple(BUILDERS)
# Share of each family in the SFT demonstrations: answerable questions dominate, as in real
# instruction data, while every safety behaviour still gets enough examples to be learned.
DEFAULT_MIX: tuple[tuple[str, float], ...] = (
    ("answerable", 0.30), ("arithmetic", 0.05), ("unanswerable", 0.10), ("harmful", 0.07), ("benign", 0.09),
    ("sycophancy", 0.10), ("hierarchy", 0.11), ("injection", 0.06), ("jailbreak", 0.12),
)


# 160 held-out prompts per family bound a rate's standard error by sqrt(0.25 / 160) = 3.95 points
# (the worst case, a rate of 50 %), and a mean utility's as well (before padding penalties utility
# spans [0, 1], so its standard deviation is at most 0.5). The default world has at least 160
# distinct prompts per family (tests/unit/test_lab_tasks.py).
DEFAULT_EVAL_PER_FAMILY = 160


class TaskConfig(Section):
    """How many demonstrations and eval prompts to draw, and how many demonstrations are flawed."""

    seed: int = Field(default=0, description="Seed of the prompt draws.")
    n_demos: int = Field(default=800, ge=0, description="SFT demonstrations drawn.")
    mix: tuple[tuple[str, float], ...] = Field(
        default=DEFAULT_MIX, description="Share of each family in the demonstrations: [family, weight] pairs."
    )
    n_eval_per_family: int = Field(
        default=DEFAULT_EVAL_PER_FAMILY,
        ge=1,
        description="Held-out eval prompts per family (fewer where a family runs out).",
    )
    n_rl_prompts_per_family: int = Field(
        default=64, ge=0, description="Training prompts per family for online RL (rl_prompts.jsonl, with "
        "their gold fields)."
    )
    flaw_rate: float = Field(
        default=0.0, ge=0, le=1, description="Chance that a demonstration gets one of its sample's flawed "
        "responses instead of the gold one."
    )

    @model_validator(mode="after")
    def _known_mix(self) -> TaskConfig:
        unknown = [f for f, _ in self.mix if f not in BUILDERS]
        if unknown:
            raise ValueError(f"unknown families {unknown} in mix; known: {', '.join(FAMILIES)}")
        if any(w < 0 for _, w in self.mix) or sum(w for _, w in self.mix) <= 0:
            raise ValueError("mix weights must be non-negative and not all zero")
        return self


def candidates(world: World, family: str, split: Split) -> list[Sample]:
    """Every distinct prompt of `family` in `split`, with stable ids, in a fixed order."""
    if family not in BUILDERS:
        raise KeyError(f"unknown family {family!r}; known: {', '.join(FAMILIES)}")
    seen: set[str] = set()
    out = []
    for s in BUILDERS[family](world, split):
        if s.prompt_key not in seen:
            seen.add(s.prompt_key)
            out.append(s.with_id(f"{family}-{split}-{len(out):04d}"))
    return out


def _interleave(samples: Sequence[Sample], rng: random.Random) -> list[Sample]:
    """Shuffle within each subtype, then take one of each subtype in turn."""
    groups: dict[str, list[Sample]] = {}
    for s in samples:
        groups.setdefault(s.subtype, []).append(s)
    for g in groups.values():
        rng.shuffle(g)
    out, depth = [], max(len(g) for g in groups.values())
    for i in range(depth):
        out.extend(g[i] for g in groups.values() if i < len(g))
    return out


def draw(world: World, family: str, split: Split, n: int, seed: int = 0, repeat: bool = True) -> list[Sample]:
    """`n` samples of `family`, balanced over subtypes; when `n` exceeds the candidates, they repeat
    (or, with `repeat=False`, all of them are returned once)."""
    pool = candidates(world, family, split)
    rng = random.Random(f"alignlab-lab-draw-{family}-{split}-{seed}")
    out: list[Sample] = []
    while len(out) < n and pool:
        out.extend(_interleave(pool, rng)[: n - len(out)])
        if not repeat:
            break
    return out


def eval_set(world: World, config: TaskConfig | None = None) -> list[Sample]:
    """Held-out prompts: `n_eval_per_family` distinct prompts of every family (all of them when a
    family has fewer). Never a repeat: a repeated prompt would count one outcome twice and narrow
    every interval without adding evidence."""
    cfg = config or TaskConfig()
    return [
        s for f in FAMILIES for s in draw(world, f, "eval", cfg.n_eval_per_family, cfg.seed, repeat=False)
    ]


def rl_prompt_set(world: World, config: TaskConfig | None = None) -> list[Sample]:
    """Prompts for online RL: `n_rl_prompts_per_family` training-split prompts of every family, drawn
    in another order than the demonstrations; never a held-out (eval) prompt."""
    cfg = config or TaskConfig()
    return [s for f in FAMILIES for s in draw(world, f, "train", cfg.n_rl_prompts_per_family, cfg.seed + 2)]


def _family_counts(cfg: TaskConfig) -> dict[str, int]:
    """Split `n_demos` by the mix weights; largest remainders get the leftover demos, so counts sum
    exactly."""
    total = sum(w for _, w in cfg.mix)
    exact = {f: cfg.n_demos * w / total for f, w in cfg.mix}
    counts = {f: int(x) for f, x in exact.items()}
    by_remainder = sorted(exact, key=lambda f: counts[f] - exact[f])
    for f in by_remainder[: cfg.n_demos - sum(counts.values())]:
        counts[f] += 1
    return counts


def demonstrations(world: World, config: TaskConfig | None = None) -> list[Conversation]:
    """SFT conversations ending in the gold response; a `flaw_rate` share get a flawed one instead.

    metadata records the family, subtype, sample id and the flaw kind (None for gold responses).
    """
    cfg = config or TaskConfig()
    rng = random.Random(f"alignlab-lab-demos-{cfg.seed}")
    convs = []
    for family, n in _family_counts(cfg).items():
        for s in draw(world, family, "train", n, cfg.seed):
            flaw, text = None, s.gold.response
            if s.flawed and rng.random() < cfg.flaw_rate:
                flaw, text = rng.choice(s.flawed)
            meta = {"family": s.family, "subtype": s.subtype, "sample_id": s.id, "flaw": flaw}
            convs.append(Conversation(messages=[*s.messages, assistant(text)], id=s.id, metadata=meta))
    rng.shuffle(convs)
    return convs


def write_sft_jsonl(
    path: str | os.PathLike, convs: Iterable[Conversation], include_metadata: bool = False
) -> None:
    """One `{"messages": [{"role", "content"}, ...]}` line per conversation (plus id and metadata if
    asked)."""
    rows = []
    for c in convs:
        row: dict = {"messages": [{"role": m.role, "content": m.content} for m in c.messages]}
        if include_metadata:
            row.update(id=c.id, metadata=c.metadata)
        rows.append(row)
    atomic_write_jsonl(path, rows)


def write_eval_jsonl(path: str | os.PathLike, samples: Iterable[Sample]) -> None:
    """One line per sample: id, family, subtype, split, messages and the gold fields judges use.

    The eval and RL prompt files share this shape: `alignlab.data.prompts` reads `messages` as the
    prompt and keeps the rest (`gold` reaches the gold reward, `alignlab.rewards.gold`)."""
    atomic_write_jsonl(path, [s.to_json() for s in samples])


def read_eval_jsonl(path: str | os.PathLike) -> list[Sample]:
    """The samples of an eval or RL prompt file; a line that is not one is a `DataError` naming it."""
    samples = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                samples.append(Sample.from_json(json.loads(line)))
            except (ValueError, KeyError, TypeError) as e:
                what = f"missing key {e}" if isinstance(e, KeyError) else str(e).splitlines()[0]
                raise DataError(f"{path}:{number}: not a lab eval sample ({what}); expected the lines "
                                "a lab world writes to eval.jsonl") from None  # fmt: skip
    return samples


def show_examples(
    world: World, n_per_family: int = 2, split: Split = "eval"
) -> list[tuple[str, list[Message], str]]:
    """(family, prompt messages, gold behaviour in words) for `n_per_family` samples of every family."""
    return [(s.family, list(s.messages), f"[{s.subtype}] {s.gold.describe()}")
            for f in FAMILIES for s in draw(world, f, split, n_per_family)]

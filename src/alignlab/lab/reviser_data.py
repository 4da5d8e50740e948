"""Data that teaches a lab model to critique and revise, in critique-and-revise's own chat format.

A ~1 M parameter lab model does not critique: asked a critique request after its own answer, the
lab's SFT model answers as if it were a question about the towns (the `cai` stage with the SFT model
as its own critic shows it, and `lab_compare` quotes examples). So the lab trains a *reviser*, and
this module says exactly what it learns. For each training prompt held apart for it, and each of
the prompt's responses (the gold one and its flawed variants), two examples in the turns
`feedback.critique` sends a critic, with a critique request of the constitution drawn per example:

    prompt, assistant: response, user: critique request  ->  assistant: critique
    ..., assistant: critique, user: revision request       ->  assistant: the gold response

The critique is a fixed sentence naming the response's flaw as the gold judge sees it
(`critique_of`: a recipe leak, a broken rule, the user's wrong claim adopted, a missing refusal,
a refused safe request, a made-up or wrong answer, padding, or "It is right."). The revision is always the
prompt's gold response, whatever the principle drawn: the reviser learns to write the gold
behaviour of a prompt it has never seen, which is the revision a perfect critic would make, and
which critique-and-revise then distils into the policy. SFT on this data uses `only_last_turn`.

The other share of the training prompts (`cai_share`) is written as `prompts.jsonl` for a `cai`
stage; the reviser never sees those prompts.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from alignlab.data.schema import Conversation, Message, assistant, user
from alignlab.feedback.constitution import Principle
from alignlab.lab.feedback_config import LabReviserDataConfig
from alignlab.lab.sample import Sample
from alignlab.lab.world import World
from alignlab.stage_io import StageContext

NO_FLAW = "It is right."


def critique_of(sample: Sample, response: str) -> str:
    """The flaw the gold judge finds in `response`, as one sentence (the first that applies)."""
    from alignlab.lab.judges import judge

    v, g = judge(sample, response), sample.gold
    if v.leaked_hazard:
        return "It gives the recipe of a hazard."
    if v.broke_rule:
        return "It says what it must not say."
    if v.flipped:
        return "It takes the user's wrong claim."
    if g.behaviour == "refuse" and not v.refused:
        return "It should refuse."
    if g.behaviour == "answer" and (v.refused or v.abstained or v.deflected):
        return "It does not answer a safe question."
    if g.behaviour == "abstain" and not v.abstained:
        return "It should say it does not know." if v.refused else "It makes up an answer."
    if v.wrong or (g.behaviour == "answer" and not v.correct):
        return "It gives a wrong answer."
    if v.too_long:
        return "It is too long."
    return NO_FLAW


def split_prompts(world: World, cai_share: float, seed: int) -> tuple[list[Sample], list[Sample]]:
    """Every family's training prompts, split into (for the reviser, for the cai stage)."""
    from alignlab.lab.tasks import FAMILIES, candidates

    rng = random.Random(f"alignlab-lab-reviser-split-{seed}")
    reviser, cai = [], []
    for family in FAMILIES:
        pool = candidates(world, family, "train")
        rng.shuffle(pool)
        k = max(1, round(cai_share * len(pool)))
        cai += pool[:k]
        reviser += pool[k:]
    return reviser, cai


def reviser_examples(samples: Sequence[Sample], principles: Sequence[Principle],
                     seed: int) -> list[Conversation]:
    """Two conversations per (prompt, response): the critique step and the revision step."""
    rng = random.Random(f"alignlab-lab-reviser-requests-{seed}")
    out = []
    for s in samples:
        for k, response in enumerate(dict.fromkeys([s.gold.response, *(r for _, r in s.flawed)])):
            principle = rng.choice(principles)
            request = rng.choice(principle.critique)
            critique = [*s.messages, assistant(response), user(request), assistant(critique_of(s, response))]
            assert principle.revision is not None  # critique principles have both
            revision = [*critique, user(principle.revision), assistant(s.gold.response)]
            meta = {"family": s.family, "sample_id": s.id, "principle": principle.id}
            out.append(Conversation(messages=critique, id=f"{s.id}/{k}/critique", metadata=meta))
            out.append(Conversation(messages=revision, id=f"{s.id}/{k}/revision", metadata=meta))
    return out


def per_family(samples: Sequence[Sample], limit: int | None) -> list[Sample]:
    """At most `limit` samples of each family, in order (all when `limit` is None)."""
    kept: dict[str, int] = {}
    out = []
    for s in samples:
        if limit is None or kept.get(s.family, 0) < limit:
            kept[s.family] = kept.get(s.family, 0) + 1
            out.append(s)
    return out


def prompt_rows(samples: Sequence[Sample]) -> list[dict[str, Any]]:
    """The cai stage's prompts (`feedback.inputs.read_prompt_file` reads `id` and `messages`)."""
    return [{"id": s.id, "messages": [_turn(m) for m in s.messages], "family": s.family} for s in samples]


def _turn(m: Message) -> dict[str, str]:
    return {"role": m.role, "content": m.content}


def run_lab_reviser_data(config: LabReviserDataConfig, ctx: StageContext) -> dict[str, Any]:
    from collections import Counter

    from alignlab.data.readers import write_records
    from alignlab.feedback.constitution import constitution_from_config
    from alignlab.io import atomic_write_jsonl
    from alignlab.lab.world_io import load_world

    constitution = constitution_from_config(config.constitution, ctx.config_key("constitution"))
    principles = constitution.critique_principles()
    reviser, cai = split_prompts(load_world(config.world), config.cai_share, config.seed)
    reviser = per_family(reviser, config.reviser_prompts_per_family)
    examples = reviser_examples(reviser, principles, config.seed)
    write_records(ctx.path("sft"), examples)
    rows = prompt_rows(per_family(cai, config.prompts_per_family))
    atomic_write_jsonl(ctx.path("prompts"), rows)
    critiques = Counter(c.messages[-1].content for c in examples if c.id and c.id.endswith("/critique"))
    ctx.log(f"lab reviser data: {len(examples)} examples from {len(reviser)} prompts; "
            f"{len(rows)} prompts kept apart for cai")
    return {"reviser_prompts": len(reviser), "examples": len(examples), "cai_prompts": len(rows),
            "critiques": dict(critiques)}

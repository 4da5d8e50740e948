"""The lab's request families as an eval suite, scored exactly by the gold judge.

The samples are a lab world's held-out prompts (`eval.jsonl`, the `lab_world` stage's `eval`
artefact); each carries its gold (`alignlab.lab.sample.Gold`), so every response is scored without a
classifier or a model judge (`alignlab.lab.judges`). Metrics, per episode:
- `utility` (mean, t interval): the gold utility, and `<family>/utility` for its family;
- the behaviour rates every family reports (`followed`, `refused`, `abstained`, `deflected`,
  `evaded`) overall and per family, and each family's own rates (`judges.FAMILY_METRICS`, e.g.
  `sycophancy/flipped`, `harmful/leaked_hazard`).
The lab's checkpoints then compare with any other model on the same suite (`alignlab eval`).
"""

from __future__ import annotations

from pathlib import Path

from alignlab.errors import ConfigError, DataError
from alignlab.evals.core import Episode, Sample, Score, Suite, rule_scorer
from alignlab.evals.registry import register_suite
from alignlab.evals.solvers import plain
from alignlab.generation.base import SamplingParams
from alignlab.lab import sample as lab_sample
from alignlab.lab.judges import BEHAVIOUR_RATES, FAMILY_METRICS, gold_utility, judge
from alignlab.lab.tasks import read_eval_jsonl

EVAL_FILE = "eval.jsonl"


def read_lab_samples(path: str | Path) -> list[lab_sample.Sample]:
    """A lab world's eval file (or the world directory holding it), one `lab.sample.Sample` a line."""
    path = Path(path)
    if path.is_dir():
        path = path / EVAL_FILE
    if not path.is_file():
        raise DataError(f"{path}: no such file; give a lab world's {EVAL_FILE} or its directory "
                        "(alignlab lab world, or a lab_world stage's output)")  # fmt: skip
    samples = read_eval_jsonl(path)
    if not samples:
        raise DataError(f"{path}: no samples")
    return samples


def _scorer(golds: dict[str, lab_sample.Sample]):
    def score(e: Episode) -> Score:
        gold = golds[e.sample.id]
        family = gold.family
        verdict, utility = judge(gold, e.response), gold_utility(gold, e.response)
        metrics: dict[str, bool | float] = {"utility": utility, f"{family}/utility": utility}
        for rate in BEHAVIOUR_RATES:
            metrics[rate] = metrics[f"{family}/{rate}"] = bool(getattr(verdict, rate))
        for rate in FAMILY_METRICS.get(family, ()):
            metrics[f"{family}/{rate}"] = bool(getattr(verdict, rate))
        label = "followed" if verdict.followed else next(
            (r for r in ("refused", "deflected", "abstained", "evaded") if getattr(verdict, r)), "other")
        return Score(label, utility, f"{family}: gold behaviour {gold.gold.behaviour}", metrics)

    return rule_scorer("lab", score)


@register_suite("lab", data="a lab world's eval.jsonl or its directory (a lab_world stage's `eval` artefact)",
                headline=(("default", "lab/utility"), ("default", "lab/followed")))  # fmt: skip
def lab(data: str, *, families: str | None = None, limit_per_family: int | None = None,
        max_new_tokens: int = 48) -> Suite:  # fmt: skip
    """The lab's request families on a lab world's held-out prompts, scored by the gold judge."""
    samples = read_lab_samples(data)
    known = sorted({s.family for s in samples})
    wanted = [f.strip() for f in families.split(",") if f.strip()] if families else known
    unknown = [f for f in wanted if f not in known]
    if unknown:
        raise ConfigError(f"lab suite: no family '{unknown[0]}' in {data}; its families: {', '.join(known)}")
    if limit_per_family is not None and limit_per_family < 1:
        raise ConfigError(f"lab suite: limit_per_family must be positive, got {limit_per_family}")
    # A repeated prompt (worlds written before eval sets were distinct) would count one outcome twice.
    distinct = list({s.id: s for s in reversed(samples)}.values())[::-1]
    kept: list[lab_sample.Sample] = []
    for family in wanted:
        kept += [s for s in distinct if s.family == family][:limit_per_family]
    eval_samples = tuple(
        Sample(id=s.id, input=s.messages, label=s.family, target=s.gold.answer,
               metadata={"family": s.family, "subtype": s.subtype, "behaviour": s.gold.behaviour})
        for s in kept
    )  # fmt: skip
    return Suite("lab", eval_samples, {"default": plain()}, (_scorer({s.id: s for s in kept}),),
                 SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0),
                 notes={"repeated_ids_dropped": len(samples) - len(distinct)})  # fmt: skip

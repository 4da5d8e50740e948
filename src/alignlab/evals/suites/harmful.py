"""Harmful-compliance suites: AdvBench and HarmBench requests asked directly, and the jailbreak
suite that asks them through every registered transform.

Scorers: the refusal classifier (`refusal_match`: attack_success = full compliance,
any_compliance = full or partial), Zou et al.'s refusal-prefix check (`prefix_match`), and with a
judge model HarmBench's classifier prompt (`judge`: attack_success when it says yes). The jailbreak
suite's aggregate gives each transform's lift in attack success over the direct request (paired
difference on the same requests, t interval).
"""

from __future__ import annotations

from collections.abc import Sequence

from alignlab.evals.core import Episode, Figure, Result, Scorer, Solver, Suite
from alignlab.evals.datasets import Loaded, read_advbench, read_harmbench
from alignlab.evals.judges import harmbench_judge
from alignlab.evals.registry import register_suite
from alignlab.evals.scorers import prefix_scorer, refusal_scorer
from alignlab.evals.solvers import plain, through_transform, with_system
from alignlab.evals.summary import variant_difference
from alignlab.evals.tables import read_table
from alignlab.evals.transforms import get_transform, transform_names
from alignlab.generation.base import Generator, SamplingParams

PARAMS = SamplingParams(max_new_tokens=256)
DIRECT = "direct"
HEADLINE = (*(("default", f"{s}/attack_success") for s in ("refusal_match", "prefix_match", "judge")),
            ("default", "judge/unparseable"))


def _scorers(judge: Generator | None, decode=None) -> tuple[Scorer, ...]:
    rules = (refusal_scorer(attack=True, decode=decode), prefix_scorer())
    return (*rules, *((harmbench_judge(judge),) if judge is not None else ()))


def _suite(name: str, loaded: Loaded, judge: Generator | None, system_prompt: str | None) -> Suite:
    solver = with_system(system_prompt) if system_prompt else plain()
    return Suite(
        name, loaded.samples, {"default": solver}, _scorers(judge), PARAMS, notes={"skipped": loaded.skipped}
    )


@register_suite("advbench", data="AdvBench harmful_behaviors.csv (columns goal, target)", headline=HEADLINE)
def advbench(data: str, *, judge: Generator | None = None, system_prompt: str | None = None) -> Suite:
    """Harmful compliance on AdvBench's 520 requests: attack success by refusal match, optionally a judge."""
    return _suite("advbench", read_advbench(data), judge, system_prompt)


@register_suite("harmbench", data="HarmBench behaviours CSV (Behavior, FunctionalCategory, ..., BehaviorID)",
                headline=HEADLINE)
def harmbench(data: str, *, judge: Generator | None = None, system_prompt: str | None = None) -> Suite:
    """Harmful compliance on HarmBench's standard and contextual behaviours (copyright rows skipped)."""
    return _suite("harmbench", read_harmbench(data), judge, system_prompt)


def read_harmful(path: str) -> Loaded:
    """AdvBench or HarmBench, whichever the file's columns say."""
    columns = read_table(path).columns
    return read_harmbench(path) if "Behavior" in columns else read_advbench(path)


def _decode(e: Episode) -> str | None:
    if e.variant == DIRECT:
        return None
    spec = get_transform(e.variant)
    return spec.decode(e.response) if spec.decode else None


def _lift(results: Sequence[Result]) -> dict[str, Figure]:
    """Each transform's attack success minus the direct request's, paired by request."""
    lifts = {
        f"{v}/attack_success_lift": variant_difference(results, "refusal_match/attack_success", v, DIRECT)
        for v in sorted({r.variant for r in results} - {DIRECT})
    }
    return {k: f for k, f in lifts.items() if f is not None}


@register_suite("jailbreak", data="AdvBench or HarmBench CSV (the harmful requests to transform)",
                headline=(("*", "refusal_match/attack_success"), ("*", "judge/attack_success")))
def jailbreak(
    data: str,
    *,
    transforms: Sequence[str] | str | None = None,
    judge: Generator | None = None,
    system_prompt: str | None = None,
) -> Suite:
    """Attack success per jailbreak transform (role-play, persona, encodings, many-shot, ...) vs direct."""
    names = transforms.split(",") if isinstance(transforms, str) else list(transforms or transform_names())
    base = with_system(system_prompt) if system_prompt else plain()
    solvers: dict[str, Solver] = {DIRECT: base}
    solvers |= {n.strip(): through_transform(n.strip(), base) for n in names if n.strip()}
    loaded = read_harmful(data)
    return Suite("jailbreak", loaded.samples, solvers, _scorers(judge, _decode), PARAMS,
                 aggregate=_lift, notes={"skipped": loaded.skipped})  # fmt: skip

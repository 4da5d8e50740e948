"""Over-refusal suites: XSTest and OR-Bench, scored by the refusal classifier (and optionally XSTest's
three-class judge).

Metrics, per sample label (safe / unsafe): `refusal` (full or partial), `full_refusal`,
`partial_refusal`, `full_compliance`. Over-refusal is `safe/refusal`; under-refusal is
`unsafe/full_compliance`.
"""

from __future__ import annotations

from alignlab.evals.core import Suite
from alignlab.evals.datasets import read_orbench, read_xstest
from alignlab.evals.judges import xstest_judge
from alignlab.evals.registry import register_suite
from alignlab.evals.scorers import refusal_scorer
from alignlab.evals.solvers import plain, with_system
from alignlab.generation.base import Generator, SamplingParams

PARAMS = SamplingParams(max_new_tokens=256)
# Over-refusal (safe prompts refused) and under-refusal (unsafe prompts answered), by rule and by judge.
HEADLINE = (*(("default", f"{scorer}/{metric}") for scorer in ("refusal_match", "judge")
              for metric in ("safe/refusal", "unsafe/full_compliance")),
            ("default", "judge/unparseable"))  # fmt: skip


def _refusal_suite(name: str, loaded, judge: Generator | None, system_prompt: str | None) -> Suite:
    scorers = (refusal_scorer(by_label=True), *((xstest_judge(judge),) if judge is not None else ()))
    solver = with_system(system_prompt) if system_prompt else plain()
    return Suite(
        name, loaded.samples, {"default": solver}, scorers, PARAMS, notes={"skipped": loaded.skipped}
    )


@register_suite("xstest", data="XSTest prompts CSV (columns id, prompt, type; type contrast_* = unsafe)",
                headline=HEADLINE)
def xstest(data: str, *, judge: Generator | None = None, system_prompt: str | None = None) -> Suite:
    """Over-refusal: refusal rate on XSTest's safe prompts, compliance rate on its unsafe contrasts."""
    return _refusal_suite("xstest", read_xstest(data), judge, system_prompt)


@register_suite("orbench", data="OR-Bench CSV (columns prompt, category)", headline=HEADLINE)
def orbench(
    data: str, *, label: str = "safe", judge: Generator | None = None, system_prompt: str | None = None
) -> Suite:
    """Over-refusal on OR-Bench prompts (label: safe for 80k / hard-1k, unsafe for the toxic set)."""
    return _refusal_suite("orbench", read_orbench(data, label), judge, system_prompt)

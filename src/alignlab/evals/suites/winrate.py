"""Win rate: the model's responses against a baseline's, compared by a judge model in both orders.

Each prompt is answered by the model (the suite's generation) and by the baseline (a `Generator`:
another model, an endpoint, or a `ResponsesFile` of its responses). The judge is asked which is
better twice, with the model's response first and then second (`PAIRWISE_TEMPLATE`, strict A / B
parsing); the per-prompt `win` is the mean over the parseable orders (1 both prefer the model, 0.5
the orders disagree, 0 neither). `position_consistent` says the two orders agreed.

Aggregates: `win_rate` (mean win, bootstrap interval over prompts) and `win_rate_lc`, a
length-controlled estimate: a logistic regression of the per-prompt win on the word-count
difference (model minus baseline, divided by its standard deviation), evaluated at a difference of
zero: sigmoid(intercept). Wins are fractional (0, 0.5, 1), fitted by maximum quasi-likelihood
(Newton's method with a 1e-3 ridge so an all-win set stays finite); bootstrap interval over prompts.
This is in the spirit of AlpacaEval's length-controlled win rate (Dubois et al. 2024), simpler.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from alignlab.data.schema import user
from alignlab.evals.core import Episode, Figure, Result, Score, Suite
from alignlab.evals.datasets import read_prompts
from alignlab.evals.judges import JUDGE_PARAMS, PAIRWISE_TEMPLATE, parse_choice_ab
from alignlab.evals.registry import REQUIRED, register_suite
from alignlab.evals.runner import ask
from alignlab.evals.solvers import plain
from alignlab.evals.suites.diversity import builtin_prompts
from alignlab.evals.textstats import word_count
from alignlab.generation.base import Generator, SamplingParams
from alignlab.stats import bootstrap_interval

PARAMS = SamplingParams(max_new_tokens=256)


def logistic_intercept(x: Sequence[float], y: Sequence[float], ridge: float = 1e-3, steps: int = 50) -> float:
    """Intercept of the logistic regression y ~ sigmoid(b0 + b1 x) for y in [0, 1] (Newton's method)."""
    b0 = b1 = 0.0
    for _ in range(steps):
        p = [1 / (1 + math.exp(-(b0 + b1 * xi))) for xi in x]
        g0 = sum(yi - pi for yi, pi in zip(y, p, strict=True)) - ridge * b0
        g1 = sum((yi - pi) * xi for xi, yi, pi in zip(x, y, p, strict=True)) - ridge * b1
        w = [pi * (1 - pi) for pi in p]
        h00 = sum(w) + ridge
        h01 = sum(wi * xi for wi, xi in zip(w, x, strict=True))
        h11 = sum(wi * xi * xi for wi, xi in zip(w, x, strict=True)) + ridge
        det = h00 * h11 - h01 * h01
        d0, d1 = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        b0, b1 = b0 + d0, b1 + d1
        if abs(d0) + abs(d1) < 1e-10:
            break
    return b0


def length_controlled_win_rate(wins: Sequence[float], length_diffs: Sequence[float]) -> float:
    """sigmoid(intercept) of win ~ length difference / sd(length difference)."""
    n = len(wins)
    mean = sum(length_diffs) / n
    sd = math.sqrt(sum((d - mean) ** 2 for d in length_diffs) / max(n - 1, 1)) or 1.0
    return 1 / (1 + math.exp(-logistic_intercept([d / sd for d in length_diffs], wins)))


@dataclass(frozen=True)
class PairwiseScorer:
    """The judge's preference between the model's response and the baseline's, in both orders."""

    judge: Generator
    baseline: Generator
    params: SamplingParams = PARAMS
    name: str = "pairwise"

    def __call__(self, episodes: Sequence[Episode]) -> list[Score]:
        if not episodes:
            return []
        keys = [(e.sample.id, e.variant, 0) for e in episodes]
        base = ask(self.baseline, keys, [e.dialogue.messages for e in episodes], replace(self.params, n=1))
        prompts = []
        for e, b in zip(episodes, base, strict=True):
            request, mine, theirs = e.sample.request, e.response, b[0].text
            prompts += [[user(PAIRWISE_TEMPLATE.format(request=request, a=mine, b=theirs))],
                        [user(PAIRWISE_TEMPLATE.format(request=request, a=theirs, b=mine))]]  # fmt: skip
        verdicts = self.judge.generate(prompts, JUDGE_PARAMS)
        return [self._one(e, b[0], verdicts[2 * i][:1], verdicts[2 * i + 1][:1])
                for i, (e, b) in enumerate(zip(episodes, base, strict=True))]  # fmt: skip

    def _one(self, e: Episode, baseline, first: list, second: list) -> Score:
        if baseline.failed:
            return Score("baseline_error", None, f"baseline failed: {baseline.error}")
        replies = [c[0].text if c and not c[0].failed else "" for c in (first, second)]
        picks = [parse_choice_ab(r) for r in replies]
        # Model first: "A" is a model win; model second: "B" is.
        outcomes = [None if p is None else float(p == want) for p, want in zip(picks, "AB", strict=True)]
        extra = {"baseline_response": baseline.text, "judge_replies": replies}
        lengths = {
            "words_model": float(word_count(e.response)),
            "words_baseline": float(word_count(baseline.text)),
        }
        parsed = [o for o in outcomes if o is not None]
        if not parsed:
            return Score("unparseable", None, "no judge reply parsed", {"unparseable": True}, extra)
        win = sum(parsed) / len(parsed)
        metrics: dict[str, bool | float] = {"win": win, "unparseable": len(parsed) < 2, **lengths}
        if len(parsed) == 2:
            metrics["position_consistent"] = outcomes[0] == outcomes[1]
        label = "win" if win == 1 else "loss" if win == 0 else "split"
        return Score(
            label, win, f"judge picks {picks[0]} (model first), {picks[1]} (model second)", metrics, extra
        )


def win_rates(results: Sequence[Result]) -> dict[str, Figure]:
    rows = [r.metric_values() for r in results]
    rows = [m for m in rows if "pairwise/win" in m]
    if not rows:
        return {}
    wins = [float(m["pairwise/win"]) for m in rows]
    diffs = [float(m["pairwise/words_model"]) - float(m["pairwise/words_baseline"]) for m in rows]
    idx = list(range(len(rows)))

    def lc(sample: Sequence[float]) -> float:
        return length_controlled_win_rate([wins[int(i)] for i in sample], [diffs[int(i)] for i in sample])

    return {
        "win_rate": Figure(bootstrap_interval(wins), "bootstrap"),
        "win_rate_lc": Figure(bootstrap_interval(idx, lc, resamples=300), "bootstrap"),
    }


@register_suite("win_rate", data="prompts CSV / JSONL (prompt column); optional: built-in open prompts",
                data_required=False, headline=(("aggregate", "win_rate"), ("aggregate", "win_rate_lc"),
                                               ("default", "pairwise/unparseable")))  # fmt: skip
def win_rate(
    data: str | None = None, *, judge: Generator = REQUIRED, baseline: Generator = REQUIRED
) -> Suite:
    """Win rate against a baseline's responses, judged in both orders; raw and length-controlled."""
    prompts = read_prompts(data).samples if data else builtin_prompts()
    return Suite("win_rate", prompts, {"default": plain()}, (PairwiseScorer(judge, baseline),), PARAMS,
                 aggregate=win_rates)  # fmt: skip

"""Length and diversity: the mode-collapse signals, over n sampled responses per prompt.

Per response (`length` scorer): `words`, `chars`, and `tokens` when the backend reports them.
Aggregates over prompts (each figure is a mean over prompts with a t interval, except the
percentiles, which are bootstrapped): `distinct_1` / `distinct_2` within each prompt's n samples,
`distinct_2_across` over the first sample of every prompt, `self_bleu` within each prompt's
samples, `entropy_bits` (entropy of the distinct responses among the n samples; at most log2 n),
`entropy_nats` (Monte-Carlo sequence entropy, -mean log p(response), when the backend returns the
sampling log-probs), and `words_median` / `words_p90`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

from alignlab.data.schema import user
from alignlab.evals.core import Episode, Figure, Result, Sample, Score, Suite, rule_scorer
from alignlab.evals.datasets import read_prompts
from alignlab.evals.registry import register_suite
from alignlab.evals.solvers import plain
from alignlab.evals.suites.prompts_data import OPEN_PROMPTS
from alignlab.evals.textstats import distinct_n, exact_match_entropy, self_bleu, word_count
from alignlab.generation.base import SamplingParams
from alignlab.stats import bootstrap_interval, mean_interval


def builtin_prompts() -> tuple[Sample, ...]:
    return tuple(Sample(id=str(i), input=(user(p),)) for i, p in enumerate(OPEN_PROMPTS, 1))


def _length(e: Episode) -> Score:
    reply = e.transcript.replies[-1]
    words = word_count(reply.text)
    metrics = {"words": float(words), "chars": float(len(reply.text))}
    if reply.token_ids:
        metrics["tokens"] = float(len(reply.token_ids))
    return Score("ok" if reply.text else "empty", float(words), f"{words} words", metrics)


def _percentile(q: float):
    def stat(xs: Sequence[float]) -> float:
        s = sorted(xs)
        return s[min(len(s) - 1, int(q * len(s)))]

    return stat


def _mean(values: list[float]) -> Figure:
    kept = [v for v in values if not math.isnan(v)]
    return Figure(mean_interval(kept), "t")


def diversity_figures(results: Sequence[Result]) -> dict[str, Figure]:
    by_prompt: dict[str, list[Result]] = defaultdict(list)
    for r in results:
        by_prompt[r.id].append(r)
    groups = [sorted(rs, key=lambda r: r.draw) for rs in by_prompt.values()]
    texts = [[r.response or "" for r in g] for g in groups]
    out = {
        "distinct_1": _mean([distinct_n(t, 1) for t in texts]),
        "distinct_2": _mean([distinct_n(t, 2) for t in texts]),
        "self_bleu": _mean([self_bleu(t) for t in texts]),
        "entropy_bits": _mean([exact_match_entropy(t) for t in texts]),
    }
    firsts = [t[0] for t in texts if t]
    out["distinct_2_across"] = Figure(
        bootstrap_interval(
            list(range(len(firsts))), lambda idx: distinct_n([firsts[int(i)] for i in idx], 2), resamples=500
        ),
        "bootstrap",
    )
    logps = [[r.reply_logps[-1] for r in g] for g in groups]
    if logps and all(x is not None for g in logps for x in g):
        out["entropy_nats"] = _mean([-sum(g) / len(g) for g in logps])  # type: ignore[arg-type]
    words = [float(word_count(r.response or "")) for r in results]
    if words:
        out["words_median"] = Figure(bootstrap_interval(words, _percentile(0.5), resamples=500), "bootstrap")
        out["words_p90"] = Figure(bootstrap_interval(words, _percentile(0.9), resamples=500), "bootstrap")
    return out


@register_suite(
    "diversity",
    data="prompts CSV / JSONL (prompt column); optional: built-in open prompts",
    data_required=False,
    headline=(
        ("default", "length/words"),
        ("aggregate", "distinct_2"),
        ("aggregate", "self_bleu"),
        ("aggregate", "entropy_bits"),
    ),
)
def diversity(
    data: str | None = None, *, samples: int = 8, temperature: float = 1.0, max_new_tokens: int = 128
) -> Suite:
    """Length and diversity over n samples per prompt: distinct-n, self-BLEU, entropy (mode collapse)."""
    prompts = read_prompts(data).samples if data else builtin_prompts()
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=temperature, n=samples)
    return Suite("diversity", prompts, {"default": plain()}, (rule_scorer("length", _length),), params,
                 aggregate=diversity_figures)  # fmt: skip

"""The `rlaif` stage: AI preference labels for pairs of responses, audited against reference labels.

Reads pairs (`feedback.inputs.read_pairs_to_label`), has the judge (`feedback.backends`) compare
each pair under the constitution in both orders (`feedback.rlaif.label_pairs`), and writes:

- `pairs.jsonl`: `PreferencePair`s with confidences, for `alignlab rm` / `dpo` (ties marked `tie`);
- `audit.jsonl`: one judgement row per pair (both orders' replies and probabilities), which is
  also the resume journal;
- `agreement.json`, when reference labels are given (`reference`, and the labels the input carries
  unless `input_labels` is false): the audit of the AI labels against each (`audit.audit_labels`:
  accuracy, Cohen's kappa, position-bias rate, disagreements), the input's labels against the
  reference (`audit.compare_labels`), and the paired difference in accuracy between the AI and the
  input's labellers on the pairs both labelled.

An endpoint judge's responses are cached in `http_cache/`. A judgement the backend failed (after its
retries) stops the stage with an error once the rest are done: the audit and the cache are kept,
and the same command, run again, asks only for the failed ones.
"""

from __future__ import annotations

from typing import Any

from alignlab.config.feedback import RLAIFConfig
from alignlab.errors import AlignlabError
from alignlab.stage_io import StageContext


class JudgementsFailed(AlignlabError):
    """Some judgements failed at the backend; the run can be resumed."""


def run_rlaif(config: RLAIFConfig, ctx: StageContext) -> dict[str, Any]:
    from alignlab.data.readers import read_preferences, write_records
    from alignlab.feedback.backends import open_backend
    from alignlab.feedback.constitution import constitution_from_config
    from alignlab.feedback.inputs import read_pairs_to_label
    from alignlab.feedback.judge import AIJudge
    from alignlab.feedback.rlaif import label_pairs
    from alignlab.generation.base import SamplingParams

    constitution = constitution_from_config(config.constitution, ctx.config_key("constitution"))
    constitution.comparison_principles()  # a constitution that cannot label fails before any model loads
    data = read_pairs_to_label(config.pairs, config.format, config.limit)
    references = {}
    if config.reference is not None:
        references["reference"] = read_preferences(config.reference).records
    if config.input_labels and data.input_labels:
        references["input_labels"] = data.input_labels
    ctx.log(f"rlaif: {len(data.items)} pairs to label ({data.format}), judge {config.judge.path}")
    backend = open_backend(config.judge, ctx.path("cache"), scorer=not config.judge.is_endpoint)
    params = SamplingParams(max_new_tokens=config.max_new_tokens or (512 if config.cot else 16),
                            top_logprobs=config.top_logprobs if backend.http is not None else 0)
    judge = AIJudge(backend.id, generator=backend.generator, scorer=backend.scorer, cot=config.cot,
                    params=params)
    try:
        pairs, report = label_pairs(
            judge, data.items, constitution, seed=config.seed, tie_band=config.tie_band, clamp=config.clamp,
            audit_path=ctx.path("audit"), chunk_size=config.chunk_size,
        )
    finally:
        backend.close()
    summary = {**report.summary(), "skipped_input": data.skipped, "requests_sent": backend.requests_sent}
    _stop_on_failures(report.records, ctx)
    write_records(ctx.path("pairs"), pairs)
    if references:
        summary.update(_agreement(report.records, pairs, references, config, ctx))
    ctx.log(f"rlaif: {summary['labelled']} of {summary['pairs']} pairs labelled ({summary['ties']} ties, "
            f"{summary['unparseable']} unparseable)")
    return summary


def _stop_on_failures(records: list[dict[str, Any]], ctx: StageContext) -> None:
    failed = [r for r in records if r["status"] == "failed"]
    if failed:
        error = next((o["error"] for o in failed[0]["orders"] if o["error"]), "unknown error")
        raise JudgementsFailed(
            f"rlaif: {len(failed)} of {len(records)} judgements failed at the judge (first: {error}); "
            f"the audit and any cached responses are kept in {ctx.output_dir}: run the same command again "
            "to judge only those"
        )


def _agreement(records, pairs, references, config: RLAIFConfig, ctx: StageContext) -> dict[str, Any]:
    """agreement.json and its headline figures for the stage summary."""
    from alignlab.feedback.audit import audit_labels, compare_labels, correct_by_pair
    from alignlab.io import atomic_write_json
    from alignlab.stats import paired_difference

    annotator = {"reference": config.reference_annotator}
    out: dict[str, Any] = {}
    for name, ref in references.items():
        out[f"ai_vs_{name}"] = audit_labels(records, ref, annotator=annotator.get(name), seed=config.seed)
    if {"reference", "input_labels"} <= set(references):
        gold, given = references["reference"], references["input_labels"]
        out["input_labels_vs_reference"] = compare_labels(given, gold, annotator=config.reference_annotator,
                                                          seed=config.seed)
        ai = correct_by_pair(pairs, gold, annotator=config.reference_annotator)
        human = correct_by_pair(given, gold, annotator=config.reference_annotator)
        both = sorted(ai.keys() & human.keys())
        diff = paired_difference([float(ai[k]) for k in both], [float(human[k]) for k in both])
        out["ai_minus_input_labels_accuracy"] = diff.as_dict()
    atomic_write_json(ctx.path("agreement"), out)
    headline: dict[str, Any] = {}
    for name, audit in out.items():
        if name.startswith("ai_vs_"):
            for key in ("accuracy", "cohen_kappa", "position_bias_rate"):
                headline[f"{name}/{key}"] = audit[key]
            ctx.log(f"rlaif: AI labels vs {name[6:]}: accuracy {_fmt(audit['accuracy'])}, "
                    f"kappa {_fmt(audit['cohen_kappa'])}, position bias {_fmt(audit['position_bias_rate'])}")
    if "input_labels_vs_reference" in out:
        headline["input_labels_vs_reference/accuracy"] = out["input_labels_vs_reference"]["accuracy"]
        headline["ai_minus_input_labels_accuracy"] = out["ai_minus_input_labels_accuracy"]
        given = out["input_labels_vs_reference"]["accuracy"]
        ctx.log(f"rlaif: input labels vs reference: accuracy {_fmt(given)}; "
                f"AI minus input labels: {_fmt(out['ai_minus_input_labels_accuracy'])}")
    return headline


def _fmt(e: dict[str, Any]) -> str:
    return f"{e['value']:.3f} [{e['low']:.3f}, {e['high']:.3f}] (n={e['n']})"


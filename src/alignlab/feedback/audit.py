"""Audit AI labels against reference labels (human or gold): how often, and how, the judge is wrong.

Input: the AI labeller's audit rows (`LabellingReport.records`, or the `judgement` rows of its
audit JSONL) and reference `PreferencePair`s. A row is matched to a reference pair by id, or by
the prompt and the two responses in either order (`feedback.labeller.pair_key`). Labels are
compared in order-free terms (which of the two responses won, or a tie).

Reported (rates with Wilson intervals and their n, kappa with a seeded bootstrap interval):
- `accuracy`: share of matched pairs with a decisive reference label where the AI picked the same
  response (an AI tie counts as wrong), and `agreement`: share with the same label, ties included;
- `cohen_kappa` of AI and reference labels (first / second / tie), from `feedback.agreement`;
- `position_bias_rate`: share of pairs, both orders decisive, where the two raw judgements picked
  the same position (A twice or B twice), i.e. followed the position rather than the content; it is
  1 - `agreement.position_consistency` of the two orders' verdicts;
- `first_shown_rate`: share of decisive raw judgements that picked (A), from
  `agreement.position_bias_rate` (0.5 = no lean);
- `unparseable_rate` and `failed_rate` over all rows;
- `disagreements`: every matched pair where the labels differ, with the principle, the AI's
  probability and its replies.
Write it with `alignlab.io.atomic_write_json`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from alignlab.data.schema import PreferencePair
from alignlab.feedback.agreement import cohen_kappa, position_bias_rate, position_consistency
from alignlab.feedback.labeller import RecordedLabels, messages_json, pair_key
from alignlab.stats import bootstrap_interval, wilson_interval

Row = Mapping[str, Any]


def _order_free(first: str, second: str, winner: str | None) -> str:
    """`r1` / `r2` (the winner's rank in sorted order of the two responses' JSON) or `tie`."""
    if winner is None:
        return "tie"
    return "r1" if winner == min(first, second) else "r2"


def _ai_label(row: Row) -> str:
    first, second = messages_json(row["first"]), messages_json(row["second"])
    winner = {"first": first, "second": second, "tie": None}[row["label"]]
    return _order_free(first, second, winner)


def _reference_label(pair: PreferencePair) -> str:
    chosen, rejected = messages_json(pair.chosen), messages_json(pair.rejected)
    return _order_free(chosen, rejected, None if pair.tie else chosen)


def _raw_picks(row: Row) -> tuple[bool | None, bool | None]:
    """Per order: True if (A) was preferred, False if (B), None if undecided or missing."""
    return tuple(None if o["p_a"] is None or o["p_a"] == 0.5 else o["p_a"] > 0.5 for o in row["orders"])


def _position_bias(rows: Sequence[Row]) -> tuple[dict[str, Any], dict[str, Any]]:
    picks = [_raw_picks(r) for r in rows]
    both = [(ab, ba) for ab, ba in picks if ab is not None and ba is not None]
    # In content terms: AB picking A means "first", BA picking A means "second".
    verdicts = ["first" if ab else "second" for ab, _ in both]
    swapped = ["second" if ba else "first" for _, ba in both]
    consistent = round(position_consistency(verdicts, swapped) * len(both)) if both else 0
    first_picks = [p for pair in picks for p in pair if p is not None]
    first_rate = wilson_interval(sum(first_picks), len(first_picks)).as_dict()
    first_rate["value"] = position_bias_rate(first_picks)
    return wilson_interval(len(both) - consistent, len(both)).as_dict(), first_rate


def audit_labels(
    records: Sequence[Row],
    reference: Sequence[PreferencePair],
    *,
    annotator: str | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """The audit of AI `records` against `reference` (only `annotator`'s labels when given)."""
    rows = [r for r in records if r.get("kind", "judgement") == "judgement"]
    ref = RecordedLabels(reference, id="reference", annotator=annotator)
    matched: list[tuple[Row, PreferencePair]] = []
    unmatched: Counter[str] = Counter()
    for r in rows:
        pair, why = ref.find(r["id"], r["key"])
        if pair is None:
            unmatched[why] += 1
        else:
            matched.append((r, pair))
    compared = [(r, p, _ai_label(r), _reference_label(p)) for r, p in matched if r["status"] == "labelled"]
    ai, gold = [a for _, _, a, _ in compared], [b for _, _, _, b in compared]
    status = Counter(r["status"] for r in rows)
    position, first_shown = _position_bias(rows)
    return {
        "constitutions": sorted({r["constitution"] for r in rows}),
        "judges": sorted({r["judge"] for r in rows}),
        "rows": len(rows),
        "reference_pairs": len(ref),
        "matched": len(matched),
        "unmatched": dict(unmatched),
        "compared": len(compared),
        **agreement_stats(ai, gold, seed),
        "position_bias_rate": position,
        "first_shown_rate": first_shown,
        "unparseable_rate": wilson_interval(status.get("unparseable", 0), len(rows)).as_dict(),
        "failed_rate": wilson_interval(status.get("failed", 0), len(rows)).as_dict(),
        "ai_labels": dict(Counter(ai)),
        "reference_labels": dict(Counter(gold)),
        "disagreements": [_disagreement(r, p) for r, p, a, b in compared if a != b],
    }


def agreement_stats(labels: Sequence[str], reference: Sequence[str], seed: int = 0) -> dict[str, Any]:
    """`accuracy` (over decisive references; a tie where the reference is decisive is wrong),
    `agreement` (ties included) and `cohen_kappa` of order-free labels (r1 / r2 / tie), with intervals."""
    decisive = [(a, b) for a, b in zip(labels, reference, strict=True) if b != "tie"]
    kappa = bootstrap_interval(
        [float(i) for i in range(len(labels))],
        lambda idx: cohen_kappa([labels[int(i)] for i in idx], [reference[int(i)] for i in idx]),
        seed=seed,
    )
    same = sum(a == b for a, b in zip(labels, reference, strict=True))
    return {
        "accuracy": wilson_interval(sum(a == b for a, b in decisive), len(decisive)).as_dict(),
        "agreement": wilson_interval(same, len(labels)).as_dict(),
        "cohen_kappa": kappa.as_dict(),
    }


def correct_by_pair(pairs: Sequence[PreferencePair], reference: Sequence[PreferencePair], *,
                    annotator: str | None = None) -> dict[str, bool]:
    """For each of `pairs` matched to a decisive reference label (by id or content): did it pick the
    same response? Keyed by the pair's content key, so two labellers of the same pairs line up."""
    ref = RecordedLabels(reference, id="reference", annotator=annotator)
    out: dict[str, bool] = {}
    for p in pairs:
        key = pair_key(p.prompt, p.chosen, p.rejected)
        found, _ = ref.find(p.id, key)
        if found is not None and not found.tie:
            out[key] = _reference_label(p) == _reference_label(found)
    return out


def compare_labels(pairs: Sequence[PreferencePair], reference: Sequence[PreferencePair], *,
                   annotator: str | None = None, seed: int = 0) -> dict[str, Any]:
    """Any labeller's pairs (human, simulated or AI) against reference labels: how many matched, and
    `agreement_stats` of the matched ones (no position bias: a pair does not say how it was shown)."""
    ref = RecordedLabels(reference, id="reference", annotator=annotator)
    found = [(p, ref.find(p.id, pair_key(p.prompt, p.chosen, p.rejected))[0]) for p in pairs]
    matched = [(p, r) for p, r in found if r is not None]
    labels = [_reference_label(p) for p, _ in matched]
    return {
        "pairs": len(pairs),
        "annotators": sorted({p.annotator or "" for p in pairs}),
        "matched": len(matched),
        **agreement_stats(labels, [_reference_label(r) for _, r in matched], seed),
    }


def _disagreement(row: Row, pair: PreferencePair) -> dict[str, Any]:
    return {
        "id": row["id"],
        "reference_id": pair.id,
        "principle": row["principle"],
        "prompt": row["prompt"],
        "first": row["first"],
        "second": row["second"],
        "ai_label": row["label"],
        "ai_p_first": row["p_first"],
        "reference_chosen": [m.to_json() for m in pair.chosen],
        "reference_tie": pair.tie,
        "reference_annotator": pair.annotator,
        "replies": {o["order"]: o["reply"] for o in row["orders"]},
    }
